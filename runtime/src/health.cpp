#include <kiste/runtime/health.hpp>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cmath>

#include <kiste/base/go_duration.hpp>
#include <kiste/base/sys.hpp>
#include <kiste/base/unique_fd.hpp>
#include <kiste/runtime/container_store.hpp>
#include <kiste/runtime/exec.hpp>

namespace kiste::runtime {

Result<int64_t> parse_go_duration_ms(std::string_view s) {
  auto ns = parse_go_duration(s);
  if (!ns) {
    return failf(Errc::InvalidArgument, "duration {}: want a number with a unit (ms, s, m, h), e.g. 30s or 1m30s",
                 quote(s));
  }
  return (*ns + 500'000) / 1'000'000;  // rounded to the millisecond
}

std::string format_go_duration_ms(int64_t ms) {
  if (ms == 0) return "0s";
  if (ms < 1000) return fmt::format("{}ms", ms);
  std::string out;
  const int64_t h = ms / 3'600'000, m = ms / 60'000 % 60, rest_ms = ms % 60'000;
  if (h > 0) out += fmt::format("{}h", h);
  if (h > 0 || m > 0) out += fmt::format("{}m", m);
  if (rest_ms % 1000 == 0) {
    out += fmt::format("{}s", rest_ms / 1000);
  } else {
    std::string frac = fmt::format("{:03d}", rest_ms % 1000);
    while (frac.back() == '0') frac.pop_back();
    out += fmt::format("{}.{}s", rest_ms / 1000, frac);
  }
  return out;
}

Result<std::optional<HealthSpec>> resolve_health(const std::optional<image::HealthConfig>& image,
                                                const HealthFlags& flags) {
  const bool any_flag = flags.cmd || flags.interval || flags.timeout || flags.start_period || flags.retries;
  if (flags.none) {
    if (any_flag) return fail(Errc::InvalidArgument, "--no-healthcheck conflicts with --health-* options");
    return std::optional<HealthSpec>{};
  }
  HealthSpec h;
  if (image) {
    h.test = image->test;
    if (image->interval_ns > 0) h.interval_ms = image->interval_ns / 1'000'000;
    if (image->timeout_ns > 0) h.timeout_ms = image->timeout_ns / 1'000'000;
    if (image->start_period_ns > 0) h.start_period_ms = image->start_period_ns / 1'000'000;
    if (image->retries > 0) h.retries = image->retries;
  }
  if (flags.cmd) {
    if (flags.cmd->empty()) return fail(Errc::InvalidArgument, "--health-cmd: give a command");
    h.test = {"CMD-SHELL", *flags.cmd};
  }
  // docker: a duration flag of 0 means "inherit", one under 1ms is refused.
  auto duration = [](const std::optional<std::string>& v, std::string_view flag, int64_t& out) -> Status {
    if (!v) return {};
    auto ms = parse_go_duration_ms(*v);
    if (!ms) return std::unexpected(std::move(ms).error().with_context(std::string(flag)));
    if (*ms > 0) out = *ms;
    if (*ms == 0 && *v != "0" && *v != "0s") {
      return failf(Errc::InvalidArgument, "{}: {} is shorter than 1ms", flag, quote(*v));
    }
    return {};
  };
  KISTE_TRY(duration(flags.interval, "--health-interval", h.interval_ms));
  KISTE_TRY(duration(flags.timeout, "--health-timeout", h.timeout_ms));
  KISTE_TRY(duration(flags.start_period, "--health-start-period", h.start_period_ms));
  if (flags.retries) {
    if (*flags.retries < 0) return fail(Errc::InvalidArgument, "--health-retries: cannot be negative");
    if (*flags.retries > 0) h.retries = *flags.retries;
  }
  if (h.test.empty()) {
    if (any_flag) return fail(Errc::InvalidArgument, "--health-*: the image has no healthcheck; give --health-cmd");
    return std::optional<HealthSpec>{};
  }
  if (h.test.front() == "NONE") {
    if (flags.cmd || !any_flag) return std::optional<HealthSpec>{};
    return fail(Errc::InvalidArgument, "--health-*: the image's healthcheck is NONE; give --health-cmd");
  }
  if (h.test.front() == "CMD-SHELL" ? h.test.size() != 2 : h.test.front() != "CMD" || h.test.size() < 2) {
    return failf(Errc::InvalidArgument, "healthcheck test {}: want [\"CMD\", arg…] or [\"CMD-SHELL\", command]",
                 quote(h.test.front()));
  }
  return std::optional<HealthSpec>{std::move(h)};
}

std::vector<std::string> health_argv(const HealthSpec& h) {
  if (h.test.empty()) return {};
  if (h.test.front() == "CMD-SHELL") return {"/bin/sh", "-c", h.test.size() > 1 ? h.test[1] : ""};
  return {h.test.begin() + 1, h.test.end()};
}

void record_probe(HealthState& state, const HealthSpec& spec, HealthProbe probe, bool in_start_period) {
  const bool ok = probe.exit_code == 0;
  state.log.push_back(std::move(probe));
  while (state.log.size() > kHealthLogEntries) state.log.erase(state.log.begin());
  if (ok) {
    state.status = "healthy";
    state.failing_streak = 0;
    return;
  }
  if (in_start_period) return;
  ++state.failing_streak;
  if (state.failing_streak >= spec.retries) state.status = "unhealthy";
}

HealthProbe run_health_probe(pid_t target, const HealthSpec& spec, const std::filesystem::path& seccomp_file) {
  HealthProbe probe{.start = rfc3339_now(), .exit_code = -1};
  auto finish = [&](std::string output) {
    probe.end = rfc3339_now();
    if (output.size() > kHealthOutputMax) output.resize(kHealthOutputMax);
    probe.output = std::move(output);
    return probe;
  };
  UniqueFd out(::memfd_create("kiste-health", MFD_CLOEXEC));
  int p[2];
  if (!out || ::pipe2(p, O_CLOEXEC) != 0) return finish(sys_error("memfd_create", "probe output").to_string());
  UniqueFd result_r(p[0]), result_w(p[1]);
  const ExecRequest req{.target = target, .args = health_argv(spec), .output_fd = out.get(),
                        .timeout_ms = spec.timeout_ms, .seccomp_file = seccomp_file};
  // The child is forked from a process with threads: it allocates, which glibc's fork makes safe
  // (its malloc locks are reset in the child), and exec_in_container only forks and reads /proc.
  const pid_t child = ::fork();
  if (child < 0) return finish(sys_error("fork", "probe").to_string());
  if (child == 0) {
    result_r.reset();
    auto r = exec_in_container(req);
    std::string text;
    if (!r) {
      text = "error " + r.error().to_string();
    } else if (r->timed_out) {
      text = "timeout";
    } else if (!r->exec_error.empty()) {
      text = fmt::format("code {} {}", r->exit_code, r->exec_error);
    } else {
      text = fmt::format("code {} ", r->exit_code);
    }
    (void)sys::write_all(result_w.get(), text);
    _exit(0);
  }
  result_w.reset();
  auto text = sys::read_all(result_r.get(), "probe result");
  int st = 0;
  while (::waitpid(child, &st, 0) < 0 && errno == EINTR) {
  }
  std::string output;
  if (::lseek(out.get(), 0, SEEK_SET) == 0) {
    char buf[kHealthOutputMax];
    ssize_t n = ::read(out.get(), buf, sizeof buf);
    if (n > 0) output.assign(buf, static_cast<size_t>(n));
  }
  if (!text || text->empty()) return finish("the probe's process ended without a result");
  if (*text == "timeout") {
    return finish(fmt::format("Health check exceeded timeout ({})", format_go_duration_ms(spec.timeout_ms)));
  }
  if (text->starts_with("error ")) return finish(text->substr(6));
  std::string_view rest = std::string_view(*text).substr(5);
  int code = -1;
  auto [ptr, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), code);
  if (ec != std::errc{}) return finish("the probe's process gave no exit status");
  probe.exit_code = code;
  std::string_view exec_error = std::string_view(ptr, rest.data() + rest.size());
  if (!exec_error.empty() && exec_error.front() == ' ') exec_error.remove_prefix(1);
  if (!exec_error.empty()) output = std::string(exec_error) + "\n" + output;
  return finish(std::move(output));
}

}  // namespace kiste::runtime
