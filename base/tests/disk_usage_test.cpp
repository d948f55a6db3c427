#include <kiste/base/disk_usage.hpp>

#include <unistd.h>

#include <cstdio>
#include <fstream>

#include <gtest/gtest.h>

#include <kiste/base/temp_dir.hpp>

namespace kiste {
namespace {

namespace fs = std::filesystem;

// The number `du -sb` prints for `dir`.
int64_t du_sb(const fs::path& dir) {
  std::string cmd = "du -sb " + dir.native();
  FILE* p = ::popen(cmd.c_str(), "r");
  long long n = -1;
  if (p != nullptr) {
    if (std::fscanf(p, "%lld", &n) != 1) n = -1;
    ::pclose(p);
  }
  return n;
}

TEST(TreeUsage, CountsLikeDuCountingHardLinksOnce) {
  auto d = TempDir::create(fs::temp_directory_path(), "kiste-du-").value();
  fs::create_directories(d.path() / "a" / "b");
  std::ofstream(d.path() / "a" / "f") << std::string(10000, 'x');
  std::ofstream(d.path() / "a" / "b" / "g") << "hello";
  fs::create_hard_link(d.path() / "a" / "f", d.path() / "a" / "b" / "f2");
  fs::create_symlink("a/f", d.path() / "link");
  auto u = tree_usage(d.path());
  ASSERT_TRUE(u) << u.error().to_string();
  EXPECT_EQ(u->entries, 6);
  EXPECT_EQ(u->bytes, du_sb(d.path()));
  EXPECT_GT(u->bytes, 10000);
  EXPECT_LT(u->bytes, 10000 + 3 * 4096 + 100);  // the hard link is not counted twice
}

TEST(TreeUsage, MissingDirIsEmpty) {
  auto u = tree_usage("/nonexistent/kiste-du-test");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->bytes, 0);
  EXPECT_EQ(u->entries, 0);
}

}  // namespace
}  // namespace kiste
