#pragma once
// Healthchecks of detached containers, as docker runs them: a probe command exec'd into the
// running container every interval, with a timeout that kills a hanging probe; its exit status
// makes the container `healthy` (0) or, after `retries` failures in a row, `unhealthy`. Failures
// inside the start period do not count. The monitor runs the probes (monitor.cpp); the rules are
// here so that they can be tested without a container.
#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <kiste/base/error.hpp>
#include <kiste/image/image_config.hpp>

namespace kiste::runtime {

// docker's defaults (30 s, 30 s, 0, 3).
inline constexpr int64_t kDefaultHealthIntervalMs = 30'000;
inline constexpr int64_t kDefaultHealthTimeoutMs = 30'000;
inline constexpr int kDefaultHealthRetries = 3;
// docker keeps the last 5 probes and at most 4 KiB of each one's output.
inline constexpr size_t kHealthLogEntries = 5;
inline constexpr size_t kHealthOutputMax = 4096;

// The container's healthcheck with every default applied. `test` is docker's Test:
// ["CMD", arg…] or ["CMD-SHELL", "command"].
struct HealthSpec {
  std::vector<std::string> test;
  int64_t interval_ms = kDefaultHealthIntervalMs;
  int64_t timeout_ms = kDefaultHealthTimeoutMs;
  int64_t start_period_ms = 0;
  int retries = kDefaultHealthRetries;
  bool operator==(const HealthSpec&) const = default;
};

// The --health-* flags of `run` (unset: the image's value, else docker's default).
struct HealthFlags {
  std::optional<std::string> cmd;  // CMD-SHELL
  std::optional<std::string> interval, timeout, start_period;
  std::optional<int> retries;
  bool none = false;  // --no-healthcheck
};

// The image's Healthcheck overridden field by field by the flags; nullopt when there is no
// check (none in the image, Test ["NONE"], or --no-healthcheck). Bad flags: one-line errors.
[[nodiscard]] Result<std::optional<HealthSpec>> resolve_health(const std::optional<image::HealthConfig>& image,
                                                              const HealthFlags& flags);

// A Go duration as docker's flags take it: "1s", "500ms", "1m30s", "1.5h", "0".
[[nodiscard]] Result<int64_t> parse_go_duration_ms(std::string_view s);
// Milliseconds back as Go prints them ("1s", "1m30s", "500ms").
[[nodiscard]] std::string format_go_duration_ms(int64_t ms);

// The argv a probe execs: CMD-SHELL wraps its command in /bin/sh -c.
[[nodiscard]] std::vector<std::string> health_argv(const HealthSpec& h);

struct HealthProbe {
  std::string start, end;  // RFC 3339 (nanoseconds)
  int exit_code = 0;       // -1: it did not run to its end (timeout, or it could not start)
  std::string output;      // stdout and stderr, at most kHealthOutputMax bytes
};

// State.Health of the container's record.
struct HealthState {
  std::string status = "starting";  // starting | healthy | unhealthy
  int failing_streak = 0;
  std::vector<HealthProbe> log;  // oldest first, at most kHealthLogEntries
  bool operator==(const HealthState&) const = default;
};
inline bool operator==(const HealthProbe& a, const HealthProbe& b) {
  return a.start == b.start && a.end == b.end && a.exit_code == b.exit_code && a.output == b.output;
}

// Records one probe as docker's daemon does: success -> healthy and the streak back to 0; a
// failure inside the start period changes nothing but the log; otherwise the streak grows and
// reaching `retries` makes the container unhealthy.
void record_probe(HealthState& state, const HealthSpec& spec, HealthProbe probe, bool in_start_period);

// Runs one probe in the container whose init is `target` (a host pid): exec_in_container in a
// forked child (so the ptrace stops it needs never reach a waitpid of the caller's other threads,
// such as the monitor's wait for that very init), output captured, killed at the timeout.
// `seccomp_file`: ExecRequest::seccomp_file (rootless).
[[nodiscard]] HealthProbe run_health_probe(pid_t target, const HealthSpec& spec,
                                           const std::filesystem::path& seccomp_file = {});

}  // namespace kiste::runtime
