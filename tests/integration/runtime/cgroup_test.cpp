// Resource limits through the real cgroup drivers: OOM kill with a clear message, pids limit vs
// a fork bomb, CPU and memory files, the v2 driver where this machine allows it.
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <fcntl.h>

#include <iterator>
#include <sstream>

#include <kiste/base/sys.hpp>
#include <kiste/runtime/cgroup.hpp>
#include <kiste/runtime/container.hpp>
#include <kiste/runtime/run_options.hpp>

#include "runtime_fixture.hpp"

namespace kiste::testing {
namespace {

namespace fs = std::filesystem;
using namespace kiste::runtime;
using ::testing::HasSubstr;

std::vector<std::string> detail_words(const std::string& text) {
  std::istringstream in(text);
  return {std::istream_iterator<std::string>(in), {}};
}

TEST_F(RuntimeTest, MemoryLimitOomKillsWith137AndAMessage) {
  std::string out;
  EXPECT_EQ(kiste_run("--memory 6m kiste_test_init memhog 20", &out), 137) << out;
  EXPECT_THAT(out, HasSubstr("kiste: error: killed: out of memory (limit 6 MiB)"));
  EXPECT_THAT(out, ::testing::Not(HasSubstr("allocated")));
  out.clear();
  // Within the limit the same program is fine.
  EXPECT_EQ(kiste_run("--memory 64m kiste_test_init memhog 20", &out), 0) << out;
  EXPECT_EQ(out, "allocated\n");
}

TEST_F(RuntimeTest, PidsLimitStopsAForkBombAndTheHostIsFine) {
  std::string out;
  ASSERT_EQ(kiste_run("--pids-limit 20 kiste_test_init forkbomb 200", &out), 0) << out;
  int forked = -1, failed = -1;
  ASSERT_EQ(std::sscanf(out.c_str(), "forked=%d failed=%d", &forked, &failed), 2) << out;
  EXPECT_LE(forked, 19);  // 20 tasks including the bomb itself
  EXPECT_GE(failed, 181);
  out.clear();
  EXPECT_EQ(kiste_run("echo fine", &out), 0);
  EXPECT_EQ(out, "fine\n");
}

TEST_F(RuntimeTest, LimitsAreVisibleInTheContainersCgroup) {
  std::string out;
  ASSERT_EQ(kiste_run("--memory 32m --cpus 1.5 --cpu-shares 512 --pids-limit 50 sh -c '"
                      "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/cpu/cpu.cfs_quota_us "
                      "/sys/fs/cgroup/cpu/cpu.cfs_period_us /sys/fs/cgroup/cpu/cpu.shares /sys/fs/cgroup/pids/pids.max'",
                      &out),
            0)
      << out;
  EXPECT_EQ(out, "33554432\n150000\n100000\n512\n50\n");
}

TEST_F(RuntimeTest, BadResourceValuesFailBeforeStart) {
  std::string out;
  EXPECT_EQ(kiste_run("--memory lots true", &out), 125);
  EXPECT_THAT(out, HasSubstr("memory size `lots`"));
  out.clear();
  EXPECT_EQ(kiste_run("--memory 1 true", &out), 125);  // docker's minimum, before anything runs
  EXPECT_THAT(out, HasSubstr("kiste: error: memory `1`: below the minimum memory limit of 6MB"));
  out.clear();
  EXPECT_EQ(kiste_run("--memory 10m --memory-swap 5m true", &out), 125);
  EXPECT_THAT(out, HasSubstr("must be at least the memory limit"));
  out.clear();
  EXPECT_EQ(kiste_run("--cpus -1 true", &out), 125);
}

// The v1 driver on its own: creates below the caller's cgroup in each hierarchy, writes the
// plan, moves a process in, and destroy() kills it and removes every directory.
TEST_F(RuntimeTest, CgroupV1DriverCreatesAppliesAndCleansUp) {
  auto mode = detect_cgroup_mode();
  ASSERT_TRUE(mode) << mode.error().to_string();
  if (*mode == CgroupMode::Unified) GTEST_SKIP() << "no cgroup v1 hierarchies on this machine";
  auto driver = make_cgroup_v1_driver();
  ASSERT_TRUE(driver) << driver.error().to_string();
  auto plan = CgroupPlan::from_resources({.memory = 16 << 20, .pids = 7}, *mode);
  ASSERT_TRUE(plan);
  std::string name = "kiste-test-" + sys::random_hex(6);
  ASSERT_TRUE((*driver)->create(name, *plan));
  ASSERT_TRUE((*driver)->apply(*plan));
  auto paths = (*driver)->paths();
  ASSERT_FALSE(paths.empty());
  pid_t child = ::fork();
  if (child == 0) {
    ::pause();
    ::_exit(0);
  }
  ASSERT_TRUE((*driver)->add_process(child));
  for (const auto& p : paths) {
    auto procs = sys::read_file(p / "cgroup.procs");
    ASSERT_TRUE(procs);
    EXPECT_EQ(*procs, std::to_string(child) + "\n") << p;
    if (p.native().find("/pids/") != std::string::npos) {
      EXPECT_EQ(sys::read_file(p / "pids.max").value_or(""), "7\n");
    }
    if (p.native().find("/memory/") != std::string::npos) {
      EXPECT_EQ(sys::read_file(p / "memory.limit_in_bytes").value_or(""), "16777216\n");
    }
  }
  ASSERT_TRUE((*driver)->destroy());
  int st = 0;
  ASSERT_EQ(::waitpid(child, &st, 0), child);
  EXPECT_TRUE(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
  for (const auto& p : paths) EXPECT_FALSE(fs::exists(p)) << p;
}

// The v2 driver against this machine's cgroup2 mount. Here (hybrid) it holds no memory/pids/cpu
// controllers: asking for them must fail clearly; the controller-free path is exercised for real.
TEST_F(RuntimeTest, CgroupV2DriverOnTheUnifiedMount) {
  const fs::path mount = cgroup2_mount();
  if (mount.empty()) GTEST_SKIP() << "no cgroup2 mount on this machine";
  TestCgroupParent parent(mount);
  auto driver = make_cgroup_v2_driver(mount, parent.name());
  ASSERT_TRUE(driver) << driver.error().to_string();
  std::string name = "kiste-test-" + sys::random_hex(6);

  auto limited = CgroupPlan::from_resources({.memory = 16 << 20, .pids = 7}, CgroupMode::Unified);
  ASSERT_TRUE(limited);
  auto avail = sys::read_file((*driver)->paths().empty() ? mount / "cgroup.controllers" : mount / "cgroup.controllers");
  bool have_memory = avail && avail->find("memory") != std::string::npos &&
                     avail->find("pids") != std::string::npos;
  auto created = (*driver)->create(name, *limited);
  if (!have_memory) {
    ASSERT_FALSE(created);
    EXPECT_THAT(created.error().to_string(), HasSubstr("not available"));
  } else {
    ASSERT_TRUE(created) << created.error().to_string();
    ASSERT_TRUE((*driver)->apply(*limited));
    ASSERT_TRUE((*driver)->destroy());
  }

  CgroupPlan bare;
  ASSERT_TRUE((*driver)->create(name, bare));
  auto paths = (*driver)->paths();
  ASSERT_EQ(paths.size(), 1u);
  pid_t child = ::fork();
  if (child == 0) {
    ::pause();
    ::_exit(0);
  }
  ASSERT_TRUE((*driver)->add_process(child));
  EXPECT_EQ(sys::read_file(paths[0] / "cgroup.procs").value_or(""), std::to_string(child) + "\n");
  ASSERT_TRUE((*driver)->destroy());
  int st = 0;
  ASSERT_EQ(::waitpid(child, &st, 0), child);
  EXPECT_TRUE(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
  EXPECT_FALSE(fs::exists(paths[0]));
  if (!have_memory) {
    GTEST_SKIP() << "cgroup v2 at " << mount << " has no memory/pids controllers to delegate "
                 << "(hybrid host: they are bound to v1); only the controller-free v2 path ran";
  }
}


// Where the container's process is, seen from the host and from inside (its own cgroup
// namespace), while it runs.
struct Placement {
  std::string host_view, inside;
  bool dir_existed = false;
};

Placement run_and_place(const fs::path& tmp, const fs::path& rootfs, RunContext ctx) {
  Placement pl;
  fs::path out_dir = tmp / "out";
  EXPECT_TRUE(sys::mkdir_all(out_dir));
  ::unlink((out_dir / "inside").c_str());
  RunOptions opts;
  opts.command = {"sh", "-c", "cat /proc/self/cgroup > /out/inside; exec sleep 30"};
  opts.volumes = {out_dir.native() + ":/out"};
  std::string id = sys::random_hex(16);
  auto spec = make_spec(opts, {.id = id, .lower_dirs = {rootfs}, .container_dir = tmp / "c" / id});
  EXPECT_TRUE(spec) << spec.error().to_string();
  if (!spec) return pl;
  ctx.hooks.started = [&](pid_t pid) {
    // The shell writes its view first; wait for it (bounded), then read the host's view.
    for (int i = 0; i < 1000 && sys::read_file(out_dir / "inside").value_or("").empty(); ++i) {
      ::usleep(10'000);
    }
    pl.host_view = sys::read_file("/proc/" + std::to_string(pid) + "/cgroup").value_or("");
    struct stat st {};
    for (const std::string& p : kiste_cgroups()) {
      if (p.ends_with("kiste-" + id) && ::stat(p.c_str(), &st) == 0) pl.dir_existed = true;
    }
    ::kill(pid, SIGKILL);
  };
  auto exit = run_container(*spec, ctx);
  EXPECT_TRUE(exit) << exit.error().to_string();
  if (exit) {
    EXPECT_EQ(exit->exit_code, 137);
  }
  pl.inside = sys::read_file(out_dir / "inside").value_or("");
  // The host view names the container's cgroup in EVERY hierarchy this process is in (v1, and a
  // hybrid host's cgroup2 too); inside it is the root of the container's own cgroup namespace.
  if (ctx.cgroup_mode != CgroupMode::Unified) {
    std::string self = sys::read_file("/proc/self/cgroup").value_or("");
    int hierarchies = 0;
    for (size_t at = 0; at < self.size();) {
      size_t nl = self.find('\n', at);
      std::string line = self.substr(at, nl - at);
      at = nl == std::string::npos ? self.size() : nl + 1;
      auto c1 = line.find(':'), c2 = line.find(':', c1 + 1);
      if (c1 == std::string::npos || c2 == std::string::npos) continue;
      std::string ctrls = line.substr(c1 + 1, c2 - c1 - 1);
      std::string where = ctx.cgroups.parent.empty() ? "[^\n]*" : "/" + ctx.cgroups.parent;
      EXPECT_THAT(pl.host_view,
                  ::testing::ContainsRegex(fmt::format(":{}:{}/kiste-{}\n", ctrls, where, id)))
          << pl.host_view;
      EXPECT_THAT(pl.inside, HasSubstr(fmt::format(":{}:/\n", ctrls))) << pl.inside;
      ++hierarchies;
    }
    EXPECT_GE(hierarchies, 4);
  }
  if (ctx.cgroup_mode == CgroupMode::Unified) {
    // cgroupfs: below the kiste parent (or --cgroup-parent), a sibling of the caller's cgroup.
    std::string parent = ctx.cgroups.parent.empty() ? "kiste" : ctx.cgroups.parent;
    EXPECT_THAT(pl.host_view, HasSubstr("0::/" + parent + "/kiste-" + id + "\n")) << pl.host_view;
    EXPECT_THAT(pl.inside, HasSubstr("0::/\n")) << pl.inside;
  }
  EXPECT_TRUE(pl.dir_existed);
  return pl;
}

// On cgroup v2 the container's process is cloned straight into its cgroup (CLONE_INTO_CGROUP):
// nothing is migrated. This host is hybrid, so the run goes to the cgroup2 mount at
// /sys/fs/cgroup/unified (no controllers there, so no limits: the placement is what is tested).
// Then the fallback for kernels without CLONE_INTO_CGROUP: the runtime migrates, then releases.
TEST_F(RuntimeTest, CgroupV2ContainerStartsInsideItsOwnCgroup) {
  const fs::path mount = cgroup2_mount();
  if (mount.empty()) GTEST_SKIP() << "no cgroup2 mount on this machine";
  TestCgroupParent parent(mount);
  RunContext ctx;
  ctx.cgroup_mode = CgroupMode::Unified;
  ctx.cgroup_v2_mount = mount;
  ctx.cgroups.parent = parent.name();
  run_and_place(tmp(), rootfs(), ctx);
  ctx.migrate_after_clone = true;
  run_and_place(tmp(), rootfs(), ctx);
}

// On cgroup v1 the child moves itself into each hierarchy through the `tasks` files it
// inherits; the fallback (the runtime writes cgroup.procs, then releases it) lands the same.
TEST_F(RuntimeTest, CgroupV1ContainerMovesItselfIntoEveryHierarchy) {
  auto mode = detect_cgroup_mode();
  ASSERT_TRUE(mode);
  if (*mode == CgroupMode::Unified) GTEST_SKIP() << "pure cgroup v2 host: no v1 hierarchies";
  RunContext ctx;
  ctx.cgroup_mode = *mode;
  run_and_place(tmp(), rootfs(), ctx);
  ctx.migrate_after_clone = true;
  run_and_place(tmp(), rootfs(), ctx);
}

// --cgroup-parent on a v1 host: the container's cgroup goes below that parent in every
// hierarchy (made when missing, as docker does), not below kiste's own cgroup.
TEST_F(RuntimeTest, CgroupParentPlacesTheContainerInEveryV1Hierarchy) {
  auto mode = detect_cgroup_mode();
  ASSERT_TRUE(mode);
  if (*mode == CgroupMode::Unified) GTEST_SKIP() << "pure cgroup v2 host: the VM tests cover it";
  RunContext ctx;
  ctx.cgroup_mode = *mode;
  ctx.cgroups.parent = "ktest-parent-" + sys::random_hex(6);
  run_and_place(tmp(), rootfs(), ctx);
  for (const auto& e : fs::directory_iterator("/sys/fs/cgroup")) {
    fs::path p = e.path() / ctx.cgroups.parent;
    if (fs::exists(p)) {
      EXPECT_EQ(::rmdir(p.c_str()), 0) << p;
    }
  }
}

// With CAP_SYS_ADMIN a container can mount cgroup v1 hierarchies. Each one it sees is rooted at
// its own cgroup, never at the hierarchy root, so no `release_agent` (the CVE-2022-0492 escape)
// is within reach; and kiste warns that nothing else confines SYS_ADMIN here.
TEST_F(RuntimeTest, NoCgroupHierarchyRootIsReachableWithSysAdmin) {
  auto mode = detect_cgroup_mode();
  ASSERT_TRUE(mode);
  if (*mode == CgroupMode::Unified) GTEST_SKIP() << "no cgroup v1 hierarchies on this machine";
  std::string out;
  ASSERT_EQ(kiste_run("--cap-add SYS_ADMIN --security-opt seccomp=unconfined sh -c '"
                      "for c in cpu cpuacct cpuset blkio memory pids freezer devices name=systemd; do "
                      "mkdir -p /m/$c && mount -t cgroup -o $c cgroup /m/$c 2>/dev/null && echo mounted $c; "
                      "ls /m/$c | grep -x release_agent; done; mkdir /m/v2 && mount -t cgroup2 none /m/v2 "
                      "&& echo mounted v2 && ls /m/v2 | grep -c kiste-; true'",
                      &out),
            0)
      << out;
  EXPECT_THAT(out, HasSubstr("mounted cpu\n"));
  EXPECT_THAT(out, HasSubstr("mounted cpuset\n"));
  EXPECT_THAT(out, ::testing::Not(HasSubstr("release_agent"))) << out;
  if (sys::read_file("/sys/kernel/security/lsm").value_or("").find("apparmor") == std::string::npos) {
    EXPECT_THAT(out, HasSubstr("kiste: warning: CAP_SYS_ADMIN is added"));
  }
}

// cgroupfs on cgroup v2: controllers are enabled from the root down to the parent, and never in
// a cgroup that has processes of its own (the no-internal-processes rule): that is one clear
// line. The hybrid host's cgroup2 mount offers one controller (hugetlb) to exercise it for real.
TEST_F(RuntimeTest, CgroupfsV2EnablesControllersDownThePathOnly) {
  const fs::path mount = cgroup2_mount();
  if (mount.empty()) GTEST_SKIP() << "no cgroup2 mount on this machine";
  auto avail = detail_words(sys::read_file(mount / "cgroup.controllers").value_or(""));
  if (avail.empty()) GTEST_SKIP() << "no controller on " << mount;
  CgroupPlan plan{.controllers = {avail.front()}};
  // The host's root passes the controller down only for this test: put it back as it was.
  const bool was_enabled =
      sys::read_file(mount / "cgroup.subtree_control").value_or("").find(avail.front()) != std::string::npos;
  struct Restore {
    fs::path file;
    std::string undo;
    ~Restore() {
      if (!undo.empty()) (void)run_shell("echo " + undo + " > " + file.native());
    }
  } restore{mount / "cgroup.subtree_control", was_enabled ? "" : "-" + avail.front()};
  const std::string parent = "ktest-parent-" + sys::random_hex(6);
  const fs::path busy = mount / parent / "busy";
  ASSERT_EQ(::mkdir((mount / parent).c_str(), 0755), 0);
  ASSERT_EQ(::mkdir(busy.c_str(), 0755), 0);
  pid_t sleeper = ::fork();
  if (sleeper == 0) {
    ::pause();
    ::_exit(0);
  }
  {
    int fd = ::open((busy / "cgroup.procs").c_str(), O_WRONLY);
    ASSERT_GE(fd, 0);
    std::string p = std::to_string(sleeper);
    ASSERT_EQ(::write(fd, p.data(), p.size()), static_cast<ssize_t>(p.size()));
    ::close(fd);
  }
  auto refused = make_cgroup_v2_driver(mount, parent + "/busy");
  ASSERT_TRUE(refused);
  auto r = (*refused)->create("kiste-test-" + sys::random_hex(6), plan);
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error().to_string(), HasSubstr(fmt::format("cgroup `{}` has processes of its own", busy.native())));
  EXPECT_THAT(r.error().to_string(), HasSubstr("--cgroup-parent"));
  EXPECT_TRUE((*refused)->paths().empty());

  auto ok = make_cgroup_v2_driver(mount, parent);
  ASSERT_TRUE(ok);
  auto made = (*ok)->create("kiste-test-" + sys::random_hex(6), plan);
  ASSERT_TRUE(made) << made.error().to_string();
  EXPECT_THAT(sys::read_file(mount / parent / "cgroup.subtree_control").value_or(""), HasSubstr(avail.front()));
  EXPECT_THAT(sys::read_file((*ok)->paths().at(0) / "cgroup.controllers").value_or(""), HasSubstr(avail.front()));
  ASSERT_TRUE((*ok)->destroy());

  ::kill(sleeper, SIGKILL);
  ::waitpid(sleeper, nullptr, 0);
  for (int i = 0; i < 200 && ::rmdir(busy.c_str()) != 0; ++i) ::usleep(5000);
  EXPECT_EQ(::rmdir((mount / parent).c_str()), 0);
}

// A --cgroup-parent that does not exist on v2 is one line, and nothing is made.
TEST_F(RuntimeTest, MissingCgroupParentOnV2IsOneLine) {
  auto d = make_cgroup_driver(CgroupMode::Unified,
                              {.manager = CgroupManager::Cgroupfs, .parent = "ktest-missing-" + sys::random_hex(4)},
                              "/sys/fs/cgroup/unified");
  ASSERT_FALSE(d);
  EXPECT_THAT(d.error().to_string(), HasSubstr("does not exist"));
}

}  // namespace
}  // namespace kiste::testing
