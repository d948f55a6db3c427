// Safe extraction: containerd's TestBreakouts cases, CVE-2021-32760 and CVE-2021-29136, whiteouts,
// limits and corrupt streams. Every escape case runs twice: with openat2 and with the userspace
// fallback of sys::open_in_root.

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iostream>

#include <gtest/gtest.h>

#include <kiste/base/sys.hpp>
#include <kiste/image/compression.hpp>
#include <kiste/image/layer_extract.hpp>
#include "temp_tree.hpp"

#include "tar_builder.hpp"
#include "tree_listing.hpp"

namespace kiste::image {
namespace {

namespace fs = std::filesystem;
using testing::list_tree;
using testing::StringSink;
using testing::TarBuilder;

class ExtractTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    sys::set_openat2_disabled(GetParam());
    fs::create_directories(tmp_ / "root");
    fs::create_directories(tmp_ / "outside/etc");
    write(tmp_ / "outside/secret", "top secret");
    ::chmod((tmp_ / "outside/secret").c_str(), 0400);
    write(tmp_ / "outside/whitedout", "keep me");
    write(tmp_ / "outside/etc/passwd", "root:x:0:0");
    root_fd_ = std::move(*sys::open(tmp_ / "root", O_RDONLY | O_DIRECTORY));
    outside_before_ = list_tree(tmp_ / "outside", {.mtimes = true});
  }
  void TearDown() override {
    EXPECT_EQ(list_tree(tmp_ / "outside", {.mtimes = true}), outside_before_)
        << "something outside the root changed";
    sys::set_openat2_disabled(false);
  }
  static void write(const fs::path& p, std::string_view s) { std::ofstream(p) << s; }

  Result<ExtractStats> apply(const std::string& tar, ExtractOptions o = {}) {
    StringReader r(tar);
    auto res = extract_layer(r, media_type::Compression::None, root_fd_.get(), o);
    if (!res) std::cerr << "extract: " << res.error().to_string() << "\n";
    return res;
  }
  std::string outside() const { return (tmp_ / "outside").native(); }
  fs::path root() const { return tmp_ / "root"; }
  static bool exists_nofollow(const fs::path& p) {
    struct stat st {};
    return ::lstat(p.c_str(), &st) == 0;
  }

  testing::TempTree tmp_;
  UniqueFd root_fd_;
  std::string outside_before_;
};

// ---- symlink escapes -----------------------------------------------------------------------------

TEST_P(ExtractTest, SymlinkAbsolute) {
  TarBuilder t;
  t.symlink("dummy", outside()).file("dummy/secret", "pwned");
  auto r = apply(t.finish());
  ASSERT_TRUE(r) << r.error().to_string();
  // The absolute target resolved inside the root.
  EXPECT_TRUE(fs::is_regular_file(root() / fs::path(outside()).relative_path() / "secret"));
}

TEST_P(ExtractTest, SymlinkUpAndOut) {
  TarBuilder t;
  t.symlink("dummy", "/nothere/../../../../outside").file("dummy/secret", "pwned");
  // openat2 refuses the missing `nothere` (ENOENT); the fallback resolves `..` lexically and
  // writes root/outside/secret. Either is safe: TearDown checks the outside tree.
  auto r = apply(t.finish());
  if (r) {
    EXPECT_TRUE(fs::is_regular_file(root() / "outside/secret"));
  }
}

TEST_P(ExtractTest, SymlinkRelativeEscape) {
  TarBuilder t;
  t.symlink("dummy", "../outside").file("dummy/secret", "pwned");
  ASSERT_TRUE(apply(t.finish()));
  EXPECT_TRUE(fs::is_regular_file(root() / "outside/secret"));
}

TEST_P(ExtractTest, SymlinkMultipleAbsolute) {
  TarBuilder t;
  t.symlink("d1", outside()).symlink("d2", "/d1").file("d2/secret", "pwned");
  ASSERT_TRUE(apply(t.finish()));
}

TEST_P(ExtractTest, SymlinkMultipleRelative) {
  TarBuilder t;
  t.symlink("d1", "../../../outside").symlink("d2", "d1").file("d2/secret", "pwned");
  ASSERT_TRUE(apply(t.finish()));
}

