// A kiste that is SIGKILLed while its container runs: the container dies with it (PDEATHSIG),
// and `kiste prune` or the next `kiste run` removes its cgroups and its directory.
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <functional>
#include <sstream>

#include <kiste/base/sys.hpp>

#include "runtime_fixture.hpp"

namespace kiste::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

// The container's PID 1 as the host sees it (kiste's only child). Its root cannot name a userns
// container (the root mount was attached in the container's own namespace), its parent can.
std::vector<int> children_of(pid_t pid) {
  std::vector<int> out;
  auto text = sys::read_file(fmt::format("/proc/{}/task/{}/children", pid, pid));
  if (!text) return out;
  std::istringstream in(*text);
  int c;
  while (in >> c) out.push_back(c);
  return out;
}

bool alive(int pid) { return ::kill(pid, 0) == 0; }

class StaleTest : public RuntimeTest {
 protected:
  // Starts `kiste run` (no --rm needed: a killed kiste cannot honour it anyway) and waits until
  // the container runs. Returns kiste's pid.
  pid_t start_and_wait(const std::string& extra) {
    fs::path out = tmp() / "out";
    EXPECT_TRUE(sys::mkdir_all(out));
    EXPECT_EQ(::chmod(out.c_str(), 01777), 0);  // a mapped root writes here too
    std::string cmd = "exec " + kiste_cmd() + " run --rm " + extra + " --rootfs " + rootfs().native() +
                      " -v " + out.native() + ":/out sh -c 'touch /out/ready; exec sleep 1000'";
    pid_t pid = ::fork();
    if (pid == 0) {
      ::execl("/bin/sh", "sh", "-c", cmd.c_str(), nullptr);
      ::_exit(127);
    }
    started_.push_back(pid);
    for (int i = 0; i < 2000 && !fs::exists(out / "ready"); ++i) ::usleep(10 * 1000);
    EXPECT_TRUE(fs::exists(out / "ready"));
    return pid;
  }
  void TearDown() override {
    // A failed assertion must not leave a kiste running (its container would outlive the test).
    if (!started_.empty()) {
      while (!started_.empty()) kill_kiste(started_.front());
      (void)kiste_run("true");  // sweeps what they left
    }
    RuntimeTest::TearDown();
  }
  void kill_kiste(pid_t pid) {
    auto it = std::find(started_.begin(), started_.end(), pid);
    if (it == started_.end()) return;
    started_.erase(it);
    std::vector<int> container = children_of(pid);
    ASSERT_EQ(::kill(pid, SIGKILL), 0);
    int st = 0;
    ASSERT_EQ(::waitpid(pid, &st, 0), pid);
    // The container follows its kiste (PDEATHSIG on its PID 1).
    for (int c : container) {
      for (int i = 0; i < 1000 && alive(c); ++i) ::usleep(10 * 1000);
      EXPECT_FALSE(alive(c)) << "container process " << c << " outlived its kiste";
    }
    EXPECT_EQ(processes_rooted_in(tmp() / "root"), std::vector<int>{});
  }
  std::vector<pid_t> started_;
  // The container's cgroup dirs (other tests' containers may run meanwhile).
  static std::set<std::string> cgroups_of(const std::string& id) {
    std::set<std::string> out;
    for (const auto& c : kiste_cgroups()) {
      if (fs::path(c).filename() == "kiste-" + id) out.insert(c);
    }
    return out;
  }
  std::vector<std::string> container_dirs() const {
    std::vector<std::string> out;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(tmp() / "root" / "containers", ec)) {
      out.push_back(e.path().filename().native());
    }
    return out;
  }
};

TEST_F(StaleTest, PruneRemovesTheCgroupsAndDirOfAKilledKiste) {
  std::string out;
  // A root that does not exist is not made by a prune: one line says so.
  ASSERT_EQ(run_shell(kiste_cmd() + " prune", &out), 125) << out;
  EXPECT_THAT(out, HasSubstr("no kiste store at"));
  EXPECT_FALSE(fs::exists(tmp() / "root"));
  pid_t pid = start_and_wait("");
  ASSERT_EQ(container_dirs().size(), 1u);
  std::string id = container_dirs().front();
  auto mine = cgroups_of(id);
  ASSERT_FALSE(mine.empty());
  kill_kiste(pid);
  // Dead, but its leftovers are still there.
  EXPECT_EQ(container_dirs().size(), 1u);
  for (const auto& c : mine) EXPECT_TRUE(fs::exists(c)) << c;

  out.clear();
  ASSERT_EQ(run_shell(kiste_cmd() + " prune", &out), 0) << out;
  EXPECT_THAT(out, HasSubstr("Removed the leftovers of 1 containers whose kiste was killed"));
  EXPECT_EQ(container_dirs(), std::vector<std::string>{});
  for (const auto& c : mine) EXPECT_FALSE(fs::exists(c)) << c;
  EXPECT_EQ(mounts_below(tmp()), std::vector<std::string>{});
  // Nothing is left to do the second time.
  out.clear();
  ASSERT_EQ(run_shell(kiste_cmd() + " prune", &out), 0) << out;
  EXPECT_THAT(out, ::testing::Not(HasSubstr("leftovers")));
}

