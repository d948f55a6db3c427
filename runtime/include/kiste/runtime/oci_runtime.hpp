#pragma once
// The OCI runtime verbs (runc's command line: create, start, state, kill, delete, run, ps, exec)
// over a state directory the engine chooses (--root, default /run/kiste-runc). One directory per
// container: state.json (replaced atomically, under the container's lock file) and exec.fifo,
// which the created container blocks on until `start` opens it (runc's model). The container is
// set up by the same code as `kiste run` (create_container(), container.hpp); `create` exits
// once it waits, and the engine's subreaper (conmon, the containerd shim) becomes its parent.
#include <sys/types.h>

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <kiste/base/error.hpp>
#include <kiste/base/unique_fd.hpp>
#include <kiste/runtime/oom_watch.hpp>
#include <kiste/runtime/spec.hpp>

namespace kiste::runtime::oci {

enum class ContainerStatus { Creating, Created, Running, Paused, Stopped };
[[nodiscard]] std::string_view to_string(ContainerStatus s);

// The runtime-spec state of a container.
struct State {
  std::string oci_version;
  std::string id;
  ContainerStatus status = ContainerStatus::Stopped;
  pid_t pid = 0;  // 0 once stopped
  std::filesystem::path bundle;
  std::vector<std::pair<std::string, std::string>> annotations;
  std::string created;  // RFC 3339 (runc's `list`/`state` show it)
  [[nodiscard]] std::string to_json() const;
  // The same object without `status` and `pid`, which the container's own process adds for the
  // hooks it runs (createContainer, startContainer).
  [[nodiscard]] std::string to_json_without_status_and_pid() const;
};

struct CreateOptions {
  std::filesystem::path bundle;          // absolute (the caller makes it so)
  std::filesystem::path pid_file;        // the container's pid, written atomically
  std::filesystem::path console_socket;  // process.terminal: the pty master goes here
  int preserve_fds = 0;
  bool systemd_cgroup = false;  // cgroupsPath is "slice:prefix:name"
};

struct ExecOptions {
  std::vector<std::string> args;      // or a process.json:
  std::filesystem::path process_file;
  std::vector<std::string> env;
  std::string cwd;
  std::optional<std::pair<uid_t, gid_t>> user;  // --user UID[:GID] (numeric, as runc takes it)
  bool tty = false;
  bool detach = false;
  std::filesystem::path pid_file;
  std::filesystem::path console_socket;
};

class OciRuntime {
 public:
  explicit OciRuntime(std::filesystem::path root) : root_(std::move(root)) {}

  // Sets the container up; it waits for start(). Returns warnings (ignored LSM labels).
  [[nodiscard]] Result<std::vector<std::string>> create(std::string_view id, const CreateOptions& opts);
  [[nodiscard]] Status start(std::string_view id);
  [[nodiscard]] Result<State> state(std::string_view id) const;
  [[nodiscard]] Result<std::vector<State>> list() const;
  // SIGNAL is "TERM", "SIGTERM" or "15"; `all`: every process in the container's cgroup.
  [[nodiscard]] Status kill(std::string_view id, std::string_view signal, bool all);
  // Refuses a created or running container unless `force` (then it is killed first). Removes
  // the cgroup and the state directory, then runs the poststop hooks: a failing one is a warning
  // (returned), as the runtime-spec says, not an error.
  [[nodiscard]] Result<std::vector<std::string>> remove(std::string_view id, bool force);
  // create + start, then waits for the container (this process is its parent), deletes it and
  // returns its exit status (128+N for signal N).
  [[nodiscard]] Result<int> run(std::string_view id, const CreateOptions& opts);
  [[nodiscard]] Result<std::vector<pid_t>> pids(std::string_view id) const;
  // The freezer (v1 freezer.state, v2 cgroup.freeze) of the container's cgroup; a paused
  // container's status is `paused`, as runc reports it.
  [[nodiscard]] Status pause(std::string_view id);
  [[nodiscard]] Status resume(std::string_view id);
  // New limits (memory, memory+swap, cpu shares/quota/period, pids) written into the container's
  // cgroup while it runs (`update --resources`). A cpu quota without a period keeps the
  // cgroup's current period. Device rules cannot be changed.
  [[nodiscard]] Status update(std::string_view id, const Resources& res);
  // One runc `events` record of type "stats" for the container, as one line of JSON:
  // {"type":"stats","id":…,"data":{"cpu":…,"memory":…,"pids":…,"blkio":…,"hugetlb":{}}}, the
  // shape go-runc decodes (memory usage is the cgroup's usage counter, cpu the cumulative
  // nanoseconds; per-device blkio and hugetlb figures are not reported).
  [[nodiscard]] Result<std::string> stats_event(std::string_view id) const;
  // The OOM notifications of the container's memory cgroup (oom_watch.hpp), from now on; nullopt
  // without a memory cgroup. `events` reports each as runc's record {"type":"oom","id":…}.
  [[nodiscard]] Result<std::optional<OomWatch>> watch_oom(std::string_view id) const;
  // A new process in a running container; returns its exit status (or 0 with `detach`).
  [[nodiscard]] Result<int> exec(std::string_view id, const ExecOptions& opts);

 private:
  [[nodiscard]] std::filesystem::path dir(std::string_view id) const { return root_ / std::string(id); }
  // pause (freeze) or resume: a running container freezes, a paused one thaws.
  [[nodiscard]] Status change_frozen(std::string_view id, bool freeze);
  std::filesystem::path root_;
};

// "TERM", "SIGTERM", "15" -> 15.
[[nodiscard]] Result<int> parse_signal(std::string_view name);
// Container ids: [A-Za-z0-9][A-Za-z0-9_.+-]*, at most 1024 bytes (they name a directory).
[[nodiscard]] Status check_container_id(std::string_view id);

}  // namespace kiste::runtime::oci