TEST_P(ExtractTest, SymlinkEmptyFile) {
  // A symlink to an outside file, then a file entry of the same name in the next layer: the
  // symlink is replaced, never written through.
  TarBuilder l1;
  l1.symlink("foo", outside() + "/secret");
  ASSERT_TRUE(apply(l1.finish()));
  TarBuilder l2;
  l2.file("foo", "");
  ASSERT_TRUE(apply(l2.finish()));
  EXPECT_TRUE(fs::is_regular_file(fs::symlink_status(root() / "foo")));
}

TEST_P(ExtractTest, SymlinkParentDirectory) {
  TarBuilder t;
  t.symlink("up", "..").file("up/outside/secret", "pwned");
  ASSERT_TRUE(apply(t.finish()));
}

TEST_P(ExtractTest, SymlinkParentRelative) {
  TarBuilder t;
  t.dir("dir").symlink("dir/link", "../../outside").file("dir/link/secret", "pwned");
  ASSERT_TRUE(apply(t.finish()));
}

TEST_P(ExtractTest, SymlinkSlashEnded) {
  TarBuilder t;
  t.symlink("foo/", outside()).file("foo/secret", "pwned");
  ASSERT_TRUE(apply(t.finish()));
}

TEST_P(ExtractTest, SymlinkOverrideDirectory) {
  TarBuilder l1;
  l1.dir("etc");
  ASSERT_TRUE(apply(l1.finish()));
  TarBuilder l2;
  l2.symlink("etc", outside() + "/etc").file("etc/passwd", "pwned");
  ASSERT_TRUE(apply(l2.finish()));
}

TEST_P(ExtractTest, SymlinkOverridePathThenChmodDir) {
  TarBuilder l1;
  l1.symlink("data", outside());
  ASSERT_TRUE(apply(l1.finish()));
  // A directory entry over the symlink replaces the symlink; the outside dir keeps its mode.
  TarBuilder l2;
  l2.dir("data", {.mode = 0777});
  ASSERT_TRUE(apply(l2.finish()));
  EXPECT_TRUE(fs::is_directory(fs::symlink_status(root() / "data")));
}

TEST_P(ExtractTest, SymlinkForRootIsRefused) {  // CVE-2021-29136
  for (const char* name : {"/.", ".", "./", "/", "a/.."}) {
    TarBuilder t;
    t.symlink(name, outside()).file("secret", "pwned");
    auto r = apply(t.finish());
    ASSERT_FALSE(r) << name;
    EXPECT_NE(r.error().message.find("cannot replace the root"), std::string::npos)
        << r.error().to_string();
  }
  EXPECT_FALSE(exists_nofollow(root() / "secret"));
}

// ---- hardlink escapes ----------------------------------------------------------------------------

TEST_P(ExtractTest, HardlinkOutsideTargetsStayInside) {
  for (std::string target : {std::string("../outside/secret"),
                             std::string("dummy/../../outside/secret"), outside() + "/secret",
                             std::string("../../../../../../../") + outside() + "/secret",
                             std::string("/../outside/secret")}) {
    TarBuilder t;
    t.hardlink("h", target);
    auto r = apply(t.finish());
    ASSERT_FALSE(r) << target;  // the in-root target does not exist
    EXPECT_EQ(r.error().sys_errno, ENOENT) << r.error().to_string();
  }
  struct stat st {};
  ASSERT_EQ(::stat((tmp_ / "outside/secret").c_str(), &st), 0);
  EXPECT_EQ(st.st_nlink, 1u);
}

TEST_P(ExtractTest, HardlinkThroughSymlinkedParent) {
  TarBuilder t;
  t.symlink("out", outside()).hardlink("h", "out/secret");
  auto r = apply(t.finish());
  ASSERT_FALSE(r);
  struct stat st {};
  ASSERT_EQ(::stat((tmp_ / "outside/secret").c_str(), &st), 0);
  EXPECT_EQ(st.st_nlink, 1u);
}

