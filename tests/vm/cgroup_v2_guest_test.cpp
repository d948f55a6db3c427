// Runs INSIDE the VM guest (tests/vm/run.sh): a pure cgroup v2 host with systemd as PID 1 (or,
// in the second boot, without systemd), the test itself in a leaf cgroup as a login session or a
// service is. What the hybrid host that builds kiste cannot show: limits, OOM reports, the eBPF
// device filter and CLONE_INTO_CGROUP on v2, through both cgroup managers, and nothing left
// behind (no cgroup directory, no systemd scope) after --rm, a failed start or a SIGKILLed kiste.
#include <linux/magic.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <regex>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <kiste/base/sys.hpp>
#include <kiste/runtime/run_options.hpp>
#include <kiste/runtime/runner.hpp>
#include <kiste/testing/busybox_rootfs.hpp>
#include <kiste/testing/kiste_cli.hpp>
#include <kiste/testing/temp_root.hpp>

namespace kiste::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;

bool pure_v2() {
  struct statfs st {};
  return ::statfs("/sys/fs/cgroup", &st) == 0 && st.f_type == CGROUP2_SUPER_MAGIC;
}
bool systemd_runs() { return ::access("/run/systemd/system", F_OK) == 0; }

// A container's cgroup: kiste-<64 hex>, a scope for the systemd manager. (The harness's own
// unit is kiste-vm-test.service: not one.)
bool container_cgroup_name(const std::string& name) {
  static const std::regex re("kiste-[0-9a-f]{64}(\\.scope)?");
  return std::regex_match(name, re);
}

// Every container cgroup directory below /sys/fs/cgroup.
std::vector<std::string> kiste_cgroups() {
  std::vector<std::string> out;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator("/sys/fs/cgroup", ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (!it->is_directory(ec)) continue;
    if (container_cgroup_name(it->path().filename().native())) out.push_back(it->path().native());
  }
  return out;
}

// Container scopes systemd still knows, in any state.
std::string kiste_units() {
  if (!systemd_runs()) return {};
  std::string out;
  run_shell("systemctl list-units --all --plain --no-legend 'kiste-*.scope' 2>&1", &out);
  return out;
}

class GuestTest : public ::testing::TestWithParam<std::string> {
 protected:
  static void SetUpTestSuite() {
    // The library runs here (place()): its systemd driver needs kiste-init, which is installed
    // beside kiste, not beside this test.
    ::setenv("KISTE_INIT", (kiste_binary().parent_path() / "kiste-init").c_str(), 1);
    rootfs_dir_ = new TempRoot("kiste-vm-rootfs-");
    ASSERT_TRUE(make_busybox_rootfs(rootfs_dir_->path() / "rootfs"));
  }
  static void TearDownTestSuite() {
    delete rootfs_dir_;
    rootfs_dir_ = nullptr;
  }
  void SetUp() override {
    if (!pure_v2()) GTEST_SKIP() << "not a pure cgroup v2 host: these tests run in tests/vm/run.sh";
    if (manager() == "systemd" && !systemd_runs()) GTEST_SKIP() << "systemd is not PID 1 in this guest";
    tmp_.emplace("kiste-vm-");
  }
  void TearDown() override {
    if (!tmp_) return;
    EXPECT_THAT(kiste_cgroups(), ::testing::IsEmpty());
    EXPECT_EQ(kiste_units(), "");
    EXPECT_THAT(mounts_below(tmp_->path()), ::testing::IsEmpty());
  }
  [[nodiscard]] std::string manager() const { return GetParam(); }
  [[nodiscard]] fs::path rootfs() const { return rootfs_dir_->path() / "rootfs"; }
  [[nodiscard]] std::string kiste() const {
    return kiste_binary().native() + " --root " + (tmp_->path() / "root").native();
  }
  // `kiste run --rm --rootfs … --cgroup-manager M ARGS`.
  int run(const std::string& args, std::string* out) {
    return run_shell(kiste() + " run --rm --rootfs " + rootfs().native() + " --cgroup-manager " +
                         manager() + " " + args + " 2>&1",
                     out);
  }
  // The library's runner, for what only the parent sees: where the process was put, and that it
  // was cloned there.
  struct Placed {
    std::string cgroup;
    runtime::ContainerExit exit;
  };
  Placed place(const std::string& parent) {
    Placed p;
    runtime::RunOptions o;
    o.command = {"true"};
    const std::string id = runtime::Runner::new_id();
    runtime::Runner runner({.root = tmp_->path() / "root",
                            .cgroups = {.manager = runtime::parse_cgroup_manager(manager()).value(),
                                        .parent = parent}});
    auto spec = runtime::make_spec(o, {.id = id, .lower_dirs = {rootfs()},
                                       .container_dir = runner.container_dir(id)});
    EXPECT_TRUE(spec) << spec.error().to_string();
    if (!spec) return p;
    auto exit = runner.run(*spec, {.remove = true, .started = [&p](pid_t pid) {
                                     p.cgroup = sys::read_file(fmt::format("/proc/{}/cgroup", pid))
                                                    .value_or("");
                                   }});
    EXPECT_TRUE(exit) << exit.error().to_string();
    if (exit) p.exit = *exit;
    return p;
  }

