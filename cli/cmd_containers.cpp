// ps, logs, stop, kill, wait, rm, container inspect|ls, and the detached part of container
// prune: wiring only; records, monitor and verbs are in kiste::runtime (container_store.hpp,
// monitor.hpp).
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <chrono>
#include <cstring>
#include <cstdio>
#include <ctime>
#include <deque>
#include <limits>
#include <map>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>

#include <kiste/base/go_template.hpp>
#include <kiste/base/sys.hpp>
#include <kiste/runtime/cgroup_stats.hpp>
#include <kiste/runtime/container_store.hpp>
#include <kiste/runtime/json_log.hpp>
#include <kiste/runtime/exec.hpp>
#include <kiste/runtime/rootless.hpp>
#include <kiste/runtime/monitor.hpp>
#include <kiste/runtime/run_options.hpp>
#include <kiste/runtime/runner.hpp>

#include "globals.hpp"
#include "listing.hpp"

namespace kiste::cli {

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using runtime::ContainerState;
using runtime::ContainerStore;

int64_t now_seconds() { return static_cast<int64_t>(std::time(nullptr)); }

int64_t seconds_of(const std::string& rfc) {
  std::tm tm{};
  if (rfc.empty() || ::strptime(rfc.c_str(), "%Y-%m-%dT%H:%M:%S", &tm) == nullptr) return 0;
  return ::timegm(&tm);
}

// docker's STATUS column: "Up 3 seconds", "Exited (0) 2 minutes ago", "Exited (unknown)", …
std::string status_column(const ContainerState& s) {
  const int64_t now = now_seconds();
  if (s.monitor_lost) return "Exited (unknown)";
  if (s.status == "running") {
    std::string up = "Up " + human_duration(now - seconds_of(s.started_at));
    if (s.health_state) {
      const std::string& h = s.health_state->status;
      up += h == "starting" ? " (health: starting)" : " (" + h + ")";
    }
    return up;
  }
  if (s.status == "restarting") {
    return fmt::format("Restarting ({}) {} ago", s.exit_code, human_duration(now - seconds_of(s.finished_at)));
  }
  if (s.status == "exited") {
    if (s.finished_at.empty()) return fmt::format("Exited ({})", s.exit_code);
    return fmt::format("Exited ({}) {} ago", s.exit_code, human_duration(now - seconds_of(s.finished_at)));
  }
  return "Created";
}

std::string command_column(const ContainerState& s) {
  std::string cmd;
  for (const auto& w : s.command) cmd += (cmd.empty() ? "" : " ") + w;
  return cmd;
}

std::string truncated(std::string s, size_t n) {
  if (s.size() > n) s = s.substr(0, n - 1) + "…";
  return s;
}

ContainerState load_or_exit(const ContainerStore& store, const std::string& ref) {
  const std::string id = value_or_exit(store.resolve(ref));
  return value_or_exit(store.load(id));
}

struct PsFlags {
  bool all = false, quiet = false, no_trunc = false;
  std::string format = "table";
  std::vector<std::string> filters;  // KEY=VALUE
};

// docker ps --filter: values of one key are alternatives, different keys must all hold. A status
// or exited filter shows stopped containers without -a, as in docker.
class PsFilter {
 public:
  static Result<PsFilter> parse(const std::vector<std::string>& specs) {
    static const std::set<std::string, std::less<>> kKeys = {"id", "name", "status", "exited", "ancestor", "health"};
    static const std::set<std::string, std::less<>> kStatus = {"created", "restarting", "running", "removing",
                                                               "paused", "exited", "dead"};
    static const std::set<std::string, std::less<>> kHealth = {"starting", "healthy", "unhealthy", "none"};
    PsFilter out;
    for (const std::string& spec : specs) {
      const size_t eq = spec.find('=');
      const std::string key = spec.substr(0, eq);
      const std::string value = eq == std::string::npos ? "" : spec.substr(eq + 1);
      if (eq == std::string::npos || value.empty()) {
        return failf(Errc::InvalidArgument, "--filter {}: expected KEY=VALUE", quote(spec));
      }
      if (!kKeys.contains(key)) {
        return failf(Errc::InvalidArgument, "--filter {}: unknown filter (id, name, status, exited, ancestor, health)",
                     quote(spec));
      }
      if (key == "status" && !kStatus.contains(value)) {
        return failf(Errc::InvalidArgument, "--filter {}: status is one of created, restarting, running, removing, "
                     "paused, exited, dead", quote(spec));
      }
      if (key == "health" && !kHealth.contains(value)) {
        return failf(Errc::InvalidArgument, "--filter {}: health is one of starting, healthy, unhealthy, none",
                     quote(spec));
      }
      if (key == "exited" && value.find_first_not_of("0123456789") != std::string::npos) {
        return failf(Errc::InvalidArgument, "--filter {}: exited takes an exit code", quote(spec));
      }
      out.values_[key].push_back(value);
    }
    return out;
  }
  [[nodiscard]] bool shows_stopped() const { return values_.contains("status") || values_.contains("exited"); }
  [[nodiscard]] bool matches(const ContainerState& s) const {
    for (const auto& [key, values] : values_) {
      bool any = false;
      for (const std::string& v : values) any = any || match(key, v, s);
      if (!any) return false;
    }
    return true;
  }

