#include <kiste/image/store.hpp>

#include <filesystem>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>

#include <kiste/base/sys.hpp>
#include <kiste/base/temp_dir.hpp>
#include <kiste/image/archive.hpp>
#include <kiste/image/copy.hpp>
#include <kiste/image/image_index.hpp>
#include <kiste/image/media_type.hpp>
#include <kiste/image/store_layers.hpp>
#include <kiste/image/store_ops.hpp>

#include "test_tar.hpp"

namespace kiste::image {
namespace {

namespace fs = std::filesystem;


class StoreTest : public ::testing::Test {
 protected:
  TempDir dir_ = std::move(TempDir::create(fs::temp_directory_path(), "kiste-store-").value());
  Store store_ = std::move(Store::open(dir_.path() / "root").value());

  Descriptor import(const std::string& name, const std::string& content, int64_t created = 0) {
    std::string tar = make_tar(dir_.path(), {{"hello.txt", content}});
    auto d = import_rootfs(store_, tar, Reference::parse(name).value(), {.created = created});
    EXPECT_TRUE(d) << d.error().to_string();
    return *d;
  }
  size_t tmp_files() const {
    return static_cast<size_t>(std::distance(fs::directory_iterator(store_.tmp_dir()), fs::directory_iterator{}));
  }
};

TEST_F(StoreTest, IsAnOciLayout) {
  EXPECT_EQ(sys::read_file(store_.root() / "oci-layout").value(), R"({"imageLayoutVersion":"1.0.0"})");
  EXPECT_TRUE(fs::is_directory(store_.root() / "blobs" / "sha256"));
  EXPECT_TRUE(store_.entries().value().empty());
  // Reopening works; a foreign non-empty directory is refused, and left alone.
  EXPECT_TRUE(Store::open(store_.root()));
  fs::create_directories(dir_.path() / "foreign");
  ASSERT_TRUE(sys::write_file_atomic(dir_.path() / "foreign" / "data.txt", "mine"));
  auto bad = Store::open(dir_.path() / "foreign");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().to_string().find("not an OCI image layout"), std::string::npos);
  EXPECT_FALSE(fs::exists(dir_.path() / "foreign" / "blobs"));
  EXPECT_FALSE(Store::open(dir_.path() / "missing", {.create = false}));
}

TEST_F(StoreTest, BlobWriterShowsNothingUntilVerified) {
  auto w = store_.blob_writer().value();
  ASSERT_TRUE(w.write("hello "));
  ASSERT_TRUE(w.write("world"));
  EXPECT_EQ(store_.list_blobs().value().size(), 0u);
  auto c = w.commit(Digest::of("hello world"), 11);
  ASSERT_TRUE(c) << c.error().to_string();
  EXPECT_FALSE(c->existed);
  EXPECT_TRUE(store_.has_blob(Digest::of("hello world")));
  EXPECT_EQ(store_.read_blob(Digest::of("hello world")).value(), "hello world");

  auto bad = store_.blob_writer().value();
  ASSERT_TRUE(bad.write("tampered"));
  auto r = bad.commit(Digest::of("original"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::Corrupt);
  EXPECT_FALSE(store_.has_blob(Digest::of("tampered")));
  EXPECT_EQ(tmp_files(), 0u);
  {
    auto abandoned = store_.blob_writer().value();
    ASSERT_TRUE(abandoned.write("x"));
    EXPECT_EQ(tmp_files(), 1u);
    // A live writer's file is not stale.
    EXPECT_EQ(remove_stale_tmp(store_).value(), 0);
  }
  EXPECT_EQ(tmp_files(), 0u);
  EXPECT_EQ(store_.list_blobs().value().size(), 1u);
}

TEST_F(StoreTest, NamesResolveByNameDigestAndId) {
  Descriptor d = import("busybox", "one");
  auto e = store_.resolve("busybox");
  ASSERT_TRUE(e) << e.error().to_string();
  EXPECT_EQ(e->name, "docker.io/library/busybox:latest");
  EXPECT_EQ(store_.resolve("docker.io/library/busybox:latest")->manifest.digest, d.digest);
  EXPECT_EQ(store_.resolve(d.digest.str())->manifest.digest, d.digest);
  EXPECT_EQ(store_.resolve(std::string(d.digest.short_hex()))->manifest.digest, d.digest);
  auto m = read_manifest(store_, d).value();
  std::string id(m.manifest().config.digest.short_hex());
  EXPECT_EQ(store_.resolve(id)->manifest.digest, d.digest);
  EXPECT_EQ(store_.resolve("nothere").error().code, Errc::NotFound);
  ASSERT_TRUE(store_.set_name(Reference::parse("localhost:5000/x:1").value(), d));
  EXPECT_EQ(store_.entries()->size(), 2u);
  ASSERT_TRUE(store_.remove_name(Reference::parse("busybox").value()));
  EXPECT_FALSE(store_.resolve("busybox"));
  EXPECT_EQ(store_.remove_name(Reference::parse("busybox").value()).error().code, Errc::NotFound);
}

// Names are looked up before id prefixes, as docker does: `kiste tag busybox cafe` makes
// `cafe` the name, even though it is also four hex digits (and maybe another image's id).
TEST_F(StoreTest, NamesThatLookLikeHexAreNamesFirst) {
  Descriptor busybox = import("busybox", "one");
  Descriptor other = import("other", "two");
  const std::string other_id(read_manifest(store_, other)->manifest().config.digest.hex());
  const std::string other_prefix = other_id.substr(0, 6);
  for (const std::string& name :
       std::vector<std::string>{"cafe", "face", "added", "decade", "bad4", other_prefix}) {
    ASSERT_TRUE(store_.set_name(Reference::parse(name).value(), busybox)) << name;
    auto e = store_.resolve(name);
    ASSERT_TRUE(e) << name << ": " << e.error().to_string();
    EXPECT_EQ(e->manifest.digest, busybox.digest) << name;
    EXPECT_EQ(e->name, "docker.io/library/" + name + ":latest");
  }
  // An id prefix that is no name still finds its image, and a whole id is always an id.
  EXPECT_EQ(store_.resolve(other_id.substr(0, 8))->manifest.digest, other.digest);
  EXPECT_EQ(store_.resolve(other_id)->manifest.digest, other.digest);
  EXPECT_EQ(store_.resolve("sha256:" + other_prefix)->manifest.digest, other.digest);
  // A hex word that is neither: not found, and said so.
  auto none = store_.resolve("beef");
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().message, "no image `beef` in the store");
}

TEST_F(StoreTest, ImportAppliesChangesAndIsReproducibleWithFixedTime) {
  std::string tar = make_tar(dir_.path(), {{"a", "x"}});
  ImportOptions o{.changes = {R"(CMD ["echo","hi"])", "ENV A=1", "WORKDIR /w", "USER nobody",
                              "ENTRYPOINT /bin/sh -c", "EXPOSE 80", "LABEL k=v"},
                  .created = 0};
  auto d1 = import_rootfs(store_, tar, Reference::parse("a").value(), o).value();
  auto d2 = import_rootfs(store_, tar, Reference::parse("b").value(), o).value();
  EXPECT_EQ(d1.digest, d2.digest);
  auto m = read_manifest(store_, d1).value();
  auto cfg = ImageConfig::parse(store_.read_blob(m.manifest().config.digest).value()).value();
  EXPECT_EQ(cfg.config.env, std::vector<std::string>{"A=1"});
  EXPECT_EQ(cfg.config.working_dir, "/w");
  EXPECT_EQ(cfg.config.user, "nobody");
  EXPECT_FALSE(cfg.config.cmd);  // ENTRYPOINT after CMD resets CMD, as docker does
  EXPECT_EQ(cfg.config.entrypoint.value(), (std::vector<std::string>{"/bin/sh", "-c", "/bin/sh -c"}));
  EXPECT_EQ(cfg.config.labels.at("k"), "v");
  EXPECT_EQ(cfg.created, "1970-01-01T00:00:00Z");
  EXPECT_EQ(cfg.diff_ids.at(0), Digest::of(sys::read_file(tar).value()));
  EXPECT_FALSE(apply_change(cfg.config, "RUN rm -rf /"));
  EXPECT_FALSE(apply_change(cfg.config, "WORKDIR relative"));
}

TEST_F(StoreTest, ImportRejectsGarbageAndLeavesStoreUnchanged) {
  fs::path garbage = dir_.path() / "garbage.tar";
  ASSERT_TRUE(sys::write_file_atomic(garbage, std::string(3000, '\x7f')));
  std::string good = make_tar(dir_.path(), {{"big", std::string(100000, 'z')}});
  fs::path truncated = dir_.path() / "trunc.tar";
  ASSERT_TRUE(sys::write_file_atomic(truncated, sys::read_file(good).value().substr(0, 5000)));
  for (const fs::path& p : {garbage, truncated, dir_.path() / "missing.tar"}) {
    auto r = import_rootfs(store_, p, Reference::parse("x").value(), {});
    ASSERT_FALSE(r) << p;
    EXPECT_EQ(r.error().to_string().find('\n'), std::string::npos);
    EXPECT_NE(r.error().to_string().find(p.filename().native()), std::string::npos) << r.error().to_string();
  }
  EXPECT_TRUE(store_.list_blobs().value().empty());
  EXPECT_TRUE(store_.entries().value().empty());
  EXPECT_EQ(tmp_files(), 0u);
}

TEST_F(StoreTest, PruneKeepsNamedAndFsckFindsCorruption) {
  Descriptor keep = import("keep", "k");
  Descriptor drop = import("drop", "d");
  ASSERT_TRUE(store_.remove_name(Reference::parse("drop").value()));
  auto before = store_.list_blobs().value().size();
  auto rep = prune(store_).value();
  EXPECT_EQ(rep.blobs_removed, 3);  // manifest, config, layer of "drop"
  EXPECT_GT(rep.bytes_freed, 0);
  EXPECT_EQ(store_.list_blobs().value().size(), before - 3);
  EXPECT_TRUE(fsck(store_).value().clean());
  // Flip a byte of the layer blob.
  auto m = read_manifest(store_, keep).value();
  fs::path layer = store_.blob_path(m.manifest().layers[0].digest);
  std::string bytes = sys::read_file(layer).value();
  bytes[bytes.size() / 2] ^= 1;
  { std::ofstream(layer, std::ios::binary | std::ios::trunc) << bytes; }
  auto f = fsck(store_).value();
  EXPECT_FALSE(f.clean());
  ASSERT_EQ(f.moved_aside.size(), 1u);
  EXPECT_EQ(f.moved_aside[0], m.manifest().layers[0].digest);
  EXPECT_TRUE(fs::exists(store_.root() / "corrupt"));
  EXPECT_FALSE(fs::exists(layer));
  // Now the image misses a layer, which fsck keeps reporting.
  EXPECT_FALSE(fsck(store_).value().clean());
  (void)drop;
}

TEST_F(StoreTest, CopyBetweenStoresKeepsDigestsAndValidates) {
  Descriptor d = import("src", std::string(300000, 'q'));
  auto dst = Store::open(dir_.path() / "dst").value();
  auto src_img = store_.open_image(store_.resolve("src").value()).value();
  ASSERT_TRUE(validate_image(*src_img));
  StoreSink sink(dst, Reference::parse("copied").value());
  auto res = copy_image(*src_img, sink, {.jobs = 3});
  ASSERT_TRUE(res) << res.error().to_string();
  EXPECT_EQ(res->top.digest, d.digest);
  EXPECT_EQ(res->blobs_copied, 2);
  EXPECT_EQ(dst.resolve("copied")->manifest.digest, d.digest);
  // Second copy: everything is already there.
  auto again = copy_image(*src_img, sink, {});
  EXPECT_EQ(again->blobs_existing, 2);
  EXPECT_EQ(again->bytes_copied, 0u);
  auto dst_img = dst.open_image(dst.resolve("copied").value()).value();
  EXPECT_TRUE(validate_image(*dst_img));
}

TEST_F(StoreTest, ArchivesRoundTrip) {
  Descriptor d = import("busybox:1", "content");
  fs::path oci = dir_.path() / "o.tar", dock = dir_.path() / "d.tar";
  auto entry = store_.resolve("busybox:1").value();
  ASSERT_TRUE(save_archive(store_, {entry}, oci, ArchiveFormat::OciArchive));
  ASSERT_TRUE(save_archive(store_, {entry}, dock, ArchiveFormat::DockerArchive));
  auto other = Store::open(dir_.path() / "other").value();
  auto l1 = load_archive(other, oci);
  ASSERT_TRUE(l1) << l1.error().to_string();
  ASSERT_EQ(l1->size(), 1u);
  EXPECT_EQ(l1->at(0).manifest.digest, d.digest);  // oci-archive keeps the manifest digest
  EXPECT_EQ(l1->at(0).name->str(), "docker.io/library/busybox:1");
  auto l2 = load_archive(other, dock);
  ASSERT_TRUE(l2) << l2.error().to_string();
  EXPECT_EQ(l2->at(0).name->familiar(), "busybox:1");
  auto img = other.open_image(other.resolve("busybox:1").value()).value();
  EXPECT_TRUE(validate_image(*img));
  EXPECT_TRUE(fsck(other).value().clean());
}

TEST_F(StoreTest, LoadOfBadArchiveLeavesStoreUnchanged) {
  // An OCI archive whose index names a manifest that is not in it.
  std::string manifest = R"({"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:)" +
                         std::string(64, 'a') + R"(","size":2},"layers":[]})";
  std::string index = R"({"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":")" +
                      Digest::of(manifest).str() + R"(","size":)" + std::to_string(manifest.size()) + "}]}";
  std::string tar = make_tar(dir_.path(), {{"oci-layout", R"({"imageLayoutVersion":"1.0.0"})"},
                                           {"index.json", index},
                                           {"blobs/sha256/" + std::string(Digest::of(manifest).hex()), manifest},
                                           {"blobs/sha256/" + std::string(64, 'b'), "lies"}});
  auto r = load_archive(store_, tar);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::Corrupt);
  EXPECT_TRUE(store_.list_blobs().value().empty()) << "a failed load must not leave blobs";
  EXPECT_TRUE(store_.entries().value().empty());

  std::string bad_digest_index = R"({"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:../../x","size":1}]})";
  std::string tar2 = make_tar(dir_.path(), {{"oci-layout", "{}"}, {"index.json", bad_digest_index}});
  auto r2 = load_archive(store_, tar2);
  ASSERT_FALSE(r2);
  EXPECT_NE(r2.error().to_string().find("sha256:../../x"), std::string::npos) << r2.error().to_string();
}

