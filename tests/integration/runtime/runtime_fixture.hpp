#pragma once
// Root tests of `kiste run`: one busybox rootfs per suite, a fresh kiste root per test, and a
// TearDown that checks nothing is left: no mount below the temp dirs, no new kiste-* cgroup in
// any hierarchy, no process whose root is inside the test's directories.
#include <filesystem>
#include <optional>
#include <set>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <kiste/testing/require_root.hpp>
#include <kiste/testing/temp_root.hpp>

namespace kiste::testing {

// Every kiste-* cgroup directory below /sys/fs/cgroup (all hierarchies, v1 and v2).
std::set<std::string> kiste_cgroups();
// Pids whose root directory is at or below `dir`.
std::vector<int> processes_rooted_in(const std::filesystem::path& dir);

// This machine's cgroup2 mount: /sys/fs/cgroup on a pure v2 host, /sys/fs/cgroup/unified on a
// hybrid one; empty when there is none.
std::filesystem::path cgroup2_mount();

// A cgroup2 parent for one test's containers (`ktest-parent-<hex>` below `mount`), removed
// afterwards: the cgroupfs driver's default parent `kiste` would outlive the test.
class TestCgroupParent {
 public:
  explicit TestCgroupParent(const std::filesystem::path& mount);
  ~TestCgroupParent();
  TestCgroupParent(const TestCgroupParent&) = delete;
  TestCgroupParent& operator=(const TestCgroupParent&) = delete;
  [[nodiscard]] const std::string& name() const { return name_; }

 private:
  std::filesystem::path dir_;
  std::string name_;
};

class RuntimeTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite();
  static void TearDownTestSuite();
  void SetUp() override;
  void TearDown() override;

  static const std::filesystem::path& rootfs();
  [[nodiscard]] const std::filesystem::path& tmp() const { return tmp_->path(); }
  // Runs `kiste --root <tmp>/root run --rm --rootfs <rootfs> ARGS`; returns the exit status,
  // stdout+stderr in `out`.
  int kiste_run(const std::string& args, std::string* out = nullptr);
  [[nodiscard]] std::string kiste_cmd() const;

  std::optional<TempRoot> tmp_;
  std::set<std::string> cgroups_before_;
};

}  // namespace kiste::testing