 private:
  static bool match(const std::string& key, const std::string& v, const ContainerState& s) {
    if (key == "id") return s.id.starts_with(v);
    if (key == "name") return s.name.find(v) != std::string::npos;
    if (key == "status") return s.status == v;
    if (key == "exited") return s.status == "exited" && std::to_string(s.exit_code) == v;
    if (key == "ancestor") return s.image == v || (v.find(':') == std::string::npos && s.image.starts_with(v + ":"));
    // health
    if (!s.health_state) return v == "none";
    return s.health_state->status == v;
  }
  std::map<std::string, std::vector<std::string>, std::less<>> values_;
};

void cmd_ps(const Globals& g, const PsFlags& f) {
  const PsFilter filter = value_or_exit(PsFilter::parse(f.filters));
  const ContainerStore store(g.root);
  auto list = value_or_exit(store.list());
  std::erase_if(list, [&](const ContainerState& s) {
    return !filter.matches(s) || (!f.all && !filter.shows_stopped() && !s.running());
  });
  if (f.format == "table" && !f.quiet) {
    std::printf("%-14s %-20s %-22s %-16s %-26s %s\n", "CONTAINER ID", "IMAGE", "COMMAND", "CREATED",
                "STATUS", "NAMES");
  }
  for (const auto& s : list) {
    const std::string id = f.no_trunc ? s.id : s.id.substr(0, 12);
    if (f.quiet) {
      std::printf("%s\n", id.c_str());
    } else if (f.format == "json") {
      json j{{"ID", id},
             {"Image", s.image},
             {"Command", "\"" + command_column(s) + "\""},
             {"CreatedAt", s.created},
             {"RunningFor", created_column(s.created, now_seconds())},
             {"State", s.status},
             {"Status", status_column(s)},
             {"Names", s.name}};
      std::printf("%s\n", j.dump(-1, ' ', false, json::error_handler_t::replace).c_str());
    } else {
      std::printf("%-14s %-20s %-22s %-16s %-26s %s\n", id.c_str(), truncated(s.image, 20).c_str(),
                  ("\"" + truncated(command_column(s), 19) + "\"").c_str(),
                  created_column(s.created, now_seconds()).c_str(), status_column(s).c_str(),
                  s.name.c_str());
    }
  }
}

// State.Health and Config.Healthcheck as docker shows them (durations in nanoseconds).
json health_json(const runtime::HealthState& h) {
  json log = json::array();
  for (const auto& p : h.log) {
    log.push_back({{"Start", p.start}, {"End", p.end}, {"ExitCode", p.exit_code}, {"Output", p.output}});
  }
  return {{"Status", h.status}, {"FailingStreak", h.failing_streak}, {"Log", log}};
}

json inspect_json(const ContainerStore& store, const ContainerState& s) {
  json args = json::array();
  for (size_t i = 1; i < s.command.size(); ++i) args.push_back(s.command[i]);
  json j{
      {"Id", s.id},
      {"Created", s.created},
      {"Path", s.command.empty() ? "" : s.command.front()},
      {"Args", args},
      {"State",
       {{"Status", s.status},
        {"Running", s.status == "running"},
        {"Paused", false},
        {"Restarting", s.status == "restarting"},
        {"OOMKilled", s.oom_killed},
        {"Dead", false},
        {"Pid", s.pid},
        {"ExitCode", s.exit_code},
        {"Error", s.monitor_lost ? "the container's monitor is gone" : s.error},
        {"StartedAt", s.started_at.empty() ? "0001-01-01T00:00:00Z" : s.started_at},
        {"FinishedAt", s.finished_at.empty() ? "0001-01-01T00:00:00Z" : s.finished_at}}},
      {"Image", s.image},
      {"Name", "/" + s.name},
      {"RestartCount", s.restart_count},
      {"LogPath", store.log_path(s.id).native()},
      {"HostConfig",
       {{"RestartPolicy",
         {{"Name", runtime::restart_policy_name(s.restart)},
          {"MaximumRetryCount", s.restart.max_retries}}}}},
      {"Config", {{"StopSignal", s.stop_signal}, {"StopTimeout", s.stop_timeout}}}};
  if (s.health_state) j["State"]["Health"] = health_json(*s.health_state);
  if (s.health) {
    constexpr int64_t kNsPerMs = 1'000'000;
    j["Config"]["Healthcheck"] = {{"Test", s.health->test},
                                  {"Interval", s.health->interval_ms * kNsPerMs},
                                  {"Timeout", s.health->timeout_ms * kNsPerMs},
                                  {"StartPeriod", s.health->start_period_ms * kNsPerMs},
                                  {"Retries", s.health->retries}};
  }
  return j;
}

// docker's output: a JSON array, or with -f the template applied to each, one line per container.
void cmd_inspect(const Globals& g, const std::vector<std::string>& refs, const std::string& format) {
  std::optional<GoTemplate> tpl;
  if (!format.empty()) tpl = value_or_exit(GoTemplate::parse(format));
  const ContainerStore store(g.root);
  json out = json::array();
  std::string lines;
  for (const auto& r : refs) {
    json one = inspect_json(store, load_or_exit(store, r));
    if (tpl) {
      lines += value_or_exit(tpl->render(one)) + "\n";
    } else {
      out.push_back(std::move(one));
    }
  }
  if (tpl) {
    std::fputs(lines.c_str(), stdout);
  } else {
    std::printf("%s\n", out.dump(4, ' ', false, json::error_handler_t::replace).c_str());
  }
}

struct LogsFlags {
  bool follow = false, timestamps = false;
  std::optional<size_t> tail;
  std::string since, until;  // docker's forms (parse_log_time)
};

void print_entry(const runtime::LogEntry& e, bool timestamps) {
  FILE* out = e.stream == "stderr" ? stderr : stdout;
  if (timestamps) std::fprintf(out, "%s ", e.time.c_str());
  std::fwrite(e.log.data(), 1, e.log.size(), out);
  std::fflush(out);
}

// `kiste port CONTAINER [PORT[/PROTO]]`: the host ports a running detached container's monitor
// bound (it writes them to the container dir and removes the file when the start ends).
void cmd_port(const Globals& g, const std::string& ref, const std::string& port) {
  const ContainerStore store(g.root);
  const ContainerState s = load_or_exit(store, ref);
  auto text = sys::read_file(store.dir(s.id) / "ports", 1 << 20);
  if (!s.running() || (!text && text.error().sys_errno == ENOENT)) text = std::string();
  std::string all = value_or_exit(std::move(text));
  std::string want = port.empty() || port.find('/') != std::string::npos ? port : port + "/tcp";
  bool found = false;
  for (size_t pos = 0; pos < all.size();) {
    size_t nl = all.find('\n', pos);
    std::string line = all.substr(pos, (nl == std::string::npos ? all.size() : nl) - pos);
    pos = nl == std::string::npos ? all.size() : nl + 1;
    if (want.empty()) {
      std::printf("%s\n", line.c_str());
    } else if (line.starts_with(want + " -> ")) {
      std::printf("%s\n", line.substr(want.size() + 4).c_str());
      found = true;
    }
  }
  if (!want.empty() && !found) {
    exit_on_error(failf(Errc::NotFound, "container {}: no published port {}", quote(ref), want));
  }
}

void cmd_logs(const Globals& g, const std::string& ref, const LogsFlags& f) {
  const int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                          std::chrono::system_clock::now().time_since_epoch()).count();
  std::optional<int64_t> since, until;
  if (!f.since.empty()) since = value_or_exit(with_context(runtime::parse_log_time(f.since, now), "--since"));
  if (!f.until.empty()) until = value_or_exit(with_context(runtime::parse_log_time(f.until, now), "--until"));
  const ContainerStore store(g.root);
  const ContainerState s = load_or_exit(store, ref);
  runtime::LogReader reader(store.log_path(s.id));
  std::vector<runtime::LogEntry> entries;
  exit_on_error(reader.read(entries));
  // --since/--until keep the entries whose own time is in [since, until] (an entry whose time
  // cannot be read is kept: its neighbours decide).
  auto wanted = [&](const runtime::LogEntry& e) {
    if (!since && !until) return true;
    auto t = runtime::parse_log_time(e.time, now);
    return !t || ((!since || *t >= *since) && (!until || *t <= *until));
  };
  std::erase_if(entries, [&](const runtime::LogEntry& e) { return !wanted(e); });
  size_t from = 0;
  if (f.tail && entries.size() > *f.tail) from = entries.size() - *f.tail;
  for (size_t i = from; i < entries.size(); ++i) print_entry(entries[i], f.timestamps);
  if (!f.follow) return;
  // Follow (across rotations) until the monitor is gone (or --until has passed), then read what
  // it wrote last.
  auto more = [&] {
    entries.clear();
    exit_on_error(reader.read(entries));
    for (const auto& e : entries) {
      if (wanted(e)) print_entry(e, f.timestamps);
    }
  };
  auto before_until = [&] {
    return !until || std::chrono::duration_cast<std::chrono::nanoseconds>(
                         std::chrono::system_clock::now().time_since_epoch()).count() <= *until;
  };
  while (store.monitor_alive(s.id) && before_until()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    more();
  }
  more();
}

