#pragma once
// Detached containers' records: one `containers/<id>/state.json` each (changed by atomic replace
// under `containers/<id>/state.lock`), a name index `container-names/<name>` (each file holds its
// id; made with O_EXCL under `container-names/.lock`), and `containers/<id>/monitor.lock`, which
// the container's monitor holds locked for as long as it lives: a record that says running while
// nobody holds that lock belongs to a monitor that died (`ps` shows `Exited (unknown)`).
#include <sys/types.h>

#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <kiste/base/error.hpp>
#include <kiste/base/unique_fd.hpp>
#include <kiste/image/root_layout.hpp>
#include <kiste/runtime/health.hpp>

namespace kiste::runtime {

// docker's --restart: no | on-failure[:N] | always | unless-stopped.
struct RestartPolicy {
  enum class Kind { No, OnFailure, Always, UnlessStopped };
  Kind kind = Kind::No;
  int max_retries = 0;  // on-failure:N (0: unlimited)
  bool operator==(const RestartPolicy&) const = default;
};
[[nodiscard]] Result<RestartPolicy> parse_restart_policy(std::string_view s);
[[nodiscard]] std::string restart_policy_name(const RestartPolicy& p);  // "on-failure"
// Whether a container that ended with `exit_code` starts again after `restarts` restarts.
[[nodiscard]] bool should_restart(const RestartPolicy& p, int exit_code, int restarts);

// docker's backoff: 100 ms, doubled after each restart, at most 60 s; back to 100 ms when the
// container ran for 10 s or more.
[[nodiscard]] int restart_delay_ms(int previous_delay_ms, double ran_seconds);

// The json-file log's --log-opt max-size/max-file (json_log.hpp).
struct LogOptions {
  int64_t max_size = 0;  // bytes; 0: the log is never rotated
  int max_file = 1;      // files kept, the live one included
  bool operator==(const LogOptions&) const = default;
};

// A container name as docker takes it: [a-zA-Z0-9][a-zA-Z0-9_.-]+.
[[nodiscard]] Status validate_container_name(std::string_view name);

struct ContainerState {
  std::string id;    // 64 lowercase hex
  std::string name;  // unique per store
  std::string image;
  std::vector<std::string> command;  // what `run` was given after IMAGE (may be empty)
  std::string created;               // RFC 3339, UTC
  // created | running | restarting | exited. A record whose monitor is gone while it said
  // running reads as exited with `monitor_lost` set (ExitCode -1, "Exited (unknown)").
  std::string status = "created";
  pid_t pid = 0;          // the container's process (host pid namespace) while running
  pid_t monitor_pid = 0;
  int exit_code = 0;
  bool oom_killed = false;
  std::string started_at, finished_at;  // RFC 3339 (nanoseconds), UTC
  int restart_count = 0;
  std::string error;           // why the last start failed
  bool stop_requested = false;  // `stop`/`kill`/`rm -f`: the restart policy no longer applies
  bool monitor_lost = false;    // not stored: computed when read
  std::optional<HealthState> health_state;  // while the container has a healthcheck
  // Configuration.
  RestartPolicy restart;
  int stop_signal = 15;      // SIGTERM
  int stop_timeout = 10;     // seconds
  bool auto_remove = false;  // --rm: the monitor removes the container when it ends for good
  std::vector<std::string> run_args;  // the `run` arguments the monitor re-reads
  LogOptions log;
  std::optional<HealthSpec> health;   // nullopt: no healthcheck (records before it: none)

  [[nodiscard]] bool running() const { return status == "running" || status == "restarting"; }
};

// Whether `start --all` (the boot hook) starts a container that does not run: `always` ones,
// and `unless-stopped` ones that no stop/kill ended.
[[nodiscard]] bool starts_at_boot(const ContainerState& s);

[[nodiscard]] std::string state_to_json(const ContainerState& s);
[[nodiscard]] Result<ContainerState> state_from_json(std::string_view json);
// "2026-12-07T06:12:00.123456789Z"
[[nodiscard]] std::string rfc3339_now();

// The record's file in containers/<id>/: a dir that has one belongs to a detached container
// (removed by `rm` and `container prune`, never by the sweeps of foreground runs).
inline constexpr std::string_view kContainerRecord = "state.json";

class ContainerStore {
 public:
  explicit ContainerStore(std::filesystem::path root) : root_(std::move(root)) {}

  [[nodiscard]] std::filesystem::path dir(std::string_view id) const;
  [[nodiscard]] std::filesystem::path log_path(std::string_view id) const;  // <id>-json.log
  [[nodiscard]] std::filesystem::path monitor_lock_path(std::string_view id) const;

  // Makes the container dir and its record; reserves the name (`name in use` otherwise). With
  // an empty name one is made up from the id, as docker's adjective_noun but plainer.
  [[nodiscard]] Result<ContainerState> create(ContainerState s) const;
  // An id, a unique id prefix, or a name -> the id.
  [[nodiscard]] Result<std::string> resolve(std::string_view ref) const;
  [[nodiscard]] Result<ContainerState> load(std::string_view id) const;
  // Reads, changes and writes the record under its lock.
  [[nodiscard]] Result<ContainerState> update(std::string_view id,
                                              const std::function<void(ContainerState&)>& f) const;
  // Every detached container's record, oldest first.
  [[nodiscard]] Result<std::vector<ContainerState>> list() const;
  // Whether the container's monitor still holds monitor.lock.
  [[nodiscard]] bool monitor_alive(std::string_view id) const;
  // Removes the container dir (remove_container_dir) and its name. The caller made sure that
  // nothing runs.
  [[nodiscard]] Status remove(const ContainerState& s) const;

 private:
  [[nodiscard]] std::filesystem::path names_dir() const { return image::RootLayout(root_).container_names(); }
  std::filesystem::path root_;
};

}  // namespace kiste::runtime
