#pragma once
// Detached containers (`run -d`) without a daemon: one monitor process per container. The CLI
// re-executes the kiste binary as the monitor (setsid, stdio on /dev/null); the monitor is a
// subreaper and the container's parent, runs it through the Runner with the container's
// stdout/stderr on pipes that it writes to docker's json-file log, records every state change in
// the container's record (container_store.hpp), applies the restart policy, and tells the CLI on
// a pipe once the command was exec'd (or why it was not). The verbs that act on a running
// container (stop, kill, wait) are here too.
#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <kiste/base/error.hpp>
#include <kiste/base/file_lock.hpp>
#include <kiste/runtime/container_store.hpp>
#include <kiste/runtime/runner.hpp>
#include <kiste/runtime/spec.hpp>

namespace kiste::runtime {

// The fds a monitor finds open when it starts: the status pipe and its monitor.lock (locked).
inline constexpr int kMonitorStatusFd = 3;
inline constexpr int kMonitorLockFd = 4;

// What the monitor told the CLI: the container runs (pid), or it could not start (exit_code
// 125/126/127 and the one-line reason).
struct MonitorReport {
  bool started = false;
  pid_t pid = 0;
  int exit_code = 0;
  std::string message;
};

// CLI side: locks the record's monitor.lock, forks, and in the child starts a new session with
// stdio on /dev/null and execs `argv` (argv[0] = the executable) with the status pipe on fd 3
// and the lock on fd 4; then waits for the monitor's report.
[[nodiscard]] Result<MonitorReport> spawn_monitor(const ContainerStore& store, std::string_view id,
                                                  const std::vector<std::string>& argv);

// One start of the container: its spec, and the store lease that keeps its snapshots until the
// runner's live marker names them.
struct PreparedStart {
  ContainerSpec spec;
  std::optional<FileLock> lease;
  std::function<Status(int netns_fd)> network_ready;  // StartOptions::network_ready
  std::function<void()> network_exited;               // StartOptions::exited
  // What the caller keeps for this one start (a network lease, a published-port proxy): released
  // when the start ends, before a restart prepares again.
  std::shared_ptr<void> resources;
};

struct MonitorOptions {
  RunnerOptions runner;
  std::string id;
  // Resolves the image and makes the spec: called before every start (restarts included).
  std::function<Result<PreparedStart>()> prepare;
};

// Monitor side: runs the container (and restarts it as its policy says) until it ends for good.
// Returns the monitor's exit status.
[[nodiscard]] int run_monitor(const MonitorOptions& o);

// stop: the stop signal (or `signal`), then SIGKILL after the timeout; returns once the monitor
// has recorded the end. A container that does not run is left as it is.
[[nodiscard]] Result<ContainerState> stop_container(const ContainerStore& store, std::string_view id,
                                                    std::optional<int> timeout_s);
// kill -s SIG: signals the container's process; the restart policy no longer applies.
[[nodiscard]] Status kill_container(const ContainerStore& store, std::string_view id, int signal);
// wait: blocks until the container's monitor is done; its final record.
[[nodiscard]] Result<ContainerState> wait_container(const ContainerStore& store, std::string_view id);

// docker's json-file log: one JSON object per line, {"log":"…\n","stream":"stdout","time":"…"}.
struct LogEntry {
  std::string log;     // the line with its newline (a last line without one has none)
  std::string stream;  // stdout | stderr
  std::string time;    // RFC 3339 with nanoseconds
};
[[nodiscard]] std::string encode_log_entry(const LogEntry& e);
[[nodiscard]] Result<LogEntry> decode_log_entry(std::string_view line);

// A signal by name or number: "TERM", "SIGTERM", "15".
[[nodiscard]] Result<int> parse_signal(std::string_view s);

}  // namespace kiste::runtime