void cmd_stop(const Globals& g, const std::vector<std::string>& refs, std::optional<int> timeout) {
  const ContainerStore store(g.root);
  for (const auto& r : refs) {
    const std::string id = value_or_exit(store.resolve(r));
    (void)value_or_exit(runtime::stop_container(store, id, timeout));
    std::printf("%s\n", r.c_str());
  }
}

// Follows the container's log from `reader`'s place until its monitor is gone.
void follow_until_done(const ContainerStore& store, const std::string& id, runtime::LogReader& reader) {
  std::vector<runtime::LogEntry> entries;
  auto more = [&] {
    entries.clear();
    exit_on_error(reader.read(entries));
    for (const auto& e : entries) print_entry(e, false);
  };
  while (store.monitor_alive(id)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    more();
  }
  more();
}

// attach CONTAINER: the running container's output from now on until it ends, its exit status as
// ours (as docker attach). Ctrl-C ends the attach only (docker's --sig-proxy=false): the container
// runs in its monitor's session and never gets the terminal's signals. There is no stdin to
// attach: a detached container's is /dev/null (run -d refuses -i).
void cmd_attach(const Globals& g, const std::string& ref, const std::string& sig_proxy) {
  if (sig_proxy != "false") {
    exit_on_error(fail(Errc::Unsupported, "attach: only --sig-proxy=false (Ctrl-C ends the attach, not the container)"));
  }
  const ContainerStore store(g.root);
  const ContainerState s = load_or_exit(store, ref);
  runtime::LogReader reader(store.log_path(s.id));
  std::vector<runtime::LogEntry> before;
  exit_on_error(reader.read(before));  // what it wrote so far is `logs`' business
  if (!s.running() || !store.monitor_alive(s.id)) {
    exit_on_error(failf(Errc::InvalidArgument, "attach to container {}: it is not running (start it first)", s.name));
  }
  // Ctrl-C detaches even where the shell started us with SIGINT ignored (a background job).
  (void)::signal(SIGINT, SIG_DFL);
  follow_until_done(store, s.id, reader);
  const ContainerState end = load_or_exit(store, s.id);
  if (end.exit_code != 0) throw CLI::RuntimeError(end.exit_code < 0 ? kExitFailure : end.exit_code);
}

