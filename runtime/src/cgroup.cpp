// Cgroup mode detection, the resource plan, size parsing. Drivers: cgroup_v1.cpp, cgroup_v2.cpp.
#include <kiste/runtime/cgroup.hpp>

#include <linux/magic.h>

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <limits>

#include <kiste/base/decimal.hpp>
#include <kiste/base/sys.hpp>

#include "cgroup_util.hpp"

namespace kiste::runtime {

namespace fs = std::filesystem;

Result<CgroupMode> detect_cgroup_mode(const fs::path& cgroup_root) {
  KISTE_ASSIGN_OR_RETURN(struct statfs root, sys::statfs(cgroup_root));
  if (root.f_type == CGROUP2_SUPER_MAGIC) return CgroupMode::Unified;
  if (root.f_type != TMPFS_MAGIC) {
    return failf(Errc::Unsupported, "cgroups: {} is neither cgroup2 nor a tmpfs of v1 hierarchies",
                 quote(cgroup_root.native()));
  }
  auto unified = sys::statfs(cgroup_root / "unified");
  if (unified && unified->f_type == CGROUP2_SUPER_MAGIC) return CgroupMode::Hybrid;
  return CgroupMode::Legacy;
}

Result<CgroupPlan> CgroupPlan::from_resources(const Resources& res, CgroupMode mode,
                                              bool privileged) {
  CgroupPlan plan;
  auto num = [](int64_t v) { return std::to_string(v); };
  if (res.memory && *res.memory <= 0) {
    return fail(Errc::InvalidArgument, "memory limit: must be positive");
  }
  if (res.memory_swap && *res.memory_swap != -1) {
    if (!res.memory) {
      return fail(Errc::InvalidArgument,
                  "memory-swap: needs a memory limit too (--memory-swap is memory plus swap)");
    }
    if (*res.memory_swap < *res.memory) {
      return failf(Errc::InvalidArgument,
                   "memory-swap {}: must be at least the memory limit {} (it is memory plus swap)",
                   *res.memory_swap, *res.memory);
    }
  }
  if (res.cpu_quota && !res.cpu_period) {
    return fail(Errc::InvalidArgument, "cpu quota: needs a period");
  }
  if (res.cpu_period && (*res.cpu_period < 1000 || *res.cpu_period > 1000000)) {
    return failf(Errc::InvalidArgument, "cpu period {}: must be between 1000 and 1000000",
                 *res.cpu_period);
  }
  if (res.cpu_quota && *res.cpu_quota < 1000) {
    return failf(Errc::InvalidArgument, "cpu quota {}: must be at least 1000", *res.cpu_quota);
  }
  if (res.cpu_shares && (*res.cpu_shares < 2 || *res.cpu_shares > 262144)) {
    return failf(Errc::InvalidArgument, "cpu shares {}: must be between 2 and 262144",
                 *res.cpu_shares);
  }
  if (res.pids && *res.pids == 0) {
    return fail(Errc::InvalidArgument, "pids limit: must be positive or -1 (unlimited)");
  }

  if (mode != CgroupMode::Unified) {
    // v1: a cgroup per controller; memory and pids always (OOM report, stats, cleanup), devices
    // for Docker's device allow-list, freezer to stop everything before killing it. cpu only
    // with CPU limits: a cpu cgroup of its own costs the container scheduling share on a busy
    // host (measured: `kiste run --rm true` 20-40% slower under load) and buys nothing without
    // limits.
    plan.controllers = {"memory", "pids", "freezer"};
    if (res.cpu_shares || res.cpu_period || res.cpu_quota) plan.controllers.push_back("cpu");
    if (!privileged) plan.controllers.push_back("devices");
    if (res.memory) {
      plan.writes.push_back({"memory", "memory.limit_in_bytes", num(*res.memory)});
      // Docker: without --memory-swap the container may use as much swap as memory.
      int64_t memsw = res.memory_swap ? *res.memory_swap : 2 * *res.memory;
      // Without swap accounting the file is missing: fine for the default, not when asked for.
      plan.writes.push_back({"memory", "memory.memsw.limit_in_bytes", num(memsw),
                             !res.memory_swap.has_value()});
    }
    if (res.cpu_shares) plan.writes.push_back({"cpu", "cpu.shares", num(*res.cpu_shares)});
    if (res.cpu_period) {
      plan.writes.push_back({"cpu", "cpu.cfs_period_us", num(static_cast<int64_t>(*res.cpu_period))});
    }
    if (res.cpu_quota) plan.writes.push_back({"cpu", "cpu.cfs_quota_us", num(*res.cpu_quota)});
    if (res.pids) {
      plan.writes.push_back({"pids", "pids.max", *res.pids < 0 ? "max" : num(*res.pids)});
    }
    if (!privileged) {
      // Docker's device cgroup: deny all, mknod anything, use only the default devices.
      plan.writes.push_back({"devices", "devices.deny", "a"});
      for (const DeviceRule& rule : docker_default_device_rules()) {
        plan.writes.push_back({"devices", "devices.allow", rule.to_string()});
      }
      for (const DeviceRule& rule : res.device_rules) {
        plan.writes.push_back({"devices", "devices.allow", rule.to_string()});
      }
    }
    return plan;
  }

  // v2: one cgroup; only the controllers that are needed get enabled in the parent.
  // No devices controller: the same rules as an eBPF program (device_filter.hpp).
  if (!privileged) {
    plan.device_rules = docker_default_device_rules();
    plan.device_rules.insert(plan.device_rules.end(), res.device_rules.begin(), res.device_rules.end());
  }
  plan.wanted = {"memory", "pids", "io"};
  auto need = [&plan](const char* c) {
    for (const auto& x : plan.controllers) {
      if (x == c) return;
    }
    plan.controllers.emplace_back(c);
  };
  if (res.memory) {
    need("memory");
    plan.writes.push_back({"memory", "memory.max", num(*res.memory)});
    int64_t memsw = res.memory_swap ? *res.memory_swap : 2 * *res.memory;
    plan.writes.push_back(
        {"memory", "memory.swap.max", memsw < 0 ? "max" : num(memsw - *res.memory)});
  }
  if (res.cpu_shares) {
    need("cpu");
    // runc's conversion: [2, 262144] -> [1, 10000].
    uint64_t weight = 1 + ((*res.cpu_shares - 2) * 9999) / 262142;
    plan.writes.push_back({"cpu", "cpu.weight", std::to_string(weight)});
  }
  if (res.cpu_period) {
    need("cpu");
    std::string quota = res.cpu_quota ? num(*res.cpu_quota) : "max";
    plan.writes.push_back({"cpu", "cpu.max", quota + " " + std::to_string(*res.cpu_period)});
  }
  if (res.pids) {
    need("pids");
    plan.writes.push_back({"pids", "pids.max", *res.pids < 0 ? "max" : num(*res.pids)});
  }
  return plan;
}

Status remove_cgroup_dirs(const std::vector<std::filesystem::path>& dirs) {
  for (const auto& cg : dirs) {
    if (::access((cg / "cgroup.kill").c_str(), F_OK) == 0) {
      (void)detail::write_cgroup_file(cg / "cgroup.kill", "1");
    } else if (::access((cg / "freezer.state").c_str(), F_OK) == 0 && !detail::cgroup_pids(cg).empty()) {
      (void)detail::write_cgroup_file(cg / "freezer.state", "FROZEN");
      for (pid_t p : detail::cgroup_pids(cg)) ::kill(p, SIGKILL);
      (void)detail::write_cgroup_file(cg / "freezer.state", "THAWED");
    }
  }
  Status first;
  for (auto it = dirs.rbegin(); it != dirs.rend(); ++it) {
    if (::access(it->c_str(), F_OK) != 0) continue;
    auto r = detail::kill_and_remove(*it);
    if (!r && first) first = std::move(r);
  }
  return first;
}

Result<int64_t> parse_memory_size(std::string_view text) {
  std::string_view s = text;
  if (s.empty()) return fail(Errc::InvalidArgument, "memory size: empty");
  int64_t mult = 1;
  char last = static_cast<char>(std::tolower(static_cast<unsigned char>(s.back())));
  if (last == 'b') {
    s.remove_suffix(1);
    if (!s.empty()) last = static_cast<char>(std::tolower(static_cast<unsigned char>(s.back())));
  }
  switch (last) {
    case 'k': mult = int64_t{1} << 10; break;
    case 'm': mult = int64_t{1} << 20; break;
    case 'g': mult = int64_t{1} << 30; break;
    case 't': mult = int64_t{1} << 40; break;
    default: mult = 0;
  }
  if (mult != 0) {
    s.remove_suffix(1);
  } else {
    mult = 1;
  }
  const double v = parse_decimal(s).value_or(0);
  if (!(v > 0) || v * static_cast<double>(mult) > 9.0e18) {
    return failf(Errc::InvalidArgument, "memory size {}: expected a number with b, k, m, g or t",
                 quote(text));
  }
  return static_cast<int64_t>(v * static_cast<double>(mult));
}

Result<int64_t> parse_cpus(std::string_view text, uint64_t period) {
  const double v = parse_decimal(text).value_or(0);
  if (!(v > 0) || v > 4096) {
    return failf(Errc::InvalidArgument, "cpus {}: expected a positive number like 1.5",
                 quote(text));
  }
  return static_cast<int64_t>(v * static_cast<double>(period) + 0.5);  // rounded, v > 0
}

Result<CgroupManager> parse_cgroup_manager(std::string_view name) {
  if (name == "systemd") return CgroupManager::Systemd;
  if (name == "cgroupfs") return CgroupManager::Cgroupfs;
  return failf(Errc::InvalidArgument, "cgroup manager {}: expected systemd or cgroupfs", quote(name));
}

std::string_view to_string(CgroupManager m) {
  if (m == CgroupManager::None) return "none";
  return m == CgroupManager::Systemd ? "systemd" : "cgroupfs";
}

CgroupManager default_cgroup_manager(CgroupMode mode) {
  if (mode != CgroupMode::Unified) return CgroupManager::Cgroupfs;
  struct stat st {};
  return ::stat("/run/systemd/system", &st) == 0 && S_ISDIR(st.st_mode) ? CgroupManager::Systemd
                                                                          : CgroupManager::Cgroupfs;
}

Result<std::string> slice_path(std::string_view slice) {
  auto bad = [&](std::string_view why) {
    return failf(Errc::InvalidArgument, "cgroup parent {}: {}", quote(slice), why);
  };
  if (!slice.ends_with(".slice")) {
    return bad("not a systemd slice (the systemd cgroup manager needs NAME.slice; "
               "use --cgroup-manager=cgroupfs for a cgroup path)");
  }
  std::string_view name = slice.substr(0, slice.size() - 6);
  if (name == "-") return std::string{};
  if (name.empty() || name.front() == '-' || name.back() == '-' ||
      name.find("--") != std::string_view::npos) {
    return bad("not a valid slice name");
  }
  for (char c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && std::string_view(":-_.\\").find(c) == std::string_view::npos) {
      return bad("not a valid slice name");
    }
  }
  std::string out;
  for (size_t i = 0; i <= name.size(); ++i) {
    if (i == name.size() || name[i] == '-') {
      if (!out.empty()) out += '/';
      out += std::string(name.substr(0, i)) + ".slice";
    }
  }
  return out;
}

