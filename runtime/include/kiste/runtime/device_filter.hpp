#pragma once
// Device access control. cgroup v1 has the devices controller (devices.allow/deny); cgroup v2 has
// none: an eBPF program of type BPF_PROG_TYPE_CGROUP_DEVICE attached to the container's cgroup
// decides every mknod/open of a device node (runc's libcontainer/cgroups/devices/ebpf, crun's
// ebpf.c). The program is assembled here by hand from the rules: no libbpf, no compiler.
#include <linux/bpf.h>

#include <cstdint>
#include <string>
#include <vector>

#include <kiste/base/error.hpp>
#include <kiste/base/unique_fd.hpp>

namespace kiste::runtime {

// One allow rule; everything no rule allows is denied.
struct DeviceRule {
  char type = 'a';      // 'c' char, 'b' block, 'a' both
  int64_t major = -1;   // -1: any
  int64_t minor = -1;   // -1: any
  std::string access = "rwm";
  bool operator==(const DeviceRule&) const = default;
  // "c 1:3 rwm", "b *:* m" (the v1 devices.allow format).
  [[nodiscard]] std::string to_string() const;
};

// Docker's default device rules (deny all; mknod anything; use only null, zero, full, random,
// urandom, tty, console, ptmx and the pty slaves).
[[nodiscard]] const std::vector<DeviceRule>& docker_default_device_rules();

// The program for `rules`: returns 1 (allow) when a rule matches the access, else 0.
[[nodiscard]] std::vector<struct bpf_insn> device_filter_program(const std::vector<DeviceRule>& rules);

// Loads the program and attaches it to the cgroup v2 directory `cgroup_dir_fd`. The attachment
// lives as long as the cgroup; the returned program fd may be closed.
[[nodiscard]] Result<UniqueFd> attach_device_filter(int cgroup_dir_fd,
                                                    const std::vector<DeviceRule>& rules);

}  // namespace kiste::runtime