// A container that does not run gets a new monitor (the stop of a `stop` no longer holds).
// What a monitor that died left (its container's cgroup, mounts) goes first: the sweep.
void start_one(const Globals& g, const ContainerStore& store, const ContainerState& s) {
  if (s.monitor_lost) {
    auto stale = runtime::Runner({.root = g.root}).sweep();
    if (!stale) exit_on_error(std::unexpected(std::move(stale).error()));
  }
  (void)value_or_exit(store.update(s.id, [](ContainerState& c) {
    c.stop_requested = false;
    c.error.clear();
  }));
  if (int code = start_monitor(g, s.id, s.run_args); code != 0) throw CLI::RuntimeError(code);
}

// start [-a] CONTAINER…, and start --all: the boot hook (`always`, and `unless-stopped` that no
// stop ended), as docker's daemon does when it starts.
void cmd_start(const Globals& g, const std::vector<std::string>& refs, bool attach, bool all) {
  const ContainerStore store(g.root);
  if (all) {
    if (!refs.empty() || attach) {
      exit_on_error(fail(Errc::InvalidArgument, "start --all: takes no CONTAINER and no -a"));
    }
    for (const auto& s : value_or_exit(store.list())) {
      if (!runtime::starts_at_boot(s) || store.monitor_alive(s.id)) continue;
      start_one(g, store, s);
      std::printf("%s\n", s.name.c_str());
    }
    return;
  }
  if (refs.empty()) exit_on_error(fail(Errc::InvalidArgument, "start: give a CONTAINER (or --all)"));
  if (attach && refs.size() > 1) {
    exit_on_error(fail(Errc::InvalidArgument, "start -a: you cannot start and attach multiple containers at once"));
  }
  for (const auto& r : refs) {
    const ContainerState s = load_or_exit(store, r);
    if (store.monitor_alive(s.id)) {  // running already (or its monitor is ending): as docker, fine
      if (!attach) std::printf("%s\n", r.c_str());
      continue;
    }
    if (!attach) {
      start_one(g, store, s);
      std::printf("%s\n", r.c_str());
      continue;
    }
    // -a: the output from this start on, and the container's exit status as ours.
    runtime::LogReader reader(store.log_path(s.id));
    std::vector<runtime::LogEntry> before;
    exit_on_error(reader.read(before));
    start_one(g, store, s);
    follow_until_done(store, s.id, reader);
    const ContainerState end = load_or_exit(store, s.id);
    if (end.exit_code != 0) throw CLI::RuntimeError(end.exit_code < 0 ? kExitFailure : end.exit_code);
  }
}

void cmd_restart(const Globals& g, const std::vector<std::string>& refs, std::optional<int> timeout) {
  const ContainerStore store(g.root);
  for (const auto& r : refs) {
    const std::string id = value_or_exit(store.resolve(r));
    const ContainerState s = value_or_exit(runtime::stop_container(store, id, timeout));
    start_one(g, store, s);
    std::printf("%s\n", r.c_str());
  }
}

// top: docker's columns (UID PID PPID C STIME TTY TIME CMD) from the host's `ps -f`, for the
// processes of the container's cgroup, as docker runs ps on the host for them.
int cmd_top(const Globals& g, const std::string& ref) {
  const ContainerStore store(g.root);
  const ContainerState s = load_or_exit(store, ref);
  if (s.status != "running" || s.pid <= 0) {
    return report(Error{.code = Errc::InvalidArgument,
                        .message = fmt::format("top container {}: it is not running", s.name)});
  }
  const std::vector<pid_t> pids = value_or_exit(runtime::container_pids(s.pid));
  std::string list;
  for (pid_t p : pids) list += (list.empty() ? "" : ",") + std::to_string(p);
  std::fflush(stdout);
  const pid_t child = ::fork();
  if (child < 0) return report(sys_error("fork", "ps"));
  if (child == 0) {
    ::execlp("ps", "ps", "-f", "-p", list.c_str(), static_cast<char*>(nullptr));
    std::fprintf(stderr, "kiste: error: top: exec `ps`: %s\n", std::strerror(errno));
    _exit(127);
  }
  int st = 0;
  while (::waitpid(child, &st, 0) < 0 && errno == EINTR) {
  }
  // ps ends with 1 when a process went between the listing and its run: still a listing.
  return WIFEXITED(st) && WEXITSTATUS(st) <= 1 ? 0 : kExitFailure;
}