Result<fs::path> cgroupfs_parent(std::string_view parent) {
  fs::path rel;
  std::string_view s = parent;
  while (!s.empty()) {
    size_t slash = s.find('/');
    std::string_view part = s.substr(0, slash);
    s.remove_prefix(slash == std::string_view::npos ? s.size() : slash + 1);
    if (part.empty()) continue;
    if (part == "." || part == "..") {
      return failf(Errc::InvalidArgument, "cgroup parent {}: `..` and `.` are not allowed",
                   quote(parent));
    }
    rel /= std::string(part);
  }
  return rel;
}

namespace {

class NoCgroupDriver final : public CgroupDriver {
 public:
  Status create(std::string_view, const CgroupPlan&) override { return {}; }
  Status apply(const CgroupPlan&) override { return {}; }
  Status add_process(pid_t) override { return {}; }
  Result<CgroupStats> stats() override { return CgroupStats{}; }
  Status destroy() override { return {}; }
  std::vector<fs::path> paths() const override { return {}; }
  void forget() override {}
};

}  // namespace

std::unique_ptr<CgroupDriver> make_no_cgroup_driver() { return std::make_unique<NoCgroupDriver>(); }

std::string_view first_limit_flag(const Resources& res) {
  if (res.memory) return "--memory";
  if (res.memory_swap) return "--memory-swap";
  if (res.cpu_quota || res.cpu_period) return "--cpus";
  if (res.cpu_shares) return "--cpu-shares";
  if (res.pids) return "--pids-limit";
  if (!res.device_rules.empty()) return "--device-cgroup-rule";
  return {};
}

