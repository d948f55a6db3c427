#include "runtime_fixture.hpp"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <memory>

#include <kiste/base/sys.hpp>
#include <kiste/runtime/cgroup.hpp>
#include <kiste/testing/busybox_rootfs.hpp>

namespace kiste::testing {

namespace fs = std::filesystem;

namespace {
std::unique_ptr<TempRoot> g_rootfs_dir;
fs::path g_rootfs;
}  // namespace

fs::path cgroup2_mount() {
  auto mode = runtime::detect_cgroup_mode();
  if (!mode) return {};
  if (*mode == runtime::CgroupMode::Unified) return "/sys/fs/cgroup";
  if (*mode == runtime::CgroupMode::Hybrid) return "/sys/fs/cgroup/unified";
  return {};
}

TestCgroupParent::TestCgroupParent(const fs::path& mount)
    : dir_(mount / ("ktest-parent-" + sys::random_hex(6))), name_(dir_.filename().native()) {
  EXPECT_EQ(::mkdir(dir_.c_str(), 0755), 0) << dir_;
}

TestCgroupParent::~TestCgroupParent() {
  // Its containers' cgroups are gone (rmdir'ed empty); the kernel may need a moment.
  for (int i = 0; i < 200 && ::rmdir(dir_.c_str()) != 0 && errno == EBUSY; ++i) ::usleep(5000);
  EXPECT_FALSE(fs::exists(dir_)) << dir_ << " left behind";
}

std::set<std::string> kiste_cgroups() {
  std::set<std::string> out;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator("/sys/fs/cgroup", fs::directory_options::none, ec);
       it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) break;
    if (it.depth() > 4) {
      it.disable_recursion_pending();
      continue;
    }
    if (!it->is_directory(ec) || it->is_symlink(ec)) continue;
    if (it->path().filename().native().starts_with("kiste-")) {
      out.insert(it->path().native());
      it.disable_recursion_pending();
    }
  }
  return out;
}

std::vector<int> processes_rooted_in(const fs::path& dir) {
  std::vector<int> pids;
  char self_ns[256] = {};
  (void)!::readlink("/proc/self/ns/mnt", self_ns, sizeof self_ns - 1);
  const std::string own_mnt_ns = self_ns;
  DIR* d = ::opendir("/proc");
  if (d == nullptr) return pids;
  while (dirent* e = ::readdir(d)) {
    int pid = std::atoi(e->d_name);
    if (pid <= 0) continue;
    char buf[4096];
    std::string link = std::string("/proc/") + e->d_name + "/root";
    ssize_t n = ::readlink(link.c_str(), buf, sizeof buf - 1);
    if (n <= 0) continue;
    std::string root(buf, static_cast<size_t>(n));
    if (root == dir.native() || root.starts_with(dir.native() + "/")) {
      pids.push_back(pid);
      continue;
    }
    // A root attached inside the container's own mount namespace (--userns) reads as "/" from
    // here; its overlay still names the upper dir below `dir`.
    std::string ns = std::string("/proc/") + e->d_name + "/ns/mnt";
    n = ::readlink(ns.c_str(), buf, sizeof buf - 1);
    if (n <= 0 || std::string(buf, static_cast<size_t>(n)) == own_mnt_ns) continue;
    auto mi = sys::read_file(std::string("/proc/") + e->d_name + "/mountinfo", 1 << 22);
    if (mi && mi->find("upperdir=" + dir.native() + "/") != std::string::npos) pids.push_back(pid);
  }
  ::closedir(d);
  return pids;
}

void RuntimeTest::SetUpTestSuite() {
  if (::geteuid() != 0 || g_rootfs_dir) return;
  g_rootfs_dir = std::make_unique<TempRoot>("kiste-test-rootfs-");
  g_rootfs = g_rootfs_dir->path() / "rootfs";
  auto st = make_busybox_rootfs(g_rootfs);
  ASSERT_TRUE(st) << st.error().to_string();
}

void RuntimeTest::TearDownTestSuite() {
  if (g_rootfs_dir) {
    EXPECT_TRUE(mounts_below(g_rootfs_dir->path()).empty());
  }
  g_rootfs_dir.reset();
}

const fs::path& RuntimeTest::rootfs() { return g_rootfs; }

void RuntimeTest::SetUp() {
  KISTE_REQUIRE_ROOT();
  ASSERT_FALSE(g_rootfs.empty());
  tmp_.emplace("kiste-test-");
  cgroups_before_ = kiste_cgroups();
}

void RuntimeTest::TearDown() {
  if (!tmp_) return;
  EXPECT_EQ(mounts_below(tmp()), std::vector<std::string>{}) << "mounts left behind";
  EXPECT_EQ(mounts_below(g_rootfs), std::vector<std::string>{}) << "mounts left on the rootfs";
  // ctest runs tests in parallel: a cgroup that appeared meanwhile may be another test's live
  // container. Those go away when that test ends; one this test leaked stays.
  std::set<std::string> left;
  for (int waited_ms = 0;; waited_ms += 100) {
    left.clear();
    for (const auto& c : kiste_cgroups()) {
      if (!cgroups_before_.contains(c)) left.insert(c);
    }
    if (left.empty() || waited_ms >= 30000) break;
    ::usleep(100 * 1000);
  }
  for (const auto& c : left) ADD_FAILURE() << "cgroup left behind: " << c;
  EXPECT_EQ(processes_rooted_in(tmp()), std::vector<int>{}) << "container processes left behind";
  tmp_.reset();
}

std::string RuntimeTest::kiste_cmd() const {
  return kiste_binary().native() + " --root " + (tmp() / "root").native();
}

int RuntimeTest::kiste_run(const std::string& args, std::string* out) {
  std::string cmd = kiste_cmd() + " run --rm --rootfs " + rootfs().native() + " " + args;
  std::string local;
  int rc = run_shell(cmd, out ? out : &local);
  return rc;
}

}  // namespace kiste::testing