// go-units' BytesSize, as docker stats prints sizes: "%.4g" of binary units.
std::string binary_size(uint64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  return fmt::format("{:.4g}{}", v, units[u]);
}

struct StatsFlags {
  bool no_stream = false;
  std::string format = "table";
};

// One row of docker's stats table, as its strings ("--" where a figure is missing).
struct StatsRow {
  std::string id, name, cpu = "--", mem = "-- / --", mem_pct = "--", net = "--", block = "--",
                        pids = "--";
};

// The row of container `s` from its previous sample (CPU % is the delta of the cgroup's CPU time
// over the wall time since, as docker's delta over the host's) and the current one.
StatsRow stats_row(const ContainerState& s, const std::optional<runtime::StatsSample>& before,
                   const std::optional<runtime::StatsSample>& now, double wall_ns) {
  static const uint64_t host_memory =
      static_cast<uint64_t>(::sysconf(_SC_PHYS_PAGES)) * static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  StatsRow row{.id = s.id.substr(0, 12), .name = s.name};
  if (s.running() && s.pid > 0) {
    if (auto n = runtime::container_net(s.pid); n && *n) {
      row.net = human_size(static_cast<int64_t>((*n)->rx)) + " / " + human_size(static_cast<int64_t>((*n)->tx));
    }
  }
  if (!now) return row;
  if (before && before->cpu_usage_ns && now->cpu_usage_ns && wall_ns > 0) {
    const uint64_t a = *before->cpu_usage_ns, b = *now->cpu_usage_ns;
    row.cpu = fmt::format("{:.2f}%", b > a ? static_cast<double>(b - a) / wall_ns * 100.0 : 0.0);
  }
  const uint64_t limit = now->memory_limit ? std::min(*now->memory_limit, host_memory) : host_memory;
  if (now->memory_usage) {
    row.mem = binary_size(*now->memory_usage) + " / " + binary_size(limit);
    if (limit > 0) {
      row.mem_pct =
          fmt::format("{:.2f}%", static_cast<double>(*now->memory_usage) / static_cast<double>(limit) * 100.0);
    }
  }
  if (now->pids) row.pids = std::to_string(*now->pids);
  if (now->block_read && now->block_write) {
    row.block = human_size(static_cast<int64_t>(*now->block_read)) + " / " +
                human_size(static_cast<int64_t>(*now->block_write));
  }
  return row;
}

void print_stats_row(const StatsRow& r, const std::string& format) {
  if (format == "json") {
    json j{{"BlockIO", r.block}, {"CPUPerc", r.cpu},  {"Container", r.name}, {"ID", r.id},
           {"MemPerc", r.mem_pct}, {"MemUsage", r.mem}, {"Name", r.name},    {"NetIO", r.net},
           {"PIDs", r.pids}};
    std::printf("%s\n", j.dump(-1, ' ', false, json::error_handler_t::replace).c_str());
  } else {
    std::printf("%-14s %-20s %-8s %-21s %-8s %-10s %-10s %s\n", r.id.c_str(), truncated(r.name, 20).c_str(),
                r.cpu.c_str(), r.mem.c_str(), r.mem_pct.c_str(), r.net.c_str(), r.block.c_str(), r.pids.c_str());
  }
}

