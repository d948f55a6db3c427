// The overlay root with many layers, through the library: 120 lower dirs must fit the mount
// option page (short relative lowerdir names) and stack in order.
#include <kiste/base/sys.hpp>
#include <kiste/runtime/container.hpp>
#include <kiste/runtime/run_options.hpp>

#include "runtime_fixture.hpp"

namespace kiste::testing {
namespace {

namespace fs = std::filesystem;
using namespace kiste::runtime;

TEST_F(RuntimeTest, HundredTwentyLayersStackInOrder) {
  std::vector<fs::path> layers{rootfs()};
  for (int i = 1; i < 120; ++i) {
    // Long paths on purpose: 120 of them would not fit in one page as absolute lowerdirs.
    fs::path l = tmp() / "layers" / (std::string(60, 'l') + "-" + std::to_string(i));
    ASSERT_TRUE(sys::mkdir_all(l / "layers"));
    ASSERT_TRUE(sys::mkdir_all(l / "etc"));
    ASSERT_TRUE(sys::write_file_atomic(l / "layers" / std::to_string(i), ""));
    ASSERT_TRUE(sys::write_file_atomic(l / "etc" / "winner", "layer" + std::to_string(i) + "\n"));
    layers.push_back(l);
  }
  fs::path out_dir = tmp() / "out";
  ASSERT_TRUE(sys::mkdir_all(out_dir));
  RunOptions opts;
  opts.command = {"sh", "-c", "ls /layers | wc -l > /out/result; cat /etc/winner >> /out/result"};
  opts.volumes = {out_dir.native() + ":/out"};
  std::string id = sys::random_hex(16);
  auto spec = make_spec(opts, {.id = id, .lower_dirs = layers, .container_dir = tmp() / "c" / id});
  ASSERT_TRUE(spec) << spec.error().to_string();
  auto exit = run_container(*spec);
  ASSERT_TRUE(exit) << exit.error().to_string();
  EXPECT_EQ(exit->exit_code, 0);
  EXPECT_EQ(sys::read_file(out_dir / "result").value_or(""), "119\nlayer119\n");
}

TEST_F(RuntimeTest, SetupFailureInTheChildNamesTheStep) {
  // A directory bound onto a file of the image fails inside the child, after clone: the
  // {step, errno} report becomes one line naming the mount.
  fs::path src = tmp() / "src";
  ASSERT_TRUE(sys::mkdir_all(src));
  RunOptions opts;
  opts.command = {"true"};
  opts.volumes = {src.native() + ":/etc/passwd"};
  std::string id = sys::random_hex(16);
  auto spec = make_spec(opts, {.id = id, .lower_dirs = {rootfs()}, .container_dir = tmp() / "c" / id});
  ASSERT_TRUE(spec) << spec.error().to_string();
  auto exit = run_container(*spec);
  ASSERT_FALSE(exit);
  EXPECT_EQ(exit.error().to_string(),
            "container setup: bind mount `" + src.native() + "` on /etc/passwd: Not a directory");
}

}  // namespace
}  // namespace kiste::testing
