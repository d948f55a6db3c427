#pragma once
// cgroups: a plan of {controller, file, value} writes derived from Resources (unit-tested for v1
// and v2), where a container's cgroup goes (the placement: a systemd transient scope or a
// cgroupfs path under a kiste parent, never inside the caller's own cgroup on v2), drivers that
// create it, and a guard that kills what is left and removes it.
#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <utility>
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

// Who makes the container's cgroup (podman's --cgroup-manager).
//  - Systemd: a transient scope `kiste-<id>.scope` in a slice (default `kiste.slice`), created
//    over D-Bus with Delegate=yes, as runc's and crun's systemd drivers do. Pure v2 only.
//  - Cgroupfs: `<cgroup root>/<parent>/kiste-<id>` (v2: parent default `kiste`, a sibling of the
//    callers' cgroups; controllers are enabled down the path from the root). On v1 the default
//    parent is the caller's own cgroup in each hierarchy.
//  - None: no cgroup at all (rootless kiste on a host that delegates none to the user): the
//    container stays in the caller's cgroup and a resource limit is refused, never ignored.
enum class CgroupManager { Cgroupfs, Systemd, None };

// Which systemd makes the scopes (CgroupManager::Systemd): the system manager, over the system
// bus (root), or the calling user's own manager (`user@UID.service`, Delegate=yes on Debian) over
// the user bus ($DBUS_SESSION_BUS_ADDRESS, else $XDG_RUNTIME_DIR/bus): rootless kiste on a
// systemd host. The user's scopes live in its delegated subtree, so it may write their limits.
enum class SystemdInstance { System, User };

struct CgroupPlacement {
  std::optional<CgroupManager> manager;  // default: default_cgroup_manager()
  SystemdInstance systemd = SystemdInstance::System;
  // None: why there is no cgroup (the refusal of a limit names it).
  std::string no_cgroup_reason;
  // --cgroup-parent: a slice name for systemd ("kiste.slice"), else a cgroup path relative to
  // the hierarchy root ("kiste", "/ci/jobs"). Empty: the manager's default.
  std::string parent;
  // cgroup v2: a missing parent is made (kiste-runc's cgroupsPath, as runc makes it) instead of
  // refused (--cgroup-parent names a cgroup that must exist).
  bool make_parent = false;
};

[[nodiscard]] Result<CgroupManager> parse_cgroup_manager(std::string_view name);
[[nodiscard]] std::string_view to_string(CgroupManager m);
// Systemd when systemd is PID 1 (`/run/systemd/system` exists) on a pure v2 host, else cgroupfs.
[[nodiscard]] CgroupManager default_cgroup_manager(CgroupMode mode);
// A slice's cgroup path, as systemd nests it: "a-b.slice" -> "a.slice/a-b.slice"; "-.slice" ->
// "". Anything that is not a valid slice name is an error that says so.
[[nodiscard]] Result<std::string> slice_path(std::string_view slice);
// A cgroupfs parent ("kiste", "/a/b") as a relative path below the hierarchy root; refuses ".."
// and empty components.
[[nodiscard]] Result<std::filesystem::path> cgroupfs_parent(std::string_view parent);

struct CgroupWrite {
  std::string controller;  // v1 hierarchy ("memory", "cpu", "pids", "devices"); v2: the controller
  std::string file;        // "memory.limit_in_bytes" / "memory.max"
  std::string value;
  bool optional = false;  // a missing file is fine (a default, not something the user asked for)
  bool operator==(const CgroupWrite&) const = default;
};

struct CgroupPlan {
  std::vector<std::string> controllers;  // needed controllers, in creation order
  // v2: controllers enabled too where the parent allows it, for stats and the OOM report
  // (memory.events, io.stat, pids.current), as runc enables every available one; never an error.
  std::vector<std::string> wanted;
  std::vector<CgroupWrite> writes;       // in order
  // v2: the eBPF device filter to attach (v1: the same rules are devices.allow writes). Empty:
  // every device is allowed (--privileged).
  std::vector<DeviceRule> device_rules;
  [[nodiscard]] static Result<CgroupPlan> from_resources(const Resources& res, CgroupMode mode,
                                                         bool privileged = false);
};

// The plan's limits as systemd unit properties (MemoryMax, MemorySwapMax, TasksMax, CPUWeight,
// CPUQuotaPerSecUSec, CPUQuotaPeriodUSec; "max" is UINT64_MAX, systemd's infinity).
[[nodiscard]] std::vector<std::pair<std::string, uint64_t>> systemd_unit_properties(
    const CgroupPlan& plan);

