// cgroup v2, systemd manager: the container's cgroup is a transient scope with Delegate=yes
// (`kiste-<id>.scope` in `kiste.slice` or --cgroup-parent), as runc's and crun's systemd drivers
// make it. systemd refuses an empty scope, so a placeholder process (`kiste-init --hold`) holds
// it; the container is cloned straight into the scope's cgroup (CLONE_INTO_CGROUP:
// it never migrates). The placeholder stays until the scope is destroyed (see with_holder). Limits are
// unit properties (so a daemon-reload does not reset them) and are written to the cgroup too.
// Rootless kiste asks the user's own manager (SystemdInstance::User): the scope is then in the
// user's delegated subtree, made by that manager as the user, so its files are the user's.
#include <spawn.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <memory>

#include <kiste/base/sys.hpp>
#include <kiste/runtime/cgroup.hpp>
#include <kiste/runtime/run_options.hpp>

#include "cgroup_v2_dir.hpp"
#include "systemd_bus.hpp"

namespace kiste::runtime {

namespace fs = std::filesystem;

std::vector<std::pair<std::string, uint64_t>> systemd_unit_properties(const CgroupPlan& plan) {
  std::vector<std::pair<std::string, uint64_t>> out;
  auto number = [](std::string_view v) -> uint64_t {
    if (v == "max") return UINT64_MAX;  // systemd's "infinity"
    uint64_t n = 0;
    std::from_chars(v.data(), v.data() + v.size(), n);
    return n;
  };
  for (const CgroupWrite& w : plan.writes) {
    if (w.file == "memory.max") out.emplace_back("MemoryMax", number(w.value));
    if (w.file == "memory.swap.max") out.emplace_back("MemorySwapMax", number(w.value));
    if (w.file == "pids.max") out.emplace_back("TasksMax", number(w.value));
    if (w.file == "cpu.weight") out.emplace_back("CPUWeight", number(w.value));
    if (w.file == "cpu.max") {
      std::string_view v = w.value;
      size_t sp = v.find(' ');
      if (sp == std::string_view::npos) continue;
      uint64_t period = number(v.substr(sp + 1));
      uint64_t quota = number(v.substr(0, sp));
      if (period == 0) continue;
      out.emplace_back("CPUQuotaPeriodUSec", period);
      out.emplace_back("CPUQuotaPerSecUSec",
                       quota == UINT64_MAX ? UINT64_MAX : quota * 1'000'000 / period);
    }
  }
  return out;
}

namespace {

// The scope's first process: kiste-init --hold, spawned (vfork + exec, so it has its own small
// memory: a CLONE_VM child would share kiste's, and the scope's OOM killer kills every process
// sharing the victim's memory, kiste included).
class Placeholder {
 public:
  Status spawn() {
    const fs::path init = default_init_binary();
    if (init.empty()) {
      return fail(Errc::NotFound,
                  "cgroup manager systemd: kiste-init is not installed beside kiste (it holds the "
                  "container's scope)");
    }
    std::string path = init.native();
    char arg0[] = "kiste-init";
    char arg1[] = "--hold";
    char* argv[] = {arg0, arg1, nullptr};
    char* envp[] = {nullptr};
    int rc = ::posix_spawn(&pid_, path.c_str(), nullptr, nullptr, argv, envp);
    if (rc != 0) {
      pid_ = -1;
      return std::unexpected(sys_error_code(rc, "spawn", path));
    }
    return {};
  }
  void end() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    int st;
    while (::waitpid(pid_, &st, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
  }
  ~Placeholder() { end(); }
  [[nodiscard]] pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
};

class SystemdScopeDriver final : public detail::CgroupV2Dir {
 public:
  SystemdScopeDriver(fs::path mount, std::string slice, std::string slice_dir,
                     SystemdInstance instance)
      : mount_(std::move(mount)),
        slice_(std::move(slice)),
        slice_dir_(std::move(slice_dir)),
        instance_(instance) {}
  ~SystemdScopeDriver() override { (void)destroy(); }