// stats: docker's columns from the containers' cgroups. --no-stream prints one table from two
// samples ~0.5 s apart; otherwise a table every second (the screen cleared first when stdout is a
// terminal, as docker does) until interrupted. Without names it shows the running containers,
// re-listed each time (new ones appear, ended ones go); named containers stay, with "--" once they
// end. NET I/O from the container's network namespace ("--" when it shares the host's), BLOCK I/O
// from the blkio controller (v1) or io.stat (v2).
void cmd_stats(const Globals& g, const std::vector<std::string>& refs, const StatsFlags& f) {
  const ContainerStore store(g.root);
  auto containers = [&] {
    std::vector<ContainerState> list;
    if (refs.empty()) {  // docker's default: the running containers
      for (auto& s : value_or_exit(store.list())) {
        if (s.running() && s.pid > 0) list.push_back(std::move(s));
      }
    } else {
      for (const auto& r : refs) list.push_back(load_or_exit(store, r));
    }
    return list;
  };
  auto sample = [](const ContainerState& s) -> std::optional<runtime::StatsSample> {
    if (!s.running() || s.pid <= 0) return std::nullopt;
    auto v = runtime::container_stats(s.pid);
    return v ? std::optional(*v) : std::nullopt;
  };
  using Clock = std::chrono::steady_clock;
  struct Previous {
    std::optional<runtime::StatsSample> sample;
    Clock::time_point at;
  };
  std::map<std::string, Previous> previous;  // by container id
  auto list = containers();
  for (const auto& s : list) previous[s.id] = {sample(s), Clock::now()};
  const bool clear = !f.no_stream && f.format == "table" && ::isatty(STDOUT_FILENO);
  if (!f.no_stream) {  // nothing to clean up: Ctrl-C and SIGTERM end the stream at once
    (void)::signal(SIGINT, SIG_DFL);
    (void)::signal(SIGTERM, SIG_DFL);
  }
  for (;;) {
    std::this_thread::sleep_for(std::chrono::milliseconds(f.no_stream ? 500 : 1000));
    if (!f.no_stream) {
      list = containers();
      for (auto& s : list) {  // a named container's record moves on (restarts, end)
        if (!refs.empty()) s = value_or_exit(store.load(s.id));
      }
    }
    if (clear) std::fputs("\033[2J\033[H", stdout);
    if (f.format == "table") {
      std::printf("%-14s %-20s %-8s %-21s %-8s %-10s %-10s %s\n", "CONTAINER ID", "NAME", "CPU %",
                  "MEM USAGE / LIMIT", "MEM %", "NET I/O", "BLOCK I/O", "PIDS");
    }
    std::map<std::string, Previous> next;
    for (const auto& s : list) {
      const auto now = sample(s);
      const auto at = Clock::now();
      const auto it = previous.find(s.id);
      const bool have = it != previous.end();
      const double wall_ns =
          have ? static_cast<double>(std::chrono::duration_cast<std::chrono::nanoseconds>(at - it->second.at).count())
               : 0.0;
      print_stats_row(stats_row(s, have ? it->second.sample : std::nullopt, now, wall_ns), f.format);
      next[s.id] = {now, at};
    }
    if (f.no_stream) return;
    if (std::fflush(stdout) != 0) std::exit(kExitFailure);  // the reader went away
    previous = std::move(next);
  }
}

void cmd_kill(const Globals& g, const std::vector<std::string>& refs, const std::string& signal) {
  const ContainerStore store(g.root);
  const int sig = value_or_exit(with_context(runtime::parse_signal(signal), "--signal"));
  for (const auto& r : refs) {
    const std::string id = value_or_exit(store.resolve(r));
    exit_on_error(runtime::kill_container(store, id, sig));
    std::printf("%s\n", r.c_str());
  }
}

void cmd_wait(const Globals& g, const std::vector<std::string>& refs) {
  const ContainerStore store(g.root);
  for (const auto& r : refs) {
    const std::string id = value_or_exit(store.resolve(r));
    auto s = value_or_exit(runtime::wait_container(store, id));
    std::printf("%d\n", s.exit_code);
  }
}

// Removes a container that no longer runs: what its killed monitor left (cgroups, processes:
// the live-marker sweep), then its dir and name.
Status remove_stopped(const Globals& g, const ContainerStore& store, const ContainerState& s) {
  if (store.monitor_alive(s.id)) {
    KISTE_TRY(runtime::wait_container(store, s.id));  // it is writing its last record
  }
  const runtime::Runner runner({.root = g.root});
  KISTE_TRY(runner.sweep());
  return store.remove(s);
}

void cmd_rm(const Globals& g, const std::vector<std::string>& refs, bool force) {
  const ContainerStore store(g.root);
  for (const auto& r : refs) {
    const std::string id = value_or_exit(store.resolve(r));
    ContainerState s = value_or_exit(store.load(id));
    const bool active = s.running() || (s.status == "created" && store.monitor_alive(id));
    if (active && !force) {
      exit_on_error(failf(Errc::InvalidArgument,
                          "remove container {}: it is running (stop it first, or use rm -f)", s.name));
    }
    if (active) s = value_or_exit(runtime::stop_container(store, id, 0));
    exit_on_error(with_context(remove_stopped(g, store, s), fmt::format("remove container {}", s.name)));
    std::printf("%s\n", r.c_str());
  }
}

struct ExecFlags {
  std::vector<std::string> env;
  std::string workdir = "/";
  std::string user;  // -u NAME|UID[:GROUP|GID], resolved in the container's own /etc files
  bool interactive = false, tty = false;
};

