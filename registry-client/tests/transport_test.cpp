// The transports without a registry: parsing locations, an image's round trip through the store,
// oci:, dir:, oci-archive: and docker-archive:, and hostile input refused with nothing left
// behind. docker:// is tested against a real registry in tests/integration/registry.
#include <kiste/registry/transport.hpp>

#include <gtest/gtest.h>
#include <stdlib.h>

#include <fstream>

#include <kiste/base/sys.hpp>
#include <kiste/image/archive.hpp>
#include <kiste/image/copy.hpp>

namespace kiste::registry {
namespace {

namespace fs = std::filesystem;
using Kind = Location::Kind;

TEST(ParseLocation, EachPrefixNamesItsTransport) {
  struct Case {
    std::string in;
    Kind kind;
    std::string value;
  };
  const std::vector<Case> cases = {
      {"docker://localhost:5000/a/b:1", Kind::Registry, "localhost:5000/a/b:1"},
      {"oci:/tmp/layout:app", Kind::OciLayout, "/tmp/layout:app"},
      {"dir:/tmp/d", Kind::Dir, "/tmp/d"},
      {"oci-archive:/tmp/a.tar", Kind::OciArchive, "/tmp/a.tar"},
      {"docker-archive:a.tar", Kind::DockerArchive, "a.tar"},
      {"store:busybox", Kind::Store, "busybox"},
      {"busybox:1.36", Kind::Store, "busybox:1.36"},
  };
  for (const auto& c : cases) {
    auto l = parse_location(c.in);
    ASSERT_TRUE(l) << c.in << ": " << l.error().to_string();
    EXPECT_EQ(l->kind, c.kind) << c.in;
    EXPECT_EQ(l->value, c.value) << c.in;
    EXPECT_EQ(l->text, c.in);
    EXPECT_EQ(l->is_archive(), c.kind == Kind::OciArchive || c.kind == Kind::DockerArchive);
  }
}

TEST(ParseLocation, APrefixWithoutAnythingOrABadReferenceIsRefused) {
  for (std::string s : {"", "oci:", "dir:", "oci-archive:", "docker-archive:", "store:",
                        "docker://", "docker://localhost:5000/Bad", "docker://a/b:bad tag"}) {
    auto l = parse_location(s);
    ASSERT_FALSE(l) << s;
    EXPECT_EQ(l.error().code, Errc::InvalidArgument) << s;
    EXPECT_NE(l.error().to_string().find("parse location " + quote(s)), std::string::npos)
        << l.error().to_string();
    EXPECT_EQ(l.error().to_string().find('\n'), std::string::npos);
  }
}

class Transports : public ::testing::Test {
 protected:
  void SetUp() override {
    // Scratch stores go below the test's directory, so the test sees what is left.
    const char* old = std::getenv("TMPDIR");
    if (old != nullptr) old_tmpdir_ = old;
    ASSERT_EQ(::setenv("TMPDIR", dir_.path().c_str(), 1), 0);
    root_ = dir_.path() / "root";
    // A real image: a rootfs tarball imported into the store.
    fs::create_directories(dir_.path() / "rootfs/etc");
    std::ofstream(dir_.path() / "rootfs/etc/hello") << "hello\n";
    std::string cmd = "tar -C " + (dir_.path() / "rootfs").string() + " -cf " +
                      (dir_.path() / "rootfs.tar").string() + " .";
    ASSERT_EQ(std::system(cmd.c_str()), 0);
    auto s = image::Store::open(root_);
    ASSERT_TRUE(s) << s.error().to_string();
    auto d2 = image::import_rootfs(*s, dir_.path() / "rootfs.tar",
                                   image::Reference::parse("localhost/app:1").value(), {});
    ASSERT_TRUE(d2) << d2.error().to_string();
    manifest_ = *d2;
  }
  void TearDown() override {
    if (old_tmpdir_) {
      ::setenv("TMPDIR", old_tmpdir_->c_str(), 1);
    } else {
      ::unsetenv("TMPDIR");
    }
  }

  Result<image::CopyResult> copy(const std::string& from, const std::string& to) {
    KISTE_ASSIGN_OR_RETURN(Location src, parse_location(from));
    KISTE_ASSIGN_OR_RETURN(Location dst, parse_location(to));
    return registry::copy(src, dst, {.store_root = root_}, {});
  }
  std::string path(const std::string& name) const { return (dir_.path() / name).string(); }
  // Scratch stores the copies left in $TMPDIR (there must be none).
  int scratch_left() const {
    int n = 0;
    for (const auto& e : fs::directory_iterator(dir_.path())) {
      n += e.path().filename().string().starts_with("kiste-copy-") ? 1 : 0;
    }
    return n;
  }
  std::vector<image::Digest> blobs() const {
    auto s = image::Store::open(root_);
    EXPECT_TRUE(s);
    auto b = s->list_blobs();
    EXPECT_TRUE(b);
    return *b;
  }