  static TempRoot* rootfs_dir_;
  std::optional<TempRoot> tmp_;
};
TempRoot* GuestTest::rootfs_dir_ = nullptr;

TEST_P(GuestTest, MemoryLimitOomKillsWith137AndSaysSo) {
  std::string out;
  EXPECT_EQ(run("--memory 6m kiste_test_init memhog 20", &out), 137) << out;
  EXPECT_THAT(out, HasSubstr("kiste: error: killed: out of memory (limit 6 MiB)"));
  out.clear();
  EXPECT_EQ(run("--memory 64m kiste_test_init memhog 20", &out), 0) << out;
}

TEST_P(GuestTest, PidsLimitStopsAForkBombAndTheGuestStaysHealthy) {
  std::string out;
  ASSERT_EQ(run("--pids-limit 20 kiste_test_init forkbomb 200", &out), 0) << out;
  int forked = -1, failed = -1;
  ASSERT_EQ(std::sscanf(out.c_str(), "forked=%d failed=%d", &forked, &failed), 2) << out;
  EXPECT_LE(forked, 19);
  EXPECT_GE(failed, 181);
  out.clear();
  EXPECT_EQ(run("echo fine", &out), 0);
  EXPECT_EQ(out, "fine\n");
}

TEST_P(GuestTest, LimitsAreTheV2FilesInsideTheContainer) {
  std::string out;
  ASSERT_EQ(run("--cpus 0.5 --cpu-shares 512 --memory 32m --memory-swap 64m --pids-limit 50 sh -c '"
                "cd /sys/fs/cgroup && cat cpu.max cpu.weight memory.max memory.swap.max pids.max'",
                &out),
            0)
      << out;
  // The systemd scope holds one more task, its holder (kiste-init --hold): the container still
  // gets its 50.
  EXPECT_EQ(out, fmt::format("50000 100000\n20\n33554432\n33554432\n{}\n",
                             manager() == "systemd" ? 51 : 50));
}

// A busy loop under --cpus 0.5 gets at most about half a CPU: over 2 s at most 60% of one CPU
// of the time that really passed (measured inside, from /proc/uptime: under TCG `sleep 2` can
// take longer than 2 s).
TEST_P(GuestTest, CpuQuotaHoldsABusyLoop) {
  std::string out;
  ASSERT_EQ(run("--cpus 0.5 sh -c 'read a x < /proc/uptime; (while :; do :; done) & p=$!; sleep 2; "
                "kill $p; read b x < /proc/uptime; echo $a $b; grep usage_usec /sys/fs/cgroup/cpu.stat'",
                &out),
            0)
      << out;
  double from = 0, to = 0;
  long usage = -1;
  ASSERT_EQ(std::sscanf(out.c_str(), "%lf %lf\nusage_usec %ld", &from, &to, &usage), 3) << out;
  const double elapsed_usec = (to - from) * 1e6;
  EXPECT_GE(elapsed_usec, 1.9e6) << out;
  EXPECT_LE(static_cast<double>(usage), 0.6 * elapsed_usec) << out;
  EXPECT_GT(usage, 0);
}

