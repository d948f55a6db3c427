// cgroup v2, systemd manager: the container's cgroup is a transient scope with Delegate=yes
// (`kiste-<id>.scope` in `kiste.slice` or --cgroup-parent), as runc's and crun's systemd drivers
// make it. systemd refuses an empty scope, so a placeholder process (a CLONE_VM child that only
// waits) holds it until the container has been cloned straight into the scope's cgroup
// (CLONE_INTO_CGROUP: the container itself never migrates); then the placeholder goes. Limits are
// unit properties (so a daemon-reload does not reset them) and are written to the cgroup too.
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <memory>

#include <kiste/base/sys.hpp>
#include <kiste/runtime/cgroup.hpp>

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

// The scope's first process until the container is in: it blocks every signal it can and dies
// with kiste (PDEATHSIG).
int placeholder_main(void*) {
  sigset_t all;
  ::sigfillset(&all);
  ::sigprocmask(SIG_SETMASK, &all, nullptr);
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  for (;;) ::pause();
}

class Placeholder {
 public:
  Status spawn() {
    stack_ = std::make_unique<char[]>(kStack);
    pid_ = ::clone(placeholder_main, stack_.get() + kStack, CLONE_VM | SIGCHLD, nullptr);
    if (pid_ < 0) return std::unexpected(sys_error("clone", "the scope's placeholder process"));
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
  static constexpr size_t kStack = 16 * 1024;
  std::unique_ptr<char[]> stack_;
  pid_t pid_ = -1;
};

class SystemdScopeDriver final : public detail::CgroupV2Dir {
 public:
  SystemdScopeDriver(fs::path mount, std::string slice, std::string slice_dir)
      : mount_(std::move(mount)), slice_(std::move(slice)), slice_dir_(std::move(slice_dir)) {}
  ~SystemdScopeDriver() override { (void)destroy(); }

  Status create(std::string_view name, const CgroupPlan& plan) override {
    KISTE_ASSIGN_OR_RETURN(detail::SystemdBus bus, detail::SystemdBus::connect());
    bus_ = std::make_unique<detail::SystemdBus>(std::move(bus));
    KISTE_TRY(placeholder_.spawn());
    const std::string unit = std::string(name) + ".scope";
    if (auto r = bus_->start_scope(unit, slice_, placeholder_.pid(), systemd_unit_properties(plan)); !r) {
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
    Status ready = attach(dir, plan);
    if (ready) ready = check_controllers(plan);
    if (!ready) {
      (void)destroy();
      return ready;
    }
    return {};
  }

  void started() override { placeholder_.end(); }

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

 private:
  fs::path mount_;
  std::string slice_;
  std::string slice_dir_;
  std::unique_ptr<detail::SystemdBus> bus_;
  Placeholder placeholder_;
  std::string unit_;
};

}  // namespace

Result<std::unique_ptr<CgroupDriver>> make_cgroup_systemd_driver(const fs::path& mount_point,
                                                                 std::string slice) {
  KISTE_ASSIGN_OR_RETURN(std::string dir, slice_path(slice));
  return std::unique_ptr<CgroupDriver>(
      new SystemdScopeDriver(mount_point, std::move(slice), std::move(dir)));
}

Status stop_systemd_unit(std::string_view unit) {
  KISTE_ASSIGN_OR_RETURN(detail::SystemdBus bus, detail::SystemdBus::connect());
  return bus.stop_unit(unit);
}

}  // namespace kiste::runtime