  TempDir dir_ = std::move(TempDir::create(fs::temp_directory_path(), "kiste-transport-").value());
  std::optional<std::string> old_tmpdir_;
  fs::path root_;
  image::Descriptor manifest_;
};

TEST_F(Transports, AnImageGoesThroughEveryTransportAndBackIntoTheStore) {
  const std::string digest = manifest_.digest.str();
  auto r = copy("localhost/app:1", "oci:" + path("layout") + ":app");
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(r->top.digest.str(), digest);
  r = copy("oci:" + path("layout") + ":app", "dir:" + path("dir"));
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(r->top.digest.str(), digest);  // byte for byte so far
  r = copy("dir:" + path("dir"), "oci-archive:" + path("app.oci.tar"));
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(r->top.digest.str(), digest);
  r = copy("oci-archive:" + path("app.oci.tar"), "docker-archive:" + path("app.docker.tar"));
  ASSERT_TRUE(r) << r.error().to_string();
  r = copy("docker-archive:" + path("app.docker.tar"), "localhost/back:1");
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(scratch_left(), 0);

  auto store = image::Store::open(root_);
  ASSERT_TRUE(store);
  auto back = store->resolve("localhost/back:1");
  ASSERT_TRUE(back) << back.error().to_string();
  auto src = store->open_image(*back);
  ASSERT_TRUE(src) << src.error().to_string();
  EXPECT_TRUE(image::validate_image(**src));
  // docker-archive keeps the config (the image id) and the layers; the manifest is its own.
  auto orig = store->open_image({.name = "localhost/app:1", .manifest = manifest_});
  ASSERT_TRUE(orig);
  EXPECT_EQ((*src)->top().manifest().config.digest, (*orig)->top().manifest().config.digest);
}

TEST_F(Transports, StoreToStoreIsRefused) {
  auto r = copy("localhost/app:1", "store:localhost/other:1");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("use `kiste tag`"), std::string::npos) << r.error().message;
}

TEST_F(Transports, AHostileArchiveIsRefusedAndLeavesNothingBehind) {
  const auto before = blobs();
  // Not an archive at all; an archive whose entry climbs out; an archive that does not exist.
  ASSERT_TRUE(sys::write_file_atomic(path("junk.tar"), std::string(4096, 'x')));
  fs::create_directories(dir_.path() / "evil/sub");
  std::ofstream(dir_.path() / "evil/sub/index.json") << "{}";
  std::string cmd = "tar -C " + path("evil/sub") + " -cf " + path("evil.tar") +
                    " --transform='s|^|../../|' index.json 2>/dev/null";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  for (const std::string& src :
       {"oci-archive:" + path("junk.tar"), "docker-archive:" + path("junk.tar"),
        "oci-archive:" + path("evil.tar"), "docker-archive:" + path("missing.tar")}) {
    auto r = copy(src, "localhost/hostile:1");
    ASSERT_FALSE(r) << src;
    EXPECT_NE(r.error().to_string().find("copy " + quote(src)), std::string::npos)
        << r.error().to_string();
    EXPECT_EQ(r.error().to_string().find('\n'), std::string::npos);
  }
  EXPECT_FALSE(fs::exists(dir_.path().parent_path() / "index.json"));
  EXPECT_EQ(blobs(), before);
  EXPECT_EQ(scratch_left(), 0);
}

TEST_F(Transports, AnArchiveWithTwoImagesIsRefusedAsACopySource) {
  auto store = image::Store::open(root_);
  ASSERT_TRUE(store);
  auto a = store->resolve("localhost/app:1");
  ASSERT_TRUE(a);
  image::StoreEntry b = *a;
  b.name = "localhost/app:2";
  ASSERT_TRUE(store->set_name(image::Reference::parse(b.name).value(), b.manifest));
  ASSERT_TRUE(image::save_archive(*store, {*a, b}, path("two.tar"), image::ArchiveFormat::OciArchive));
  auto r = copy("oci-archive:" + path("two.tar"), "oci:" + path("layout"));
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("holds 2 images; copy needs exactly one"), std::string::npos)
      << r.error().message;
  EXPECT_EQ(scratch_left(), 0);
}

TEST_F(Transports, AFailedCopyIntoTheStoreRemovesTheBlobsItAdded) {
  // A layout whose layer blob was tampered with: the config is copied (and staged) first, the
  // layer fails verification, and the staged config goes again.
  ASSERT_TRUE(copy("localhost/app:1", "oci:" + path("layout") + ":app"));
  auto store = image::Store::open(root_);
  ASSERT_TRUE(store);
  auto src = store->open_image({.name = "localhost/app:1", .manifest = manifest_});
  ASSERT_TRUE(src);
  const auto& m = (*src)->top().manifest();
  fs::path layer = dir_.path() / "layout/blobs/sha256" / m.layers.at(0).digest.hex();
  ASSERT_TRUE(fs::exists(layer));
  std::string bytes = sys::read_file(layer).value();
  bytes[bytes.size() / 2] ^= 1;
  ASSERT_TRUE(sys::write_file_atomic(layer, bytes));

  // Into a fresh store: nothing is there before, so nothing may be there after.
  root_ = dir_.path() / "root2";
  auto r = copy("oci:" + path("layout") + ":app", "localhost/tampered:1");
  ASSERT_FALSE(r);
  EXPECT_EQ(blobs(), std::vector<image::Digest>{}) << "staged blobs were left behind";
  auto fresh = image::Store::open(root_);
  ASSERT_TRUE(fresh);
  EXPECT_FALSE(fresh->resolve("localhost/tampered:1"));
}

}  // namespace
}  // namespace kiste::registry
