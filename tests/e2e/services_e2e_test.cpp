// Issue 16, first slices: detached containers without a daemon, through the kiste binary on real
// busybox containers. run -d / ps / logs / stop / kill / wait / rm / container inspect / prune,
// the restart policy, a SIGKILLed monitor, and bad input; each test checks that `rm` or prune
// leaves no mount, cgroup, process or container dir.
#include <linux/magic.h>
#include <signal.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <kiste/base/sys.hpp>
#include <kiste/testing/kiste_cli.hpp>
#include <kiste/testing/registry_process.hpp>
#include <kiste/testing/require_root.hpp>
#include <kiste/testing/temp_root.hpp>

namespace kiste::testing {
namespace {

namespace fs = std::filesystem;

// The first integer after `"key": ` in a JSON text (-1 when absent).
long json_int(const std::string& text, const std::string& key) {
  std::smatch m;
  if (!std::regex_search(text, m, std::regex("\"" + key + "\": *(-?[0-9]+)"))) return -1;
  return std::stol(m[1]);
}

bool process_gone(pid_t pid) {
  if (::kill(pid, 0) != 0) return errno == ESRCH;
  // A zombie whose parent has not reaped it yet is gone too.
  auto stat = sys::read_file("/proc/" + std::to_string(pid) + "/stat");
  return stat && stat->find(") Z ") != std::string::npos;
}

// Cgroup dirs (up to three levels below /sys/fs/cgroup) whose name mentions `id`.
std::vector<std::string> cgroups_named(const std::string& id) {
  std::vector<std::string> out;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator("/sys/fs/cgroup", ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    // Every depth: under a v1 hierarchy the container's cgroup sits below the caller's own
    // (memory:/process_api/<session>/kiste-ID here), as `find /sys/fs/cgroup` sees it.
    if (it->is_directory(ec) && it->path().filename().native().find(id.substr(0, 12)) != std::string::npos) {
      out.push_back(it->path());
    }
  }
  return out;
}

// kiste's default cgroup manager on this machine is systemd's: a pure cgroup v2 host with
// systemd as PID 1.
bool systemd_owns_cgroups() {
  struct statfs st {};
  return ::statfs("/sys/fs/cgroup", &st) == 0 && st.f_type == CGROUP2_SUPER_MAGIC &&
         ::access("/run/systemd/system", F_OK) == 0;
}

class Services : public ::testing::Test {
 protected:
  void SetUp() override {
    KISTE_REQUIRE_ROOT();
    auto r = kiste_.run("import -c 'CMD [\"/bin/sh\"]' " + busybox_tar().native() + " busybox 2>/dev/null");
    ASSERT_EQ(r.status, 0) << r.output;
  }
  void TearDown() override {
    // Whatever a failed test left running goes; then nothing may be left.
    (void)kiste_.run("ps -aq | xargs -r " + kiste_binary().native() + " --root '" +
                     kiste_.root().native() + "' rm -f >/dev/null 2>&1");
    EXPECT_TRUE(mounts_below(tmp_.path()).empty());
  }
  // Polls `args` until its output contains `want` (at most ~10 s); the last output.
  std::string until(const std::string& args, const std::string& want) {
    std::string out;
    for (int i = 0; i < 100; ++i) {
      out = kiste_.run(args).output;
      if (out.find(want) != std::string::npos) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return out;
  }
  std::string run_detached(const std::string& args) {
    auto r = kiste_.run("run -d " + args);
    EXPECT_EQ(r.status, 0) << r.output;
    std::string id = trim(r.output);
    EXPECT_TRUE(std::regex_match(id, std::regex("[0-9a-f]{64}"))) << r.output;
    return id;
  }
  void expect_nothing_left(const std::string& id, pid_t pid) {
    EXPECT_FALSE(fs::exists(kiste_.root() / "containers" / id));
    EXPECT_TRUE(mounts_below(tmp_.path()).empty());
    EXPECT_TRUE(cgroups_named(id).empty()) << cgroups_named(id).front();
    if (pid > 0) {
      EXPECT_TRUE(process_gone(pid)) << pid;
    }
    EXPECT_EQ(kiste_.run("ps -aq").output, "");
  }
  TempRoot tmp_{"kiste-svc-"};
  KisteCli kiste_{tmp_ / "root"};
};

TEST_F(Services, RunDetachedThenPsLogsInspectStopWaitRm) {
  const std::string id = run_detached("--name web busybox sh -c 'echo started; echo oops >&2; sleep 600'");
  auto ps = kiste_.run("ps --format json");
  EXPECT_EQ(ps.status, 0);
  EXPECT_NE(ps.output.find("\"Names\":\"web\""), std::string::npos) << ps.output;
  EXPECT_NE(ps.output.find("\"State\":\"running\""), std::string::npos) << ps.output;
  EXPECT_NE(ps.output.find("\"ID\":\"" + id.substr(0, 12) + "\""), std::string::npos) << ps.output;
  EXPECT_EQ(until("logs web", "oops"), "started\noops\n");
  EXPECT_EQ(kiste_.run("logs web 2>/dev/null | cat").output, "started\n");  // streams stay apart
  EXPECT_EQ(kiste_.run("logs --tail 1 web").output, "oops\n");
  // Any unique prefix of the id names it too.
  auto inspect = kiste_.run("container inspect " + id.substr(0, 5));
  ASSERT_EQ(inspect.status, 0) << inspect.output;
  EXPECT_NE(inspect.output.find("\"Running\": true"), std::string::npos) << inspect.output;
  EXPECT_NE(inspect.output.find("\"Name\": \"/web\""), std::string::npos) << inspect.output;
  const pid_t pid = static_cast<pid_t>(json_int(inspect.output, "Pid"));
  ASSERT_GT(pid, 0) << inspect.output;
  EXPECT_EQ(::kill(pid, 0), 0);
  // sh as PID 1 has no TERM handler: SIGTERM does nothing, SIGKILL follows after -t.
  auto stop = kiste_.run("stop -t 1 web");
  EXPECT_EQ(stop.status, 0) << stop.output;
  EXPECT_EQ(stop.output, "web\n");
  EXPECT_TRUE(process_gone(pid));
  EXPECT_EQ(kiste_.run("wait web").output, "137\n");
  EXPECT_EQ(kiste_.run("ps -q").output, "");
  auto all = kiste_.run("ps -a");
  EXPECT_NE(all.output.find("Exited (137)"), std::string::npos) << all.output;
  inspect = kiste_.run("container inspect web");
  EXPECT_EQ(json_int(inspect.output, "ExitCode"), 137) << inspect.output;
  EXPECT_NE(inspect.output.find("\"Status\": \"exited\""), std::string::npos) << inspect.output;
  auto rm = kiste_.run("rm web");
  EXPECT_EQ(rm.status, 0) << rm.output;
  expect_nothing_left(id, pid);
  // The name is free again.
  const std::string again = run_detached("--name web busybox sleep 600");
  EXPECT_EQ(kiste_.run("rm -f web").status, 0);
  expect_nothing_left(again, 0);
}

TEST_F(Services, StopSendsTheStopSignalFirst) {
  const std::string id = run_detached(
      "--name trap busybox sh -c 'trap \"echo got-term; exit 3\" TERM; echo ready; while true; do sleep 0.1; done'");
  ASSERT_NE(until("logs trap", "ready").find("ready"), std::string::npos);
  auto stop = kiste_.run("stop -t 30 trap");
  EXPECT_EQ(stop.status, 0) << stop.output;
  EXPECT_EQ(kiste_.run("wait trap").output, "3\n");
  EXPECT_EQ(kiste_.run("logs trap").output, "ready\ngot-term\n");
  EXPECT_EQ(kiste_.run("rm trap").status, 0);
  expect_nothing_left(id, 0);
}

TEST_F(Services, KillSignalsAndThePolicyNoLongerApplies) {
  const std::string id = run_detached("--name kk --restart always busybox sleep 600");
  auto kill = kiste_.run("kill -s TERM kk");  // sleep as PID 1 ignores TERM
  EXPECT_EQ(kill.status, 0) << kill.output;
  kill = kiste_.run("kill kk");  // KILL by default
  EXPECT_EQ(kill.status, 0) << kill.output;
  EXPECT_EQ(kiste_.run("wait kk").output, "137\n");
  auto inspect = kiste_.run("container inspect kk");
  EXPECT_EQ(json_int(inspect.output, "RestartCount"), 0) << inspect.output;
  kill = kiste_.run("kill kk");
  EXPECT_EQ(kill.status, 125);
  EXPECT_EQ(kill.output, "kiste: error: kill container kk: it is not running\n");
  EXPECT_EQ(kiste_.run("container prune").status, 0);
  expect_nothing_left(id, 0);
}

TEST_F(Services, OnFailureRestartsAfterAHostKillThenGivesUp) {
  const std::string id = run_detached("--name rr --restart on-failure:1 busybox sh -c 'echo up; sleep 600'");
  auto inspect = kiste_.run("container inspect rr");
  const pid_t first = static_cast<pid_t>(json_int(inspect.output, "Pid"));
  ASSERT_GT(first, 0) << inspect.output;
  ASSERT_EQ(::kill(first, SIGKILL), 0);
  (void)until("container inspect rr", "\"RestartCount\": 1");
  const std::string restarted = until("container inspect rr", "\"Running\": true");
  EXPECT_EQ(json_int(restarted, "RestartCount"), 1) << restarted;
  const pid_t second = static_cast<pid_t>(json_int(restarted, "Pid"));
  ASSERT_GT(second, 0) << restarted;
  EXPECT_NE(second, first);
  EXPECT_EQ(until("logs rr", "up\nup\n"), "up\nup\n");
  ASSERT_EQ(::kill(second, SIGKILL), 0);
  EXPECT_EQ(kiste_.run("wait rr").output, "137\n");  // on-failure:1 is used up
  inspect = kiste_.run("container inspect rr");
  EXPECT_EQ(json_int(inspect.output, "RestartCount"), 1) << inspect.output;
  EXPECT_NE(inspect.output.find("\"Status\": \"exited\""), std::string::npos) << inspect.output;
  EXPECT_EQ(kiste_.run("rm rr").status, 0);
  expect_nothing_left(id, second);
}

TEST_F(Services, AKilledMonitorTakesItsContainerAlongAndPruneRemovesTheRest) {
  const std::string id = run_detached("--name mm busybox sleep 600");
  auto state = sys::read_file(kiste_.root() / "containers" / id / "state.json");
  ASSERT_TRUE(state);
  const pid_t monitor = static_cast<pid_t>(json_int(*state, "monitor_pid"));
  const pid_t pid = static_cast<pid_t>(json_int(*state, "pid"));
  ASSERT_GT(monitor, 0) << *state;
  ASSERT_GT(pid, 0) << *state;
  ASSERT_EQ(::kill(monitor, SIGKILL), 0);
  for (int i = 0; i < 100 && !process_gone(pid); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_TRUE(process_gone(pid));
  EXPECT_NE(until("ps -a", "Exited (unknown)").find("Exited (unknown)"), std::string::npos);
  EXPECT_EQ(kiste_.run("ps -q").output, "");
  auto prune = kiste_.run("container prune");
  EXPECT_EQ(prune.status, 0) << prune.output;
  EXPECT_NE(prune.output.find(id), std::string::npos) << prune.output;
  expect_nothing_left(id, pid);
  EXPECT_FALSE(fs::exists(kiste_.root() / "container-names" / "mm"));
}

// The killed monitor's container cgroups (in every v1 hierarchy and the hybrid cgroup2 one) are
// swept by `start`, and the new monitor's go with `rm -f`: nothing named kiste-ID is left.
TEST_F(Services, StartAfterAKilledMonitorThenRmLeavesNoCgroup) {
  const std::string id = run_detached("--name km busybox sleep 600");
  auto state = sys::read_file(kiste_.root() / "containers" / id / "state.json");
  ASSERT_TRUE(state);
  const pid_t monitor = static_cast<pid_t>(json_int(*state, "monitor_pid"));
  const pid_t pid = static_cast<pid_t>(json_int(*state, "pid"));
  ASSERT_GT(monitor, 0) << *state;
  ASSERT_EQ(::kill(monitor, SIGKILL), 0);
  for (int i = 0; i < 100 && !process_gone(pid); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  // What the killed monitor left, for start to sweep: kiste's own cgroup dirs, except where
  // systemd owns them (its scope goes with its last process: the pure v2 guest of tests/vm).
  if (!systemd_owns_cgroups()) {
    EXPECT_FALSE(cgroups_named(id).empty());
  }
  auto start = kiste_.run("start km");
  EXPECT_EQ(start.status, 0) << start.output;
  EXPECT_NE(kiste_.run("ps -q --no-trunc").output.find(id), std::string::npos);
  auto rm = kiste_.run("rm -f km");
  EXPECT_EQ(rm.status, 0) << rm.output;
  std::string found;
  EXPECT_EQ(run_shell("find /sys/fs/cgroup -name 'kiste-" + id + "*'", &found), 0);
  EXPECT_EQ(found, "");
  expect_nothing_left(id, pid);
}

TEST_F(Services, LogsFollowsUntilTheEndAndRmGoesWithTheMonitor) {
  const std::string id = run_detached(
      "--rm --name ff busybox sh -c 'for i in 1 2 3; do echo line$i; sleep 0.2; done; echo bye >&2'");
  // -f returns when the container has ended, with every line once.
  auto logs = kiste_.run("logs -f ff");
  EXPECT_EQ(logs.status, 0) << logs.output;
  EXPECT_EQ(logs.output, "line1\nline2\nline3\nbye\n");
  // --rm: the monitor removed it.
  for (int i = 0; i < 100 && fs::exists(kiste_.root() / "containers" / id); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  expect_nothing_left(id, 0);
  EXPECT_FALSE(fs::exists(kiste_.root() / "container-names" / "ff"));
}

TEST_F(Services, TwentyStartedAndStoppedInParallelLeaveAConsistentPs) {
  const std::string k = kiste_binary().native() + " --root '" + kiste_.root().native() + "'";
  std::string out;
  ASSERT_EQ(run_shell("for i in $(seq 20); do " + k + " run -d --name p$i busybox sleep 600 & done; wait", &out), 0)
      << out;
  EXPECT_EQ(count_lines(out), 20u) << out;
  auto ps = kiste_.run("ps -q");
  EXPECT_EQ(count_lines(ps.output), 20u) << ps.output;
  ASSERT_EQ(run_shell("for i in $(seq 20); do " + k + " stop -t 0 p$i >/dev/null & done; wait", &out), 0) << out;
  EXPECT_EQ(kiste_.run("ps -q").output, "");
  auto all = kiste_.run("ps -a");
  EXPECT_EQ(count_lines(all.output), 21u) << all.output;
  EXPECT_EQ(static_cast<size_t>(std::count(all.output.begin(), all.output.end(), '(')), 20u) << all.output;
  EXPECT_EQ(all.output.find("unknown"), std::string::npos) << all.output;
  const std::string ids = kiste_.run("ps -aq --no-trunc").output;
  ASSERT_EQ(run_shell("for i in $(seq 20); do " + k + " rm p$i >/dev/null & done; wait", &out), 0) << out;
  EXPECT_EQ(kiste_.run("ps -aq").output, "");
  EXPECT_TRUE(fs::is_empty(kiste_.root() / "containers"));
  for (size_t at = 0; at + 64 <= ids.size(); at += 65) {
    EXPECT_TRUE(cgroups_named(ids.substr(at, 64)).empty()) << ids.substr(at, 64);
  }
}

TEST_F(Services, ExecJoinsEverythingTheContainerHasAndPassesTheStatusThrough) {
  const std::string id = run_detached("--name ex busybox sh -c 'echo started; sleep 600'");
  auto r = kiste_.run("exec ex ps");
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("sleep 600"), std::string::npos) << r.output;
  EXPECT_EQ(kiste_.run("exec ex sh -c 'exit 7'").status, 7);
  // Namespaces: the same as the container's init, seen from the host.
  const pid_t pid = static_cast<pid_t>(json_int(kiste_.run("container inspect ex").output, "Pid"));
  ASSERT_GT(pid, 0);
  for (const char* ns : {"mnt", "pid", "net", "uts", "ipc", "cgroup"}) {
    const std::string want = fs::read_symlink(fmt::format("/proc/{}/ns/{}", pid, ns)).native();
    r = kiste_.run(fmt::format("exec ex readlink /proc/self/ns/{}", ns));
    EXPECT_EQ(trim(r.output), want) << ns;
  }
  // Capabilities, no_new_privs and the seccomp filter: as the container's init has them.
  r = kiste_.run("exec ex sh -c 'grep -E \"^(Cap|NoNewPrivs|Seccomp)\" /proc/self/status; "
                 "echo ---; grep -E \"^(Cap|NoNewPrivs|Seccomp)\" /proc/1/status'");
  ASSERT_EQ(r.status, 0) << r.output;
  const size_t sep = r.output.find("---\n");
  ASSERT_NE(sep, std::string::npos) << r.output;
  EXPECT_EQ(r.output.substr(0, sep), r.output.substr(sep + 4)) << r.output;
  EXPECT_NE(r.output.find("Seccomp_filters:\t1"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("CapBnd:\t00000000a80425fb"), std::string::npos) << r.output;
  // Its cgroup: the container's root cgroup, seen through its cgroup namespace.
  // (Every hierarchy's line ends in `:/`: the v1 controllers and the unified one on a hybrid host,
  // the one `0::/` line on a pure v2 host, where tests/vm runs this test too.)
  r = kiste_.run("exec ex cat /proc/self/cgroup");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("0::/\n"), std::string::npos) << r.output;
  std::istringstream cgroup_lines(r.output);
  for (std::string line; std::getline(cgroup_lines, line);) EXPECT_TRUE(line.ends_with(":/")) << line;
  // The container's environment, with -e on top; -w.
  r = kiste_.run("exec -e FOO=bar -w /tmp ex sh -c 'echo $FOO $PWD $PATH'");
  EXPECT_EQ(r.output, "bar /tmp /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n");
  // -u: a user of the container's own /etc/passwd (its capability sets stay the init's).
  r = kiste_.run("exec -u nobody ex id");
  EXPECT_EQ(r.output, "uid=65534(nobody) gid=65534(nogroup) groups=65534(nogroup)\n");
  r = kiste_.run("exec -u 1000:1 ex sh -c 'id -u; id -g'");
  EXPECT_EQ(r.output, "1000\n1\n");
  r = kiste_.run("exec -u nosuch ex true");
  EXPECT_EQ(r.status, 125);
  EXPECT_EQ(r.output, "kiste: error: exec in container ex: user `nosuch`: no such user in the image's /etc/passwd\n");
  r = kiste_.run("exec ex no-such-program");
  EXPECT_EQ(r.status, 127);
  EXPECT_EQ(r.output, "kiste: error: exec `no-such-program`: executable file not found in $PATH\n");
  EXPECT_EQ(kiste_.run("stop -t 0 ex").status, 0);
  r = kiste_.run("exec ex true");
  EXPECT_EQ(r.status, 125);
  EXPECT_EQ(r.output, "kiste: error: exec in container ex: it is not running\n");
  EXPECT_EQ(kiste_.run("rm ex").status, 0);
  expect_nothing_left(id, pid);
}

// exec -t: the command gets a pty of the container's devpts; -i forwards stdin to it; the exit
// status passes through (script(1) gives kiste a terminal of its own).
TEST_F(Services, ExecWithATerminalAndStdin) {
  const std::string id = run_detached("--name et busybox sleep 600");
  const std::string k = kiste_command(kiste_.root(), "");
  std::string out;
  EXPECT_EQ(run_shell("timeout 60 script -qec \"" + k + " exec -t et sh -c 'tty; exit 4'\" /dev/null </dev/null",
                      &out),
            4)
      << out;
  EXPECT_NE(out.find("/dev/pts/"), std::string::npos) << out;
  EXPECT_EQ(run_shell("printf 'echo from-stdin $((6*7))\\nexit 3\\n' | timeout 60 script -qec \"" + k +
                          " exec -it et sh\" /dev/null",
                      &out),
            3)
      << out;
  EXPECT_NE(out.find("from-stdin 42"), std::string::npos) << out;
  const pid_t pid = static_cast<pid_t>(json_int(kiste_.run("inspect et").output, "Pid"));
  ASSERT_EQ(kiste_.run("rm -f et").status, 0);
  expect_nothing_left(id, pid);
}

TEST_F(Services, BadInputIsOneLineAndChangesNothing) {
  for (const char* cmd : {"logs nope", "stop nope", "kill nope", "wait nope", "rm nope",
                          "container inspect nope", "exec nope true"}) {
    auto r = kiste_.run(cmd);
    EXPECT_EQ(r.status, 125) << cmd;
    EXPECT_EQ(r.output, "kiste: error: container `nope`: no such container\n") << cmd;
  }
  auto r = kiste_.run("run -d --restart sometimes busybox true");
  EXPECT_EQ(r.status, 125);
  EXPECT_EQ(r.output,
            "kiste: error: restart policy `sometimes`: want no, on-failure[:N], always or "
            "unless-stopped\n");
  r = kiste_.run("run -d --name 'bad name' busybox true");
  EXPECT_EQ(r.status, 125);
  EXPECT_EQ(count_lines(r.output), 1u) << r.output;
  r = kiste_.run("run -d --pull never nosuchimage true");
  EXPECT_EQ(r.status, 125);
  EXPECT_EQ(count_lines(r.output), 1u) << r.output;
  EXPECT_EQ(kiste_.run("ps -aq").output, "");  // no record for any of them

  // The command cannot be exec'd: 127 as a foreground run, one line.
  r = kiste_.run("run -d --name missing busybox /no/such/program");
  EXPECT_EQ(r.status, 127) << r.output;
  EXPECT_EQ(count_lines(r.output), 1u) << r.output;
  EXPECT_NE(r.output.find("/no/such/program"), std::string::npos) << r.output;
  EXPECT_EQ(kiste_.run("rm missing").status, 0);

  const std::string id = run_detached("--name busy busybox sleep 600");
  r = kiste_.run("run -d --name busy busybox true");
  EXPECT_EQ(r.status, 125);
  EXPECT_EQ(r.output.rfind("kiste: error: container name `busy`: already in use by container " +
                               id.substr(0, 12),
                           0),
            0u)
      << r.output;
  r = kiste_.run("rm busy");
  EXPECT_EQ(r.status, 125);
  EXPECT_EQ(r.output, "kiste: error: remove container busy: it is running (stop it first, or use rm -f)\n");
  EXPECT_NE(kiste_.run("ps --format json").output.find("\"State\":\"running\""), std::string::npos);
  EXPECT_EQ(kiste_.run("rm -f busy").status, 0);
  expect_nothing_left(id, 0);
}

// Issue 16's must-show: the healthcheck runs by exec into the container and turns it healthy.
TEST_F(Services, HealthcheckMakesTheContainerHealthy) {
  const std::string id = run_detached(
      "--name web --restart on-failure:3 --health-cmd 'test -f /tmp/ok' --health-interval 1s busybox "
      "sh -c 'echo started; touch /tmp/ok; sleep 600'");
  auto inspect = until("container inspect web", "\"Status\": \"healthy\"");
  EXPECT_NE(inspect.find("\"Status\": \"healthy\""), std::string::npos) << inspect;
  EXPECT_NE(inspect.find("\"FailingStreak\": 0"), std::string::npos) << inspect;
  EXPECT_NE(inspect.find("\"Interval\": 1000000000"), std::string::npos) << inspect;
  EXPECT_NE(inspect.find("\"CMD-SHELL\""), std::string::npos) << inspect;
  EXPECT_NE(kiste_.run("ps").output.find("(healthy)"), std::string::npos);
  EXPECT_EQ(kiste_.run("logs web").output, "started\n");  // probes do not write to the log
  const pid_t pid = static_cast<pid_t>(json_int(inspect, "Pid"));
  EXPECT_EQ(kiste_.run("rm -f web").status, 0);
  expect_nothing_left(id, pid);
}

// A probe that hangs is killed at its timeout (with what it started), and enough of them in a
// row make the container unhealthy.
TEST_F(Services, AHangingHealthcheckIsKilledAtItsTimeout) {
  const std::string id = run_detached(
      "--name hang --health-cmd 'sleep 100' --health-timeout 1s --health-interval 1s --health-retries 2 "
      "busybox sleep 600");
  EXPECT_NE(kiste_.run("ps").output.find("(health: starting)"), std::string::npos);
  auto inspect = until("container inspect hang", "\"Status\": \"unhealthy\"");
  EXPECT_NE(inspect.find("\"Status\": \"unhealthy\""), std::string::npos) << inspect;
  EXPECT_NE(inspect.find("Health check exceeded timeout (1s)"), std::string::npos) << inspect;
  EXPECT_NE(inspect.find("\"ExitCode\": -1"), std::string::npos) << inspect;
  // Two probes timed out; at most the one running now may be left.
  auto ps = kiste_.run("exec hang ps");
  size_t probes = 0;
  for (size_t at = 0; (at = ps.output.find("sleep 100", at)) != std::string::npos; ++at) ++probes;
  EXPECT_LE(probes, 1u) << ps.output;
  const pid_t pid = static_cast<pid_t>(json_int(inspect, "Pid"));
  EXPECT_EQ(kiste_.run("rm -f hang").status, 0);
  expect_nothing_left(id, pid);
}

TEST_F(Services, BadHealthcheckFlagsAreOneLineAndChangeNothing) {
  auto r = kiste_.run("run -d --no-healthcheck --health-cmd true busybox sleep 1");
  EXPECT_EQ(r.status, 125);
  EXPECT_EQ(r.output, "kiste: error: --no-healthcheck conflicts with --health-* options\n");
  r = kiste_.run("run -d --health-cmd true --health-interval soon busybox sleep 1");
  EXPECT_EQ(r.status, 125);
  EXPECT_EQ(count_lines(r.output), 1u) << r.output;
  EXPECT_NE(r.output.find("--health-interval"), std::string::npos) << r.output;
  r = kiste_.run("run --health-cmd true busybox true");
  EXPECT_EQ(r.status, 125);
  EXPECT_EQ(r.output, "kiste: error: --health-*: healthchecks run in detached containers (-d)\n");
  EXPECT_EQ(kiste_.run("ps -aq").output, "");
}

// The image's HEALTHCHECK is honoured, and --no-healthcheck turns it off.
TEST_F(Services, TheImagesHealthcheckRunsUnlessTurnedOff) {
  fs::create_directories(tmp_ / "ctx");
  ASSERT_TRUE(sys::write_file_atomic(tmp_ / "ctx" / "Containerfile",
                              "FROM busybox\nHEALTHCHECK --interval=1s --retries=1 CMD [\"false\"]\n", 0644));
  auto b = kiste_.run("build -q -t checked " + (tmp_ / "ctx").native());
  ASSERT_EQ(b.status, 0) << b.output;
  const std::string id = run_detached("--name sick checked sleep 600");
  auto inspect = until("container inspect sick", "\"Status\": \"unhealthy\"");
  EXPECT_NE(inspect.find("\"Status\": \"unhealthy\""), std::string::npos) << inspect;
  EXPECT_NE(inspect.find("\"ExitCode\": 1"), std::string::npos) << inspect;
  const std::string off = run_detached("--name fine --no-healthcheck checked sleep 600");
  inspect = kiste_.run("container inspect fine").output;
  EXPECT_EQ(inspect.find("Health"), std::string::npos) << inspect;
  EXPECT_EQ(kiste_.run("rm -f sick fine").status, 0);
  expect_nothing_left(id, 0);
  expect_nothing_left(off, 0);
}

// Issue 16's must-show: --log-opt max-size=1k,max-file=2 rotates docker's way, and `logs -f`
// follows across the rotations without losing or repeating a line.
// logs --since/--until pick entries by their own time: the second entry's timestamp (from
// `logs -t`) as --since gives only it, the first's as --until only the first; a duration counts
// back from now; a bad time is one line and 125.
TEST_F(Services, LogsSinceAndUntilPickEntriesByTheirTime) {
  const std::string id = run_detached("--name lg busybox sh -c 'echo one; sleep 1; echo two; sleep 600'");
  ASSERT_NE(until("logs lg", "two").find("two"), std::string::npos);
  auto r = kiste_.run("logs -t lg");
  ASSERT_EQ(r.status, 0) << r.output;
  std::istringstream lines(r.output);
  std::string t1, t2, word;
  lines >> t1 >> word >> t2 >> word;
  ASSERT_TRUE(t1.ends_with('Z') && t2.ends_with('Z')) << r.output;
  EXPECT_EQ(kiste_.run("logs --since " + t2 + " lg").output, "two\n");
  EXPECT_EQ(kiste_.run("logs --until " + t1 + " lg").output, "one\n");
  EXPECT_EQ(kiste_.run("logs --since " + t1 + " --until " + t2 + " lg").output, "one\ntwo\n");
  EXPECT_EQ(kiste_.run("logs --since 24h lg").output, "one\ntwo\n");
  EXPECT_EQ(kiste_.run("logs --since 2999-01-01 lg").output, "");
  r = kiste_.run("logs --until 2026-13-01 lg");
  EXPECT_EQ(r.status, 125);
  EXPECT_EQ(r.output, "kiste: error: --until: time `2026-13-01`: expected RFC 3339 (2026-12-07T18:57:08Z), "
                      "a Unix time or a duration (10m)\n");
  const pid_t pid = static_cast<pid_t>(json_int(kiste_.run("inspect lg").output, "Pid"));
  ASSERT_EQ(kiste_.run("rm -f lg").status, 0);
  expect_nothing_left(id, pid);
}

// ps --filter: values of one key are alternatives, different keys must all hold; a status or
// exited filter lists stopped containers without -a; a bad filter is one line and 125.
TEST_F(Services, PsFiltersAsDockerDoes) {
  const std::string fa = run_detached("--name fa busybox sleep 600").substr(0, 12);
  const std::string fb = run_detached("--name fb busybox sh -c 'exit 3'").substr(0, 12);
  ASSERT_NE(until("ps -a --filter exited=3 -q", fb).find(fb), std::string::npos);
  EXPECT_EQ(kiste_.run("ps -q --filter name=fa").output, fa + "\n");
  EXPECT_EQ(kiste_.run("ps -q --filter status=exited").output, fb + "\n");
  EXPECT_EQ(kiste_.run("ps -q -f id=" + fb.substr(0, 6)).output, "") << "stopped: needs -a";
  EXPECT_EQ(kiste_.run("ps -aq -f id=" + fb.substr(0, 6)).output, fb + "\n");
  auto both = kiste_.run("ps -aq --filter status=running --filter status=exited").output;
  EXPECT_EQ(count_lines(both), 2u) << both;
  EXPECT_EQ(kiste_.run("ps -aq --filter name=fa --filter status=exited").output, "");
  EXPECT_EQ(kiste_.run("ps -q --filter ancestor=busybox --filter health=none").output, fa + "\n");
  EXPECT_EQ(kiste_.run("ps -aq --filter ancestor=alpine").output, "");
  auto r = kiste_.run("ps --filter bogus=1");
  EXPECT_EQ(r.status, 125);
  EXPECT_EQ(r.output, "kiste: error: --filter `bogus=1`: unknown filter (id, name, status, exited, ancestor, health)\n");
  r = kiste_.run("ps --filter status=sleeping");
  EXPECT_EQ(r.status, 125);
  EXPECT_EQ(count_lines(r.output), 1u) << r.output;
  EXPECT_EQ(kiste_.run("rm -f fa fb").status, 0);
}

TEST_F(Services, LogsFollowsAcrossRotation) {
  const std::string id = run_detached(
      "--name rot --log-opt max-size=1k,max-file=2 busybox sh -c "
      "'while [ ! -f /tmp/go ]; do sleep 0.05; done; i=0; while [ $i -lt 100 ]; do i=$((i+1)); echo line $i; "
      "sleep 0.05; done'");
  std::string followed;
  std::thread follower([&] { followed = kiste_.run("logs -f rot").output; });
  EXPECT_EQ(kiste_.run("exec rot touch /tmp/go").status, 0);
  follower.join();  // `logs -f` ends with the container
  std::string want;
  for (int i = 1; i <= 100; ++i) want += fmt::format("line {}\n", i);
  EXPECT_EQ(followed, want);
  // docker's names: <id>-json.log and <id>-json.log.1, none bigger than max-size.
  const fs::path log = kiste_.root() / "containers" / id / (id + "-json.log");
  EXPECT_TRUE(fs::exists(log.native() + ".1"));
  EXPECT_FALSE(fs::exists(log.native() + ".2"));
  EXPECT_LE(fs::file_size(log), 1024u);
  EXPECT_LE(fs::file_size(log.native() + ".1"), 1024u);
  // `logs` reads the kept files oldest first: a run of lines that ends with the last one.
  auto rest = kiste_.run("logs rot").output;
  ASSERT_FALSE(rest.empty());
  EXPECT_TRUE(want.ends_with(rest)) << rest;
  EXPECT_TRUE(rest.ends_with("line 100\n")) << rest;
  EXPECT_EQ(kiste_.run("rm rot").status, 0);
  expect_nothing_left(id, 0);

  auto r = kiste_.run("run -d --log-opt max-size=lots busybox true");
  EXPECT_EQ(r.status, 125);
  EXPECT_EQ(count_lines(r.output), 1u) << r.output;
  EXPECT_EQ(kiste_.run("ps -aq").output, "");
}

// The image's STOPSIGNAL is what stop sends first; start and restart run a stopped container
// again under the same name, id and log; start -a prints its output and ends with its status.
TEST_F(Services, StartRestartAndTheImagesStopSignal) {
  auto imp = kiste_.run("import -c 'STOPSIGNAL SIGUSR1' " + busybox_tar().native() + " usr1box 2>/dev/null");
  ASSERT_EQ(imp.status, 0) << imp.output;
  const std::string id = run_detached(
      "--name sig usr1box sh -c 'trap \"echo got-usr1; exit 3\" USR1; echo ready; while true; do sleep 0.1; done'");
  EXPECT_EQ(json_int(kiste_.run("container inspect sig").output, "StopSignal"), SIGUSR1);
  ASSERT_NE(until("logs sig", "ready").find("ready"), std::string::npos);
  EXPECT_EQ(kiste_.run("stop -t 30 sig").status, 0);
  EXPECT_EQ(kiste_.run("wait sig").output, "3\n");
  EXPECT_EQ(kiste_.run("logs sig").output, "ready\ngot-usr1\n");

  auto start = kiste_.run("start sig");
  EXPECT_EQ(start.status, 0) << start.output;
  EXPECT_EQ(start.output, "sig\n");
  EXPECT_NE(kiste_.run("ps --format json").output.find("\"State\":\"running\""), std::string::npos);
  EXPECT_EQ(until("logs sig", "got-usr1\nready\n"), "ready\ngot-usr1\nready\n");
  const pid_t before = static_cast<pid_t>(json_int(kiste_.run("container inspect sig").output, "Pid"));
  auto restart = kiste_.run("restart -t 30 sig");
  EXPECT_EQ(restart.status, 0) << restart.output;
  auto inspect = kiste_.run("container inspect sig").output;
  EXPECT_NE(inspect.find("\"Running\": true"), std::string::npos) << inspect;
  const pid_t after = static_cast<pid_t>(json_int(inspect, "Pid"));
  EXPECT_NE(after, before);
  EXPECT_TRUE(process_gone(before));
  EXPECT_EQ(until("logs sig", "ready\ngot-usr1\nready\n"), "ready\ngot-usr1\nready\ngot-usr1\nready\n");
  EXPECT_EQ(kiste_.run("start sig").output, "sig\n");  // running already: nothing to do

  const std::string once = run_detached("--name once busybox sh -c 'echo hello; exit 4'");
  EXPECT_EQ(kiste_.run("wait once").output, "4\n");
  auto attached = kiste_.run("start -a once");
  EXPECT_EQ(attached.status, 4);
  EXPECT_EQ(attached.output, "hello\n");
  EXPECT_EQ(kiste_.run("logs once").output, "hello\nhello\n");

  auto bad = kiste_.run("start nope");
  EXPECT_EQ(bad.status, 125);
  EXPECT_EQ(bad.output, "kiste: error: container `nope`: no such container\n");
  EXPECT_EQ(kiste_.run("rm -f sig once").status, 0);
  expect_nothing_left(id, after);
  expect_nothing_left(once, 0);
}

// After a reboot every monitor is gone; `start --all` (the boot hook) starts the `always`
// containers, and the `unless-stopped` ones that no stop ended.
TEST_F(Services, StartAllIsTheBootHook) {
  std::vector<std::string> ids;
  ids.push_back(run_detached("--name al --restart always busybox sleep 600"));
  ids.push_back(run_detached("--name us --restart unless-stopped busybox sleep 600"));
  ids.push_back(run_detached("--name stopped --restart unless-stopped busybox sleep 600"));
  ids.push_back(run_detached("--name plain busybox sleep 600"));
  EXPECT_EQ(kiste_.run("stop -t 0 stopped").status, 0);
  // The "reboot": every monitor dies, and its container with it.
  for (size_t i : {0u, 1u, 3u}) {  // `stopped`'s monitor ended with it
    auto state = sys::read_file(kiste_.root() / "containers" / ids[i] / "state.json");
    ASSERT_TRUE(state);
    const pid_t monitor = static_cast<pid_t>(json_int(*state, "monitor_pid"));
    ASSERT_GT(monitor, 0) << *state;
    ASSERT_EQ(::kill(monitor, SIGKILL), 0);
  }
  for (int i = 0; i < 100 && kiste_.run("ps -q").output != ""; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(kiste_.run("ps -q").output, "");
  auto all = kiste_.run("start --all");
  EXPECT_EQ(all.status, 0) << all.output;
  EXPECT_EQ(all.output, "al\nus\n");
  auto ps = kiste_.run("ps --format json").output;
  EXPECT_NE(ps.find("\"Names\":\"al\""), std::string::npos) << ps;
  EXPECT_NE(ps.find("\"Names\":\"us\""), std::string::npos) << ps;
  EXPECT_EQ(ps.find("\"Names\":\"stopped\""), std::string::npos) << ps;
  EXPECT_EQ(ps.find("\"Names\":\"plain\""), std::string::npos) << ps;
  EXPECT_EQ(kiste_.run("start --all").output, "");  // they run: nothing more to start
  EXPECT_EQ(kiste_.run("start --all al").status, 125);
  EXPECT_EQ(kiste_.run("rm -f al us stopped plain").status, 0);
  for (const auto& id : ids) expect_nothing_left(id, 0);
}

// `kiste inspect NAME` looks for a container first, then an image (docker's order).
TEST_F(Services, TopLevelInspectFindsContainersFirst) {
  const std::string id = run_detached("--name busybox busybox sleep 600");
  auto inspect = kiste_.run("inspect busybox");
  EXPECT_EQ(inspect.status, 0) << inspect.output;
  EXPECT_NE(inspect.output.find("\"Id\": \"" + id + "\""), std::string::npos) << inspect.output;
  EXPECT_NE(inspect.output.find("\"Name\": \"/busybox\""), std::string::npos) << inspect.output;
  EXPECT_EQ(kiste_.run("rm -f busybox").status, 0);
  inspect = kiste_.run("inspect busybox");  // no container by that name now: the image
  EXPECT_EQ(inspect.status, 0) << inspect.output;
  EXPECT_EQ(inspect.output.find("\"Name\": \"/busybox\""), std::string::npos) << inspect.output;
  expect_nothing_left(id, 0);
}

// top lists the processes of the container's cgroup with docker's columns (the host's ps -f).
TEST_F(Services, TopListsTheContainersProcesses) {
  const std::string id = run_detached("--name tp busybox sh -c 'sleep 601 & sleep 602'");
  std::string top;
  for (int i = 0; i < 100; ++i) {  // until the shell has started both
    top = kiste_.run("top tp").output;
    if (top.find("sleep 601") != std::string::npos && top.find("sleep 602") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(std::regex_search(top, std::regex("^UID +PID +PPID +C +STIME +TTY +TIME +CMD\n"))) << top;
  EXPECT_NE(top.find("sleep 601"), std::string::npos) << top;
  EXPECT_NE(top.find("sleep 602"), std::string::npos) << top;
  // The header and the two sleeps (sh execs its last command): nothing of the host.
  EXPECT_EQ(count_lines(top), 3u) << top;
  EXPECT_EQ(kiste_.run("kill tp").status, 0);
  (void)kiste_.run("wait tp");
  auto r = kiste_.run("top tp");
  EXPECT_EQ(r.status, 125);
  EXPECT_EQ(r.output, "kiste: error: top container tp: it is not running\n");
  EXPECT_EQ(kiste_.run("rm tp").status, 0);
  expect_nothing_left(id, 0);
}

// stats reads the container's cgroups: its name, its 64 MiB limit and at least its one process;
// --format json is one object per line; an unknown container is one line and 125.
TEST_F(Services, StatsShowsTheCgroupsLimitAndProcesses) {
  const std::string id = run_detached("-m 64m --name st busybox sh -c 'sleep 600'");
  auto r = kiste_.run("stats --no-stream st 2>&1");
  ASSERT_EQ(r.status, 0) << r.output;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(
      r.output, m, std::regex("\\n" + id.substr(0, 12) + " +st +[0-9.]+% +[0-9.]+[KMG]?i?B / 64MiB +[0-9.]+% +(--|[0-9.]+[kMG]?B / [0-9.]+[kMG]?B) +[0-9.]+[kMG]?B / [0-9.]+[kMG]?B +([0-9]+)\\n")))
      << r.output;
  EXPECT_GE(std::stoi(m[2]), 1) << r.output;
  EXPECT_EQ(r.output.rfind("CONTAINER ID ", 0), 0u) << r.output;

  r = kiste_.run("stats --no-stream --format json " + id.substr(0, 12) + " 2>&1");
  ASSERT_EQ(r.status, 0) << r.output;
  auto j = nlohmann::json::parse(r.output, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << r.output;
  EXPECT_EQ(j["Name"], "st");
  EXPECT_EQ(j["ID"], id.substr(0, 12));
  EXPECT_TRUE(j["MemUsage"].get<std::string>().ends_with(" / 64MiB")) << r.output;
  EXPECT_GE(std::stoi(j["PIDs"].get<std::string>()), 1) << r.output;

  r = kiste_.run("stats --no-stream nosuch 2>&1");
  EXPECT_EQ(r.status, 125);
  EXPECT_EQ(count_lines(r.output), 1u) << r.output;

  const pid_t pid = static_cast<pid_t>(json_int(kiste_.run("inspect st").output, "Pid"));
  ASSERT_EQ(kiste_.run("rm -f st").status, 0);
  expect_nothing_left(id, pid);
}

// Without --no-stream, stats samples every second until its reader goes: each sample's CPU % is
// the delta since the one before, so a container that spins shows CPU time; the stream ends
// when `head` has its three lines (kiste's next write fails), leaving no process behind.
TEST_F(Services, StatsStreamsUntilTheReaderGoes) {
  const std::string id = run_detached("--name spin busybox sh -c 'while :; do :; done'");
  auto r = kiste_.run("stats --format json spin | head -n 3");
  ASSERT_EQ(r.status, 0) << r.output;
  ASSERT_EQ(count_lines(r.output), 3u) << r.output;
  std::istringstream lines(r.output);
  for (std::string line; std::getline(lines, line);) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << line;
    EXPECT_EQ(j["Name"], "spin");
    const std::string cpu = j["CPUPerc"];
    ASSERT_TRUE(cpu.ends_with('%')) << line;
    EXPECT_GT(std::stod(cpu), 0.0) << line;  // every sample, not only a first one, has a delta
  }
  EXPECT_EQ(run_shell("pgrep -f '[k]iste.* stats --format json spin'"), 1);  // it ended
  const pid_t pid = static_cast<pid_t>(json_int(kiste_.run("inspect spin").output, "Pid"));
  ASSERT_EQ(kiste_.run("rm -f spin").status, 0);
  expect_nothing_left(id, pid);
}

// kiste cp both ways, running and stopped, in a container that made its /etc a link to / (the
// CVE-2018-15664 shape): every path resolves inside the container's root, the host's /etc is
// neither read nor written, and nothing is left mounted.
TEST_F(Services, CpCopiesBothWaysAndNeverLeavesTheContainersRoot) {
  const std::string id = run_detached(
      "--name box busybox sh -c 'mkdir -p /data/sub; echo hello > /data/a.txt; echo b > /data/sub/b; "
      "rm -rf /etc; ln -s / /etc; echo ready; sleep 600'");
  ASSERT_NE(until("logs box", "ready").find("ready"), std::string::npos);
  const fs::path host = tmp_ / "host";
  fs::create_directories(host);

  auto r = kiste_.run("cp box:/data " + (host / "copy").native());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(sys::read_file(host / "copy" / "a.txt").value_or(""), "hello\n");
  EXPECT_EQ(sys::read_file(host / "copy" / "sub" / "b").value_or(""), "b\n");
  // The container's /etc/passwd is its /passwd, which does not exist: the host's is not copied.
  r = kiste_.run("cp box:/etc/passwd " + (host / "pw").native());
  EXPECT_EQ(r.status, 125) << r.output;
  EXPECT_EQ(r.output, "kiste: error: copy `/etc/passwd`: no such file or directory\n");
  EXPECT_FALSE(fs::exists(host / "pw"));
  // Writing through the link lands in the container's root, not in the host's /etc.
  const std::string name = "kiste-cp-" + sys::random_hex(6);
  ASSERT_TRUE(sys::write_file_atomic(host / name, "planted\n"));
  r = kiste_.run("cp " + (host / name).native() + " box:/etc/");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_FALSE(fs::exists(fs::path("/etc") / name));
  EXPECT_EQ(kiste_.run("exec box cat /" + name).output, "planted\n");

  // `-`: a tar stream on stdin unpacks into a directory of the container (only a directory).
  fs::create_directories(host / "tree" / "deep");
  ASSERT_TRUE(sys::write_file_atomic(host / "tree" / "deep" / "t.txt", "from-tar\n"));
  const std::string tar_of_tree = "tar -C " + (host / "tree").native() + " -cf - . | ";
  ASSERT_EQ(run_shell(tar_of_tree + kiste_command(kiste_.root(), "cp - box:/data")), 0);
  EXPECT_EQ(kiste_.run("exec box cat /data/deep/t.txt").output, "from-tar\n");
  std::string out;
  EXPECT_EQ(run_shell(tar_of_tree + kiste_command(kiste_.root(), "cp - box:/data/a.txt"), &out), 125);
  EXPECT_EQ(out, "kiste: error: copy to `/data/a.txt`: not a directory (`-` unpacks a tar stream into a directory)\n");

  // Stopped: the same through its overlay, in and out.
  ASSERT_EQ(kiste_.run("stop -t 0 box").status, 0);
  ASSERT_EQ(run_shell(tar_of_tree + kiste_command(kiste_.root(), "cp - box:/etc")), 0);  // /etc is /
  r = kiste_.run("cp box:/deep/t.txt " + (host / "t-stopped").native());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(sys::read_file(host / "t-stopped").value_or(""), "from-tar\n");
  EXPECT_FALSE(fs::exists("/deep/t.txt"));
  r = kiste_.run("cp " + (host / name).native() + " box:/data/again");
  ASSERT_EQ(r.status, 0) << r.output;
  r = kiste_.run("cp box:/data/. " + (host / "copy").native());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(sys::read_file(host / "copy" / "again").value_or(""), "planted\n");
  r = kiste_.run("cp box:/etc/" + name + " " + (host / "out2").native());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(sys::read_file(host / "out2").value_or(""), "planted\n");
  EXPECT_FALSE(fs::exists(fs::path("/etc") / name));
  EXPECT_TRUE(mounts_below(tmp_.path()).empty());

  // Bad input: one line each, exit 125.
  for (const std::string& args : {std::string("cp nosuch:/x ") + host.native(), std::string("cp a b"),
                                  std::string("cp box:/x box:/y"), std::string("cp box:/data -")}) {
    r = kiste_.run(args);
    EXPECT_EQ(r.status, 125) << args << ": " << r.output;
    EXPECT_EQ(count_lines(r.output), 1u) << args << ": " << r.output;
  }
  EXPECT_EQ(kiste_.run("rm box").status, 0);
  expect_nothing_left(id, 0);
}

}  // namespace
}  // namespace kiste::testing

namespace kiste::testing {
namespace {

// run --pull (docker's default `missing`): a store without the image pulls it from the real
// registry with progress on stderr, a second run pulls nothing, `always` fetches the manifest
// again, `never` and an image the registry lacks fail with one line and leave no container.
TEST_F(Services, RunPullsAMissingImageUnlessToldNever) {
  std::string why;
  auto reg = RegistryProcess::start({}, &why);
  ASSERT_TRUE(reg) << why;
  ASSERT_EQ(kiste_.run("push -q busybox " + reg->host() + "/base/busybox:1").status, 0);
  const std::string image = reg->host() + "/base/busybox:1";
  const std::string manifest_get = "GET /v2/base/busybox/manifests/1";
  KisteCli fresh(tmp_ / "fresh");  // no store yet: the pull makes it

  auto never = fresh.run("run --rm --pull never " + image + " echo hi");
  EXPECT_EQ(never.status, 125) << never.output;
  EXPECT_EQ(never.output, "kiste: error: image `" + image + "`: not in the store, and --pull never\n");
  EXPECT_EQ(reg->count_requests(manifest_get), 0);
  auto bad = fresh.run("run --rm --pull sometimes " + image + " echo hi");
  EXPECT_EQ(bad.output, "kiste: error: --pull `sometimes`: want missing, always or never\n");
  EXPECT_EQ(bad.status, 125);

  // stdout is the container's alone; the pull talks on stderr.
  std::string out;
  // (run_shell adds 2>&1 after the command: the braces keep this redirection.)
  EXPECT_EQ(run_shell("{ " + kiste_command(fresh.root(), "run --rm " + image + " echo hi") + " 2>" +
                          (tmp_ / "pull.err").native() + "; }",
                      &out),
            0);
  EXPECT_EQ(out, "hi\n");
  auto err = sys::read_file(tmp_ / "pull.err");
  ASSERT_TRUE(err);
  EXPECT_NE(err->find("Unable to find image '" + image + "' locally"), std::string::npos) << *err;
  EXPECT_NE(err->find("copied"), std::string::npos) << "the registry client's progress: " << *err;
  EXPECT_EQ(reg->count_requests(manifest_get), 1);

  auto second = fresh.run("run --rm " + image + " echo again");
  EXPECT_EQ(second.output, "again\n");
  EXPECT_EQ(reg->count_requests(manifest_get), 1) << "a stored image is not pulled again";
  auto always = fresh.run("run --rm --pull always -q " + image + " echo always");
  EXPECT_EQ(always.status, 0) << always.output;
  EXPECT_EQ(always.output, "always\n");
  EXPECT_EQ(reg->count_requests(manifest_get), 2) << "--pull always asks the registry again";

  // run -d pulls before it makes a record, and prints only the id on stdout.
  KisteCli other(tmp_ / "other");
  out.clear();
  ASSERT_EQ(run_shell("{ " + kiste_command(other.root(), "run -d --name pulled " + image + " sleep 600") + " 2>/dev/null; }", &out), 0);
  EXPECT_TRUE(std::regex_match(out, std::regex("[0-9a-f]{64}\n"))) << out;
  EXPECT_EQ(other.run("rm -f pulled").status, 0);

  // An image the registry does not have: one line, no container record, no image.
  auto none = fresh.run("run -d " + reg->host() + "/base/none:1 true");
  EXPECT_EQ(none.status, 125) << none.output;
  EXPECT_EQ(count_lines(none.output), 2u) << none.output;  // "Unable to find …" and the error
  EXPECT_NE(none.output.find("kiste: error: pulling " + reg->host() + "/base/none:1"), std::string::npos)
      << none.output;
  EXPECT_EQ(fresh.run("ps -aq").output, "");
  EXPECT_EQ(fresh.run("images -q | wc -l").output, "1\n");
  EXPECT_TRUE(mounts_below(tmp_.path()).empty());
}

// --network container:NAME: the new container shares the running one's network namespace (its
// loopback server answers), as docker's; a stopped or unknown one is one line, exit 125.
TEST_F(Services, NetworkContainerJoinsAnotherContainersNamespace) {
  const std::string id = run_detached(
      "--name srv busybox sh -c 'mkdir /www; echo joined-ok > /www/index.html; httpd -p 8080 -h /www; "
      "echo ready; sleep 600'");
  ASSERT_NE(until("logs srv", "ready").find("ready"), std::string::npos);
  auto r = kiste_.run("run --rm --network container:srv busybox wget -qO- http://127.0.0.1:8080/");
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(r.output, "joined-ok\n");
  auto own = kiste_.run("exec srv readlink /proc/self/ns/net");
  auto joined = kiste_.run("run --rm --network container:" + id.substr(0, 12) + " busybox readlink /proc/self/ns/net");
  EXPECT_EQ(joined.output, own.output);
  EXPECT_NE(kiste_.run("run --rm busybox readlink /proc/self/ns/net").output, own.output);
  // Detached too: it serves the same loopback.
  const std::string side = run_detached("--name side --network container:srv busybox sleep 600");
  EXPECT_EQ(kiste_.run("exec side wget -qO- http://127.0.0.1:8080/").output, "joined-ok\n");
  EXPECT_EQ(kiste_.run("rm -f side").status, 0);

  ASSERT_EQ(kiste_.run("stop -t 0 srv").status, 0);
  r = kiste_.run("run --rm --network container:srv busybox true");
  EXPECT_EQ(r.status, 125);
  EXPECT_EQ(r.output, "kiste: error: network `container:srv`: container `srv` is not running\n");
  r = kiste_.run("run --rm --network container:nosuch busybox true");
  EXPECT_EQ(r.status, 125);
  EXPECT_EQ(count_lines(r.output), 1u) << r.output;
  r = kiste_.run("run --rm --network container:srv -p 8080 busybox true");
  EXPECT_EQ(r.status, 125);
  EXPECT_EQ(count_lines(r.output), 1u) << r.output;
  EXPECT_EQ(kiste_.run("rm srv").status, 0);
  expect_nothing_left(id, 0);
  expect_nothing_left(side, 0);
}

// attach: the output from the moment of attaching (not before) until the container ends, with
// its exit status; an attach that is interrupted (SIGINT, as Ctrl-C) leaves the container running.
TEST_F(Services, AttachStreamsTheOutputUntilTheEndAndCtrlCOnlyDetaches) {
  fs::create_directories(tmp_ / "ctl");
  const std::string id = run_detached(
      "--name talk -v " + (tmp_ / "ctl").native() +
      ":/ctl busybox sh -c 'echo before; i=0; while [ ! -f /ctl/stop ] && [ $i -lt 300 ]; do echo tick; "
      "sleep 0.1; i=$((i+1)); done; echo after; exit 3'");
  ASSERT_NE(until("logs talk", "before").find("before"), std::string::npos);
  const fs::path out = tmp_ / "attach.out";
  // In the background, its exit status to attach.rc (the group's own output goes nowhere, so
  // run_shell does not wait for it).
  ASSERT_EQ(run_shell("{ " + kiste_command(kiste_.root(), "attach talk") + " > " + out.native() +
                      " 2>&1; echo $? > " + (tmp_ / "attach.tmp").native() + "; mv " +
                      (tmp_ / "attach.tmp").native() + " " + (tmp_ / "attach.rc").native() +
                      "; } </dev/null >/dev/null 2>&1 &"),
            0);
  // Once attach printed a tick it is following: then the container may end.
  for (int i = 0; i < 100 && sys::read_file(out).value_or("").find("tick") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  { std::ofstream(tmp_ / "ctl" / "stop") << ""; }
  for (int i = 0; i < 100 && !fs::exists(tmp_ / "attach.rc"); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(sys::read_file(tmp_ / "attach.rc").value_or(""), "3\n");
  const std::string text = sys::read_file(out).value_or("");
  EXPECT_EQ(text.find("before"), std::string::npos) << text;
  EXPECT_NE(text.find("tick\n"), std::string::npos) << text;
  EXPECT_TRUE(text.ends_with("after\n")) << text;

  auto r = kiste_.run("attach talk");
  EXPECT_EQ(r.status, 125);
  EXPECT_EQ(r.output, "kiste: error: attach to container talk: it is not running (start it first)\n");
  EXPECT_EQ(kiste_.run("rm talk").status, 0);
  expect_nothing_left(id, 0);

  // SIGINT (Ctrl-C) ends the attach, not the container.
  const std::string sleeper = run_detached("--name sleeper busybox sleep 600");
  // (-k: a SIGINT that did not end it fails the test instead of hanging it.)
  EXPECT_EQ(run_shell("timeout -k 5 -s INT 1 " + kiste_command(kiste_.root(), "attach sleeper")), 124);
  EXPECT_NE(kiste_.run("ps").output.find("sleeper"), std::string::npos);
  r = kiste_.run("attach --sig-proxy=true sleeper");
  EXPECT_EQ(r.status, 125);
  EXPECT_EQ(count_lines(r.output), 1u) << r.output;
  EXPECT_EQ(kiste_.run("rm -f sleeper").status, 0);
  expect_nothing_left(sleeper, 0);
}

}  // namespace
}  // namespace kiste::testing
