#include <kiste/runtime/monitor.hpp>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <condition_variable>
#include <mutex>
#include <thread>

#include <nlohmann/json.hpp>

#include <kiste/base/sys.hpp>
#include <kiste/runtime/exec.hpp>
#include <kiste/runtime/json_log.hpp>
#include <kiste/runtime/rootless.hpp>

namespace kiste::runtime {

namespace fs = std::filesystem;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

std::string encode_log_entry(const LogEntry& e) {
  json j{{"log", e.log}, {"stream", e.stream}, {"time", e.time}};
  // A container may write anything: bytes that are not UTF-8 become U+FFFD rather than an error.
  return j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
}

Result<LogEntry> decode_log_entry(std::string_view line) {
  json j = json::parse(line, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return fail(Errc::Corrupt, "log line: not a JSON object");
  const auto log = j.find("log");
  if (log == j.end() || !log->is_string()) return fail(Errc::Corrupt, "log line: no `log` string");
  return LogEntry{.log = log->get<std::string>(),
                  .stream = j.value("stream", "stdout"),
                  .time = j.value("time", "")};
}

Result<int> parse_signal(std::string_view s) {
  int n = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  if (!s.empty() && ec == std::errc{} && p == s.data() + s.size()) {
    if (n >= 1 && n < NSIG) return n;
  } else {
    std::string_view name = s.starts_with("SIG") ? s.substr(3) : s;
    for (int i = 1; i < NSIG; ++i) {
      const char* abbrev = ::sigabbrev_np(i);
      if (abbrev != nullptr && name == abbrev) return i;
    }
  }
  return failf(Errc::InvalidArgument, "signal {}: unknown", quote(s));
}

// ---- CLI side ----------------------------------------------------------------------------------

namespace {

// dup2 that also clears close-on-exec when the fd is already where it should be.
bool move_fd(int from, int to) {
  if (from == to) return ::fcntl(to, F_SETFD, 0) == 0;
  return ::dup2(from, to) == to;
}

Result<MonitorReport> parse_report(std::string_view text) {
  MonitorReport r;
  if (text.starts_with("started ")) {
    std::string_view n = text.substr(8);
    while (!n.empty() && n.back() == '\n') n.remove_suffix(1);
    auto [p, ec] = std::from_chars(n.data(), n.data() + n.size(), r.pid);
    if (ec == std::errc{} && r.pid > 0) {
      r.started = true;
      return r;
    }
  } else if (text.starts_with("error ")) {
    std::string_view rest = text.substr(6);
    auto [p, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), r.exit_code);
    if (ec == std::errc{} && p < rest.data() + rest.size() && *p == ' ') {
      r.message = std::string(p + 1, rest.data() + rest.size());
      while (!r.message.empty() && r.message.back() == '\n') r.message.pop_back();
      return r;
    }
  }
  return fail(Errc::System, "start the container's monitor: it ended before the container started");
}

}  // namespace

Result<MonitorReport> spawn_monitor(const ContainerStore& store, std::string_view id,
                                    const std::vector<std::string>& argv) {
  const fs::path lock_path = store.monitor_lock_path(id);
  KISTE_ASSIGN_OR_RETURN(UniqueFd lock, sys::open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (::flock(lock.get(), LOCK_EX | LOCK_NB) != 0) return std::unexpected(sys_error("lock", lock_path.native()));
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return std::unexpected(sys_error("pipe2", "monitor status"));
  UniqueFd status_r(p[0]), status_w(p[1]);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) return std::unexpected(sys_error("fork", "the container's monitor"));
  if (pid == 0) {
    // The monitor outlives this command and its terminal: its own session, no inherited stdio.
    (void)::setsid();
    int null_fd = ::open("/dev/null", O_RDWR);
    // Status pipe and lock go to 3 and 4 by way of fds above both (either may sit on 3 or 4).
    int s = ::fcntl(status_w.get(), F_DUPFD_CLOEXEC, 10);
    int l = ::fcntl(lock.get(), F_DUPFD_CLOEXEC, 10);
    if (null_fd < 0 || s < 0 || l < 0 || !move_fd(null_fd, 0) || !move_fd(null_fd, 1) ||
        !move_fd(null_fd, 2) || !move_fd(s, kMonitorStatusFd) || !move_fd(l, kMonitorLockFd)) {
      _exit(125);
    }
    ::close_range(kMonitorLockFd + 1, ~0U, 0);
    ::execv(args[0], args.data());
    _exit(127);
  }
  status_w.reset();
  lock.reset();  // the monitor holds it now (the same open file description)
  auto text = sys::read_all(status_r.get(), "the monitor's status pipe");
  if (!text) return std::unexpected(std::move(text).error());
  // A monitor that failed to start is reaped here; one that runs is left to init when we exit.
  int st = 0;
  (void)::waitpid(pid, &st, WNOHANG);
  return parse_report(*text);
}

// ---- monitor side ------------------------------------------------------------------------------

namespace {

// Reads the container's stdout and stderr until both are closed and appends each line to the
// json-file log (a line longer than 16 KiB is split, as docker splits it).
void pump_logs(int out_fd, int err_fd, LogWriter* log) {
  constexpr size_t kMaxLine = 16 * 1024;
  std::string partial[2];
  struct pollfd fds[2] = {{out_fd, POLLIN, 0}, {err_fd, POLLIN, 0}};
  const char* names[2] = {"stdout", "stderr"};
  auto emit = [&](int i, std::string_view line) {
    std::string rec = encode_log_entry({.log = std::string(line), .stream = names[i], .time = rfc3339_now()});
    (void)log->write(rec);
  };
  char buf[16 * 1024];
  int open = 2;
  while (open > 0) {
    int rc = ::poll(fds, 2, -1);
    if (rc < 0 && errno == EINTR) continue;
    if (rc < 0) return;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
      if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      if (n <= 0) {
        if (!partial[i].empty()) emit(i, partial[i]);
        partial[i].clear();
        ::close(fds[i].fd);
        fds[i].fd = -1;
        --open;
        continue;
      }
      partial[i].append(buf, static_cast<size_t>(n));
      size_t start = 0;
      for (size_t nl; (nl = partial[i].find('\n', start)) != std::string::npos; start = nl + 1) {
        emit(i, std::string_view(partial[i]).substr(start, nl + 1 - start));
      }
      partial[i].erase(0, start);
      while (partial[i].size() >= kMaxLine) {
        emit(i, std::string_view(partial[i]).substr(0, kMaxLine));
        partial[i].erase(0, kMaxLine);
      }
    }
  }
}

class StatusPipe {
 public:
  explicit StatusPipe(int fd) : fd_(fd) {}
  void send(std::string_view line) {
    if (!fd_) return;
    (void)sys::write_all(fd_.get(), line);
    fd_.reset();
  }

