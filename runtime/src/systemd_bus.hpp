#pragma once
// The few systemd manager calls the systemd cgroup driver needs, over the system bus (or the user
// bus, to the user's own manager). libsystemd
// is dlopen'ed on first use: hosts that never use the systemd manager never load it, and kiste's
// start-up does not pay for it.
#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <kiste/base/error.hpp>
#include <kiste/runtime/cgroup.hpp>

namespace kiste::runtime::detail {

class SystemdBus {
 public:
  // Connects to the system bus (or the user's, for SystemdInstance::User) and subscribes to the
  // manager's job signals.
  [[nodiscard]] static Result<SystemdBus> connect(SystemdInstance instance = SystemdInstance::System);
  SystemdBus(SystemdBus&&) noexcept;
  SystemdBus& operator=(SystemdBus&&) noexcept;
  ~SystemdBus();

  // StartTransientUnit(unit, "fail") for a scope holding `pid`, with Delegate=yes, the given
  // slice and the numeric properties; waits for the job to finish.
  [[nodiscard]] Status start_scope(std::string_view unit, std::string_view slice, pid_t pid,
                                   const std::vector<std::pair<std::string, uint64_t>>& props);
  // AttachProcessesToUnit(unit, "", [pid]): the manager moves `pid` into the unit's cgroup (a
  // user's manager asks the system's when the kernel refuses it the move).
  [[nodiscard]] Status attach_process(std::string_view unit, pid_t pid);
  // StopUnit(unit, "replace") and wait; ResetFailedUnit. A unit systemd does not know is fine.
  [[nodiscard]] Status stop_unit(std::string_view unit);

 private:
  struct Impl;
  explicit SystemdBus(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace kiste::runtime::detail
