#pragma once
// cgroups: a plan of {controller, file, value} writes derived from Resources (unit-tested for v1
// and v2), drivers that create the container's cgroup under the caller's own, and a guard that
// kills what is left and removes the directories.
#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <kiste/base/error.hpp>
#include <kiste/base/unique_fd.hpp>
#include <kiste/runtime/device_filter.hpp>
#include <kiste/runtime/spec.hpp>

namespace kiste::runtime {

// Legacy: only v1 hierarchies. Hybrid: v1 controllers plus a cgroup2 mount at
// /sys/fs/cgroup/unified (controllers are used through v1). Unified: pure v2.
enum class CgroupMode { Legacy, Hybrid, Unified };

// crun's statfs rules on /sys/fs/cgroup and /sys/fs/cgroup/unified.
[[nodiscard]] Result<CgroupMode> detect_cgroup_mode(
    const std::filesystem::path& cgroup_root = "/sys/fs/cgroup");

struct CgroupWrite {
  std::string controller;  // v1 hierarchy ("memory", "cpu", "pids", "devices"); v2: the controller
  std::string file;        // "memory.limit_in_bytes" / "memory.max"
  std::string value;
  bool optional = false;  // a missing file is fine (a default, not something the user asked for)
  bool operator==(const CgroupWrite&) const = default;
};

struct CgroupPlan {
  std::vector<std::string> controllers;  // needed controllers, in creation order
  std::vector<CgroupWrite> writes;       // in order
  // v2: the eBPF device filter to attach (v1: the same rules are devices.allow writes). Empty:
  // every device is allowed (--privileged).
  std::vector<DeviceRule> device_rules;
  [[nodiscard]] static Result<CgroupPlan> from_resources(const Resources& res, CgroupMode mode,
                                                         bool privileged = false);
};

struct CgroupStats {
  bool oom_killed = false;
  std::optional<int64_t> memory_limit;
  std::optional<uint64_t> memory_peak;
};

// One container cgroup. create() makes the directories (under the caller's own cgroup, per
// controller on v1), apply() writes the plan, add_process() moves a pid in, destroy() kills what
// is left and removes the directories (also run by the destructor).
class CgroupDriver {
 public:
  virtual ~CgroupDriver() = default;
  [[nodiscard]] virtual Status create(std::string_view name, const CgroupPlan& plan) = 0;
  [[nodiscard]] virtual Status apply(const CgroupPlan& plan) = 0;
  [[nodiscard]] virtual Status add_process(pid_t pid) = 0;
  // Files through which a new, single-threaded process moves itself in (v1: each hierarchy's
  // `tasks`, to which it writes "0"). The kernel skips the global threadgroup lock when a
  // thread moves itself; add_process() of another pid takes it for writing, which waits for an
  // RCU grace period (5-16 ms measured here, most of a container's start-up). Empty where that
  // does not apply (v2: clone3 CLONE_INTO_CGROUP is its way); then use add_process().
  [[nodiscard]] virtual Result<std::vector<UniqueFd>> open_self_join() {
    return std::vector<UniqueFd>{};
  }
  // The created directory for clone3(CLONE_INTO_CGROUP) (v2): the process starts inside, no
  // migration at all. An invalid fd where that does not apply (v1).
  [[nodiscard]] virtual Result<UniqueFd> open_clone_target() { return UniqueFd{}; }
  [[nodiscard]] virtual Result<CgroupStats> stats() = 0;
  [[nodiscard]] virtual Status destroy() = 0;
  // Directories created (for tests and diagnostics).
  [[nodiscard]] virtual std::vector<std::filesystem::path> paths() const = 0;
  // v1 hierarchies to show inside the container (name, mount options).
  [[nodiscard]] virtual std::vector<std::pair<std::string, std::string>> v1_hierarchies() const {
    return {};
  }
};

// v1: hierarchies from /proc/self/mountinfo, the caller's cgroup per hierarchy from
// /proc/self/cgroup (or the given files, for tests).
[[nodiscard]] Result<std::unique_ptr<CgroupDriver>> make_cgroup_v1_driver(
    const std::filesystem::path& mountinfo = "/proc/self/mountinfo",
    const std::filesystem::path& self_cgroup = "/proc/self/cgroup");
// v2: `mount_point` is the cgroup2 mount, `self_path` the caller's cgroup relative to it
// (empty: from /proc/self/cgroup's "0::" line).
[[nodiscard]] Result<std::unique_ptr<CgroupDriver>> make_cgroup_v2_driver(
    const std::filesystem::path& mount_point = "/sys/fs/cgroup", std::string self_path = {});
// The driver for this machine (v1 for Legacy and Hybrid).
[[nodiscard]] Result<std::unique_ptr<CgroupDriver>> make_cgroup_driver(CgroupMode mode);

// Owns a created cgroup: destroy() in the destructor unless released.
class CgroupGuard {
 public:
  CgroupGuard() = default;
  explicit CgroupGuard(std::unique_ptr<CgroupDriver> d) : driver_(std::move(d)) {}
  CgroupGuard(CgroupGuard&&) noexcept = default;
  CgroupGuard& operator=(CgroupGuard&&) noexcept = default;
  ~CgroupGuard() {
    if (driver_) (void)driver_->destroy();
  }
  [[nodiscard]] CgroupDriver* operator->() const { return driver_.get(); }
  [[nodiscard]] CgroupDriver* get() const { return driver_.get(); }

 private:
  std::unique_ptr<CgroupDriver> driver_;
};

// Parses "5m", "1.5g", "512k", "1024" (bytes; b,k,m,g,t suffixes, case-insensitive).
[[nodiscard]] Result<int64_t> parse_memory_size(std::string_view text);
// "1.5" -> quota 150000 for period 100000.
[[nodiscard]] Result<int64_t> parse_cpus(std::string_view text, uint64_t period);

}  // namespace kiste::runtime