TEST_F(StaleTest, TheNextRunCleansUpButLeavesARunningContainerAlone) {
  pid_t dead = start_and_wait("");
  std::string dead_id = container_dirs().front();
  auto dead_cgroups = cgroups_of(dead_id);
  ASSERT_FALSE(dead_cgroups.empty());
  kill_kiste(dead);
  ASSERT_EQ(container_dirs().size(), 1u);
  for (const auto& c : dead_cgroups) EXPECT_TRUE(fs::exists(c)) << c;

  // The next run (here one that keeps running, with a user namespace) removes them.
  ASSERT_TRUE(fs::remove(tmp() / "out" / "ready"));
  pid_t live = start_and_wait("--userns=auto");
  auto dirs = container_dirs();
  ASSERT_EQ(dirs.size(), 1u);
  EXPECT_NE(dirs.front(), dead_id);
  for (const auto& c : dead_cgroups) EXPECT_FALSE(fs::exists(c)) << c;

  // A running container is left alone by the next run's sweep.
  std::string out;
  ASSERT_EQ(kiste_run("true", &out), 0) << out;
  EXPECT_EQ(container_dirs(), dirs);
  auto running = children_of(live);
  ASSERT_EQ(running.size(), 1u);
  EXPECT_TRUE(alive(running.front()));
  // The fixture's leftover check finds a user-namespace container too (by its overlay).
  EXPECT_THAT(processes_rooted_in(tmp()), ::testing::Contains(running.front()));

  kill_kiste(live);
  ASSERT_EQ(kiste_run("true", &out), 0) << out;
  EXPECT_EQ(container_dirs(), std::vector<std::string>{});
}

// A container PID 1 that cleared its parent-death signal (or is setuid) outlives a SIGKILLed
// kiste. Whoever notices first (here `kiste prune`) kills the whole container, children too.
TEST_F(StaleTest, PruneKillsAContainerThatOutlivedItsKiste) {
  fs::path out = tmp() / "out";
  ASSERT_TRUE(sys::mkdir_all(out));
  std::string cmd = "exec " + kiste_cmd() + " run --rm --rootfs " + rootfs().native() + " -v " +
                    out.native() + ":/out kiste_test_init survive-parent /out/ready";
  pid_t pid = ::fork();
  if (pid == 0) {
    ::execl("/bin/sh", "sh", "-c", cmd.c_str(), nullptr);
    ::_exit(127);
  }
  // Whatever fails below, nothing may outlive the test.
  std::vector<int> container;
  auto cleanup = [&] {
    ::kill(pid, SIGKILL);
    for (int c : container) ::kill(c, SIGKILL);
  };
  struct Guard {
    std::function<void()> f;
    ~Guard() { f(); }
  } guard{cleanup};
  for (int i = 0; i < 2000 && !fs::exists(out / "ready"); ++i) ::usleep(10 * 1000);
  ASSERT_TRUE(fs::exists(out / "ready"));
  container = children_of(pid);  // PID 1
  ASSERT_EQ(container.size(), 1u);
  for (int c : children_of(container[0])) container.push_back(c);  // and its child
  ASSERT_EQ(container.size(), 2u);
  ASSERT_EQ(::kill(pid, SIGKILL), 0);
  ASSERT_EQ(::waitpid(pid, nullptr, 0), pid);
  ::usleep(200 * 1000);
  EXPECT_TRUE(alive(container[0]) && alive(container[1])) << "the container was expected to survive its kiste";
  std::string text;
  ASSERT_EQ(run_shell(kiste_cmd() + " prune", &text), 0) << text;
  EXPECT_THAT(text, HasSubstr("Removed the leftovers of 1 containers"));
  for (int c : container) {
    for (int i = 0; i < 1000 && alive(c); ++i) ::usleep(10 * 1000);
    EXPECT_FALSE(alive(c)) << "container process " << c << " survived the prune";
  }
  EXPECT_EQ(container_dirs(), std::vector<std::string>{});
}

// `kiste prune` while a container runs on an image that was just removed: the snapshots it runs
// on stay until it ends (a live container's marker names them); then prune removes them.
TEST_F(StaleTest, PruneKeepsTheSnapshotsOfARunningContainer) {
  std::string text;
  fs::path tar = tmp() / "bb.tar";
  ASSERT_EQ(run_shell("tar -C " + rootfs().native() + " -cf " + tar.native() + " .", &text), 0) << text;
  ASSERT_EQ(run_shell(kiste_cmd() + " import " + tar.native() + " bb", &text), 0) << text;
  fs::path out = tmp() / "out";
  ASSERT_TRUE(sys::mkdir_all(out));
  std::string cmd = "exec " + kiste_cmd() + " run --rm -v " + out.native() +
                    ":/out bb sh -c 'touch /out/ready; while [ ! -e /out/go ]; do sleep 0.05; done; "
                    "ls /bin | wc -l > /out/count; cat /etc/passwd >/dev/null && echo ok >> /out/count'";
  pid_t pid = ::fork();
  if (pid == 0) {
    ::execl("/bin/sh", "sh", "-c", cmd.c_str(), nullptr);
    ::_exit(127);
  }
  for (int i = 0; i < 2000 && !fs::exists(out / "ready"); ++i) ::usleep(10 * 1000);
  ASSERT_TRUE(fs::exists(out / "ready"));
  text.clear();
  ASSERT_EQ(run_shell(kiste_cmd() + " rmi bb && " + kiste_cmd() + " prune", &text), 0) << text;
  EXPECT_THAT(text, HasSubstr(" and 0 unused layer snapshots")) << text;
  ASSERT_TRUE(sys::write_file_atomic(out / "go", ""));
  int st = 0;
  ASSERT_EQ(::waitpid(pid, &st, 0), pid);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << st;
  std::string count = sys::read_file(out / "count").value_or("");
  EXPECT_GT(std::atoi(count.c_str()), 10) << count;
  EXPECT_THAT(count, HasSubstr("ok\n"));
  text.clear();
  ASSERT_EQ(run_shell(kiste_cmd() + " prune", &text), 0) << text;
  EXPECT_THAT(text, HasSubstr(" and 1 unused layer snapshots")) << text;
}

}  // namespace
}  // namespace kiste::testing
