// The cgroup v2 device filter (eBPF), for real: a process in a cgroup2 directory with Docker's
// rules attached may mknod anything but only open the default devices; without the filter it
// opens a block device of this machine (a loop device: some sandboxes refuse even
// root the disk). This machine's cgroup2 mount has no controllers, and
// none are needed: BPF_CGROUP_DEVICE programs attach to any cgroup2 directory.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>

#include <kiste/base/sys.hpp>
#include <kiste/runtime/cgroup.hpp>
#include <kiste/runtime/container.hpp>
#include <kiste/runtime/run_options.hpp>
#include <kiste/runtime/device_filter.hpp>

#include "runtime_fixture.hpp"

namespace kiste::testing {
namespace {

namespace fs = std::filesystem;
using namespace kiste::runtime;

struct Outcome {
  int mknod_block = -1;  // 0 or errno
  int open_block = -1;
  int open_sda = -1;     // a node for 8:0 (sda), made in the cgroup
  int open_null = -1;
  int write_null = -1;
};

int errno_of(int rc) { return rc < 0 ? errno : 0; }

// Runs the probes in a child that is moved into `driver`'s cgroup first.
Outcome probe_in_cgroup(CgroupDriver& driver, const fs::path& dir, dev_t block) {
  int go[2], res[2];
  EXPECT_EQ(::pipe(go), 0);
  EXPECT_EQ(::pipe(res), 0);
  pid_t pid = ::fork();
  if (pid == 0) {
    char c;
    if (::read(go[0], &c, 1) != 1) ::_exit(1);
    Outcome o;
    std::string made = (dir / "made-blk").native(), sda = (dir / "sda").native();
    o.mknod_block = errno_of(::mknod(made.c_str(), S_IFBLK | 0600, block));
    int fd = ::open((dir / "blk").c_str(), O_RDONLY | O_CLOEXEC);
    o.open_block = errno_of(fd);
    if (fd >= 0) ::close(fd);
    if (::mknod(sda.c_str(), S_IFBLK | 0600, makedev(8, 0)) == 0) {
      fd = ::open(sda.c_str(), O_RDONLY | O_CLOEXEC);
      o.open_sda = errno_of(fd);
      if (fd >= 0) ::close(fd);
    } else {
      o.open_sda = -errno;
    }
    fd = ::open("/dev/null", O_RDWR | O_CLOEXEC);
    o.open_null = errno_of(fd);
    o.write_null = fd >= 0 ? errno_of(static_cast<int>(::write(fd, "x", 1))) : -1;
    if (::write(res[1], &o, sizeof o) != sizeof o) ::_exit(2);
    ::_exit(0);
  }
  ::close(go[0]);
  ::close(res[1]);
  Outcome o;
  auto added = driver.add_process(pid);
  EXPECT_TRUE(added) << added.error().to_string();
  EXPECT_EQ(::write(go[1], "g", 1), 1);
  EXPECT_EQ(::read(res[0], &o, sizeof o), static_cast<ssize_t>(sizeof o));
  ::close(go[1]);
  ::close(res[0]);
  int st = 0;
  EXPECT_EQ(::waitpid(pid, &st, 0), pid);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  ::unlink((dir / "made-blk").c_str());
  ::unlink((dir / "sda").c_str());
  return o;
}

class DeviceFilterTest : public RuntimeTest {
 protected:
  void SetUp() override {
    RuntimeTest::SetUp();
    if (IsSkipped()) return;
    mount_ = cgroup2_mount();
    if (mount_.empty()) GTEST_SKIP() << "no cgroup2 mount on this machine";
    parent_.emplace(mount_);
    // A block device this machine has and lets root open (some sandboxes refuse the disk).
    for (const char* dev : {"/dev/loop0", "/dev/zram0", "/dev/vda", "/dev/sda"}) {
      struct stat st {};
      if (::stat(dev, &st) != 0 || !S_ISBLK(st.st_mode)) continue;
      int fd = ::open(dev, O_RDONLY | O_CLOEXEC);
      if (fd < 0) continue;
      ::close(fd);
      block_ = st.st_rdev;
      break;
    }
    if (block_ == 0) GTEST_SKIP() << "no block device that root may open on this machine";
    ASSERT_EQ(::mknod((tmp() / "blk").c_str(), S_IFBLK | 0600, block_), 0);
  }
  fs::path mount_;
  std::optional<TestCgroupParent> parent_;
  dev_t block_ = 0;
};

TEST_F(DeviceFilterTest, DockersRulesAllowMknodAndTheDefaultDevicesOnly) {
  auto driver = make_cgroup_v2_driver(mount_, parent_->name());
  ASSERT_TRUE(driver) << driver.error().to_string();
  auto plan = CgroupPlan::from_resources({}, CgroupMode::Unified);
  ASSERT_TRUE(plan);
  ASSERT_EQ(plan->device_rules, docker_default_device_rules());
  auto made = (*driver)->create("kiste-test-" + sys::random_hex(6), *plan);
  ASSERT_TRUE(made) << made.error().to_string();
  Outcome with = probe_in_cgroup(**driver, tmp(), block_);
  EXPECT_EQ(with.mknod_block, 0);       // "b *:* m"
  EXPECT_EQ(with.open_block, EPERM);    // no rule for this block device
  EXPECT_EQ(with.open_sda, EPERM);
  EXPECT_EQ(with.open_null, 0);         // "c 1:3 rwm"
  EXPECT_EQ(with.write_null, 0);
  ASSERT_TRUE((*driver)->destroy());

  // The same probes in a cgroup without the filter (--privileged): the block device opens.
  auto privileged = CgroupPlan::from_resources({}, CgroupMode::Unified, /*privileged=*/true);
  ASSERT_TRUE(privileged);
  EXPECT_TRUE(privileged->device_rules.empty());
  ASSERT_TRUE((*driver)->create("kiste-test-" + sys::random_hex(6), *privileged));
  Outcome without = probe_in_cgroup(**driver, tmp(), block_);
  EXPECT_EQ(without.mknod_block, 0);
  EXPECT_EQ(without.open_block, 0);
  EXPECT_NE(without.open_sda, EPERM);  // ENXIO where there is no sda: not the filter's EPERM
  EXPECT_EQ(without.open_null, 0);
  ASSERT_TRUE((*driver)->destroy());
}

TEST_F(DeviceFilterTest, RulesAreCheckedByAccessTypeMajorAndMinor) {
  auto driver = make_cgroup_v2_driver(mount_, parent_->name());
  ASSERT_TRUE(driver);
  // Read-only access to exactly this block device, nothing else (not even mknod).
  CgroupPlan plan;
  plan.device_rules = {{'b', major(block_), minor(block_), "r"}, {'c', 1, 3, "rw"}};
  ASSERT_TRUE((*driver)->create("kiste-test-" + sys::random_hex(6), plan));
  Outcome o = probe_in_cgroup(**driver, tmp(), block_);
  EXPECT_EQ(o.mknod_block, EPERM);
  EXPECT_EQ(o.open_block, 0);
  EXPECT_EQ(o.open_sda, -EPERM);  // mknod refused
  EXPECT_EQ(o.open_null, 0);
  ASSERT_TRUE((*driver)->destroy());
}

// A whole container on cgroup v2: Docker's 14 capabilities, CAP_MKNOD included again, and the
// filter in its cgroup keeps the device it can make closed.
TEST_F(DeviceFilterTest, ContainerOnCgroupV2HasMknodButOnlyDockersDevices) {
  fs::path out_dir = tmp() / "out";
  ASSERT_TRUE(sys::mkdir_all(out_dir));
  RunOptions opts;
  opts.command = {"sh", "-c",
                  fmt::format("exec > /out/result 2>&1; grep CapEff /proc/self/status; "
                              "mknod /tmp/blk b {} {} && echo made; head -c 1 /tmp/blk; "
                              "echo x > /dev/null && echo null-ok",
                              major(block_), minor(block_))};
  opts.volumes = {out_dir.native() + ":/out"};
  std::string id = sys::random_hex(16);
  auto spec = make_spec(opts, {.id = id, .lower_dirs = {rootfs()}, .container_dir = tmp() / "c" / id});
  ASSERT_TRUE(spec) << spec.error().to_string();
  RunContext ctx;
  ctx.cgroup_mode = CgroupMode::Unified;
  ctx.cgroup_v2_mount = mount_;
  ctx.cgroups.parent = parent_->name();
  auto exit = run_container(*spec, ctx);
  ASSERT_TRUE(exit) << exit.error().to_string();
  EXPECT_EQ(exit->exit_code, 0);
  std::string result = sys::read_file(out_dir / "result").value_or("");
  EXPECT_THAT(result, ::testing::HasSubstr("CapEff:\t00000000a80425fb\nmade\n")) << result;
  EXPECT_THAT(result, ::testing::HasSubstr("Operation not permitted")) << result;
  EXPECT_THAT(result, ::testing::HasSubstr("null-ok")) << result;
}

}  // namespace
}  // namespace kiste::testing
