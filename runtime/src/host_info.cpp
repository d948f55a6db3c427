#include <kiste/runtime/host_info.hpp>

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <kiste/base/sys.hpp>

namespace kiste::runtime {

namespace {

HostFeature probe_overlay() {
  auto fss = sys::read_file("/proc/filesystems", 1 << 16);
  if (!fss) return {false, fss.error().to_string()};
  if (fss->find("\toverlay\n") != std::string::npos) return {true, ""};
  return {false, "overlay is not in /proc/filesystems (modprobe overlay)"};
}

HostFeature probe_user_namespaces() {
  auto max = sys::read_file("/proc/sys/user/max_user_namespaces", 64);
  if (!max) return {false, "no /proc/sys/user/max_user_namespaces (kernel without CONFIG_USER_NS)"};
  std::string v = *max;
  while (!v.empty() && (v.back() == '\n' || v.back() == ' ')) v.pop_back();
  if (v == "0") return {false, "user.max_user_namespaces is 0"};
  return {true, "max " + v};
}

HostFeature probe_seccomp() {
  // EINVAL: the kernel was built without seccomp; otherwise 0 (this process is not filtered) or
  // 2 (it is, and can still add filters).
  int mode = ::prctl(PR_GET_SECCOMP, 0, 0, 0, 0);
  if (mode < 0) return {false, fmt::format("prctl(PR_GET_SECCOMP): {}", std::strerror(errno))};
  return {true, mode == 2 ? "kiste itself runs under a filter" : ""};
}

HostFeature probe_openat2() {
  open_how how{};
  how.flags = O_PATH | O_CLOEXEC;
  how.resolve = RESOLVE_IN_ROOT;
  long fd = ::syscall(SYS_openat2, AT_FDCWD, "/", &how, sizeof(how));
  if (fd >= 0) {
    ::close(static_cast<int>(fd));
    return {true, ""};
  }
  return {false, fmt::format("openat2: {} (kiste falls back to a checked walk)", std::strerror(errno))};
}

}  // namespace

std::string_view to_string(CgroupMode m) {
  switch (m) {
    case CgroupMode::Legacy: return "v1 (legacy)";
    case CgroupMode::Hybrid: return "v1 (hybrid: controllers on v1, an empty cgroup2 mount)";
    case CgroupMode::Unified: return "v2 (unified)";
  }
  return "unknown";
}

HostInfo probe_host() {
  HostInfo h;
  utsname u{};
  if (::uname(&u) == 0) {
    h.kernel = u.release;
    h.architecture = u.machine;
  }
  if (auto mode = detect_cgroup_mode()) {
    h.cgroup_mode = *mode;
    h.cgroup_manager = default_cgroup_manager(*mode);
  } else {
    h.cgroup_mode_error = mode.error().to_string();
  }
  h.overlay = probe_overlay();
  h.user_namespaces = probe_user_namespaces();
  h.seccomp = probe_seccomp();
  h.openat2 = probe_openat2();
  return h;
}

}  // namespace kiste::runtime