int cmd_exec(const Globals& g, const ExecFlags& f, std::vector<std::string> words) {
  if (words.size() < 2) {
    return report(Error{.code = Errc::InvalidArgument, .message = "exec: give CONTAINER COMMAND [ARG...]"});
  }
  const ContainerStore store(g.root);
  auto id = store.resolve(words.front());
  if (!id) return report(id.error());
  auto s = store.load(*id);
  if (!s) return report(s.error());
  if (s->status != "running" || s->pid <= 0) {
    return report(Error{.code = Errc::InvalidArgument,
                        .message = fmt::format("exec in container {}: it is not running", s->name)});
  }
  words.erase(words.begin());
  // An ordinary user's exec joins the container's user namespace (main() made none for it).
  const bool rootless = ::getuid() != 0 && !runtime::running_rootless();
  if (rootless) {
    if (auto joined = runtime::join_rootless_namespace_of(s->pid); !joined) {
      return report(joined.error().with_context(fmt::format("exec in container {}", s->name)));
    }
  }
  std::optional<runtime::ExecRequest::User> user;
  if (!f.user.empty()) {
    // docker exec -u: the container's files as they are now, read inside its root.
    auto u = runtime::resolve_user(f.user, {fs::path(fmt::format("/proc/{}/root", s->pid))});
    if (!u) return report(u.error().with_context(fmt::format("exec in container {}", s->name)));
    user = runtime::ExecRequest::User{.uid = u->uid, .gid = u->gid, .groups = u->additional_gids};
  }
  auto r = runtime::exec_in_container(
      {.target = s->pid, .args = std::move(words), .env = f.env, .cwd = f.workdir, .user = user,
       .terminal = f.tty, .forward_stdin = f.interactive,
       .seccomp_file = rootless ? store.dir(*id) / runtime::kSeccompFile : fs::path()});
  if (!r) return report(r.error().with_context(fmt::format("container {}", s->name)));
  if (!r->exec_error.empty()) std::fprintf(stderr, "kiste: error: %s\n", r->exec_error.c_str());
  return r->exit_code;
}

}  // namespace

void prune_stopped_containers(const Globals& g) {
  const ContainerStore store(g.root);
  auto list = value_or_exit(store.list());
  bool header = false;
  for (const auto& s : list) {
    if (s.running() || store.monitor_alive(s.id)) continue;
    exit_on_error(with_context(remove_stopped(g, store, s), fmt::format("remove container {}", s.name)));
    if (!header) std::printf("Deleted Containers:\n");
    header = true;
    std::printf("%s\n", s.id.c_str());
  }
}

bool inspect_if_containers(const Globals& g, const std::vector<std::string>& refs,
                           const std::string& format) {
  const ContainerStore store(g.root);
  for (const auto& r : refs) {
    if (!store.resolve(r)) return false;
  }
  cmd_inspect(g, refs, format);
  return true;
}

void add_container_subcommands(CLI::App& ctr, Globals& g) {
  auto refs = std::make_shared<std::vector<std::string>>();
  auto format = std::make_shared<std::string>();
  auto* inspect = ctr.add_subcommand("inspect", "Show containers' state and configuration as JSON");
  inspect->add_option("-f,--format", *format, "Go template, e.g. '{{.State.Status}}' (no range/if)");
  inspect->add_option("CONTAINER", *refs, "names or ids")->required();
  inspect->callback([&g, refs, format] { cmd_inspect(g, *refs, *format); });
}

