#include <kiste/runtime/container_store.hpp>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <ctime>

#include <nlohmann/json.hpp>

#include <kiste/base/file_lock.hpp>
#include <kiste/base/sys.hpp>
#include <kiste/runtime/container.hpp>

namespace kiste::runtime {

namespace fs = std::filesystem;
using json = nlohmann::json;

Result<RestartPolicy> parse_restart_policy(std::string_view s) {
  auto bad = [&] {
    return failf(Errc::InvalidArgument,
                 "restart policy {}: want no, on-failure[:N], always or unless-stopped", quote(s));
  };
  if (s.empty() || s == "no") return RestartPolicy{};
  // The monitor never restarts a container that `stop` ended, under either; they differ at boot
  // (`start --all`), which starts `always` ones even when they were stopped.
  if (s == "always") return RestartPolicy{.kind = RestartPolicy::Kind::Always};
  if (s == "unless-stopped") return RestartPolicy{.kind = RestartPolicy::Kind::UnlessStopped};
  if (s == "on-failure") return RestartPolicy{.kind = RestartPolicy::Kind::OnFailure};
  if (s.starts_with("on-failure:")) {
    std::string_view n = s.substr(11);
    int v = 0;
    auto [p, ec] = std::from_chars(n.data(), n.data() + n.size(), v);
    if (n.empty() || ec != std::errc{} || p != n.data() + n.size() || v < 0) return bad();
    return RestartPolicy{.kind = RestartPolicy::Kind::OnFailure, .max_retries = v};
  }
  return bad();
}

std::string restart_policy_name(const RestartPolicy& p) {
  switch (p.kind) {
    case RestartPolicy::Kind::No: return "no";
    case RestartPolicy::Kind::OnFailure: return "on-failure";
    case RestartPolicy::Kind::Always: return "always";
    case RestartPolicy::Kind::UnlessStopped: return "unless-stopped";
  }
  return "no";
}

bool should_restart(const RestartPolicy& p, int exit_code, int restarts) {
  switch (p.kind) {
    case RestartPolicy::Kind::No: return false;
    case RestartPolicy::Kind::Always:
    case RestartPolicy::Kind::UnlessStopped: return true;
    case RestartPolicy::Kind::OnFailure:
      return exit_code != 0 && (p.max_retries == 0 || restarts < p.max_retries);
  }
  return false;
}

bool starts_at_boot(const ContainerState& s) {
  if (s.running()) return false;
  if (s.restart.kind == RestartPolicy::Kind::Always) return true;
  return s.restart.kind == RestartPolicy::Kind::UnlessStopped && !s.stop_requested;
}

int restart_delay_ms(int previous_delay_ms, double ran_seconds) {
  constexpr int kFirst = 100, kMax = 60'000;
  if (previous_delay_ms <= 0 || ran_seconds >= 10) return kFirst;
  return std::min(previous_delay_ms * 2, kMax);
}

Status validate_container_name(std::string_view name) {
  auto ok_char = [](char c, bool first) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (!first && (c == '_' || c == '.' || c == '-'));
  };
  bool ok = name.size() >= 2 && name.size() <= 128;
  for (size_t i = 0; ok && i < name.size(); ++i) ok = ok_char(name[i], i == 0);
  if (!ok) {
    return failf(Errc::InvalidArgument,
                 "container name {}: want [a-zA-Z0-9][a-zA-Z0-9_.-]+ (at most 128 characters)",
                 quote(name));
  }
  return {};
}

std::string rfc3339_now() {
  struct timespec ts {};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm {};
  ::gmtime_r(&ts.tv_sec, &tm);
  char buf[40];
  size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  return fmt::format("{}.{:09d}Z", std::string_view(buf, n), ts.tv_nsec);
}

std::string state_to_json(const ContainerState& s) {
  json j{{"id", s.id},
         {"name", s.name},
         {"image", s.image},
         {"command", s.command},
         {"created", s.created},
         {"status", s.status},
         {"pid", s.pid},
         {"monitor_pid", s.monitor_pid},
         {"exit_code", s.exit_code},
         {"oom_killed", s.oom_killed},
         {"started_at", s.started_at},
         {"finished_at", s.finished_at},
         {"restart_count", s.restart_count},
         {"error", s.error},
         {"stop_requested", s.stop_requested},
         {"restart", {{"name", restart_policy_name(s.restart)},
                      {"max_retries", s.restart.max_retries}}},
         {"stop_signal", s.stop_signal},
         {"stop_timeout", s.stop_timeout},
         {"auto_remove", s.auto_remove},
         {"run_args", s.run_args}};
  if (s.log.max_size > 0) j["log"] = {{"max_size", s.log.max_size}, {"max_file", s.log.max_file}};
  if (s.health) {
    j["health"] = {{"test", s.health->test},
                   {"interval_ms", s.health->interval_ms},
                   {"timeout_ms", s.health->timeout_ms},
                   {"start_period_ms", s.health->start_period_ms},
                   {"retries", s.health->retries}};
  }
  if (s.health_state) {
    json log = json::array();
    for (const auto& p : s.health_state->log) {
      log.push_back({{"start", p.start}, {"end", p.end}, {"exit_code", p.exit_code}, {"output", p.output}});
    }
    j["health_state"] = {{"status", s.health_state->status},
                         {"failing_streak", s.health_state->failing_streak},
                         {"log", log}};
  }
  return j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
}