TEST_P(ExtractTest, HardlinkSymlinkChmod) {  // CVE-2021-32760
  TarBuilder t;
  t.symlink("s", outside() + "/secret").hardlink("h", "s", {.mode = 0777});
  auto r = apply(t.finish());
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_TRUE(fs::is_symlink(root() / "h"));  // the link is to the symlink itself
  struct stat st {};
  ASSERT_EQ(::stat((tmp_ / "outside/secret").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0400u);
}

TEST_P(ExtractTest, HardlinkSymlinkThenWrite) {
  TarBuilder l1;
  l1.symlink("s", outside() + "/secret").hardlink("h", "s");
  ASSERT_TRUE(apply(l1.finish()));
  TarBuilder l2;
  l2.file("h", "pwned", {.mode = 0666});
  ASSERT_TRUE(apply(l2.finish()));
  EXPECT_TRUE(fs::is_regular_file(fs::symlink_status(root() / "h")));
}

TEST_P(ExtractTest, HardlinkInsideWorks) {
  TarBuilder t;
  t.file("a", "data", {.mode = 0640}).hardlink("b", "/a").hardlink("c", "x/../a");
  ASSERT_TRUE(apply(t.finish()));
  struct stat st {};
  ASSERT_EQ(::stat((root() / "a").c_str(), &st), 0);
  EXPECT_EQ(st.st_nlink, 3u);
}

TEST_P(ExtractTest, DirectoryOverrideSymlinkAndHardlink) {
  TarBuilder t;
  t.symlink("d", outside()).dir("d", {.mode = 0777});
  auto r = apply(t.finish());
  ASSERT_FALSE(r);  // duplicate path in one layer
  TarBuilder t2;
  t2.symlink("e", outside()).hardlink("e2", "e").dir("e2/", {.mode = 0777});
  EXPECT_FALSE(apply(t2.finish()));
}

// ---- whiteout escapes ----------------------------------------------------------------------------

TEST_P(ExtractTest, WhiteoutDotNamesAreRefused) {
  for (const char* name : {".wh...", "etc/.wh...", ".wh..", "etc/.wh..", ".wh.", "etc/.wh."}) {
    TarBuilder t;
    t.dir("etc").file(name, "");
    auto r = apply(t.finish());
    ASSERT_FALSE(r) << name;
    EXPECT_NE(r.error().message.find("invalid whiteout"), std::string::npos) << r.error().to_string();
  }
}

TEST_P(ExtractTest, WhiteoutOfSymlinkRemovesOnlyTheLink) {
  TarBuilder l1;
  l1.symlink("localetc", outside() + "/etc");
  ASSERT_TRUE(apply(l1.finish()));
  TarBuilder l2;
  l2.file(".wh.localetc", "");
  ASSERT_TRUE(apply(l2.finish()));
  EXPECT_FALSE(exists_nofollow(root() / "localetc"));
}

TEST_P(ExtractTest, WhiteoutThroughSymlink) {
  TarBuilder l1;
  l1.symlink("localetc", outside());
  ASSERT_TRUE(apply(l1.finish()));
  TarBuilder l2;
  l2.file("localetc/.wh.whitedout", "");
  ASSERT_TRUE(apply(l2.finish()));
  TarBuilder l3;
  l3.file("localetc/.wh.secret", "").file("localetc/.wh.etc", "");
  ASSERT_TRUE(apply(l3.finish()));
}

TEST_P(ExtractTest, WhiteoutNameAsDirectoryIsRefused) {
  TarBuilder t;
  t.file(".wh.etc/somefile", "x");
  auto r = apply(t.finish());
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("whiteout used as a directory"), std::string::npos);
}

TEST_P(ExtractTest, WhiteoutWithDeadSymlinkParent) {
  TarBuilder l1;
  l1.symlink("localetc", outside() + "/does-not-exist");
  ASSERT_TRUE(apply(l1.finish()));
  TarBuilder l2;
  l2.file("localetc/.wh.etc", "");
  ASSERT_TRUE(apply(l2.finish()));
  EXPECT_TRUE(exists_nofollow(root() / "localetc"));
}

TEST_P(ExtractTest, WhiteoutRelativePath) {
  TarBuilder l1;
  l1.dir("etc").file("etc/passwd", "x");
  ASSERT_TRUE(apply(l1.finish()));
  TarBuilder l2;
  l2.file("dne/../.wh.etc", "").file("../../.wh.whitedout", "");
  ASSERT_TRUE(apply(l2.finish()));
  EXPECT_FALSE(exists_nofollow(root() / "etc"));
}