Result<std::unique_ptr<CgroupDriver>> make_cgroup_driver(CgroupMode mode,
                                                         const CgroupPlacement& placement,
                                                         const fs::path& v2_mount) {
  const CgroupManager manager = placement.manager.value_or(default_cgroup_manager(mode));
  if (manager == CgroupManager::None) return make_no_cgroup_driver();
  if (manager == CgroupManager::Systemd) {
    if (mode != CgroupMode::Unified) {
      return fail(Errc::Unsupported,
                  "cgroup manager systemd: kiste drives systemd scopes on pure cgroup v2 hosts "
                  "only; this host has cgroup v1 controllers (use --cgroup-manager=cgroupfs)");
    }
    return make_cgroup_systemd_driver(
        v2_mount, placement.parent.empty() ? "kiste.slice" : placement.parent, placement.systemd);
  }
  if (mode == CgroupMode::Unified) {
    KISTE_ASSIGN_OR_RETURN(fs::path rel, cgroupfs_parent(placement.parent.empty() ? "kiste" : placement.parent));
    if (rel.empty()) {
      return failf(Errc::InvalidArgument,
                   "cgroup parent {}: the root cgroup cannot be the parent on cgroup v2",
                   quote(placement.parent));
    }
    if (!placement.parent.empty() && !placement.make_parent && ::access((v2_mount / rel).c_str(), F_OK) != 0) {
      return failf(Errc::NotFound, "cgroup parent {}: {} does not exist", quote(placement.parent),
                   quote((v2_mount / rel).native()));
    }
    return make_cgroup_v2_driver(v2_mount, rel.native());
  }
  if (placement.parent.empty()) return make_cgroup_v1_driver();
  KISTE_ASSIGN_OR_RETURN(fs::path rel, cgroupfs_parent(placement.parent));
  return make_cgroup_v1_driver("/proc/self/mountinfo", "/proc/self/cgroup", "/" + rel.native());
}

}  // namespace kiste::runtime
