#include <kiste/base/sys.hpp>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <filesystem>

#include <gtest/gtest.h>

#include <kiste/base/file_lock.hpp>
#include <kiste/base/temp_dir.hpp>

namespace kiste {
namespace {

namespace fs = std::filesystem;

class OpenInRoot : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    sys::set_openat2_disabled(GetParam());
    outer_ = std::move(TempDir::create(fs::temp_directory_path(), "kiste-sys-").value());
    root_ = outer_.path() / "root";
    fs::create_directories(root_ / "dir");
    ASSERT_TRUE(sys::write_file_atomic(outer_.path() / "secret", "host"));
    ASSERT_TRUE(sys::write_file_atomic(root_ / "dir" / "inside", "inside"));
    fs::create_symlink("/secret", root_ / "abs");            // absolute: must stay in root
    fs::create_symlink("../../secret", root_ / "dir/rel");   // climbs above root
    fs::create_symlink("/dir", root_ / "dirlink");
    rootfd_ = std::move(sys::open(root_, O_PATH | O_DIRECTORY).value());
  }
  void TearDown() override { sys::set_openat2_disabled(false); }

  TempDir outer_ = std::move(TempDir::create(fs::temp_directory_path()).value());
  fs::path root_;
  UniqueFd rootfd_;
};

TEST_P(OpenInRoot, SymlinksResolveInsideTheRoot) {
  auto in = sys::open_in_root(rootfd_.get(), "dirlink/inside", O_RDONLY);
  ASSERT_TRUE(in) << in.error().to_string();
  EXPECT_EQ(sys::read_all(in->get()).value(), "inside");
  // "/secret" inside the root does not exist: the host file is never reached.
  auto abs = sys::open_in_root(rootfd_.get(), "abs", O_RDONLY);
  ASSERT_FALSE(abs);
  EXPECT_EQ(abs.error().code, Errc::NotFound);
  EXPECT_FALSE(sys::open_in_root(rootfd_.get(), "dir/rel", O_RDONLY));
  EXPECT_FALSE(sys::open_in_root(rootfd_.get(), "../secret", O_RDONLY));
  EXPECT_FALSE(sys::open_in_root(rootfd_.get(), "/../../secret", O_RDONLY));
}

TEST_P(OpenInRoot, CreateThroughEscapingSymlinkLandsInside) {
  auto fd = sys::open_in_root(rootfd_.get(), "abs", O_WRONLY | O_CREAT, 0600);
  ASSERT_TRUE(fd) << fd.error().to_string();
  ASSERT_TRUE(sys::write_all(fd->get(), "x"));
  EXPECT_EQ(sys::read_file(outer_.path() / "secret").value(), "host");
  EXPECT_TRUE(fs::exists(root_ / "secret"));
}

TEST_P(OpenInRoot, NoFollowOnLeafRefusesSymlink) {
  EXPECT_FALSE(sys::open_in_root(rootfd_.get(), "abs", O_RDONLY | O_NOFOLLOW));
}

TEST_P(OpenInRoot, MagicLinksAreRefused) {
  fs::create_symlink("/proc/self/root", root_ / "magic");
  // Inside the root this path does not exist, and a real magic link is never followed.
  EXPECT_FALSE(sys::open_in_root(rootfd_.get(), "magic/etc/passwd", O_RDONLY));
}

INSTANTIATE_TEST_SUITE_P(Openat2AndFallback, OpenInRoot, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "fallback" : "openat2"; });

TEST(Sys, WriteFileAtomicReplacesAndLeavesNoTemp) {
  auto dir = TempDir::create(fs::temp_directory_path()).value();
  fs::path f = dir.path() / "index.json";
  ASSERT_TRUE(sys::write_file_atomic(f, "one"));
  ASSERT_TRUE(sys::write_file_atomic(f, "two"));
  EXPECT_EQ(sys::read_file(f).value(), "two");
  EXPECT_EQ(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator{}), 1);
}