TEST_P(GuestTest, DeviceFilterRefusesBlockDevicesAllowsNull) {
  std::string out;
  ASSERT_EQ(run("sh -c 'mknod /tmp/b b 7 0 && echo made; head -c 1 /tmp/b; "
                "echo x > /dev/null && echo null-ok'",
                &out),
            0)
      << out;
  EXPECT_THAT(out, HasSubstr("made\n"));
  EXPECT_THAT(out, HasSubstr("Operation not permitted"));
  EXPECT_THAT(out, HasSubstr("null-ok\n"));
}

// The container is cloned straight into its cgroup (it never migrates), which is the scope in
// kiste.slice (systemd) or kiste/ (cgroupfs), never below the test's own (leaf) cgroup.
TEST_P(GuestTest, ClonedIntoItsOwnCgroupNextToTheCaller) {
  Placed p = place("");
  EXPECT_TRUE(p.exit.cloned_into_cgroup);
  if (manager() == "systemd") {
    EXPECT_THAT(p.cgroup, ::testing::MatchesRegex("0::/kiste.slice/kiste-[0-9a-f]{64}.scope\n"));
  } else {
    EXPECT_THAT(p.cgroup, ::testing::MatchesRegex("0::/kiste/kiste-[0-9a-f]{64}\n"));
  }
}

TEST_P(GuestTest, CgroupParentIsHonoured) {
  if (manager() == "systemd") {
    Placed p = place("ktest-ci.slice");
    EXPECT_THAT(p.cgroup,
                ::testing::MatchesRegex("0::/ktest.slice/ktest-ci.slice/kiste-[0-9a-f]{64}.scope\n"));
    return;
  }
  ASSERT_EQ(::mkdir("/sys/fs/cgroup/ktest-ci", 0755), 0);
  Placed p = place("/ktest-ci");
  EXPECT_THAT(p.cgroup, ::testing::MatchesRegex("0::/ktest-ci/kiste-[0-9a-f]{64}\n"));
  EXPECT_EQ(::rmdir("/sys/fs/cgroup/ktest-ci"), 0);
}

TEST_P(GuestTest, BuildRunStepsGetTheSameLimits) {
  const fs::path ctx = tmp_->path() / "ctx";
  ASSERT_TRUE(sys::mkdir_all(ctx));
  std::string out;
  // One tar of the suite's rootfs, which already holds kiste_test_init.
  const fs::path tar = tmp_->path() / "bb.tar";
  ASSERT_EQ(run_shell("tar -C " + rootfs().native() + " -cf " + tar.native() + " .", &out), 0) << out;
  ASSERT_EQ(run_shell(kiste() + " import " + tar.native() + " bb 2>&1", &out), 0) << out;
  ASSERT_TRUE(sys::write_file_atomic(ctx / "Containerfile",
                                     "FROM bb\nRUN cat /sys/fs/cgroup/memory.max > /limit\n"));
  const std::string build = kiste() + " build --cgroup-manager " + manager();
  out.clear();
  ASSERT_EQ(run_shell(build + " --memory 8m -t lim " + ctx.native() + " 2>&1", &out), 0) << out;
  out.clear();
  ASSERT_EQ(run_shell(kiste() + " run --rm --cgroup-manager " + manager() + " lim cat /limit 2>&1", &out), 0)
      << out;
  EXPECT_EQ(out, "8388608\n");
  ASSERT_TRUE(sys::write_file_atomic(ctx / "Containerfile",
                                     "FROM bb\nRUN kiste_test_init memhog 20\n"));
  out.clear();
  EXPECT_NE(run_shell(build + " --memory 6m --no-cache -t hog " + ctx.native() + " 2>&1", &out), 0)
      << out;
}