TEST_P(ExtractTest, AbsoluteAndDotDotNamesLandInside) {
  TarBuilder t;
  t.file("/abs", "1").file("../../up", "2").file("./a/../../b", "3");
  ASSERT_TRUE(apply(t.finish()));
  EXPECT_TRUE(fs::is_regular_file(root() / "abs"));
  EXPECT_TRUE(fs::is_regular_file(root() / "up"));
  EXPECT_TRUE(fs::is_regular_file(root() / "b"));
}

INSTANTIATE_TEST_SUITE_P(Openat2AndFallback, ExtractTest, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "fallback" : "openat2"; });

// ---- semantics -----------------------------------------------------------------------------------

class ExtractSemantics : public ::testing::Test {
 protected:
  void SetUp() override { root_fd_ = std::move(*sys::open(tmp_.path(), O_RDONLY | O_DIRECTORY)); }
  Result<ExtractStats> apply(const std::string& tar, ExtractOptions o = {}) {
    StringReader r(tar);
    auto res = extract_layer(r, media_type::Compression::None, root_fd_.get(), o);
    if (!res) std::cerr << "extract: " << res.error().to_string() << "\n";
    return res;
  }
  testing::TempTree tmp_;
  UniqueFd root_fd_;
};

TEST_F(ExtractSemantics, WhiteoutsAndOpaqueOverThreeLayers) {
  TarBuilder l1;
  l1.dir("a").file("a/keep", "1").file("a/gone", "2").dir("b").file("b/old", "3").file("c", "4");
  ASSERT_TRUE(apply(l1.finish()));
  TarBuilder l2;
  l2.file("a/.wh.gone", "").file("b/.wh..wh..opq", "").file("b/new", "5").file(".wh.c", "");
  ASSERT_TRUE(apply(l2.finish()));
  TarBuilder l3;
  l3.file("c", "again").dir("b", {.mode = 0700}).file("b/.wh.new", "").file("a/.wh.keep", "")
      .file("a/keep", "same layer wins");
  ASSERT_TRUE(apply(l3.finish()));
  auto listing = list_tree(tmp_.path(), {.owners = false});
  EXPECT_EQ(listing, fmt::format("a 040755 0 \na/keep 100644 15 {}\nb 040700 0 \nc 100644 5 {}\n",
                                 Digest::of("same layer wins").str().substr(7, 16),
                                 Digest::of("again").str().substr(7, 16)));
}

TEST_F(ExtractSemantics, OpaqueKeepsSameLayerEntriesInAnyOrder) {
  TarBuilder l1;
  l1.dir("d").file("d/lower", "x").dir("d/sub").file("d/sub/lower", "y");
  ASSERT_TRUE(apply(l1.finish()));
  TarBuilder l2;
  l2.dir("d").dir("d/sub").file("d/sub/mine", "m").file("d/.wh..wh..opq", "");
  ASSERT_TRUE(apply(l2.finish()));
  EXPECT_FALSE(fs::exists(tmp_ / "d/lower"));
  EXPECT_FALSE(fs::exists(tmp_ / "d/sub/lower"));
  EXPECT_TRUE(fs::exists(tmp_ / "d/sub/mine"));
}