TEST(Sys, ReadAllHonoursLimit) {
  auto dir = TempDir::create(fs::temp_directory_path()).value();
  ASSERT_TRUE(sys::write_file_atomic(dir.path() / "f", std::string(100, 'x')));
  EXPECT_FALSE(sys::read_file(dir.path() / "f", 10));
  EXPECT_EQ(sys::read_file(dir.path() / "f", 100)->size(), 100u);
}

TEST(Sys, RemoveTreeDoesNotFollowSymlinks) {
  auto outer = TempDir::create(fs::temp_directory_path()).value();
  fs::create_directories(outer.path() / "keep");
  ASSERT_TRUE(sys::write_file_atomic(outer.path() / "keep/file", "precious"));
  fs::create_directories(outer.path() / "gone/sub");
  fs::create_symlink(outer.path() / "keep", outer.path() / "gone/sub/link");
  ::chmod((outer.path() / "gone/sub").c_str(), 0);
  ASSERT_TRUE(sys::remove_tree(outer.path() / "gone"));
  EXPECT_FALSE(fs::exists(outer.path() / "gone"));
  EXPECT_EQ(sys::read_file(outer.path() / "keep/file").value(), "precious");
  EXPECT_TRUE(sys::remove_tree(outer.path() / "never-existed"));
}

TEST(Sys, TempDirRemovesItselfUnlessKept) {
  fs::path p, kept;
  {
    auto d = TempDir::create(fs::temp_directory_path()).value();
    p = d.path();
    ASSERT_TRUE(sys::write_file_atomic(p / "x", "y"));
  }
  EXPECT_FALSE(fs::exists(p));
  {
    auto d = TempDir::create(fs::temp_directory_path()).value();
    kept = d.keep();
  }
  EXPECT_TRUE(fs::exists(kept));
  ASSERT_TRUE(sys::remove_tree(kept));
}

TEST(Sys, FileLockExcludesAnotherHolder) {
  auto d = TempDir::create(fs::temp_directory_path()).value();
  auto lock = FileLock::acquire(d.path() / "lock");
  ASSERT_TRUE(lock);
  // A second open file description cannot take the lock while the first holds it.
  int fd = ::open((d.path() / "lock").c_str(), O_RDWR | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  EXPECT_NE(::flock(fd, LOCK_EX | LOCK_NB), 0);
  ::close(fd);
}

// The mode is honoured for every directory made, and an older, wider directory is narrowed (a
// world-traversable store let any host user reach setuid files in snapshots: issue 12).
TEST(Sys, MkdirAllHonoursTheModeAndRestrictDirNarrows) {
  TempDir t = std::move(TempDir::create(fs::temp_directory_path(), "kiste-sys-").value());
  mode_t old = ::umask(022);
  ASSERT_TRUE(sys::mkdir_all(t.path() / "a" / "b" / "c", 0700));
  ::umask(old);
  for (const char* p : {"a", "a/b", "a/b/c"}) {
    EXPECT_EQ(fs::status(t.path() / p).permissions(), fs::perms::owner_all) << p;
  }
  ASSERT_TRUE(sys::mkdir_all(t.path() / "a" / "b" / "c", 0755));  // existing: left as it is
  EXPECT_EQ(fs::status(t.path() / "a/b/c").permissions(), fs::perms::owner_all);
  ASSERT_TRUE(sys::write_file_atomic(t.path() / "file", "x"));
  EXPECT_FALSE(sys::mkdir_all(t.path() / "file", 0700));

  ASSERT_EQ(::mkdir((t.path() / "wide").c_str(), 0755), 0);
  ASSERT_EQ(::chmod((t.path() / "wide").c_str(), 01777), 0);
  ASSERT_TRUE(sys::restrict_dir(t.path() / "wide", 0700));
  EXPECT_EQ(fs::status(t.path() / "wide").permissions(), fs::perms::owner_all);
  ASSERT_TRUE(sys::restrict_dir(t.path() / "new", 0700));
  EXPECT_EQ(fs::status(t.path() / "new").permissions(), fs::perms::owner_all);
  fs::create_symlink(t.path() / "wide", t.path() / "link");
  EXPECT_FALSE(sys::restrict_dir(t.path() / "link", 0700));  // never chmod through a symlink
}

}  // namespace
}  // namespace kiste
