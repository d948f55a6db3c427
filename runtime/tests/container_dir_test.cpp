#include <gtest/gtest.h>

#include <kiste/base/sys.hpp>
#include <kiste/base/temp_dir.hpp>
#include <kiste/runtime/container.hpp>

namespace kiste::runtime {
namespace {

namespace fs = std::filesystem;

TEST(ContainerDir, RemovesWhatOverlayLeftAndWhateverTheContainerWrote) {
  auto tmp = TempDir::create(fs::temp_directory_path(), "kiste-cd-");
  ASSERT_TRUE(tmp);
  // An empty run: only overlay's own dirs.
  fs::path a = tmp->path() / "a";
  for (const char* d : {"upper", "merged", "work/work/incompat/volatile"}) {
    ASSERT_TRUE(sys::mkdir_all(a / d));
  }
  ASSERT_TRUE(sys::write_file_atomic(a / "work/work/incompat/volatile/dirty", ""));
  ASSERT_TRUE(remove_container_dir(a));
  EXPECT_FALSE(fs::exists(a));
  // A run that wrote files, left a symlink pointing out and a non-empty work dir.
  fs::path b = tmp->path() / "b";
  fs::path outside = tmp->path() / "outside";
  ASSERT_TRUE(sys::mkdir_all(outside));
  ASSERT_TRUE(sys::write_file_atomic(outside / "keep", "x"));
  ASSERT_TRUE(sys::mkdir_all(b / "upper" / "etc"));
  ASSERT_TRUE(sys::write_file_atomic(b / "upper" / "etc" / "hosts", "h"));
  fs::create_directory_symlink(outside, b / "upper" / "out");
  ASSERT_TRUE(sys::mkdir_all(b / "work" / "work" / "#7"));
  ASSERT_TRUE(sys::mkdir_all(b / "lower"));
  fs::create_directory_symlink("/", b / "lower" / "0");
  ASSERT_TRUE(remove_container_dir(b));
  EXPECT_FALSE(fs::exists(b));
  EXPECT_TRUE(fs::exists(outside / "keep"));
  // Gone already: fine.
  EXPECT_TRUE(remove_container_dir(b));
}

}  // namespace
}  // namespace kiste::runtime