TEST_F(ExtractSemantics, OverlayModeWritesOverlayWhiteouts) {
  if (::geteuid() != 0) GTEST_SKIP() << "trusted.* xattrs need root";
  TarBuilder t;
  t.dir("d").file("d/.wh..wh..opq", "").file("d/.wh.x", "").file("e/.wh.y", "")
      .file("f", "1", {.xattrs = {{"trusted.overlay.opaque", "y"}, {"user.note", "hi"}}});
  auto r = apply(t.finish(), {.whiteouts = WhiteoutMode::Overlay});
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(r->whiteouts, 3u);
  struct stat st {};
  ASSERT_EQ(::lstat((tmp_ / "d/x").c_str(), &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  EXPECT_EQ(st.st_rdev, makedev(0, 0));
  ASSERT_EQ(::lstat((tmp_ / "e/y").c_str(), &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  char buf[4];
  EXPECT_EQ(::lgetxattr((tmp_ / "d").c_str(), "trusted.overlay.opaque", buf, sizeof buf), 1);
  // A layer can never forge overlay state through its own xattrs.
  EXPECT_LT(::lgetxattr((tmp_ / "f").c_str(), "trusted.overlay.opaque", buf, sizeof buf), 0);
}

TEST_F(ExtractSemantics, MetadataIsPreserved) {
  TarBuilder t;
  t.dir("d", {.mode = 0751, .uid = 1234, .gid = 5678, .mtime = 1'000'000})
      .file("d/f", "abc", {.mode = 04755, .uid = 42, .gid = 43, .mtime = 2'000'000})
      .symlink("d/l", "f", {.mode = 0777, .uid = 7, .gid = 8, .mtime = 3'000'000})
      .fifo("d/p", {.mode = 0620});
  const bool root = ::geteuid() == 0;  // owners only as root; the rest always
  auto r = apply(t.finish(), {.same_owner = root});
  ASSERT_TRUE(r) << r.error().to_string();
  struct stat st {};
  ASSERT_EQ(::lstat((tmp_ / "d").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0751u);
  if (root) {
    EXPECT_EQ(st.st_uid, 1234u);
  }
  EXPECT_EQ(st.st_mtim.tv_sec, 1'000'000);
  ASSERT_EQ(::lstat((tmp_ / "d/f").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 04755u);
  if (root) {
    EXPECT_EQ(st.st_uid, 42u);
    EXPECT_EQ(st.st_gid, 43u);
  }
  EXPECT_EQ(st.st_mtim.tv_sec, 2'000'000);
  ASSERT_EQ(::lstat((tmp_ / "d/l").c_str(), &st), 0);
  if (root) {
    EXPECT_EQ(st.st_uid, 7u);
  }
  EXPECT_EQ(st.st_mtim.tv_sec, 3'000'000);
  ASSERT_EQ(::lstat((tmp_ / "d/p").c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0620u);
}

TEST_F(ExtractSemantics, EntryOverExistingPathIsReplaced) {
  TarBuilder l1;
  l1.dir("x").file("x/inner", "1").file("y", "2").dir("z", {.mode = 0700}).file("z/keep", "k");
  ASSERT_TRUE(apply(l1.finish()));
  TarBuilder l2;
  l2.file("x", "now a file").dir("y").dir("z", {.mode = 0755});
  ASSERT_TRUE(apply(l2.finish()));
  EXPECT_TRUE(fs::is_regular_file(tmp_ / "x"));
  EXPECT_TRUE(fs::is_directory(tmp_ / "y"));
  EXPECT_TRUE(fs::exists(tmp_ / "z/keep"));  // dir over dir only updates attributes
  EXPECT_EQ(fs::status(tmp_ / "z").permissions(), fs::perms(0755));
}

// ---- refusals and corrupt input ------------------------------------------------------------------

TEST_F(ExtractSemantics, DuplicatePathIsRefused) {
  TarBuilder t;
  t.file("a", "1").file("a", "2");
  auto r = apply(t.finish());
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("duplicate"), std::string::npos);
}

TEST_F(ExtractSemantics, DevicesRefusedWhenNotAllowed) {
  TarBuilder t;
  t.device("dev/sda", true, 8, 0);
  auto r = apply(t.finish(), {.allow_devices = false});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::PermissionDenied);
  EXPECT_NE(r.error().message.find("device nodes are not allowed"), std::string::npos);
  EXPECT_FALSE(fs::exists(tmp_ / "dev/sda"));
}

TEST_F(ExtractSemantics, DevicesCreatedWhenAllowed) {
  if (::geteuid() != 0) GTEST_SKIP() << "mknod needs root";
  TarBuilder t;
  t.device("dev/null", false, 1, 3, {.mode = 0666});
  ASSERT_TRUE(apply(t.finish(), {.allow_devices = true}));
  struct stat st {};
  ASSERT_EQ(::lstat((tmp_ / "dev/null").c_str(), &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  EXPECT_EQ(st.st_rdev, makedev(1, 3));
}

TEST_F(ExtractSemantics, AbsurdSizeIsRefused) {
  std::string tar = testing::raw_header("huge", '0', uint64_t{1} << 50) + std::string(4096, 'x');
  auto r = apply(tar);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("exceeds the limit"), std::string::npos) << r.error().to_string();
  EXPECT_FALSE(fs::exists(tmp_ / "huge"));
}

TEST_F(ExtractSemantics, LimitsAreEnforced) {
  TarBuilder t;
  t.file("a", "12345").file("b", "12345").file("c", "1");
  std::string tar = t.finish();
  EXPECT_FALSE(apply(tar, {.limits = {.max_entries = 2}}));
  EXPECT_FALSE(apply(tar, {.limits = {.max_total_bytes = 9}}));
  EXPECT_FALSE(apply(tar, {.limits = {.max_entry_size = 4}}));
  TarBuilder l;
  l.file(std::string(300, 'n') + "/" + std::string(200, 'm'), "x");
  auto r = apply(l.finish(), {.limits = {.max_path_length = 256}});
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("name longer than"), std::string::npos);
}

TEST_F(ExtractSemantics, TruncatedAndGarbageStreams) {
  TarBuilder t;
  t.file("a", std::string(100000, 'x'));
  std::string tar = t.finish();
  auto r = apply(tar.substr(0, 5000));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::Corrupt);
  r = apply(std::string(4096, '\x7f'));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::Corrupt);
  // Truncated gzip.
  StringSink gz;
  auto sink = CompressingSink::create(gz, {.compression = media_type::Compression::Gzip});
  ASSERT_TRUE(sink);
  ASSERT_TRUE((*sink)->write(tar));
  ASSERT_TRUE((*sink)->finish());
  StringReader cut(gz.data.substr(0, gz.data.size() - 10));
  auto g = extract_layer(cut, media_type::Compression::Gzip, root_fd_.get(), {});
  ASSERT_FALSE(g);
  EXPECT_EQ(g.error().code, Errc::Corrupt) << g.error().to_string();
  StringReader garbage(std::string(1000, 'g'));
  EXPECT_FALSE(extract_layer(garbage, media_type::Compression::Zstd, root_fd_.get(), {}));
}

TEST_F(ExtractSemantics, DiffIdIsComputedAndChecked) {
  TarBuilder t;
  t.dir("d").file("d/f", "content");
  std::string tar = t.finish();
  for (auto c : {media_type::Compression::None, media_type::Compression::Gzip,
                 media_type::Compression::Zstd}) {
    StringSink out;
    auto sink = CompressingSink::create(out, {.compression = c});
    ASSERT_TRUE(sink);
    ASSERT_TRUE((*sink)->write(tar));
    ASSERT_TRUE((*sink)->finish());
    testing::TempTree dir;
    UniqueFd fd = std::move(*sys::open(dir.path(), O_RDONLY | O_DIRECTORY));
    StringReader r(out.data);
    auto ok = extract_layer(r, c, fd.get(), {.expected_diff_id = Digest::of(tar)});
    ASSERT_TRUE(ok) << ok.error().to_string();
    EXPECT_EQ(ok->diff_id, Digest::of(tar));
    StringReader r2(out.data);
    auto bad = extract_layer(r2, c, fd.get(), {.expected_diff_id = Digest::of("other")});
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().code, Errc::Corrupt);
    EXPECT_NE(bad.error().message.find("diff_id mismatch"), std::string::npos);
  }
}

TEST_F(ExtractSemantics, NulInNamesIsRefused) {
  // Hand-made PAX header whose path record carries a NUL byte.
  auto header = testing::raw_header;
  std::string rec = std::string("path=evil\0name", 14) + "\n";
  rec = fmt::format("{} {}", rec.size() + 3, rec);
  std::string tar = header("PaxHeaders/x", 'x', rec.size()) + rec;
  tar.resize((tar.size() + 511) / 512 * 512, '\0');
  tar += header("placeholder", '0', 0);
  tar += std::string(1024, '\0');
  auto r = apply(tar);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("NUL"), std::string::npos) << r.error().to_string();
  EXPECT_FALSE(fs::exists(tmp_ / "evil"));
  // The same for a GNU long name ('L') with a NUL inside.
  std::string name = std::string("long\0name", 9) + std::string(120, 'x');
  std::string gnu = header("././@LongLink", 'L', name.size() + 1) + name + '\0';
  gnu.resize((gnu.size() + 511) / 512 * 512, '\0');
  gnu += header("short", '0', 0) + std::string(1024, '\0');
  auto g = apply(gnu);
  ASSERT_FALSE(g);
  EXPECT_NE(g.error().message.find("NUL"), std::string::npos) << g.error().to_string();
}

}  // namespace
}  // namespace kiste::image
