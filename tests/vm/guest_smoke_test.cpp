// Runs inside the VM only (tests/vm/run.sh sets KISTE_VM to the guest's variant): checks that the
// guest is the host the VM stage promises, a pure cgroup v2 machine, with systemd as PID 1 and
// the test in a leaf cgroup under system.slice, or without systemd at all.
#include <gtest/gtest.h>
#include <linux/magic.h>
#include <sys/statfs.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>

namespace {

namespace fs = std::filesystem;

std::string read_file(const fs::path& path) {
  std::ifstream in(path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// Runs a shell command and returns its stdout (trimmed) and exit status.
struct Output {
  std::string out;
  int status = -1;
};
Output run(const std::string& command) {
  Output result;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return result;
  std::array<char, 4096> buf{};
  size_t n = 0;
  while ((n = std::fread(buf.data(), 1, buf.size(), pipe)) > 0) result.out.append(buf.data(), n);
  const int raw = ::pclose(pipe);
  result.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  result.out = trim(result.out);
  return result;
}

std::string variant() {
  const char* v = std::getenv("KISTE_VM");
  return v == nullptr ? "" : v;
}

// "/system.slice/kiste-vm-test.service" from "0::/system.slice/kiste-vm-test.service".
std::string own_cgroup() {
  const std::string line = trim(read_file("/proc/self/cgroup"));
  return line.starts_with("0::") ? line.substr(3) : "unexpected /proc/self/cgroup: " + line;
}

bool has_child_cgroups(const fs::path& dir) {
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.is_directory()) return true;
  }
  return false;
}

class GuestSmoke : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(variant() == "systemd" || variant() == "nosystemd")
        << "KISTE_VM is `" << variant() << "`: run this only in the VM, via tests/vm/run.sh";
  }
};

TEST_F(GuestSmoke, CgroupFsIsPureV2) {
  struct statfs st {};
  ASSERT_EQ(::statfs("/sys/fs/cgroup", &st), 0);
  EXPECT_EQ(static_cast<unsigned long>(st.f_type), static_cast<unsigned long>(CGROUP2_SUPER_MAGIC));
  // Pure v2: a single "0::" line, no v1 hierarchy anywhere.
  EXPECT_EQ(read_file("/proc/self/cgroup").find("\n1:"), std::string::npos);
  EXPECT_EQ(read_file("/proc/self/mountinfo").find(" - cgroup "), std::string::npos)
      << read_file("/proc/self/mountinfo");
}

TEST_F(GuestSmoke, RootOffersMemoryPidsCpu) {
  std::istringstream controllers(read_file("/sys/fs/cgroup/cgroup.controllers"));
  std::string word;
  bool memory = false, pids = false, cpu = false;
  while (controllers >> word) {
    memory |= word == "memory";
    pids |= word == "pids";
    cpu |= word == "cpu";
  }
  EXPECT_TRUE(memory && pids && cpu) << read_file("/sys/fs/cgroup/cgroup.controllers");
}

TEST_F(GuestSmoke, Pid1MatchesVariant) {
  const std::string pid1 = trim(read_file("/proc/1/comm"));
  if (variant() == "systemd") {
    EXPECT_EQ(pid1, "systemd");
    EXPECT_TRUE(fs::is_directory("/run/systemd/system"));  // sd_booted(3)
  } else {
    EXPECT_NE(pid1, "systemd");
    EXPECT_FALSE(fs::exists("/run/systemd/system")) << "would make sd_booted(3) true";
  }
}

TEST_F(GuestSmoke, OwnCgroupIsTheRightOne) {
  const std::string cg = own_cgroup();
  if (variant() == "systemd") {
    EXPECT_EQ(cg, "/system.slice/kiste-vm-test.service");
    EXPECT_FALSE(has_child_cgroups(fs::path("/sys/fs/cgroup") / cg.substr(1))) << "not a leaf";
    EXPECT_EQ(trim(read_file(fs::path("/sys/fs/cgroup") / cg.substr(1) / "cgroup.subtree_control")),
              "");
  } else {
    EXPECT_EQ(cg, "/");
  }
}

TEST_F(GuestSmoke, SystemdIsUpAndAnswersOnTheBus) {
  if (variant() != "systemd") GTEST_SKIP() << "no systemd in this variant";
  const Output state = run("systemctl is-system-running --wait");
  EXPECT_TRUE(state.out == "running" || state.out == "degraded") << state.out;
  // systemd-run --scope asks PID 1 for a transient scope over the system bus
  // (StartTransientUnit) and runs the command in it.
  const Output scope =
      run("systemd-run --quiet --scope --unit=kiste-vm-smoke cat /proc/self/cgroup");
  EXPECT_EQ(scope.status, 0);
  EXPECT_EQ(scope.out, "0::/system.slice/kiste-vm-smoke.scope");
}

}  // namespace
