#pragma once
// The container child: everything it needs is flattened by the parent before clone; the child
// only reads it. ContainerInit::run() is the whole setup sequence (STYLE §5.3), noexcept and
// allocation-free on its failure path; failures travel as a ChildReport over the sync socket.
#include <linux/filter.h>
#include <sys/resource.h>
#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <kiste/runtime/mount_plan.hpp>

namespace kiste::runtime::detail {

enum class StepId : int32_t {
  JoinCgroup = 1,
  RuntimeFiles,
  CgroupNamespace,
  MountPrivate,
  MountOverlay,
  OpenRoot,
  MountOp,  // detail: op index
  ReadonlyRoot,
  Pivot,
  Loopback,
  Hostname,
  Rlimits,
  Capabilities,
  User,
  NoNewPrivileges,
  Seccomp,
  Terminal,
  Stdio,
  CloseFds,
  Cwd,
  Exec,
  UserNamespace,
  JoinNamespaces,
  BindRoot,
  // Not a failure: create_container()'s child is set up and waits on its exec fifo.
  Created,
  ExecFifo,
  OomScoreAdj,
  CreateContainerHook,  // detail: the hook's index; err: a HookOutcome code
  // Not a failure: the mounts are made; the child waits for the runtime's go (its hooks).
  MountsReady,
};

// How a hook that the child ran ended, as ChildReport::err: errno (< kHookEnded) when it could
// not be started, kHookEnded | its waitpid status, or kHookTimedOut.
inline constexpr int32_t kHookEnded = 0x10000;
inline constexpr int32_t kHookTimedOut = 0x20000;

// One hook for the child to run (Hook, flattened): argv and envp are null-terminated.
struct ChildHook {
  const char* path = nullptr;
  char* const* argv = nullptr;
  char* const* envp = nullptr;
  int timeout = 0;  // seconds; 0: none
};

// What a hook run by the child, of kind `kind`, did: "createContainer hook `/x`: exit status 1".
[[nodiscard]] std::string hook_failure(std::string_view kind, const char* path, int32_t code,
                                       int timeout);

const char* step_name(StepId s);

struct ChildReport {
  int32_t step = 0;
  int32_t err = 0;
  int32_t detail = 0;  // MountOp: index into plan.ops; Rlimits: the resource
};

struct ChildConfig {
  const MountPlan* plan = nullptr;
  char* const* argv = nullptr;
  char* const* envp = nullptr;
  const char* path_env = nullptr;  // the container's PATH (for execvp-style lookup)
  const char* cwd = "/";
  const char* hostname = nullptr;
  uid_t uid = 0;
  gid_t gid = 0;
  const gid_t* gids = nullptr;
  size_t ngids = 0;
  const struct rlimit* rlimits = nullptr;
  const int* rlimit_resources = nullptr;
  size_t nrlimits = 0;
  uint64_t cap_bounding = 0, cap_effective = 0, cap_permitted = 0, cap_inheritable = 0;
  uint64_t cap_ambient = 0;  // raised where the kernel allows (as runc: a refusal is not an error)
  int last_cap = 40;
  bool no_new_privileges = false;
  const sock_filter* seccomp = nullptr;  // null: unconfined
  unsigned short seccomp_len = 0;
  // The container's cgroup: v1 `tasks` files the child writes "0" to (it moves itself in) at
  // its JoinCgroup step; none on v2 (cloned into it). With wait_release the child first waits
  // for the runtime's "go" (the runtime moved it in: kernels without either way).
  const int* join_fds = nullptr;
  size_t njoin = 0;
  bool wait_release = false;
  // The caller connects the network (RunHooks::network_ready) while the child sets up its root:
  // the child waits for the runtime's "go" after pivot_root, before its identity and seccomp
  // steps (so a profile that denies recv cannot stop it), and no command runs unconnected.
  bool wait_network = false;
  bool unshare_cgroup = true;
  bool loopback_up = true;  // new network namespace: bring `lo` up
  // Namespaces the runtime made beforehand (namespace_prep.hpp), entered first; -1: clone made
  // them (or the host's is shared).
  int net_fd = -1;
  int ipc_fd = -1;
  int uts_fd = -1;
  int mnt_fd = -1;  // an existing mount namespace (Namespaces::mount_path), entered last of these
  // An existing cgroup namespace (an OCI config's path) entered after the cgroup join, instead
  // of unshare_cgroup's new one.
  int cgroup_ns_fd = -1;
  int sync_fd = -1;
  int stdin_fd = -1;   // dup2'd onto 0 when >= 0
  // -t: the child opens a pty in the container's own devpts, sends the master to the runtime
  // (SCM_RIGHTS over sync_fd) and makes the slave its 0,1,2 and controlling terminal.
  bool terminal = false;
  unsigned short rows = 0, cols = 0;
  // Own user namespace (userns_setup.hpp): the child waits for the root's mount fd, unshares
  // its mount namespace with `merged_fd` as cwd, becomes the mapped root and attaches the root
  // there; Bind ops with an fd in `op_fds` are attached from the parent's clones.
  bool userns = false;
  int merged_fd = -1;
  const int* op_fds = nullptr;
  // create_container(): once set up, the child checks that its command can be executed, reports
  // StepId::Created, and opens this fifo (an O_PATH fd) for writing, which blocks until `start`
  // opens it for reading; then it execs. -1: exec at once.
  int exec_fifo_fd = -1;
  // fds 3 .. 3+preserve_fds-1 stay open into the container (runc's --preserve-fds).
  int preserve_fds = 0;
  const char* oom_score_adj = nullptr;  // decimal text, or null
  // An OCI config's createContainer hooks, run once the mounts are made, before pivot_root (a
  // path is the runtime's), and its startContainer hooks, run after `start` just before the
  // command (a path is the container's, with the container's identity). Each reads the state on
  // stdin: hook_state (the JSON object without its closing brace) with ,"status":…,"pid":…}
  // added by the child, which alone knows its pid in the runtime's pid namespace. A failing
  // createContainer hook is a setup failure; a failing startContainer hook is reported to
  // `start` through the exec fifo (its index and outcome, two int32) and the child exits.
  const ChildHook* create_hooks = nullptr;
  size_t ncreate_hooks = 0;
  const ChildHook* start_hooks = nullptr;
  size_t nstart_hooks = 0;
  const char* hook_state = nullptr;
  size_t hook_state_len = 0;
  // RunHooks::mounts_ready: report StepId::MountsReady after the mounts and wait for one byte
  // on sync_fd before the createContainer hooks.
  bool wait_mounts_ready = false;
};

// Runs in the child after clone; never returns.
[[noreturn]] void container_child_main(const ChildConfig& cfg) noexcept;

// capset(2) of all three sets (64 bits each) for this thread, without libcap: safe after clone
// and fork (no allocation). Returns the syscall's result.
int capset_raw(uint64_t effective, uint64_t permitted, uint64_t inheritable) noexcept;

}  // namespace kiste::runtime::detail
