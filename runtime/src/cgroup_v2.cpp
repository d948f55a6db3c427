// cgroup v2, cgroupfs manager: `<mount>/<parent>/<name>`, a sibling of the callers' cgroups,
// never inside one. The controllers the plan needs are enabled in cgroup.subtree_control from the
// root down to the parent: the root is exempt from the "no internal processes" rule, and any
// other cgroup on the way must have no processes of its own (else one line names it).
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <sstream>

#include <kiste/base/sys.hpp>
#include <kiste/runtime/cgroup.hpp>

#include "cgroup_util.hpp"
#include "cgroup_v2_dir.hpp"

namespace kiste::runtime {

namespace fs = std::filesystem;

namespace detail {

std::vector<std::string> words(std::string_view text) {
  std::istringstream in{std::string(text)};
  return {std::istream_iterator<std::string>(in), {}};
}

Status CgroupV2Dir::attach(const fs::path& dir, const CgroupPlan& plan) {
  dir_ = dir;
  if (plan.device_rules.empty()) return {};
  // Before any process joins: nothing in the cgroup ever runs without the filter.
  auto dfd = sys::open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  Result<UniqueFd> prog = dfd ? attach_device_filter(dfd->get(), plan.device_rules)
                              : Result<UniqueFd>(std::unexpected(std::move(dfd).error()));
  if (!prog) return std::unexpected(std::move(prog).error().with_context("cgroup v2 device filter"));
  return {};
}

Status CgroupV2Dir::check_controllers(const CgroupPlan& plan) const {
  auto have = words(sys::read_file(dir_ / "cgroup.controllers").value_or(""));
  for (const std::string& c : plan.controllers) {
    if (std::find(have.begin(), have.end(), c) == have.end()) {
      return failf(Errc::Unsupported, "cgroup v2 controller {}: not delegated to {}", quote(c),
                   quote(dir_.native()));
    }
  }
  return {};
}

Status CgroupV2Dir::apply(const CgroupPlan& plan) {
  for (const CgroupWrite& w : plan.writes) {
    auto r = write_cgroup_file(dir_ / w.file, w.value);
    if (!r && !(w.optional && r.error().sys_errno == ENOENT)) return r;
  }
  return {};
}

Status CgroupV2Dir::add_process(pid_t pid) {
  return write_cgroup_file(dir_ / "cgroup.procs", std::to_string(pid));
}

Result<UniqueFd> CgroupV2Dir::open_clone_target() {
  if (dir_.empty()) return fail(Errc::InvalidArgument, "cgroup v2: no cgroup was created");
  return sys::open(dir_, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

Result<CgroupStats> CgroupV2Dir::stats() {
  CgroupStats st;
  st.oom_killed = read_keyed(dir_ / "memory.events", "oom_kill") > 0;
  auto lim = sys::read_file(dir_ / "memory.max", 64);
  if (lim && !lim->starts_with("max")) st.memory_limit = std::stoll(*lim);
  auto peak = sys::read_file(dir_ / "memory.peak", 64);
  if (peak) st.memory_peak = std::stoull(*peak);
  return st;
}

Status CgroupV2Dir::kill_and_remove_dir() {
  if (dir_.empty()) return {};
  // cgroup.kill (5.14+) kills the whole subtree atomically.
  (void)write_cgroup_file(dir_ / "cgroup.kill", "1");
  auto r = kill_and_remove(dir_);
  dir_.clear();
  return r;
}

}  // namespace detail

namespace {

class CgroupV2Driver final : public detail::CgroupV2Dir {
 public:
  CgroupV2Driver(fs::path mount, fs::path parent) : mount_(std::move(mount)), parent_(std::move(parent)) {}
  ~CgroupV2Driver() override { (void)destroy(); }

  Status create(std::string_view name, const CgroupPlan& plan) override {
    KISTE_TRY(enable_down_to_parent(plan));
    fs::path dir = mount_ / parent_ / std::string(name);
    if (::mkdir(dir.c_str(), 0755) != 0) {
      return std::unexpected(sys_error("create cgroup", dir.native()));
    }
    if (auto r = attach(dir, plan); !r) {
      (void)destroy();
      return r;
    }
    return {};
  }

  Status destroy() override { return kill_and_remove_dir(); }

 private:
  // Each cgroup from the root to the parent: exists (the default parent is made), offers the
  // controllers, and passes them down.
  Status enable_down_to_parent(const CgroupPlan& plan) {
    fs::path at = mount_;
    std::vector<fs::path> levels{at};
    for (const auto& part : parent_) {
      at /= part;
      levels.push_back(at);
    }
    for (size_t i = 0; i < levels.size(); ++i) {
      const fs::path& level = levels[i];
      if (i > 0 && ::mkdir(level.c_str(), 0755) != 0 && errno != EEXIST) {
        return std::unexpected(sys_error("create cgroup", level.native()));
      }
      if (plan.controllers.empty() && plan.wanted.empty()) continue;
      KISTE_ASSIGN_OR_RETURN(std::string avail, sys::read_file(level / "cgroup.controllers"));
      auto have = detail::words(avail);
      auto enabled = detail::words(sys::read_file(level / "cgroup.subtree_control").value_or(""));
      for (const std::string& c : plan.controllers) {
        if (std::find(have.begin(), have.end(), c) == have.end()) {
          return failf(Errc::Unsupported,
                       "cgroup v2 controller {}: not available in {} (not delegated)", quote(c),
                       quote(level.native()));
        }
        if (std::find(enabled.begin(), enabled.end(), c) != enabled.end()) continue;
        if (i > 0 && !detail::cgroup_pids(level).empty()) {
          return failf(Errc::Unsupported,
                       "cgroup {} has processes of its own, so the {} controller cannot be enabled "
                       "for the containers below it (cgroup v2's no-internal-processes rule); pass "
                       "--cgroup-parent with a cgroup that holds no processes",
                       quote(level.native()), c);
        }
        KISTE_TRY(with_context(detail::write_cgroup_file(level / "cgroup.subtree_control", "+" + c),
                               "enable cgroup v2 controller"));
      }
      // The controllers stats and the OOM report read, where this level can pass them down
      // without breaking a rule: never an error (a container without them runs, its stats say
      // "--").
      for (const std::string& c : plan.wanted) {
        if (std::find(have.begin(), have.end(), c) == have.end() ||
            std::find(enabled.begin(), enabled.end(), c) != enabled.end()) {
          continue;
        }
        if (i > 0 && !detail::cgroup_pids(level).empty()) continue;
        (void)detail::write_cgroup_file(level / "cgroup.subtree_control", "+" + c);
      }
    }
    return {};
  }

  fs::path mount_;
  fs::path parent_;
};

}  // namespace

Result<std::unique_ptr<CgroupDriver>> make_cgroup_v2_driver(const fs::path& mount_point,
                                                            std::string parent) {
  KISTE_ASSIGN_OR_RETURN(fs::path rel, cgroupfs_parent(parent));
  return std::unique_ptr<CgroupDriver>(new CgroupV2Driver(mount_point, std::move(rel)));
}

}  // namespace kiste::runtime