struct CgroupStats {
  bool oom_killed = false;
  std::optional<int64_t> memory_limit;
  std::optional<uint64_t> memory_peak;
};

// One container cgroup. create() makes it (a directory per v1 hierarchy, one on v2, a scope for
// systemd), apply() writes the plan, add_process() moves a pid in, destroy() kills what is left
// and removes it (also run by the destructor).
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
  // From now on the cgroup is not this driver's: destroy() (and the destructor) leave it alone
  // (an OCI container outlives its `create`; `delete` removes it by its recorded paths).
  virtual void forget() = 0;
  // The systemd unit that owns the cgroup ("kiste-<id>.scope"), empty for cgroupfs.
  [[nodiscard]] virtual std::string unit() const { return {}; }
  // v1 hierarchies to show inside the container (name, mount options).
  [[nodiscard]] virtual std::vector<std::pair<std::string, std::string>> v1_hierarchies() const {
    return {};
  }
};

// v1: hierarchies from /proc/self/mountinfo, the caller's cgroup per hierarchy from
// /proc/self/cgroup (or the given files, for tests). The container gets a cgroup in EVERY
// mounted hierarchy: one it stayed at the root of would be reachable (release_agent) from its
// cgroup namespace. `parent` (cgroupfs_parent form) replaces the caller's cgroup.
[[nodiscard]] Result<std::unique_ptr<CgroupDriver>> make_cgroup_v1_driver(
    const std::filesystem::path& mountinfo = "/proc/self/mountinfo",
    const std::filesystem::path& self_cgroup = "/proc/self/cgroup", std::string parent = {});
// v2 cgroupfs: `<mount_point>/<parent>/<name>`; the needed controllers are enabled in
// cgroup.subtree_control from the root down to the parent, never in a cgroup with processes.
[[nodiscard]] Result<std::unique_ptr<CgroupDriver>> make_cgroup_v2_driver(
    const std::filesystem::path& mount_point = "/sys/fs/cgroup", std::string parent = "kiste");
// v2 systemd: a transient scope `<name>.scope` in `slice`, over the system bus, or the user bus
// for SystemdInstance::User (libsystemd is loaded on first use, so hosts that never use this path
// never load it). The user's scope gets no device filter (an unprivileged user cannot attach
// one; in its user namespace no device node can be made anyway), and the container joins it
// through the manager (AttachProcessesToUnit): the kernel refuses an unprivileged move between
// the caller's cgroup and the user's subtree, which systemd does for it.
[[nodiscard]] Result<std::unique_ptr<CgroupDriver>> make_cgroup_systemd_driver(
    const std::filesystem::path& mount_point = "/sys/fs/cgroup", std::string slice = "kiste.slice",
    SystemdInstance instance = SystemdInstance::System);
// No cgroup: creates nothing, moves nothing, reports no stats (CgroupManager::None).
[[nodiscard]] std::unique_ptr<CgroupDriver> make_no_cgroup_driver();
// The first limit `res` asks for, as its flag ("--memory", "--cpus", …), empty when none: what
// CgroupManager::None refuses.
[[nodiscard]] std::string_view first_limit_flag(const Resources& res);
// The driver for this machine and placement (v1 for Legacy and Hybrid; `v2_mount` replaces
// /sys/fs/cgroup for tests on a hybrid host).
[[nodiscard]] Result<std::unique_ptr<CgroupDriver>> make_cgroup_driver(
    CgroupMode mode, const CgroupPlacement& placement = {},
    const std::filesystem::path& v2_mount = "/sys/fs/cgroup");
// Stops a systemd unit and resets it if it failed (what a SIGKILLed kiste left); a unit that
// does not exist is not an error.
[[nodiscard]] Status stop_systemd_unit(std::string_view unit,
                                       SystemdInstance instance = SystemdInstance::System);

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
  // The cgroup is the caller's from now on (an OCI container outlives its `create`).
  void release() {
    if (driver_) driver_->forget();
    driver_.reset();
  }

 private:
  std::unique_ptr<CgroupDriver> driver_;
};

// Kills every process in these cgroup directories (freezing v1 hierarchies first) and removes
// them, deepest first; a directory that is already gone is not an error.
[[nodiscard]] Status remove_cgroup_dirs(const std::vector<std::filesystem::path>& dirs);

// Parses "5m", "1.5g", "512k", "1024" (bytes; b,k,m,g,t suffixes, case-insensitive).
[[nodiscard]] Result<int64_t> parse_memory_size(std::string_view text);
// "1.5" -> quota 150000 for period 100000.
[[nodiscard]] Result<int64_t> parse_cpus(std::string_view text, uint64_t period);

}  // namespace kiste::runtime