 private:
  UniqueFd fd_;
};

std::string one_line(std::string s) {
  std::replace(s.begin(), s.end(), '\n', ' ');
  return s;
}

// Sleeps `ms` unless a stop was asked for meanwhile; false when it was.
bool backoff(const ContainerStore& store, std::string_view id, int ms) {
  const auto until = Clock::now() + std::chrono::milliseconds(ms);
  while (Clock::now() < until) {
    auto s = store.load(id);
    if (!s || s->stop_requested) return false;
    std::this_thread::sleep_for(std::min<Clock::duration>(until - Clock::now(), std::chrono::milliseconds(100)));
  }
  return true;
}

// Runs the container's healthcheck every interval while it runs: one thread of the monitor.
class HealthThread {
 public:
  HealthThread(const ContainerStore& store, std::string id, HealthSpec spec)
      : store_(store), id_(std::move(id)), spec_(std::move(spec)), thread_([this] { loop(); }) {}
  HealthThread(const HealthThread&) = delete;
  HealthThread& operator=(const HealthThread&) = delete;
  ~HealthThread() {
    {
      std::lock_guard l(mu_);
      done_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  // The container (re)started: the start period and the first interval count from now.
  void started() {
    std::lock_guard l(mu_);
    started_ = Clock::now();
    cv_.notify_all();
  }

 private:
  void loop() {
    std::unique_lock l(mu_);
    while (!done_) {
      const auto since = started_;
      if (cv_.wait_for(l, std::chrono::milliseconds(spec_.interval_ms), [&] { return done_ || started_ != since; })) {
        continue;  // done, or a new start: its own first interval
      }
      const bool in_start_period = Clock::now() - started_ < std::chrono::milliseconds(spec_.start_period_ms);
      l.unlock();
      probe_once(in_start_period);
      l.lock();
    }
  }
  void probe_once(bool in_start_period) {
    auto s = store_.load(id_);
    if (!s || s->status != "running" || s->pid <= 0) return;
    const pid_t pid = s->pid;
    HealthProbe probe = run_health_probe(
        pid, spec_, running_rootless() ? store_.dir(id_) / kSeccompFile : std::filesystem::path());
    (void)store_.update(id_, [&](ContainerState& c) {
      if (c.status != "running" || c.pid != pid) return;  // it ended (or restarted) meanwhile
      if (!c.health_state) c.health_state = HealthState{};
      record_probe(*c.health_state, spec_, std::move(probe), in_start_period);
    });
  }

  const ContainerStore& store_;
  std::string id_;
  HealthSpec spec_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  Clock::time_point started_ = Clock::now();
  std::thread thread_;  // last: started once the rest is ready
};

}  // namespace

int run_monitor(const MonitorOptions& o) {
  const ContainerStore store(o.runner.root);
  (void)::fcntl(kMonitorStatusFd, F_SETFD, FD_CLOEXEC);
  (void)::fcntl(kMonitorLockFd, F_SETFD, FD_CLOEXEC);
  StatusPipe status(kMonitorStatusFd);
  ::signal(SIGPIPE, SIG_IGN);
  ::signal(SIGHUP, SIG_IGN);
  // Orphans of the container (a PID 1 that does not reap, processes that escaped the pid
  // namespace by setns) come to the monitor, not to the host's init.
  (void)::prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
  // The record first: once the CLI has the report, `rm` must find the container exited.
  auto fail_start = [&](int code, const std::string& message) {
    (void)store.update(o.id, [&](ContainerState& s) {
      s.status = "exited";
      s.exit_code = code;
      s.error = message;
      s.pid = 0;
      s.finished_at = rfc3339_now();
    });
    status.send(fmt::format("error {} {}\n", code, one_line(message)));
  };

  const fs::path log_path = store.log_path(o.id);
  auto record = store.load(o.id);
  auto log = LogWriter::open(log_path, record ? record->log : LogOptions{});
  int out[2], err[2];
  if (!log || ::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0) {
    fail_start(125, log ? sys_error("pipe2", "container output").to_string() : log.error().to_string());
    return 125;
  }
  // The container inherits the monitor's stdout and stderr: the pipes' write ends.
  if (::dup2(out[1], STDOUT_FILENO) < 0 || ::dup2(err[1], STDERR_FILENO) < 0) {
    fail_start(125, sys_error("dup2", "container output").to_string());
    return 125;
  }
  ::close(out[1]);
  ::close(err[1]);
  std::thread pump(pump_logs, out[0], err[0], &*log);
  auto close_output = [&] {
    int null_fd = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
    (void)::dup2(null_fd, STDOUT_FILENO);
    (void)::dup2(null_fd, STDERR_FILENO);
    ::close(null_fd);
    pump.join();  // EOF once the container's processes are gone too
  };
  std::optional<HealthSpec> health_spec;
  (void)store.update(o.id, [&](ContainerState& s) {
    s.monitor_pid = ::getpid();
    health_spec = s.health;
  });
  std::optional<HealthThread> health;
  if (health_spec) health.emplace(store, o.id, *health_spec);

  const Runner runner(o.runner);
  int delay_ms = 0;
  bool first = true;
  while (true) {
    auto prepared = o.prepare();
    if (!prepared) {
      fail_start(125, prepared.error().to_string());
      break;
    }
    const auto began = Clock::now();
    auto result = runner.run(
        prepared->spec,
        {.store_lease = prepared->lease ? &*prepared->lease : nullptr,
         .started =
             [&](pid_t pid) {
               (void)store.update(o.id, [&](ContainerState& s) {
                 s.status = "running";
                 s.pid = pid;
                 s.started_at = rfc3339_now();
                 s.error.clear();
                 if (s.health) s.health_state = HealthState{};  // docker: starting again
               });
               if (health) health->started();
               status.send(fmt::format("started {}\n", pid));
             },
         .network_ready = prepared->network_ready,
         .exited = prepared->network_exited,
         .keep_container_dir = true});
    if (!result) {
      fail_start(125, result.error().to_string());
      break;
    }
    if (!result->exec_error.empty()) {
      fail_start(result->exit_code, result->exec_error);
      break;
    }
    const double ran = std::chrono::duration<double>(Clock::now() - began).count();
    bool again = false;
    (void)store.update(o.id, [&](ContainerState& s) {
      s.status = "exited";
      s.pid = 0;
      s.exit_code = result->exit_code;
      s.oom_killed = result->oom_killed;
      s.finished_at = rfc3339_now();
      again = !s.stop_requested && should_restart(s.restart, s.exit_code, s.restart_count);
      if (again) s.status = "restarting";
    });
    if (!again) break;
    delay_ms = restart_delay_ms(delay_ms, ran);
    if (!backoff(store, o.id, delay_ms)) {
      (void)store.update(o.id, [](ContainerState& s) { s.status = "exited"; });
      break;
    }
    (void)store.update(o.id, [](ContainerState& s) { ++s.restart_count; });
    first = false;
  }
  (void)first;
  health.reset();
  close_output();
  // --rm: the container goes with its monitor (a stale sweep after a killed one leaves it for
  // prune, as docker's daemon would after a crash).
  if (auto s = store.load(o.id); s && s->auto_remove) {
    if (auto rm = store.remove(*s); !rm) return 125;
  }
  return 0;
}

// ---- verbs on a running container --------------------------------------------------------------

namespace {

UniqueFd pidfd_of(pid_t pid) {
  if (pid <= 0) return UniqueFd(-1);
  return UniqueFd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
}

}  // namespace

Result<ContainerState> stop_container(const ContainerStore& store, std::string_view id,
                                      std::optional<int> timeout_s) {
  KISTE_ASSIGN_OR_RETURN(ContainerState s,
                         store.update(id, [](ContainerState& s) { s.stop_requested = true; }));
  if (!store.monitor_alive(id)) return store.load(id);
  UniqueFd monitor = pidfd_of(s.monitor_pid);
  if (!monitor) return store.load(id);
  const auto deadline = Clock::now() + std::chrono::seconds(std::max(0, timeout_s.value_or(s.stop_timeout)));
  pid_t signalled = 0;
  bool killed = false;
  while (true) {
    auto cur = store.load(id);
    if (!cur) break;
    if (!killed && Clock::now() >= deadline) {
      killed = true;
      signalled = 0;
    }
    if (cur->pid > 0 && cur->pid != signalled) {
      (void)::kill(cur->pid, killed ? SIGKILL : s.stop_signal);
      signalled = cur->pid;
    }
    struct pollfd pfd {monitor.get(), POLLIN, 0};
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    int slice = killed ? 100 : static_cast<int>(std::clamp<long long>(left, 0, 100));
    if (::poll(&pfd, 1, slice) > 0) break;  // the monitor recorded the end and exited
  }
  return store.load(id);
}

Status kill_container(const ContainerStore& store, std::string_view id, int signal) {
  KISTE_ASSIGN_OR_RETURN(ContainerState s,
                         store.update(id, [](ContainerState& s) { s.stop_requested = true; }));
  KISTE_ASSIGN_OR_RETURN(s, store.load(id));
  if (!s.running() || s.pid <= 0) {
    return failf(Errc::InvalidArgument, "kill container {}: it is not running", s.name);
  }
  if (::kill(s.pid, signal) != 0) return std::unexpected(sys_error("kill", s.name));
  return {};
}

Result<ContainerState> wait_container(const ContainerStore& store, std::string_view id) {
  UniqueFd fd(::open(store.monitor_lock_path(id).c_str(), O_RDONLY | O_CLOEXEC));
  if (fd) {
    while (::flock(fd.get(), LOCK_SH) != 0) {
      if (errno != EINTR) return std::unexpected(sys_error("lock", store.monitor_lock_path(id).native()));
    }
  }
  return store.load(id);
}

}  // namespace kiste::runtime
