#pragma once
// `kiste stats`: one sample of a container's resource use, read from its cgroups (v1
// controllers where the host mounts them, the unified v2 hierarchy otherwise), the way docker
// reads them: memory usage minus the inactive file cache, the limit (none: nullopt), the
// cumulative CPU time, and the number of tasks.
#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string_view>

#include <kiste/base/error.hpp>

namespace kiste::runtime {

// The dirs of one process's cgroups that stats reads; empty when that hierarchy is not there.
struct StatsCgroups {
  std::filesystem::path memory;  // v1 `memory` controller dir
  std::filesystem::path cpuacct; // v1 `cpuacct` controller dir
  std::filesystem::path pids;    // v1 `pids` controller dir
  std::filesystem::path blkio;   // v1 `blkio` controller dir
  std::filesystem::path unified; // the v2 dir (on a hybrid host it may hold no controller)
};

struct StatsSample {
  std::optional<uint64_t> memory_usage;  // bytes, without inactive file cache
  std::optional<uint64_t> memory_limit;  // bytes; nullopt: unlimited (or unknown)
  std::optional<uint64_t> cpu_usage_ns;  // cumulative
  std::optional<uint64_t> pids;
  std::optional<uint64_t> block_read, block_write;  // bytes, all devices
};

// The dirs from the text of /proc/<pid>/cgroup, with the hierarchies mounted under
// `cgroup_root` (/sys/fs/cgroup; a v2 hierarchy at <root>/unified on a hybrid host).
[[nodiscard]] Result<StatsCgroups> stats_cgroups(std::string_view proc_cgroup,
                                                 const std::filesystem::path& cgroup_root);

// Reads each figure from the v1 controller's files when that dir is set, else from the v2
// files; a figure no file gives stays nullopt. Fails only when no figure could be read.
[[nodiscard]] Result<StatsSample> read_stats(const StatsCgroups& dirs);

// Both for the container whose init is `init` (host pid), from /proc and /sys/fs/cgroup.
[[nodiscard]] Result<StatsSample> container_stats(pid_t init);

// NET I/O: bytes received and sent on every interface but lo.
struct NetTotals {
  uint64_t rx = 0, tx = 0;
};

// The totals of a /proc/<pid>/net/dev text.
[[nodiscard]] Result<NetTotals> parse_net_dev(std::string_view text);

// The totals of the container's network namespace; nullopt when it is the host's (--network
// host), whose counters are not the container's.
[[nodiscard]] Result<std::optional<NetTotals>> container_net(pid_t init);

}  // namespace kiste::runtime
