#pragma once
// `kiste exec`: a new process in a running container, made from the container's own process
// (its init, by host pid) rather than from a stored spec, so it gets exactly what that process
// has: every namespace (/proc/<pid>/ns/*), its cgroups, its uid/gids, its capability sets
// (bounding, effective, permitted, inheritable), no_new_privs, its environment, and its seccomp
// filters (read with PTRACE_SECCOMP_GET_FILTER). No daemon is asked: the caller does it.
#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <kiste/base/error.hpp>

namespace kiste::runtime {

struct ExecRequest {
  pid_t target = 0;               // the container's process in the caller's pid namespace
  std::vector<std::string> args;  // args[0] looked up in the container's PATH
  std::vector<std::string> env;   // KEY=VALUE added to (or replacing in) the target's environment
  std::string cwd = "/";
  // >= 0: the command's stdout and stderr go to this fd and its stdin is /dev/null (a
  // healthcheck's probe); otherwise it has the caller's stdio.
  int output_fd = -1;
  // > 0: the command (and what it started in its process group) is SIGKILLed after this long.
  int64_t timeout_ms = 0;
  // The command's uid, gid and supplementary gids instead of the target's (runc exec --user,
  // an engine's process.json `user`); its capability sets stay the target's.
  struct User {
    uid_t uid = 0;
    gid_t gid = 0;
    std::vector<gid_t> groups;
  };
  std::optional<User> user;
  // >= 0: a connected unix socket (runc's --console-socket). The command gets a new pty of the
  // container's devpts as its controlling terminal and stdio; the master goes over the socket.
  int console_fd = -1;
  // `kiste exec -t`: like console_fd, but the caller keeps the master and relays it to its own
  // stdio (its terminal raw meanwhile) until the command's pty hangs up; stdin only with
  // `forward_stdin` (-i).
  bool terminal = false;
  bool forward_stdin = false;
  // Return once the command was exec'd, leaving it running (runc exec --detach): it is no
  // child of the caller but of the caller's subreaper. ExecResult::pid names it.
  bool detach = false;
  // The container's seccomp filter as the runtime recorded it (kSeccompFile in its dir) instead
  // of the target's filters read with ptrace: rootless, where PTRACE_SECCOMP_GET_FILTER (it
  // needs CAP_SYS_ADMIN in the initial namespace) is refused. An empty file: no filter. Such a
  // container has no cgroup of its own either (it runs in its kiste's, which is not the user's
  // to write), so the command stays in the caller's.
  std::filesystem::path seccomp_file;
};

// Where a rootless container's dir holds its compiled seccomp filter (ExecRequest::seccomp_file).
inline constexpr const char* kSeccompFile = "seccomp.bpf";

struct ExecResult {
  int exit_code = 0;       // the command's status, 128+N when killed by signal N, 126/127 exec
  std::string exec_error;  // set with 126/127: "exec `x`: executable file not found in $PATH"
  bool timed_out = false;  // killed at ExecRequest::timeout_ms (exit_code 137)
  pid_t pid = 0;           // ExecRequest::detach: the running command
};

// Runs the command to completion with the caller's stdio. Errors before the command runs
// ("exec: join the container's `mnt` namespace: …") come back as Error.
[[nodiscard]] Result<ExecResult> exec_in_container(const ExecRequest& req);

// Every process in the cgroup of the container whose init is `init` (host pids, sorted): the
// `pids` hierarchy on cgroup v1, the unified one on v2. For `kiste top`.
[[nodiscard]] Result<std::vector<pid_t>> container_pids(pid_t init);

}  // namespace kiste::runtime
