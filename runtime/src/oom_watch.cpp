#include <kiste/runtime/oom_watch.hpp>

#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <cerrno>

#include <kiste/base/sys.hpp>

#include "cgroup_util.hpp"

namespace kiste::runtime {

namespace fs = std::filesystem;

Result<std::optional<OomWatch>> OomWatch::open(const std::vector<fs::path>& cgroup_dirs) {
  for (const fs::path& dir : cgroup_dirs) {
    if (::access((dir / "memory.oom_control").c_str(), F_OK) == 0) {
      OomWatch w;
      w.v1_ = true;
      w.dir_ = dir;
      w.fd_ = UniqueFd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
      if (!w.fd_) return std::unexpected(sys_error("eventfd", "OOM notifications"));
      KISTE_ASSIGN_OR_RETURN(w.oom_control_, sys::open(dir / "memory.oom_control", O_RDONLY | O_CLOEXEC));
      KISTE_ASSIGN_OR_RETURN(UniqueFd control, sys::open(dir / "cgroup.event_control", O_WRONLY | O_CLOEXEC));
      KISTE_TRY(sys::write_all(control.get(), fmt::format("{} {}", w.fd_.get(), w.oom_control_.get()),
                               (dir / "cgroup.event_control").native()));
      return std::optional<OomWatch>(std::move(w));
    }
    if (::access((dir / "memory.events").c_str(), F_OK) == 0) {
      OomWatch w;
      w.dir_ = dir;
      w.fd_ = UniqueFd(::inotify_init1(IN_CLOEXEC | IN_NONBLOCK));
      if (!w.fd_) return std::unexpected(sys_error("inotify_init1", "OOM notifications"));
      if (::inotify_add_watch(w.fd_.get(), (dir / "memory.events").c_str(), IN_MODIFY) < 0) {
        return std::unexpected(sys_error("inotify_add_watch", (dir / "memory.events").native()));
      }
      const int64_t n = detail::read_keyed(dir / "memory.events", "oom_kill");
      w.kills_ = n > 0 ? static_cast<uint64_t>(n) : 0;
      return std::optional<OomWatch>(std::move(w));
    }
  }
  return std::optional<OomWatch>();
}

Result<uint64_t> OomWatch::take() {
  if (v1_) {
    uint64_t n = 0;
    if (::read(fd_.get(), &n, sizeof n) != sizeof n) {
      if (errno == EAGAIN) return 0;
      return std::unexpected(sys_error("read", "the OOM eventfd"));
    }
    // The removal of the cgroup signals it too (and is the last signal).
    if (::access((dir_ / "cgroup.event_control").c_str(), F_OK) != 0) return n > 0 ? n - 1 : 0;
    return n;
  }
  alignas(inotify_event) char buf[4096];
  while (true) {
    const ssize_t got = ::read(fd_.get(), buf, sizeof buf);
    if (got > 0) continue;
    if (got < 0 && errno == EINTR) continue;
    if (got < 0 && errno != EAGAIN) return std::unexpected(sys_error("read", "the inotify instance"));
    break;
  }
  const int64_t now = detail::read_keyed(dir_ / "memory.events", "oom_kill");
  if (now < 0 || static_cast<uint64_t>(now) <= kills_) return 0;
  const uint64_t fresh = static_cast<uint64_t>(now) - kills_;
  kills_ = static_cast<uint64_t>(now);
  return fresh;
}

}  // namespace kiste::runtime
