// A kiste that is SIGKILLed while its container runs: the container dies with it (PDEATHSIG),
// and `kiste prune` or the next `kiste run` removes its cgroups and its directory.
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
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
  ASSERT_EQ(run_shell(kiste_cmd() + " prune", &out), 0) << out;  // makes the store
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

}  // namespace
}  // namespace kiste::testing
