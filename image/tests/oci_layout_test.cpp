// oci:DIR and dir:DIR as copy_image ends, without root: round trips that keep the digest, the
// name bookkeeping of index.json, and hostile directories.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <kiste/base/sys.hpp>
#include <kiste/base/temp_dir.hpp>
#include <kiste/image/archive.hpp>
#include <kiste/image/copy.hpp>
#include <kiste/image/dir_image.hpp>
#include <kiste/image/oci_layout.hpp>
#include <kiste/image/store.hpp>

#include "test_tar.hpp"

namespace kiste::image {
namespace {

namespace fs = std::filesystem;

class OciLayoutTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tar = make_tar(dir_.path(), {{"hello.txt", "hello from a layout\n"}});
    auto d =
        import_rootfs(store_, tar, Reference::parse("localhost/hello:1").value(), {.created = 0});
    ASSERT_TRUE(d) << d.error().to_string();
    manifest_ = *d;
  }
  std::unique_ptr<ImageSource> stored() {
    auto e = store_.resolve("localhost/hello:1");
    EXPECT_TRUE(e);
    auto s = store_.open_image(*e);
    EXPECT_TRUE(s);
    return std::move(*s);
  }
  TempDir dir_ = std::move(TempDir::create(fs::temp_directory_path(), "kiste-layout-").value());
  Store store_ = std::move(Store::open(dir_.path() / "root").value());
  Descriptor manifest_;
};

TEST_F(OciLayoutTest, ParseLayoutRefSplitsAtTheFirstColon) {
  auto r = parse_layout_ref("/a/b:localhost:5000/x:1");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->dir, "/a/b");
  EXPECT_EQ(r->name, "localhost:5000/x:1");
  r = parse_layout_ref("rel/dir");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->name, "");
  EXPECT_FALSE(parse_layout_ref(":tag"));
}

TEST_F(OciLayoutTest, RoundTripKeepsDigestAndNames) {
  fs::path oci = dir_.path() / "oci";
  for (const char* name : {"a", "b", "a"}) {
    auto sink = OciLayoutSink::create({oci, name});
    ASSERT_TRUE(sink) << sink.error().to_string();
    auto src = stored();
    auto r = copy_image(*src, **sink);
    ASSERT_TRUE(r) << r.error().to_string();
  }
  for (const char* name : {"a", "b"}) {
    auto img = OciLayoutImage::open({oci, name});
    ASSERT_TRUE(img) << img.error().to_string();
    EXPECT_EQ((*img)->top().digest, manifest_.digest);
    EXPECT_TRUE(validate_image(**img));
  }
  auto ambiguous = OciLayoutImage::open({oci, ""});
  ASSERT_FALSE(ambiguous);
  EXPECT_NE(ambiguous.error().message.find("2 images match"), std::string::npos)
      << ambiguous.error().message;
  // Back into a fresh store: same digest.
  auto back = Store::open(dir_.path() / "back");
  ASSERT_TRUE(back);
  auto img = OciLayoutImage::open({oci, "b"});
  ASSERT_TRUE(img);
  StoreSink sink(*back, Reference::parse("localhost/back:1").value());
  auto r = copy_image(**img, sink);
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(r->top.digest, manifest_.digest);
}

TEST_F(OciLayoutTest, DirRoundTripKeepsDigest) {
  fs::path d = dir_.path() / "dir";
  auto sink = DirSink::create(d);
  ASSERT_TRUE(sink) << sink.error().to_string();
  auto src = stored();
  ASSERT_TRUE(copy_image(*src, **sink));
  EXPECT_EQ(sys::read_file(d / "version").value(), "Directory Transport Version: 1.1\n");
  EXPECT_EQ(sys::read_file(d / "manifest.json").value(),
            store_.read_blob(manifest_.digest).value());  // the top manifest, not <hex>
  EXPECT_FALSE(fs::exists(d / std::string(manifest_.digest.hex())));
  auto img = DirImage::open(d);
  ASSERT_TRUE(img) << img.error().to_string();
  EXPECT_EQ((*img)->top().digest, manifest_.digest);
  EXPECT_TRUE(validate_image(**img));
  // Writing over its own directory replaces the image (other files stay); over anything else
  // is refused.
  std::ofstream(d / "notes.txt") << "mine";
  std::ofstream(d / (std::string(64, 'a') + ".manifest.json")) << "stale";
  EXPECT_TRUE(DirSink::create(d));
  std::vector<std::string> left;
  for (const auto& e : fs::directory_iterator(d)) left.push_back(e.path().filename());
  std::sort(left.begin(), left.end());
  EXPECT_EQ(left, (std::vector<std::string>{"notes.txt", "version"}));
  auto other = DirSink::create(dir_.path());
  ASSERT_FALSE(other);
  EXPECT_NE(other.error().message.find("not an image directory"), std::string::npos);
  auto not_oci = OciLayoutSink::create({d, "x"});
  ASSERT_FALSE(not_oci);
  EXPECT_NE(not_oci.error().message.find("not an OCI image layout"), std::string::npos);
}

TEST_F(OciLayoutTest, HostileFilesAreRefused) {
  fs::path oci = dir_.path() / "oci";
  {
    auto sink = OciLayoutSink::create({oci, "x"});
    ASSERT_TRUE(sink);
    auto src = stored();
    ASSERT_TRUE(copy_image(*src, **sink));
  }
  fs::path mpath = oci / "blobs" / "sha256" / std::string(manifest_.digest.hex());
  std::string bytes = sys::read_file(mpath).value();
  // The manifest blob replaced by a FIFO (would block a reader) and by a symlink out of the
  // layout: neither is read.
  fs::remove(mpath);
  ASSERT_EQ(::mkfifo(mpath.c_str(), 0644), 0);
  auto fifo = OciLayoutImage::open({oci, "x"});
  ASSERT_FALSE(fifo);
  EXPECT_NE(fifo.error().message.find("not a regular file"), std::string::npos)
      << fifo.error().message;
  fs::remove(mpath);
  std::ofstream(dir_.path() / "outside", std::ios::binary) << bytes;
  fs::create_symlink("../../../outside", mpath);
  auto link = OciLayoutImage::open({oci, "x"});
  ASSERT_FALSE(link);
  EXPECT_NE(link.error().message.find("is missing"), std::string::npos) << link.error().message;
  // Different bytes under the manifest's name.
  fs::remove(mpath);
  std::string other = bytes;
  other[other.size() / 2] = other[other.size() / 2] == 'a' ? 'b' : 'a';
  std::ofstream(mpath, std::ios::binary) << other;
  auto changed = OciLayoutImage::open({oci, "x"});
  ASSERT_FALSE(changed);
  EXPECT_EQ(changed.error().code, Errc::Corrupt);
  EXPECT_NE(changed.error().message.find("does not match"), std::string::npos)
      << changed.error().message;
  // index.json that is not an index, and one whose entry is no image.
  sys::write_file_atomic(oci / "index.json", R"({"manifests":{}})").value();
  EXPECT_FALSE(OciLayoutImage::open({oci, ""}));
  sys::write_file_atomic(oci / "index.json",
                         R"({"manifests":[{"mediaType":"text/plain","digest":"sha256:)" +
                             std::string(manifest_.digest.hex()) + R"(","size":3}]})")
      .value();
  auto text = OciLayoutImage::open({oci, ""});
  ASSERT_FALSE(text);
  EXPECT_EQ(text.error().code, Errc::Unsupported);
}

}  // namespace
}  // namespace kiste::image
