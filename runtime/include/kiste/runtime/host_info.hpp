#pragma once
// What this host offers containers (`kiste info`): kernel, cgroup mode and manager, and the
// kernel features kiste uses, each probed for real (not guessed from the version).
#include <string>

#include <kiste/runtime/cgroup.hpp>

namespace kiste::runtime {

struct HostFeature {
  bool available = false;
  std::string detail;  // why not, or what was found ("max 63204 namespaces")
};

struct HostInfo {
  std::string kernel;        // uname release, e.g. "6.1.0-18-amd64"
  std::string architecture;  // uname machine
  std::optional<CgroupMode> cgroup_mode;
  std::string cgroup_mode_error;  // when it could not be detected
  CgroupManager cgroup_manager = CgroupManager::Cgroupfs;  // the default for this host
  HostFeature overlay;          // overlayfs in /proc/filesystems
  HostFeature user_namespaces;  // /proc/sys/user/max_user_namespaces > 0
  HostFeature seccomp;          // seccomp filters (prctl PR_GET_SECCOMP)
  HostFeature openat2;          // openat2(2) with RESOLVE_IN_ROOT
};

[[nodiscard]] HostInfo probe_host();

[[nodiscard]] std::string_view to_string(CgroupMode m);

}  // namespace kiste::runtime
