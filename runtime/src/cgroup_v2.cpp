// cgroup v2: one directory under the caller's own cgroup; the needed controllers are enabled in
// the caller's cgroup.subtree_control first.
#include <fcntl.h>
#include <signal.h>

#include <algorithm>
#include <sstream>

#include <kiste/base/sys.hpp>
#include <kiste/runtime/cgroup.hpp>

#include "cgroup_util.hpp"

namespace kiste::runtime {

namespace fs = std::filesystem;

namespace {

class CgroupV2Driver final : public CgroupDriver {
 public:
  explicit CgroupV2Driver(fs::path parent) : parent_(std::move(parent)) {}
  ~CgroupV2Driver() override { (void)destroy(); }

  Status create(std::string_view name, const CgroupPlan& plan) override {
    if (!plan.controllers.empty()) {
      KISTE_ASSIGN_OR_RETURN(std::string avail, sys::read_file(parent_ / "cgroup.controllers"));
      std::istringstream in(avail);
      std::vector<std::string> have{std::istream_iterator<std::string>(in), {}};
      auto enabled = sys::read_file(parent_ / "cgroup.subtree_control").value_or("");
      for (const std::string& c : plan.controllers) {
        if (std::find(have.begin(), have.end(), c) == have.end()) {
          return failf(Errc::Unsupported,
                       "cgroup v2 controller {}: not available in {} (not delegated)", quote(c),
                       quote(parent_.native()));
        }
        if (enabled.find(c) != std::string::npos) continue;
        KISTE_TRY(with_context(detail::write_cgroup_file(parent_ / "cgroup.subtree_control", "+" + c),
                               "enable cgroup v2 controller"));
      }
    }
    fs::path dir = parent_ / std::string(name);
    if (::mkdir(dir.c_str(), 0755) != 0) {
      return std::unexpected(sys_error("create cgroup", dir.native()));
    }
    dir_ = dir;
    if (!plan.device_rules.empty()) {
      // Before any process joins: nothing in the cgroup ever runs without the filter.
      auto dfd = sys::open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      Result<UniqueFd> prog = dfd ? attach_device_filter(dfd->get(), plan.device_rules)
                                  : Result<UniqueFd>(std::unexpected(std::move(dfd).error()));
      if (!prog) {
        (void)destroy();
        return std::unexpected(std::move(prog).error().with_context("cgroup v2 device filter"));
      }
    }
    return {};
  }

  Status apply(const CgroupPlan& plan) override {
    for (const CgroupWrite& w : plan.writes) {
      KISTE_TRY(detail::write_cgroup_file(dir_ / w.file, w.value));
    }
    return {};
  }

  Status add_process(pid_t pid) override {
    return detail::write_cgroup_file(dir_ / "cgroup.procs", std::to_string(pid));
  }

  Result<UniqueFd> open_clone_target() override {
    if (dir_.empty()) return fail(Errc::InvalidArgument, "cgroup v2: no cgroup was created");
    return sys::open(dir_, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  }

  Result<CgroupStats> stats() override {
    CgroupStats st;
    st.oom_killed = detail::read_keyed(dir_ / "memory.events", "oom_kill") > 0;
    auto lim = sys::read_file(dir_ / "memory.max", 64);
    if (lim && !lim->starts_with("max")) st.memory_limit = std::stoll(*lim);
    auto peak = sys::read_file(dir_ / "memory.peak", 64);
    if (peak) st.memory_peak = std::stoull(*peak);
    return st;
  }

  Status destroy() override {
    if (dir_.empty()) return {};
    // cgroup.kill (5.14+) kills the whole subtree atomically.
    (void)detail::write_cgroup_file(dir_ / "cgroup.kill", "1");
    auto r = detail::kill_and_remove(dir_);
    dir_.clear();
    return r;
  }

  std::vector<fs::path> paths() const override {
    if (dir_.empty()) return {};
    return {dir_};
  }

 private:
  fs::path parent_;
  fs::path dir_;
};

}  // namespace

Result<std::unique_ptr<CgroupDriver>> make_cgroup_v2_driver(const fs::path& mount_point,
                                                            std::string self_path) {
  if (self_path.empty()) {
    KISTE_ASSIGN_OR_RETURN(std::string sc, sys::read_file("/proc/self/cgroup", 1 << 20));
    std::istringstream in(sc);
    std::string line;
    while (std::getline(in, line)) {
      if (line.starts_with("0::")) self_path = line.substr(3);
    }
    if (self_path.empty()) return fail(Errc::Unsupported, "cgroup v2: no `0::` line in /proc/self/cgroup");
  }
  return std::unique_ptr<CgroupDriver>(
      new CgroupV2Driver(mount_point / fs::path(self_path).relative_path()));
}

}  // namespace kiste::runtime
