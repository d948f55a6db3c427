// `kiste copy` with the oci:DIR[:NAME] and dir:DIR transports, checked against skopeo (which
// reads what kiste writes and writes what kiste reads), and hostile layouts.
#include <unistd.h>

#include <fstream>
#include <kiste/base/sys.hpp>
#include <kiste/image/oci_layout.hpp>
#include <kiste/image/store_ops.hpp>

#include "registry_fixture.hpp"

namespace kiste::testing {
namespace {

namespace fs = std::filesystem;

class LayoutTest : public RegistryTest {
 protected:
  // Runs kiste against the store "root"; returns the exit status, output in `out_`.
  int kiste(const std::string& args) {
    out_.clear();
    return run_shell(kiste_binary().string() + " --root " + (tmp_ / "root").string() + " " + args,
                     &out_);
  }
  int sh(const std::string& cmd) {
    out_.clear();
    return run_shell(cmd, &out_);
  }
  std::string first_line() const { return out_.substr(0, out_.find('\n')); }
  // skopeo's view of an image's manifest digest.
  std::string skopeo_digest(const std::string& transport_ref) {
    EXPECT_EQ(sh("skopeo inspect --raw " + transport_ref + " | sha256sum"), 0) << out_;
    return "sha256:" + out_.substr(0, 64);
  }
  void expect_store_untouched(const image::Store& store) {
    auto e = store.entries();
    ASSERT_TRUE(e);
    EXPECT_TRUE(e->empty());
    auto blobs = store.list_blobs();
    ASSERT_TRUE(blobs);
    EXPECT_TRUE(blobs->empty()) << blobs->size() << " blobs left in the store";
  }
  static void write(const fs::path& p, std::string_view data) {
    std::ofstream(p, std::ios::binary | std::ios::trunc) << data;
  }
  std::string out_;
};

TEST_F(LayoutTest, StoreToOciLayoutIsWhatSkopeoReads) {
  auto store = open_store("root");
  auto img = make_test_image(store, "localhost/app:1", {120'000, 30'000}, 41);
  auto oci = tmp_ / "layout";
  ASSERT_EQ(kiste("copy -q localhost/app:1 oci:" + oci.string() + ":v1"), 0) << out_;
  EXPECT_EQ(first_line(), img.manifest.digest.str());
  EXPECT_EQ(skopeo_digest("oci:" + oci.string() + ":v1"), img.manifest.digest.str());
  ASSERT_EQ(sh("skopeo inspect --format '{{.Digest}}' oci:" + oci.string() + ":v1"), 0) << out_;
  EXPECT_EQ(out_.substr(0, 71), img.manifest.digest.str());
  // A second name in the same layout keeps the first; copying it again replaces, not duplicates.
  auto img2 = make_test_image(store, "localhost/app:2", {10'000}, 42);
  ASSERT_EQ(kiste("copy -q localhost/app:2 oci:" + oci.string() + ":v2"), 0) << out_;
  ASSERT_EQ(kiste("copy -q localhost/app:2 oci:" + oci.string() + ":v2"), 0) << out_;
  EXPECT_EQ(skopeo_digest("oci:" + oci.string() + ":v1"), img.manifest.digest.str());
  EXPECT_EQ(skopeo_digest("oci:" + oci.string() + ":v2"), img2.manifest.digest.str());
  auto index = sys::read_file(oci / "index.json");
  ASSERT_TRUE(index);
  size_t entries = 0;
  for (size_t p = 0; (p = index->find("\"digest\"", p)) != std::string::npos; ++p) ++entries;
  EXPECT_EQ(entries, 2u) << *index;
  // Writers at once into one layout: every name survives (index.json is edited under a lock).
  std::string many;
  for (int i = 0; i < 8; ++i) {
    many += kiste_binary().string() + " --root " + (tmp_ / "root").string() +
            " copy -q localhost/app:1 oci:" + oci.string() + ":p" + std::to_string(i) + " & ";
  }
  ASSERT_EQ(sh(many + "wait"), 0) << out_;
  for (int i = 0; i < 8; ++i) {
    EXPECT_EQ(skopeo_digest("oci:" + oci.string() + ":p" + std::to_string(i)),
              img.manifest.digest.str())
        << i;
  }
  // No temp files left in the layout.
  for (const auto& e : fs::directory_iterator(oci)) {
    std::string n = e.path().filename();
    EXPECT_TRUE(n == "blobs" || n == "index.json" || n == "oci-layout") << n;
  }
  // Without a name the layout's only... two images here: refused with the names listed.
  EXPECT_EQ(kiste("copy oci:" + oci.string() + " localhost/x:1"), 125);
  EXPECT_NE(out_.find("v1"), std::string::npos) << out_;
  EXPECT_NE(out_.find("v2"), std::string::npos) << out_;
  EXPECT_EQ(kiste("copy oci:" + oci.string() + ":nope localhost/x:1"), 125);
  EXPECT_NE(out_.find("no image named `nope`"), std::string::npos) << out_;
}

TEST_F(LayoutTest, SkopeoOciLayoutCopiesIntoTheStoreAndFsckIsClean) {
  auto reg = start_registry();
  ASSERT_TRUE(reg);
  auto a = open_store("a");
  auto img = make_test_image(a, "localhost/s:1", {200'000, 70'000, 5'000}, 43);
  auto c = client(reg->host());
  ASSERT_TRUE(push(a, "localhost/s:1", *c, reg->host() + "/s:1"));
  auto oci = tmp_ / "skopeo-oci";
  ASSERT_EQ(sh("skopeo copy --preserve-digests --src-tls-verify=false docker://" + reg->host() +
               "/s:1 oci:" + oci.string() + ":tag"),
            0)
      << out_;
  ASSERT_EQ(kiste("copy -q oci:" + oci.string() + ":tag localhost/from-oci:1"), 0) << out_;
  EXPECT_EQ(first_line(), img.manifest.digest.str());
  auto store = open_store("root");
  auto v = validate(store, "localhost/from-oci:1");
  EXPECT_TRUE(v) << v.error().to_string();
  ASSERT_EQ(kiste("fsck"), 0) << out_;
  EXPECT_NE(out_.find("ok: "), std::string::npos) << out_;
  // The layout's only image needs no name.
  ASSERT_EQ(kiste("copy -q oci:" + oci.string() + " localhost/from-oci:2"), 0) << out_;
  EXPECT_EQ(first_line(), img.manifest.digest.str());
}

TEST_F(LayoutTest, RegistryToOciLayoutAndBackKeepsTheDigest) {
  auto reg = start_registry();
  ASSERT_TRUE(reg);
  auto a = open_store("a");
  auto img = make_test_image(a, "localhost/r:1", {90'000, 9'000}, 44);
  auto c = client(reg->host());
  ASSERT_TRUE(push(a, "localhost/r:1", *c, reg->host() + "/r:1"));
  auto oci = tmp_ / "oci";
  std::string h = reg->host();
  ASSERT_EQ(kiste("copy -q docker://" + h + "/r:1 oci:" + oci.string() + ":r1"), 0) << out_;
  EXPECT_EQ(first_line(), img.manifest.digest.str());
  EXPECT_EQ(skopeo_digest("oci:" + oci.string() + ":r1"), img.manifest.digest.str());
  ASSERT_EQ(kiste("copy -q oci:" + oci.string() + ":r1 docker://" + h + "/back:1"), 0) << out_;
  EXPECT_EQ(first_line(), img.manifest.digest.str());
  auto served = c->try_head_manifest("back", "1");
  ASSERT_TRUE(served && served->has_value());
  EXPECT_EQ((*served)->digest, img.manifest.digest);
  // An index keeps every child with --all.
  auto amd = image::Platform::parse("linux/amd64").value();
  auto arm = image::Platform::parse("linux/arm64/v8").value();
  auto i1 = make_test_image(a, "localhost/m:amd", {1'000}, 45, amd);
  auto i2 = make_test_image(a, "localhost/m:arm", {2'000}, 46, arm);
  auto idx = make_test_index(a, "localhost/m:all", {{i1.manifest, amd}, {i2.manifest, arm}});
  ASSERT_TRUE(push(a, "localhost/m:all", *c, h + "/m:all"));
  ASSERT_EQ(kiste("copy -q --all docker://" + h + "/m:all oci:" + oci.string() + ":m"), 0) << out_;
  EXPECT_EQ(first_line(), idx.digest.str());
  ASSERT_EQ(kiste("copy -q --all oci:" + oci.string() + ":m docker://" + h + "/m2:all"), 0) << out_;
  EXPECT_EQ(first_line(), idx.digest.str());
  ASSERT_EQ(sh("skopeo inspect --raw --tls-verify=false docker://" + h + "/m2@" +
               i2.manifest.digest.str() + " | sha256sum"),
            0)
      << out_;
  EXPECT_EQ("sha256:" + out_.substr(0, 64), i2.manifest.digest.str());
  // The index through dir: both ways (children as <hex>.manifest.json, as containers/image does).
  auto mdir = tmp_ / "mdir";
  ASSERT_EQ(kiste("copy -q --all docker://" + h + "/m:all dir:" + mdir.string()), 0) << out_;
  EXPECT_EQ(first_line(), idx.digest.str());
  EXPECT_TRUE(fs::exists(mdir / (std::string(i1.manifest.digest.hex()) + ".manifest.json")));
  EXPECT_EQ(skopeo_digest("dir:" + mdir.string()), idx.digest.str());
  auto sdir = tmp_ / "skopeo-mdir";
  ASSERT_EQ(sh("skopeo copy --all --preserve-digests --src-tls-verify=false docker://" + h +
               "/m:all dir:" + sdir.string()),
            0)
      << out_;
  ASSERT_EQ(kiste("copy -q --all dir:" + sdir.string() + " docker://" + h + "/m3:all"), 0) << out_;
  EXPECT_EQ(first_line(), idx.digest.str());
  auto m3 = c->try_head_manifest("m3", i1.manifest.digest.str());
  ASSERT_TRUE(m3 && m3->has_value());
}

TEST_F(LayoutTest, DirRoundTripWithSkopeo) {
  auto reg = start_registry();
  ASSERT_TRUE(reg);
  auto store = open_store("root");
  auto img = make_test_image(store, "localhost/d:1", {150'000, 15'000}, 47);
  auto dir = tmp_ / "dir";
  // kiste writes dir:, skopeo reads it (inspect, and copies it into a registry).
  ASSERT_EQ(kiste("copy -q localhost/d:1 dir:" + dir.string()), 0) << out_;
  EXPECT_EQ(first_line(), img.manifest.digest.str());
  EXPECT_EQ(skopeo_digest("dir:" + dir.string()), img.manifest.digest.str());
  ASSERT_EQ(sh("skopeo copy --preserve-digests --dest-tls-verify=false dir:" + dir.string() +
               " docker://" + reg->host() + "/d:1"),
            0)
      << out_;
  auto c = client(reg->host());
  auto served = c->try_head_manifest("d", "1");
  ASSERT_TRUE(served && served->has_value());
  EXPECT_EQ((*served)->digest, img.manifest.digest);
  // skopeo writes dir:, kiste reads it into another store.
  auto dir2 = tmp_ / "dir2";
  ASSERT_EQ(sh("skopeo copy --preserve-digests --src-tls-verify=false docker://" + reg->host() +
               "/d:1 dir:" + dir2.string()),
            0)
      << out_;
  out_.clear();
  std::string cmd = kiste_binary().string() + " --root " + (tmp_ / "root2").string() +
                    " copy -q dir:" + dir2.string() + " localhost/from-dir:1";
  ASSERT_EQ(sh(cmd), 0) << out_;
  EXPECT_EQ(first_line(), img.manifest.digest.str());
  auto v = validate(open_store("root2"), "localhost/from-dir:1");
  EXPECT_TRUE(v) << v.error().to_string();
  // kiste writes over its own dir: again, but never into a directory that is something else.
  ASSERT_EQ(kiste("copy -q localhost/d:1 dir:" + dir.string()), 0) << out_;
  EXPECT_EQ(kiste("copy -q localhost/d:1 dir:" + tmp_.path().string()), 125);
  EXPECT_NE(out_.find("not an image directory"), std::string::npos) << out_;
  EXPECT_EQ(kiste("copy -q localhost/d:1 oci:" + dir.string()), 125);
  EXPECT_NE(out_.find("not an OCI image layout"), std::string::npos) << out_;
}

TEST_F(LayoutTest, HostileOciLayoutsAreRefusedAndNothingIsStored) {
  auto src = open_store("src");
  auto img = make_test_image(src, "localhost/h:1", {50'000, 40'000}, 48);
  auto store = open_store("root");
  auto good = tmp_ / "good";
  {
    auto e = src.resolve("localhost/h:1");
    ASSERT_TRUE(e);
    auto s = src.open_image(*e);
    ASSERT_TRUE(s);
    auto sink = image::OciLayoutSink::create({good, "h"});
    ASSERT_TRUE(sink) << sink.error().to_string();
    ASSERT_TRUE(image::copy_image(**s, **sink));
  }
  auto fresh = [&](const std::string& name) {
    fs::path p = tmp_ / name;
    fs::copy(good, p, fs::copy_options::recursive);
    return p;
  };
  const std::string layer_hex(img.blobs[2].digest.hex());

  // index.json naming a path instead of a digest.
  auto dotdot = fresh("dotdot");
  auto index = sys::read_file(dotdot / "index.json").value();
  auto pos = index.find(img.manifest.digest.str());
  ASSERT_NE(pos, std::string::npos);
  index.replace(pos, img.manifest.digest.str().size(), "sha256:../../../../etc/passwd");
  write(dotdot / "index.json", index);
  EXPECT_EQ(kiste("copy oci:" + dotdot.string() + ":h localhost/x:1"), 125);
  EXPECT_NE(out_.find("index.json"), std::string::npos) << out_;
  EXPECT_EQ(std::count(out_.begin(), out_.end(), '\n'), 1) << out_;
  expect_store_untouched(store);

  // A layer whose bytes do not match its name: the copy fails naming the blob; the blobs it had
  // already stored are removed again.
  auto corrupt = fresh("corrupt");
  write(corrupt / "blobs" / "sha256" / layer_hex, std::string(40'000, 'x'));
  EXPECT_EQ(kiste("copy -j 1 oci:" + corrupt.string() + ":h localhost/x:1"), 125);
  EXPECT_NE(out_.find(img.blobs[2].digest.str()), std::string::npos) << out_;
  EXPECT_NE(out_.find("does not match"), std::string::npos) << out_;
  expect_store_untouched(store);

  // A blob that is a symlink out of the layout is resolved inside it (and is not there).
  auto outside = tmp_ / "outside-blob";
  fs::copy_file(src.blob_path(img.blobs[2].digest), outside);
  auto link = fresh("symlink");
  fs::remove(link / "blobs" / "sha256" / layer_hex);
  fs::create_symlink("../../../outside-blob", link / "blobs" / "sha256" / layer_hex);
  EXPECT_EQ(kiste("copy oci:" + link.string() + ":h localhost/x:1"), 125);
  EXPECT_NE(out_.find("is missing"), std::string::npos) << out_;
  expect_store_untouched(store);

  // A manifest blob that is larger than its descriptor says.
  auto big = fresh("bigmanifest");
  write(big / "blobs" / "sha256" / std::string(img.manifest.digest.hex()),
        sys::read_file(src.blob_path(img.manifest.digest)).value() + " ");
  EXPECT_EQ(kiste("copy oci:" + big.string() + ":h localhost/x:1"), 125);
  EXPECT_NE(out_.find("descriptor says"), std::string::npos) << out_;
  expect_store_untouched(store);

  // A dir: image whose manifest names a blob through `..` is a parse error, not a path.
  auto d = tmp_ / "baddir";
  fs::create_directories(d);
  write(d / "version", "Directory Transport Version: 1.1\n");
  auto m = sys::read_file(src.blob_path(img.manifest.digest)).value();
  auto p = m.find(img.blobs[1].digest.str());
  ASSERT_NE(p, std::string::npos);
  m.replace(p, img.blobs[1].digest.str().size(), "sha256:../../../etc/shadow");
  write(d / "manifest.json", m);
  EXPECT_EQ(kiste("copy dir:" + d.string() + " localhost/x:1"), 125);
  EXPECT_NE(out_.find("manifest.json"), std::string::npos) << out_;
  expect_store_untouched(store);
  // The good layout still copies.
  ASSERT_EQ(kiste("copy -q oci:" + good.string() + ":h localhost/x:1"), 0) << out_;
  EXPECT_EQ(first_line(), img.manifest.digest.str());
}

}  // namespace
}  // namespace kiste::testing