TEST_P(GuestTest, AFailedStartLeavesNothing) {
  std::string out;
  EXPECT_EQ(run("/nope", &out), 127) << out;
  out.clear();
  EXPECT_EQ(run("--memory 6m --workdir /etc/passwd true", &out), 125) << out;
}

// kiste is SIGKILLed while its container runs: the container dies with it (or the next kiste
// kills it), and `kiste prune` removes its cgroup and scope.
TEST_P(GuestTest, SigkilledKisteIsCleanedUpByPrune) {
  const std::string cmd = kiste() + " run --cgroup-manager " + manager() + " --rootfs " +
                          rootfs().native() + " sleep 600";
  pid_t pid = ::fork();
  if (pid == 0) {
    ::execl("/bin/sh", "sh", "-c", ("exec " + cmd + " >/dev/null 2>&1").c_str(), nullptr);
    ::_exit(127);
  }
  bool seen = false;
  for (int i = 0; i < 600 && !seen; ++i) {
    seen = !kiste_cgroups().empty();
    if (!seen) ::usleep(50'000);
  }
  ASSERT_TRUE(seen) << "the container's cgroup never appeared";
  ::usleep(200'000);
  ASSERT_EQ(::kill(pid, SIGKILL), 0);
  ASSERT_EQ(::waitpid(pid, nullptr, 0), pid);
  std::string out;
  ASSERT_EQ(run_shell(kiste() + " prune 2>&1", &out), 0) << out;
  EXPECT_THAT(out, HasSubstr("Removed the leftovers of 1 containers"));
  out.clear();
  run_shell("pgrep -x sleep", &out);
  EXPECT_EQ(out, "");
}

TEST_P(GuestTest, BadPlacementIsOneLineAndLeavesNothing) {
  std::string out;
  if (manager() == "systemd") {
    EXPECT_EQ(run("--cgroup-parent notaslice true", &out), 125);
    EXPECT_THAT(out, HasSubstr("not a systemd slice"));
    return;
  }
  EXPECT_EQ(run("--cgroup-parent /ktest-missing true", &out), 125);
  EXPECT_THAT(out, HasSubstr("does not exist"));
  // A parent with processes of its own cannot pass controllers on.
  ASSERT_EQ(::mkdir("/sys/fs/cgroup/ktest-busy", 0755), 0);
  pid_t sleeper = ::fork();
  if (sleeper == 0) {
    ::pause();
    ::_exit(0);
  }
  ASSERT_EQ(run_shell(fmt::format("echo {} > /sys/fs/cgroup/ktest-busy/cgroup.procs", sleeper)), 0);
  out.clear();
  EXPECT_EQ(run("--cgroup-parent /ktest-busy --memory 6m true", &out), 125);
  EXPECT_THAT(out, HasSubstr("has processes of its own"));
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << out;
  ::kill(sleeper, SIGKILL);
  ::waitpid(sleeper, nullptr, 0);
  for (int i = 0; i < 200 && ::rmdir("/sys/fs/cgroup/ktest-busy") != 0; ++i) ::usleep(5000);
}

// In the guest booted without systemd, asking for the systemd manager is one clear line.
TEST(GuestNoSystemd, SystemdManagerWithoutSystemdIsOneLine) {
  if (!pure_v2() || systemd_runs()) GTEST_SKIP() << "runs in the guest without systemd";
  TempRoot tmp("kiste-vm-");
  ASSERT_TRUE(make_busybox_rootfs(tmp.path() / "rootfs"));
  std::string out;
  EXPECT_EQ(run_shell(kiste_binary().native() + " --root " + (tmp.path() / "root").native() +
                          " run --rm --cgroup-manager systemd --rootfs " +
                          (tmp.path() / "rootfs").native() + " true 2>&1",
                      &out),
            125);
  EXPECT_THAT(out, HasSubstr("cgroup manager systemd"));
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << out;
  EXPECT_THAT(kiste_cgroups(), ::testing::IsEmpty());
}

INSTANTIATE_TEST_SUITE_P(Managers, GuestTest, ::testing::Values("systemd", "cgroupfs"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace kiste::testing
