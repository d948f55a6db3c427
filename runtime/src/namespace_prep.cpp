#include "namespace_prep.hpp"

#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace kiste::runtime::detail {

int loopback_up() noexcept {
  int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) return errno;
  struct ifreq ifr {};
  std::memcpy(ifr.ifr_name, "lo", 3);
  int err = 0;
  if (::ioctl(s, SIOCGIFFLAGS, &ifr) != 0) {
    err = errno;
  } else {
    ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP | IFF_RUNNING);
    if (::ioctl(s, SIOCSIFFLAGS, &ifr) != 0) err = errno;
  }
  ::close(s);
  return err;
}

NamespacePrep::NamespacePrep(bool net, bool ipc) : net_wanted_(net), ipc_wanted_(ipc) {
  if (!net && !ipc) return;
  // Without a thread nothing is made here (unsharing the runtime's own thread would move kiste
  // itself): clone makes the namespaces.
  if (!job_.start([this] { run(); })) {
    failed_ = "start the helper thread";
    err_ = EAGAIN;
  }
}

void NamespacePrep::run() noexcept {
  auto fail = [this](const char* step) {
    failed_ = step;
    err_ = errno;
    net_.reset();
    ipc_.reset();
  };
  if (::unshare((net_wanted_ ? CLONE_NEWNET : 0) | (ipc_wanted_ ? CLONE_NEWIPC : 0)) != 0) {
    return fail("unshare");
  }
  if (net_wanted_) {
    net_.reset(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
    if (!net_) return fail("open the network namespace");
    if (int e = loopback_up(); e != 0) {
      errno = e;
      return fail("bring up the loopback interface");
    }
  }
  if (ipc_wanted_) {
    ipc_.reset(::open("/proc/thread-self/ns/ipc", O_RDONLY | O_CLOEXEC));
    if (!ipc_) return fail("open the IPC namespace");
  }
}

Status NamespacePrep::wait() {
  job_.join();
  if (failed_ != nullptr) return std::unexpected(sys_error_code(err_, failed_, "container namespaces"));
  return {};
}

}  // namespace kiste::runtime::detail
