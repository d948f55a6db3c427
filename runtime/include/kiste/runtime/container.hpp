#pragma once
// Running one container: prepare (plans, seccomp, cgroup) in the parent, clone into new
// namespaces, let the child set itself up (child.cpp), wait, report, clean up.
#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <kiste/base/error.hpp>
#include <kiste/base/unique_fd.hpp>
#include <kiste/runtime/cgroup.hpp>
#include <kiste/runtime/id_map.hpp>
#include <kiste/runtime/mount_plan.hpp>
#include <kiste/runtime/spec.hpp>

namespace kiste::runtime {

struct ContainerExit {
  int exit_code = 0;    // the container's status (128+N when killed by signal N); 126/127 exec
  int signal = 0;       // N when killed by a signal
  bool oom_killed = false;
  // The process was cloned straight into its cgroup (v2 CLONE_INTO_CGROUP): it never migrated.
  bool cloned_into_cgroup = false;
  std::optional<int64_t> memory_limit;
  std::optional<uint64_t> memory_peak;
  // Set when the command could not be executed (exit_code 126 or 127):
  // "exec `/app`: No such file or directory — is the interpreter missing?"
  std::string exec_error;
  // "killed: out of memory (limit 5 MiB)" when oom_killed.
  [[nodiscard]] std::string oom_message() const;
};

struct RunHooks {
  // Called once the container's process runs (pid in the caller's pid namespace).
  std::function<void(pid_t)> started;
  // NetworkMode::Bridge and Pasta: connects the container's new network namespace (an fd), on
  // the runtime's thread while the container's process mounts its root; the command runs only
  // once it returned, and an error ends the run before the command runs.
  std::function<Status(int netns_fd)> network_ready;
  // Called once the container's process has ended, on a thread of its own while the runtime
  // removes the container's cgroup (and dirs): what the container held outside it (a bridge
  // network's veth, whose removal waits for an RCU grace period) goes meanwhile.
  std::function<void()> exited;
  // Called once the container's cgroup exists (to record it: live_marker.hpp): its directories
  // and, for the systemd manager, its unit. An error ends the run before the container starts.
  std::function<Status(const std::vector<std::filesystem::path>& dirs, const std::string& unit)>
      cgroup_created;
  // Set: called with the container's pid once its mounts are made, while it waits before its
  // createContainer hooks and pivot_root (an OCI config's prestart and createRuntime hooks run
  // here, as runc runs them); an error ends the container.
  std::function<Status(pid_t)> mounts_ready;
};

struct RunContext {
  std::optional<CgroupMode> cgroup_mode;  // default: detect_cgroup_mode()
  // Where the container's cgroup goes: --cgroup-manager, --cgroup-parent.
  CgroupPlacement cgroups;
  // Unified mode only: the cgroup2 mount to create the container's cgroup under (default
  // /sys/fs/cgroup; tests use the hybrid host's /sys/fs/cgroup/unified).
  std::filesystem::path cgroup_v2_mount;
  // Compiled seccomp programs are kept here by the digest of their inputs (empty: no cache).
  std::filesystem::path seccomp_cache_dir;
  RunHooks hooks;
  // The runtime moves the container into its cgroup after clone (cgroup.procs) and only then
  // lets it go on: what kernels without clone3 CLONE_INTO_CGROUP (v2) get. Normally the child
  // starts inside (v2) or moves itself in (v1); tests set this to run the fallback.
  bool migrate_after_clone = false;
  // --rm: the container dir is removed (remove_container_dir) as soon as the container is gone,
  // on another CPU while the cgroup is read and removed.
  bool remove_container_dir = false;
  // --userns=auto: where range leases are kept (a kiste root's `userns/`) and where ranges come
  // from.
  std::filesystem::path userns_lock_dir;
  IdRangeSource id_ranges;
  // The container's cgroup directory name under the placement's parent (an OCI cgroupsPath's
  // last component); empty: `kiste-<id>`.
  std::string cgroup_name;
  // fds 3 .. 3+preserve_fds-1 of the caller stay open into the container (--preserve-fds).
  int preserve_fds = 0;
  // create_container() only: an O_PATH fd of the exec fifo the container waits on.
  int exec_fifo_fd = -1;
  // create_container() only: an OCI config's createContainer hooks (run by the container's
  // process once its mounts are made, before pivot_root: the path is the runtime's) and
  // startContainer hooks (run by it after `start`, just before the command: the path is the
  // container's). A failing createContainer hook fails create_container(); a failing
  // startContainer hook is written to the exec fifo as {index, outcome} (two int32, the outcome
  // as hook_failure() in child.hpp reads it) and the container ends.
  std::vector<Hook> create_container_hooks, start_container_hooks;
  // The runtime-spec state the hooks read on stdin, without status and pid (the container's
  // process adds them): a JSON object.
  std::string hook_state;
};

// A container that create_container() set up and handed over: its process waits on the exec
// fifo; nothing in the caller owns or waits for it any more.
struct CreatedContainer {
  pid_t pid = -1;
  std::vector<std::filesystem::path> cgroup_paths;
  std::string cgroup_unit;
  UniqueFd pty_master;  // process.terminal: the pty's master (for the engine's console socket)
};

// Runs the container to completion. Errors before the command runs come back as Error
// ("container setup: mount `proc` on `/proc`: Operation not permitted"); the command's own
// failure is in ContainerExit. Leaves no mount, cgroup or process behind.
[[nodiscard]] Result<ContainerExit> run_container(const ContainerSpec& spec,
                                                  const RunContext& ctx = {});

// runc's create: sets the container up to the point where only its exec remains, which waits
// until RunContext::exec_fifo_fd is opened for reading (`start`). The command is checked to be
// executable first (an error here, as runc gives). On success the process and its cgroup are
// the caller's to record; the process is not this one's child for long (the caller exits and
// it is re-parented to the engine's subreaper, as with runc).
[[nodiscard]] Result<CreatedContainer> create_container(const ContainerSpec& spec,
                                                        const RunContext& ctx);

// Removes a container dir after its container is gone (--rm). What a container that wrote
// nothing leaves is removed by name, deepest first, without listing anything; whatever else is
// there goes through sys::remove_tree.
[[nodiscard]] Status remove_container_dir(const std::filesystem::path& dir);

}  // namespace kiste::runtime