TEST_F(StoreTest, SnapshotsForRunAndPruneOfUnusedOnes) {
  import("img", "layer content");
  auto layers = prepare_layers(store_, store_.resolve("img").value());
  ASSERT_TRUE(layers) << layers.error().to_string();
  ASSERT_EQ(layers->lower_dirs.size(), 1u);
  EXPECT_EQ(sys::read_file(layers->lower_dirs[0] / "hello.txt").value(), "layer content");
  // Asking again reuses the snapshot.
  EXPECT_EQ(prepare_layers(store_, store_.resolve("img").value())->lower_dirs, layers->lower_dirs);
  EXPECT_EQ(prune(store_)->snapshots_removed, 0);
  ASSERT_TRUE(store_.remove_name(Reference::parse("img").value()));
  auto rep = prune(store_).value();
  EXPECT_EQ(rep.snapshots_removed, 1);
  EXPECT_FALSE(fs::exists(layers->lower_dirs[0]));
}

TEST_F(StoreTest, ConcurrentNamingKeepsEveryName) {
  Descriptor d = import("base", "b");
  std::vector<std::thread> ts;
  for (int i = 0; i < 8; ++i) {
    ts.emplace_back([&, i] {
      auto s = Store::open(store_.root()).value();
      ASSERT_TRUE(s.set_name(Reference::parse("n" + std::to_string(i)).value(), d));
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(store_.entries()->size(), 9u);
}

// The store's own indexes (kiste manifest, multi-platform builds): entries carry the platform of
// their config, keep the order of adding, and the same entries give the same index digest.
TEST_F(StoreTest, IndexEntriesCarryTheirConfigsPlatform) {
  std::string tar = make_tar(dir_.path(), {{"a.txt", "a"}});
  auto amd = import_rootfs(store_, tar, Reference::parse("a-amd64").value(),
                           {.platform = Platform::parse("linux/amd64").value(), .created = 0});
  auto arm = import_rootfs(store_, tar, Reference::parse("a-arm64").value(),
                           {.platform = Platform::parse("linux/arm64/v8").value(), .created = 0});
  ASSERT_TRUE(amd && arm);
  auto e1 = index_entry(store_, *amd);
  auto e2 = index_entry(store_, *arm);
  ASSERT_TRUE(e1 && e2) << (e1 ? e2.error().to_string() : e1.error().to_string());
  EXPECT_EQ(e1->platform->str(), "linux/amd64");
  EXPECT_EQ(e2->platform->str(), "linux/arm64/v8");
  EXPECT_EQ(e2->digest, arm->digest);

  Index idx = with_entry(with_entry(with_entry({}, *e1), *e2), *e1);  // e1 again: no duplicate
  ASSERT_EQ(idx.manifests.size(), 2u);
  EXPECT_EQ(idx.manifests[0].digest, amd->digest);
  auto d1 = put_index(store_, idx);
  auto d2 = put_index(store_, idx);
  ASSERT_TRUE(d1 && d2);
  EXPECT_EQ(d1->digest, d2->digest);
  EXPECT_EQ(d1->media_type, media_type::kOciIndex);
  auto picked = select_platform(parse_manifest(*store_.read_blob(d1->digest)).value().index(),
                                Platform::parse("linux/arm64").value());
  ASSERT_TRUE(picked);
  EXPECT_EQ(picked->digest, arm->digest);

  auto fewer = without_entry(idx, amd->digest);
  ASSERT_TRUE(fewer);
  EXPECT_EQ(fewer->manifests.size(), 1u);
  EXPECT_EQ(without_entry(*fewer, amd->digest).error().code, Errc::NotFound);
  // An index is no entry, and a single image is no list.
  EXPECT_FALSE(index_entry(store_, *d1));
  ASSERT_TRUE(store_.set_name(Reference::parse("list").value(), *d1));
  EXPECT_TRUE(read_index(store_, store_.resolve("list").value()));
  EXPECT_FALSE(read_index(store_, store_.resolve("a-amd64").value()));
}

}  // namespace
}  // namespace kiste::image