  Status create(std::string_view name, const CgroupPlan& plan) override {
    KISTE_ASSIGN_OR_RETURN(detail::SystemdBus bus, detail::SystemdBus::connect(instance_));
    bus_ = std::make_unique<detail::SystemdBus>(std::move(bus));
    KISTE_TRY(placeholder_.spawn());
    const std::string unit = std::string(name) + ".scope";
    if (auto r = bus_->start_scope(unit, slice_, placeholder_.pid(),
                                   systemd_unit_properties(with_holder(plan)));
        !r) {
      placeholder_.end();
      (void)bus_->stop_unit(unit);
      return r;
    }
    unit_ = unit;
    // The scope's cgroup, as the placeholder sees it: where systemd really put it.
    fs::path dir = mount_ / fs::path(slice_dir_) / unit;
    auto own = sys::read_file(fmt::format("/proc/{}/cgroup", placeholder_.pid()), 4096);
    if (own && own->starts_with("0::/")) {
      std::string rel = own->substr(4);
      while (!rel.empty() && rel.back() == '\n') rel.pop_back();
      dir = mount_ / rel;
    }
    // The user's scope: no device filter (see make_cgroup_systemd_driver).
    Status ready = attach(dir, instance_ == SystemdInstance::User ? without_devices(plan) : plan);
    if (ready) ready = check_controllers(plan);
    if (!ready) {
      (void)destroy();
      return ready;
    }
    return {};
  }

  Status apply(const CgroupPlan& plan) override { return CgroupV2Dir::apply(with_holder(plan)); }

  // The user's manager moves the container in: the kernel refuses an unprivileged clone into
  // (or move to) a cgroup whose common ancestor with the caller's is not the user's.
  Result<UniqueFd> open_clone_target() override {
    if (instance_ == SystemdInstance::User) return UniqueFd{};
    return CgroupV2Dir::open_clone_target();
  }
  Status add_process(pid_t pid) override {
    if (instance_ != SystemdInstance::User) return CgroupV2Dir::add_process(pid);
    if (!bus_ || unit_.empty()) return fail(Errc::InvalidArgument, "cgroup v2: no scope was created");
    return bus_->attach_process(unit_, pid);
  }

  Status destroy() override {
    placeholder_.end();
    Status removed = kill_and_remove_dir();
    if (unit_.empty() || !bus_) return removed;
    Status stopped = bus_->stop_unit(unit_);
    unit_.clear();
    if (!removed) return removed;
    return stopped;
  }

  std::string unit() const override { return unit_; }
  void forget() override {
    CgroupV2Dir::forget();
    unit_.clear();
  }

 private:
  // The placeholder stays in the scope until destroy(): systemd stops a scope (and removes its
  // cgroup) the moment it is empty, which would race kiste's reading of memory.events after
  // the container's exit (a lost OOM report). It is one task of the scope, so the pids limit
  // gets one more.
  static CgroupPlan with_holder(const CgroupPlan& plan) {
    CgroupPlan p = plan;
    for (CgroupWrite& w : p.writes) {
      if (w.file != "pids.max" || w.value == "max") continue;
      w.value = std::to_string(std::stoll(w.value) + 1);
    }
    return p;
  }

  static CgroupPlan without_devices(const CgroupPlan& plan) {
    CgroupPlan p = plan;
    p.device_rules.clear();
    return p;
  }

  fs::path mount_;
  std::string slice_;
  std::string slice_dir_;
  SystemdInstance instance_;
  std::unique_ptr<detail::SystemdBus> bus_;
  Placeholder placeholder_;
  std::string unit_;
};

}  // namespace

Result<std::unique_ptr<CgroupDriver>> make_cgroup_systemd_driver(const fs::path& mount_point,
                                                                 std::string slice,
                                                                 SystemdInstance instance) {
  KISTE_ASSIGN_OR_RETURN(std::string dir, slice_path(slice));
  return std::unique_ptr<CgroupDriver>(
      new SystemdScopeDriver(mount_point, std::move(slice), std::move(dir), instance));
}

Status stop_systemd_unit(std::string_view unit, SystemdInstance instance) {
  KISTE_ASSIGN_OR_RETURN(detail::SystemdBus bus, detail::SystemdBus::connect(instance));
  return bus.stop_unit(unit);
}

}  // namespace kiste::runtime