void register_container_commands(CLI::App& app, Globals& g) {
  register_cp_command(app, g);
  auto ps_flags = std::make_shared<PsFlags>();
  auto* ps = app.add_subcommand("ps", "List detached containers");
  ps->add_flag("-a,--all", ps_flags->all, "also the ones that no longer run");
  ps->add_flag("-q,--quiet", ps_flags->quiet, "only ids");
  ps->add_flag("--no-trunc", ps_flags->no_trunc, "whole ids");
  ps->add_option("-f,--filter", ps_flags->filters,
                 "KEY=VALUE: id, name, status, exited, ancestor, health (repeatable)")->allow_extra_args(false);
  ps->add_option("--format", ps_flags->format, "table (default) or json")
      ->check(CLI::IsMember({"table", "json"}));
  ps->callback([&g, ps_flags] { cmd_ps(g, *ps_flags); });

  auto attach_ref = std::make_shared<std::string>();
  auto sig_proxy = std::make_shared<std::string>("false");
  auto* attach = app.add_subcommand("attach", "Stream a running detached container's output until it ends (Ctrl-C detaches)");
  attach->add_option("--sig-proxy", *sig_proxy, "false (the only choice: signals stay with kiste attach)");
  auto no_stdin = std::make_shared<bool>(false);
  attach->add_flag("--no-stdin", *no_stdin, "a detached container has no stdin to attach (accepted for docker's sake)");
  attach->add_option("CONTAINER", *attach_ref, "name or id")->required();
  attach->callback([&g, attach_ref, sig_proxy] { cmd_attach(g, *attach_ref, *sig_proxy); });

  auto logs_flags = std::make_shared<LogsFlags>();
  auto logs_ref = std::make_shared<std::string>();
  auto* logs = app.add_subcommand("logs", "Show a detached container's output");
  logs->add_flag("-f,--follow", logs_flags->follow, "keep printing until the container ends");
  logs->add_flag("-t,--timestamps", logs_flags->timestamps, "prefix each line with its time");
  logs->add_option("-n,--tail", logs_flags->tail, "only the last N lines");
  logs->add_option("--since", logs_flags->since, "only lines from this time on (2026-12-07T18:57:08Z, a Unix time, or 10m ago)");
  logs->add_option("--until", logs_flags->until, "only lines up to this time (same forms)");
  logs->add_option("CONTAINER", *logs_ref, "name or id")->required();
  logs->callback([&g, logs_flags, logs_ref] { cmd_logs(g, *logs_ref, *logs_flags); });

  auto port_args = std::make_shared<std::pair<std::string, std::string>>();
  auto* port = app.add_subcommand("port", "Show a detached container's published ports");
  port->add_option("CONTAINER", port_args->first, "name or id")->required();
  port->add_option("PORT", port_args->second, "only this container port (PORT[/tcp])");
  port->callback([&g, port_args] { cmd_port(g, port_args->first, port_args->second); });

  auto refs = std::make_shared<std::vector<std::string>>();
  auto timeout = std::make_shared<std::optional<int>>();
  auto* stop = app.add_subcommand("stop", "Stop containers: the stop signal, then SIGKILL");
  stop->add_option("-t,--time", *timeout, "seconds to wait before SIGKILL (default: --stop-timeout, 10)");
  stop->add_option("CONTAINER", *refs, "names or ids")->required();
  stop->callback([&g, refs, timeout] { cmd_stop(g, *refs, *timeout); });

  auto signal = std::make_shared<std::string>("KILL");
  auto* kill = app.add_subcommand("kill", "Send a signal to containers");
  kill->add_option("-s,--signal", *signal, "signal name or number (default KILL)");
  kill->add_option("CONTAINER", *refs, "names or ids")->required();
  kill->callback([&g, refs, signal] { cmd_kill(g, *refs, *signal); });

  auto exec_flags = std::make_shared<ExecFlags>();
  auto* exec = app.add_subcommand("exec", "Run a command in a running container");
  exec->prefix_command();  // everything after CONTAINER is the command
  exec->add_option("-e,--env", exec_flags->env, "set an environment variable (KEY=VALUE)")->allow_extra_args(false);
  exec->add_option("-w,--workdir", exec_flags->workdir, "working directory inside the container");
  exec->add_flag("-i,--interactive", exec_flags->interactive, "with -t: forward stdin to the command's terminal (without -t stdin always passes)");
  exec->add_flag("-t,--tty", exec_flags->tty, "give the command a terminal (a pty of the container's)");
  exec->add_option("-u,--user", exec_flags->user, "NAME|UID[:GROUP|GID] from the container's /etc/passwd and /etc/group");
  exec->footer("Arguments: CONTAINER COMMAND [ARG...]");
  exec->callback([&g, exec, exec_flags] {
    int code = cmd_exec(g, *exec_flags, exec->remaining());
    if (code != 0) throw CLI::RuntimeError(code);
  });

  auto* wait = app.add_subcommand("wait", "Wait for containers to end; print their exit codes");
  wait->add_option("CONTAINER", *refs, "names or ids")->required();
  wait->callback([&g, refs] { cmd_wait(g, *refs); });

  auto start_attach = std::make_shared<bool>(false);
  auto start_all = std::make_shared<bool>(false);
  auto start_refs = std::make_shared<std::vector<std::string>>();
  auto* start = app.add_subcommand("start", "Start detached containers that do not run");
  start->add_flag("-a,--attach", *start_attach, "print the container's output and end with its exit status");
  start->add_flag("--all", *start_all,
                  "start every `always` container and every `unless-stopped` one no stop ended (the boot hook)");
  start->add_option("CONTAINER", *start_refs, "names or ids");
  start->callback([&g, start_refs, start_attach, start_all] { cmd_start(g, *start_refs, *start_attach, *start_all); });

  auto* restart = app.add_subcommand("restart", "Stop (if it runs) and start containers again");
  restart->add_option("-t,--time", *timeout, "seconds to wait before SIGKILL (default: --stop-timeout, 10)");
  restart->add_option("CONTAINER", *refs, "names or ids")->required();
  restart->callback([&g, refs, timeout] { cmd_restart(g, *refs, *timeout); });

  auto top_ref = std::make_shared<std::string>();
  auto* top = app.add_subcommand("top", "Show the processes of a running container (ps -f)");
  top->add_option("CONTAINER", *top_ref, "name or id")->required();
  top->callback([&g, top_ref] {
    if (int code = cmd_top(g, *top_ref); code != 0) throw CLI::RuntimeError(code);
  });

  auto stats_flags = std::make_shared<StatsFlags>();
  auto stats_refs = std::make_shared<std::vector<std::string>>();
  auto* stats = app.add_subcommand("stats", "Show containers' resource use (CPU, memory, pids) from their cgroups");
  stats->add_flag("--no-stream", stats_flags->no_stream, "print one sample and exit");
  stats->add_option("--format", stats_flags->format, "table (default) or json")
      ->check(CLI::IsMember({"table", "json"}));
  stats->add_option("CONTAINER", *stats_refs, "names or ids (default: the running containers)");
  stats->callback([&g, stats_refs, stats_flags] { cmd_stats(g, *stats_refs, *stats_flags); });

  auto force = std::make_shared<bool>(false);
  auto* rm = app.add_subcommand("rm", "Remove containers");
  rm->add_flag("-f,--force", *force, "stop (SIGKILL) a running container first");
  rm->add_option("CONTAINER", *refs, "names or ids")->required();
  rm->callback([&g, refs, force] { cmd_rm(g, *refs, *force); });
}

}  // namespace kiste::cli
