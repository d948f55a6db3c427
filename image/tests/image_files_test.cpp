// Store-side referrers and reading an image's files from its layers (no unpacking).
#include <kiste/image/image_files.hpp>

#include <filesystem>

#include <gtest/gtest.h>

#include <kiste/base/sys.hpp>
#include <kiste/base/temp_dir.hpp>
#include <kiste/image/archive.hpp>
#include <kiste/image/media_type.hpp>
#include <kiste/image/store_ops.hpp>

#include "test_tar.hpp"

namespace kiste::image {
namespace {

namespace fs = std::filesystem;

class ImageFilesTest : public ::testing::Test {
 protected:
  TempDir dir_ = std::move(TempDir::create(fs::temp_directory_path(), "kiste-files-").value());
  Store store_ = std::move(Store::open(dir_.path() / "root").value());

  // An uncompressed layer of {name -> content} in the store.
  Descriptor layer(const std::vector<std::pair<std::string, std::string>>& files) {
    std::string tar = sys::read_file(make_tar(dir_.path(), files), 1 << 20).value();
    return store_.put_blob(tar, media_type::kOciLayerTar).value();
  }
  Descriptor artifact(const Descriptor& subject, std::string_view doc) {
    Manifest m;
    m.media_type = std::string(media_type::kOciManifest);
    m.artifact_type = "application/spdx+json";
    m.config = store_.put_blob("{}", "application/vnd.oci.empty.v1+json").value();
    m.layers.push_back(store_.put_blob(doc, "application/spdx+json").value());
    m.subject = subject;
    return store_.put_blob(serialize_manifest(m), m.media_type).value();
  }
};

TEST_F(ImageFilesTest, UpperLayersWinAndWhiteoutsHideLowerFiles) {
  Manifest m;
  m.layers.push_back(layer({{"var/lib/dpkg/status", "old"}, {"lib/apk/db/installed", "apk"},
                            {"etc/os-release", "ID=debian\n"}}));
  m.layers.push_back(layer({{"var/lib/dpkg/status", "new"}, {"etc/.wh.os-release", ""}}));
  // An opaque marker in the same layer hides only the lower layers' apk db, not this layer's.
  m.layers.push_back(layer({{"lib/apk/db/.wh..wh..opq", ""}, {"lib/apk/db/other", "x"}}));
  auto files = read_image_files(store_, m,
                                {"var/lib/dpkg/status", "lib/apk/db/installed", "etc/os-release",
                                 "missing"},
                                1 << 20);
  ASSERT_TRUE(files) << files.error().to_string();
  EXPECT_EQ(*files, (std::map<std::string, std::string>{{"var/lib/dpkg/status", "new"}}));
}

TEST_F(ImageFilesTest, WhiteoutOfAParentDirHidesTheFile) {
  Manifest m;
  m.layers.push_back(layer({{"var/lib/dpkg/status", "x"}}));
  m.layers.push_back(layer({{".wh.", ""}, {"var/lib/.wh.dpkg", ""}}));
  auto files = read_image_files(store_, m, {"var/lib/dpkg/status"}, 1 << 20);
  ASSERT_TRUE(files) << files.error().to_string();
  EXPECT_TRUE(files->empty());
  // A bare `.wh.` at the root hides nothing (it is not a whiteout of the whole tree).
  Manifest bare;
  bare.layers.push_back(layer({{"var/lib/dpkg/status", "x"}}));
  bare.layers.push_back(layer({{".wh.", ""}}));
  auto kept = read_image_files(store_, bare, {"var/lib/dpkg/status"}, 1 << 20);
  ASSERT_TRUE(kept) << kept.error().to_string();
  EXPECT_EQ(kept->size(), 1u);
}

TEST_F(ImageFilesTest, AFileOverTheLimitIsAnErrorNamingIt) {
  Manifest m;
  m.layers.push_back(layer({{"./var/lib/dpkg/status", std::string(100, 'a')}}));
  auto files = read_image_files(store_, m, {"var/lib/dpkg/status"}, 99);
  ASSERT_FALSE(files);
  EXPECT_NE(files.error().to_string().find("`/var/lib/dpkg/status` is 100 bytes"), std::string::npos)
      << files.error().to_string();
}

TEST_F(ImageFilesTest, GarbageLayerIsCorruptNotACrash) {
  Manifest m;
  m.layers.push_back(store_.put_blob(std::string(4096, '\x7f'), media_type::kOciLayerGzip).value());
  auto files = read_image_files(store_, m, {"var/lib/dpkg/status"}, 1 << 20);
  ASSERT_FALSE(files);
  EXPECT_EQ(files.error().code, Errc::Corrupt) << files.error().to_string();
}

TEST_F(ImageFilesTest, LayerFilesListsRegularFilesWithDigests) {
  auto l = layer({{"app/a.txt", "hello"}, {"app/b.txt", ""}});
  auto files = layer_files(store_, l, 10);
  ASSERT_TRUE(files) << files.error().to_string();
  ASSERT_EQ(files->size(), 2u);
  EXPECT_EQ((*files)[0].path, "app/a.txt");
  EXPECT_EQ((*files)[0].digest, Digest::of("hello"));
  EXPECT_EQ((*files)[0].size, 5);
  EXPECT_FALSE(layer_files(store_, l, 1));
}

TEST_F(ImageFilesTest, ReferrersAreListedWithTheirImageAndPrunedWithIt) {
  std::string tar = make_tar(dir_.path(), {{"hello.txt", "hi"}});
  auto img = import_rootfs(store_, tar, Reference::parse("img:1").value(), {}).value();
  auto art = artifact(img, "{\"spdxVersion\":\"SPDX-2.3\"}");
  Descriptor listed = art;
  listed.artifact_type = "application/spdx+json";
  ASSERT_TRUE(store_.add_referrer(listed, img.digest));
  ASSERT_TRUE(store_.add_referrer(listed, img.digest));  // once only
  auto refs = store_.referrers(img.digest).value();
  ASSERT_EQ(refs.size(), 1u);
  EXPECT_EQ(refs[0].digest, art.digest);
  EXPECT_EQ(refs[0].artifact_type, "application/spdx+json");
  EXPECT_TRUE(refs[0].annotations.empty());
  // Not an image of its own, and kept by prune while its image is.
  EXPECT_EQ(store_.entries()->size(), 1u);
  EXPECT_EQ(prune(store_)->blobs_removed, 0);
  EXPECT_TRUE(store_.has_blob(art.digest));
  // A referrer of a manifest that is not stored is refused.
  Descriptor ghost = listed;
  ghost.digest = Digest::of("ghost");
  EXPECT_FALSE(store_.add_referrer(ghost, img.digest));
  // The image goes: its referrer's entry and blobs go with it at the next prune.
  ASSERT_TRUE(store_.remove_name(Reference::parse("img:1").value()));
  auto rep = prune(store_).value();
  EXPECT_GE(rep.blobs_removed, 3);
  EXPECT_FALSE(store_.has_blob(art.digest));
  EXPECT_TRUE(store_.referrers(img.digest)->empty());
  EXPECT_TRUE(store_.all_referrers()->empty());
}

TEST_F(ImageFilesTest, FirstEntryDifferenceNamesTheFileAndWhatDiffers) {
  auto read = [&](const Descriptor& d) { return store_.open_blob(d.digest).value(); };
  auto diff = [&](const Descriptor& x, const Descriptor& y) {
    auto a = read(x);
    auto b = read(y);
    return first_entry_difference(*a, media_type::Compression::None, *b,
                                  media_type::Compression::None);
  };
  auto same = diff(layer({{"a", "1"}, {"b", "2"}}), layer({{"a", "1"}, {"b", "2"}}));
  ASSERT_TRUE(same) << same.error().to_string();
  EXPECT_FALSE(*same);
  auto content = diff(layer({{"a", "1"}, {"b", "2"}}), layer({{"a", "1"}, {"b", "3"}}));
  ASSERT_TRUE(content && *content);
  EXPECT_EQ((*content)->path, "/b");
  EXPECT_EQ((*content)->what, fmt::format("content {} (1 bytes) vs {} (1 bytes)", Digest::of("2"),
                                          Digest::of("3")));
  auto extra = diff(layer({{"a", "1"}}), layer({{"a", "1"}, {"z", ""}}));
  ASSERT_TRUE(extra && *extra);
  EXPECT_EQ((*extra)->path, "/z");
  EXPECT_EQ((*extra)->what, "only in the second");
  auto garbage = store_.put_blob("not a tar at all, not even close", media_type::kOciLayerTar).value();
  EXPECT_FALSE(diff(layer({{"a", "1"}}), garbage));
}

// save/load: an oci-archive carries an image's store-side referrers as unnamed index.json
// entries (the artifact's manifest, whose subject is the image) and load makes them referrers
// again, the image digest unchanged; a docker-archive cannot hold them and says how many it left.
TEST_F(ImageFilesTest, OciArchiveCarriesReferrersDockerArchiveCountsThemLeftOut) {
  std::string tar = make_tar(dir_.path(), {{"hello.txt", "hi"}});
  auto img = import_rootfs(store_, tar, Reference::parse("img:1").value(), {}).value();
  Descriptor art = artifact(img, "{\"spdxVersion\":\"SPDX-2.3\"}");
  art.artifact_type = "application/spdx+json";
  ASSERT_TRUE(store_.add_referrer(art, img.digest));
  auto entry = store_.resolve("img:1").value();
  fs::path oci = dir_.path() / "o.tar", dock = dir_.path() / "d.tar";
  auto so = save_archive(store_, {entry, entry}, oci, ArchiveFormat::OciArchive);
  ASSERT_TRUE(so) << so.error().to_string();
  EXPECT_EQ(so->referrers_saved, 1);  // once, though the image was named twice
  EXPECT_EQ(so->referrers_left_out, 0);
  auto sd = save_archive(store_, {entry}, dock, ArchiveFormat::DockerArchive);
  ASSERT_TRUE(sd) << sd.error().to_string();
  EXPECT_EQ(sd->referrers_saved, 0);
  EXPECT_EQ(sd->referrers_left_out, 1);

  auto other = Store::open(dir_.path() / "other").value();
  auto l = load_archive(other, oci);
  ASSERT_TRUE(l) << l.error().to_string();
  ASSERT_EQ(l->size(), 2u);  // the image under its two names; the artifact is no image
  EXPECT_EQ(l->at(0).manifest.digest, img.digest);
  EXPECT_EQ(l->at(0).referrers + l->at(1).referrers, 1);
  auto refs = other.referrers(img.digest).value();
  ASSERT_EQ(refs.size(), 1u);
  EXPECT_EQ(refs[0].digest, art.digest);
  EXPECT_EQ(refs[0].artifact_type, "application/spdx+json");
  EXPECT_EQ(other.entries()->size(), 1u);
  EXPECT_EQ(prune(other)->blobs_removed, 0);
  EXPECT_TRUE(fsck(other).value().clean());

  auto third = Store::open(dir_.path() / "third").value();
  auto ld = load_archive(third, dock);
  ASSERT_TRUE(ld) << ld.error().to_string();
  EXPECT_EQ(ld->at(0).referrers, 0);
  EXPECT_TRUE(third.all_referrers()->empty());
}

}  // namespace
}  // namespace kiste::image
