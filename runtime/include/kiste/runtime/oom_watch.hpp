#pragma once
// OOM notifications of a container's memory cgroup without polling, as runc's event stream gets
// them: on cgroup v1 an eventfd registered in `cgroup.event_control` for `memory.oom_control`
// (the kernel signals it at each OOM in the cgroup, and once more when the cgroup is removed); on
// v2 inotify on `memory.events` (the kernel notifies a change of any of its counters), whose
// `oom_kill` counter says how many processes the OOM killer took.
#include <cstdint>
#include <filesystem>
#include <optional>
#include <vector>

#include <kiste/base/error.hpp>
#include <kiste/base/unique_fd.hpp>

namespace kiste::runtime {

class OomWatch {
 public:
  // Watches the memory cgroup among `cgroup_dirs` (a container's, one per v1 hierarchy or the
  // one v2 dir); nullopt when none has a memory controller. OOM kills before this are not
  // reported.
  [[nodiscard]] static Result<std::optional<OomWatch>> open(const std::vector<std::filesystem::path>& cgroup_dirs);

  // Readable (poll) when there may be something to take().
  [[nodiscard]] int fd() const { return fd_.get(); }
  // Consumes what the kernel signalled; how many OOM events to report (v1: OOMs in the cgroup,
  // not counting its removal; v2: new OOM kills). 0 when the signal was something else.
  [[nodiscard]] Result<uint64_t> take();

 private:
  OomWatch() = default;
  bool v1_ = false;
  std::filesystem::path dir_;
  UniqueFd fd_;           // v1: the eventfd; v2: the inotify instance
  UniqueFd oom_control_;  // v1: registered with the eventfd; held while it is
  uint64_t kills_ = 0;    // v2: the oom_kill counter last seen
};

}  // namespace kiste::runtime