Result<ContainerState> state_from_json(std::string_view text) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return fail(Errc::Corrupt, "not a JSON object");
  ContainerState s;
  try {
    s.id = j.at("id").get<std::string>();
    s.name = j.value("name", "");
    s.image = j.value("image", "");
    s.command = j.value("command", std::vector<std::string>{});
    s.created = j.value("created", "");
    s.status = j.value("status", "created");
    s.pid = j.value("pid", 0);
    s.monitor_pid = j.value("monitor_pid", 0);
    s.exit_code = j.value("exit_code", 0);
    s.oom_killed = j.value("oom_killed", false);
    s.started_at = j.value("started_at", "");
    s.finished_at = j.value("finished_at", "");
    s.restart_count = j.value("restart_count", 0);
    s.error = j.value("error", "");
    s.stop_requested = j.value("stop_requested", false);
    if (auto r = j.find("restart"); r != j.end() && r->is_object()) {
      std::string name = r->value("name", "no");
      int n = r->value("max_retries", 0);
      if (name == "on-failure" && n > 0) name += ":" + std::to_string(n);
      KISTE_ASSIGN_OR_RETURN(s.restart, parse_restart_policy(name));
    }
    s.stop_signal = j.value("stop_signal", 15);
    s.stop_timeout = j.value("stop_timeout", 10);
    s.auto_remove = j.value("auto_remove", false);
    s.run_args = j.value("run_args", std::vector<std::string>{});
    if (auto l = j.find("log"); l != j.end() && l->is_object()) {
      s.log = LogOptions{.max_size = l->value("max_size", int64_t{0}), .max_file = l->value("max_file", 1)};
    }
    if (auto h = j.find("health"); h != j.end() && h->is_object()) {
      s.health = HealthSpec{.test = h->value("test", std::vector<std::string>{}),
                            .interval_ms = h->value("interval_ms", kDefaultHealthIntervalMs),
                            .timeout_ms = h->value("timeout_ms", kDefaultHealthTimeoutMs),
                            .start_period_ms = h->value("start_period_ms", int64_t{0}),
                            .retries = h->value("retries", kDefaultHealthRetries)};
    }
    if (auto h = j.find("health_state"); h != j.end() && h->is_object()) {
      HealthState hs{.status = h->value("status", "starting"), .failing_streak = h->value("failing_streak", 0)};
      if (auto log = h->find("log"); log != h->end() && log->is_array()) {
        for (const auto& p : *log) {
          hs.log.push_back({.start = p.value("start", ""), .end = p.value("end", ""),
                            .exit_code = p.value("exit_code", -1), .output = p.value("output", "")});
        }
      }
      s.health_state = std::move(hs);
    }
  } catch (const json::exception& e) {
    return failf(Errc::Corrupt, "{}", e.what());
  }
  return s;
}

namespace {

// Atomic replace without fsync, for the record's updates while its container lives: a power
// loss makes a record that says running read as `Exited (unknown)` anyway (no monitor holds
// its lock), and a rename over an existing file is what ext4's auto_da_alloc orders after the
// file's data. `run -d` used to make five fsync pairs before it returned; create() keeps its
// fsyncs.
Status replace_file(const fs::path& path, std::string_view data) {
  return sys::write_file_atomic(path, data, 0600, sys::Sync::No);
}

}  // namespace

fs::path ContainerStore::dir(std::string_view id) const { return image::RootLayout(root_).container(id); }

fs::path ContainerStore::log_path(std::string_view id) const {
  return dir(id) / (std::string(id) + "-json.log");
}

fs::path ContainerStore::monitor_lock_path(std::string_view id) const {
  return dir(id) / "monitor.lock";
}

namespace {

bool is_hex_id(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
  });
}

}  // namespace

