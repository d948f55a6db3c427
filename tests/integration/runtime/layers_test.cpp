// The overlay root with many layers, through the library: 120 lower dirs must fit the mount
// option page (short relative lowerdir names) and stack in order.
#include <sys/stat.h>
#include <unistd.h>

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

// Runs `script` (sh -c) over `layers` with /tmp bound to tmp()/out (a mount point the image has:
// no stub in the upper dir); returns the container dir, which run_container leaves behind.
fs::path run_layers(const fs::path& tmp, const std::vector<fs::path>& layers, const std::string& script,
                    bool readonly = false) {
  fs::path out_dir = tmp / "out";
  EXPECT_TRUE(sys::mkdir_all(out_dir));
  RunOptions opts;
  opts.command = {"sh", "-c", script};
  opts.volumes = {out_dir.native() + ":/tmp"};
  opts.read_only = readonly;
  std::string id = sys::random_hex(16);
  auto spec = make_spec(opts, {.id = id, .lower_dirs = layers, .container_dir = tmp / "c" / id});
  EXPECT_TRUE(spec) << spec.error().to_string();
  auto exit = run_container(*spec);
  EXPECT_TRUE(exit) << exit.error().to_string();
  if (exit) {
    EXPECT_EQ(exit->exit_code, 0);
  }
  return tmp / "c" / id;
}

TEST_F(RuntimeTest, RuntimeFilesComeFromATopLayerWithTheImagesEtc) {
  // An image whose /etc has its own mode and owner: the runtime's layer must not change them,
  // nothing is bound over /etc/*, and a container that writes nothing leaves the upper empty.
  fs::path top = tmp() / "top";
  ASSERT_TRUE(sys::mkdir_all(top / "etc"));
  ASSERT_TRUE(sys::write_file_atomic(top / "etc" / "marker", "image\n"));
  ASSERT_EQ(::chmod((top / "etc").c_str(), 0750), 0);
  ASSERT_EQ(::chown((top / "etc").c_str(), 7, 8), 0);
  fs::path cdir = run_layers(tmp(), {rootfs(), top},
                             "stat -c '%a %u %g' /etc > /tmp/r; cat /etc/marker /etc/hostname >> /tmp/r; "
                             "grep -c localhost /etc/hosts >> /tmp/r; { grep -c ' /etc' /proc/self/mountinfo || true; } >> /tmp/r");
  std::string r = sys::read_file(tmp() / "out" / "r").value_or("");
  EXPECT_THAT(r, ::testing::MatchesRegex("750 7 8\nimage\n[0-9a-f]{12}\n2\n0\n")) << r;
  EXPECT_TRUE(fs::is_empty(cdir / "upper"));
  EXPECT_FALSE(fs::exists(cdir / "merged"));  // the root is mounted on the container dir itself
}

TEST_F(RuntimeTest, RuntimeFilesAreWritableAndAnEtcSymlinkIsKept) {
  // A write copies the runtime's file up; it stays the container's. (The whole line is matched:
  // the hostname line holds 12 random hex digits, which contain "db" one time in ~23.)
  fs::path cdir = run_layers(tmp(), {rootfs()}, "echo 10.1.1.1 db >> /etc/hosts; grep -cx '10.1.1.1 db' /etc/hosts > /tmp/r");
  EXPECT_EQ(sys::read_file(tmp() / "out" / "r").value_or(""), "1\n");
  EXPECT_THAT(sys::read_file(cdir / "upper" / "etc" / "hosts").value_or(""), ::testing::HasSubstr("db"));
  // An image whose /etc is a symlink: a directory on top would hide it, so the files are bound
  // where it points.
  fs::path top = tmp() / "symlinked";
  ASSERT_TRUE(sys::mkdir_all(top / "usr" / "etc"));
  ASSERT_TRUE(sys::write_file_atomic(top / "usr" / "etc" / "marker", "moved\n"));
  fs::create_directory_symlink("usr/etc", top / "etc");
  run_layers(tmp(), {rootfs(), top}, "readlink /etc > /tmp/r; cat /etc/marker >> /tmp/r; grep -c localhost /etc/hosts >> /tmp/r");
  EXPECT_EQ(sys::read_file(tmp() / "out" / "r").value_or(""), "usr/etc\nmoved\n2\n");
  // --read-only: like docker, the files stay writable (bound, not on the read-only root).
  run_layers(tmp(), {rootfs()}, "echo 10.1.1.2 ro >> /etc/hosts && grep -c ro /etc/hosts > /tmp/r; touch /x 2>/dev/null || echo ro >> /tmp/r", true);
  EXPECT_EQ(sys::read_file(tmp() / "out" / "r").value_or(""), "1\nro\n");
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
