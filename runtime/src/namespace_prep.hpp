#pragma once
// The container's network and IPC namespaces, made on a helper thread while the runtime prepares
// the rest. A new network namespace is most of what clone costs (about 0.5 ms here: the loopback
// device, per-namespace sysctls, IPv4/IPv6 and netfilter state); made by clone it sits on the
// critical path, made here it overlaps with the mount plan, the cgroup and the container dir.
// Namespaces belong to threads: the helper unshares only itself, keeps each new namespace by an
// fd, brings `lo` up and ends (a SideJob: on another CPU than the runtime). The child setns()es
// into the namespaces before its first mount (sysfs and mqueue show the mounter's namespaces).
#include "side_job.hpp"

#include <kiste/base/error.hpp>
#include <kiste/base/unique_fd.hpp>

namespace kiste::runtime::detail {

// Brings the loopback interface of the caller's network namespace up; 0 or an errno.
int loopback_up() noexcept;

class NamespacePrep {
 public:
  // net: a new network namespace with `lo` up; ipc: a new IPC namespace. Neither: no thread.
  NamespacePrep(bool net, bool ipc);
  NamespacePrep(const NamespacePrep&) = delete;
  NamespacePrep& operator=(const NamespacePrep&) = delete;

  // Waits for the helper. On error no namespace was made, and clone should make them.
  [[nodiscard]] Status wait();
  [[nodiscard]] int net_fd() const { return net_.get(); }
  [[nodiscard]] int ipc_fd() const { return ipc_.get(); }
  // Once the child holds them.
  void close_fds() {
    net_.reset();
    ipc_.reset();
  }

 private:
  void run() noexcept;

  bool net_wanted_ = false, ipc_wanted_ = false;
  UniqueFd net_, ipc_;
  const char* failed_ = nullptr;  // the step that failed, written by the helper
  int err_ = 0;
  SideJob job_;  // last: joined before the members it writes go
};

}  // namespace kiste::runtime::detail