Result<ContainerState> ContainerStore::create(ContainerState s) const {
  if (s.name.empty()) s.name = "kiste_" + s.id.substr(0, 12);
  KISTE_TRY(validate_container_name(s.name));
  KISTE_TRY(sys::mkdir_all(image::RootLayout(root_).containers(), 0700));
  KISTE_TRY(sys::mkdir_all(names_dir(), 0700));
  KISTE_ASSIGN_OR_RETURN(FileLock names_lock, FileLock::acquire(names_dir() / ".lock"));
  const fs::path name_file = names_dir() / s.name;
  if (auto owner = sys::read_file(name_file, 256); owner) {
    // A name whose container has no record is left from a command killed mid-way: reuse it.
    std::error_code ec;
    if (fs::exists(dir(*owner) / kContainerRecord, ec)) {
      return failf(Errc::AlreadyExists,
                   "container name {}: already in use by container {} (remove it or pick another "
                   "name)",
                   quote(s.name), owner->substr(0, 12));
    }
  }
  KISTE_TRY(sys::mkdir(dir(s.id), 0700));
  KISTE_TRY(sys::write_file_atomic(dir(s.id) / kContainerRecord, state_to_json(s), 0600));
  KISTE_TRY(sys::write_file_atomic(name_file, s.id, 0600));
  return s;
}

Result<std::string> ContainerStore::resolve(std::string_view ref) const {
  if (validate_container_name(ref)) {
    if (auto owner = sys::read_file(names_dir() / std::string(ref), 256); owner) {
      std::error_code ec;
      if (is_hex_id(*owner) && fs::exists(dir(*owner) / kContainerRecord, ec)) return *owner;
    }
  }
  if (is_hex_id(ref)) {
    std::vector<std::string> hits;
    std::error_code ec;
    for (auto it = fs::directory_iterator(image::RootLayout(root_).containers(), ec);
         !ec && it != fs::directory_iterator(); it.increment(ec)) {
      std::string id = it->path().filename();
      if (id.starts_with(ref) && fs::exists(it->path() / kContainerRecord, ec)) hits.push_back(id);
    }
    if (hits.size() == 1) return hits.front();
    if (hits.size() > 1) {
      return failf(Errc::InvalidArgument, "container {}: the prefix names {} containers",
                   quote(ref), hits.size());
    }
  }
  return failf(Errc::NotFound, "container {}: no such container", quote(ref));
}

Result<ContainerState> ContainerStore::load(std::string_view id) const {
  const fs::path p = dir(id) / kContainerRecord;
  KISTE_ASSIGN_OR_RETURN(std::string text, sys::read_file(p, 1 << 20));
  auto s = state_from_json(text);
  if (!s) return std::unexpected(std::move(s).error().with_context(fmt::format("read {}", quote(p.native()))));
  if (s->running() && !monitor_alive(id)) {
    s->status = "exited";
    s->monitor_lost = true;
    s->exit_code = -1;
    s->pid = 0;
  }
  return s;
}

Result<ContainerState> ContainerStore::update(std::string_view id,
                                              const std::function<void(ContainerState&)>& f) const {
  KISTE_ASSIGN_OR_RETURN(FileLock lock, FileLock::acquire(dir(id) / "state.lock"));
  const fs::path p = dir(id) / kContainerRecord;
  KISTE_ASSIGN_OR_RETURN(std::string text, sys::read_file(p, 1 << 20));
  KISTE_ASSIGN_OR_RETURN(ContainerState s, state_from_json(text));
  f(s);
  KISTE_TRY(replace_file(p, state_to_json(s)));
  return s;
}

Result<std::vector<ContainerState>> ContainerStore::list() const {
  std::vector<ContainerState> out;
  std::error_code ec;
  for (auto it = fs::directory_iterator(image::RootLayout(root_).containers(), ec);
       !ec && it != fs::directory_iterator(); it.increment(ec)) {
    if (!fs::exists(it->path() / kContainerRecord, ec)) continue;
    auto s = load(it->path().filename().native());
    if (s) out.push_back(std::move(*s));
  }
  std::sort(out.begin(), out.end(),
            [](const ContainerState& a, const ContainerState& b) { return a.created < b.created; });
  return out;
}

bool ContainerStore::monitor_alive(std::string_view id) const {
  UniqueFd fd(::open(monitor_lock_path(id).c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return false;
  if (::flock(fd.get(), LOCK_SH | LOCK_NB) == 0) return false;
  return errno == EWOULDBLOCK;
}

Status ContainerStore::remove(const ContainerState& s) const {
  KISTE_TRY(remove_container_dir(dir(s.id)));
  KISTE_ASSIGN_OR_RETURN(FileLock names_lock, FileLock::acquire(names_dir() / ".lock"));
  const fs::path name_file = names_dir() / s.name;
  if (auto owner = sys::read_file(name_file, 256); owner && *owner == s.id) {
    KISTE_TRY(sys::unlink(name_file));
  }
  return {};
}

}  // namespace kiste::runtime
