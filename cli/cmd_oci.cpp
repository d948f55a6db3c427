// `kiste-runc` / `kiste oci`: runc's command line (global flags, then a verb, its flags, then the
// container id), wiring only: the verbs are runtime::oci::OciRuntime's. Errors go to stderr and,
// with --log, to that file in runc's format (`--log-format json`: {"level":"error","msg":…,
// "time":…}), which is where conmon and containerd look for them.
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include <kiste/base/error.hpp>
#include <kiste/base/sys.hpp>
#include <kiste/runtime/cgroup.hpp>
#include <kiste/runtime/oci_config.hpp>
#include <kiste/runtime/oci_runtime.hpp>

#include "globals.hpp"

namespace kiste::cli {

namespace {

namespace oci = runtime::oci;
namespace fs = std::filesystem;

struct Flag {
  std::string_view name;   // "bundle"
  std::string_view alias;  // "b"
  bool takes_value = false;
};

// Parsed flags of one level (global or a verb): name -> values (booleans: "true").
struct Parsed {
  std::vector<std::pair<std::string, std::string>> flags;
  std::vector<std::string> args;
  [[nodiscard]] std::optional<std::string> get(std::string_view name) const {
    std::optional<std::string> out;
    for (const auto& [n, v] : flags) {
      if (n == name) out = v;
    }
    return out;
  }
  [[nodiscard]] std::vector<std::string> all(std::string_view name) const {
    std::vector<std::string> out;
    for (const auto& [n, v] : flags) {
      if (n == name) out.push_back(v);
    }
    return out;
  }
  [[nodiscard]] bool has(std::string_view name) const {
    auto v = get(name);
    return v && *v != "false";
  }
};

// Go's flag syntax as urfave/cli accepts it: -x, --x, -x=v, --x v; flags stop at the first
// word that is not one (or `--`); `stop_at_args` false lets flags follow positional words.
Result<Parsed> parse_flags(std::vector<std::string_view> words, const std::vector<Flag>& known, bool stop_at_args) {
  Parsed out;
  for (size_t i = 0; i < words.size(); ++i) {
    std::string_view w = words[i];
    if (w == "--") {
      for (++i; i < words.size(); ++i) out.args.emplace_back(words[i]);
      break;
    }
    if (w.size() < 2 || w[0] != '-') {
      out.args.emplace_back(w);
      if (stop_at_args) {
        for (++i; i < words.size(); ++i) out.args.emplace_back(words[i]);
        break;
      }
      continue;
    }
    std::string_view name = w.substr(w.starts_with("--") ? 2 : 1);
    std::optional<std::string_view> value;
    if (size_t eq = name.find('='); eq != std::string_view::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    const Flag* f = nullptr;
    for (const Flag& k : known) {
      if (k.name == name || (!k.alias.empty() && k.alias == name)) f = &k;
    }
    if (f == nullptr) return failf(Errc::InvalidArgument, "flag provided but not defined: -{}", name);
    if (f->takes_value && !value) {
      if (i + 1 >= words.size()) return failf(Errc::InvalidArgument, "flag needs an argument: -{}", name);
      value = words[++i];
    }
    out.flags.emplace_back(std::string(f->name), std::string(value.value_or("true")));
  }
  return out;
}

class Logger {
 public:
  void open(const std::string& path, bool json_format) {
    json_ = json_format;
    if (path.empty()) return;
    fd_ = UniqueFd(::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644));
  }
  void log(std::string_view level, std::string_view msg) const {
    if (level == "error") {
      std::fprintf(stderr, "kiste-runc: error: %.*s\n", static_cast<int>(msg.size()), msg.data());
    } else {
      std::fprintf(stderr, "kiste-runc: %.*s: %.*s\n", static_cast<int>(level.size()), level.data(),
                   static_cast<int>(msg.size()), msg.data());
    }
    if (!fd_) return;
    struct timespec ts {};
    ::clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm {};
    ::gmtime_r(&ts.tv_sec, &tm);
    char t[64];
    std::strftime(t, sizeof t, "%Y-%m-%dT%H:%M:%S", &tm);
    const std::string time = fmt::format("{}.{:09}Z", t, ts.tv_nsec);
    std::string line;
    if (json_) {
      line = nlohmann::json{{"level", level}, {"msg", msg}, {"time", time}}.dump(
                 -1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    } else {
      line = fmt::format("time=\"{}\" level={} msg={}\n", time, level, nlohmann::json(std::string(msg)).dump(
                 -1, ' ', false, nlohmann::json::error_handler_t::replace));
    }
    (void)sys::write_all(fd_.get(), line);
  }

 private:
  UniqueFd fd_;
  bool json_ = false;
};

const std::vector<Flag> kGlobalFlags = {
    {"root", "", true},       {"log", "", true},           {"log-format", "", true},
    {"systemd-cgroup", "", false}, {"debug", "", false},   {"rootless", "", true},
    {"criu", "", true},       {"version", "v", false},     {"help", "h", false}};

constexpr std::string_view kUsage =
    "usage: kiste-runc [--root DIR] [--log FILE] [--log-format text|json] [--systemd-cgroup] COMMAND\n"
    "commands: create, start, state, kill, delete, run, exec, ps, list, pause, resume, update, events,\n"
    "          spec, features\n";

Result<std::string> one_id(const Parsed& p, std::string_view verb, size_t extra_max = 0) {
  if (p.args.empty()) return failf(Errc::InvalidArgument, "{}: a container id is required", verb);
  if (p.args.size() > 1 + extra_max) {
    return failf(Errc::InvalidArgument, "{}: unexpected argument {}", verb, quote(p.args[1 + extra_max]));
  }
  return p.args[0];
}

Result<int> to_int(std::string_view s, std::string_view what) {
  int v = 0;
  if (s.empty() || s.size() > 6) return failf(Errc::InvalidArgument, "{} {}: not a number", what, quote(s));
  for (char c : s) {
    if (c < '0' || c > '9') return failf(Errc::InvalidArgument, "{} {}: not a number", what, quote(s));
    v = v * 10 + (c - '0');
  }
  return v;
}

fs::path absolute_or_cwd(const std::optional<std::string>& p) {
  std::error_code ec;
  fs::path out = p ? fs::path(*p) : fs::current_path(ec);
  if (out.is_relative()) out = fs::current_path(ec) / out;
  return out.lexically_normal();
}

Result<oci::CreateOptions> create_options(const Parsed& p, const Parsed& global) {
  oci::CreateOptions o;
  o.bundle = absolute_or_cwd(p.get("bundle"));
  if (auto f = p.get("pid-file")) o.pid_file = absolute_or_cwd(f);
  if (auto s = p.get("console-socket")) o.console_socket = absolute_or_cwd(s);
  if (auto n = p.get("preserve-fds")) {
    KISTE_ASSIGN_OR_RETURN(o.preserve_fds, to_int(*n, "--preserve-fds"));
  }
  o.systemd_cgroup = global.has("systemd-cgroup");
  return o;
}

const std::vector<Flag> kCreateFlags = {{"bundle", "b", true},      {"pid-file", "", true},
                                        {"console-socket", "", true}, {"no-pivot", "", false},
                                        {"no-new-keyring", "", false}, {"preserve-fds", "", true},
                                        {"detach", "d", false},      {"keep", "", false},
                                        {"no-subreaper", "", false}};

// `update --resources FILE|- ID` (a LinuxResources JSON; containerd's shim pipes it on stdin),
// or runc's single-limit flags.
Result<int> update(oci::OciRuntime& rt, const std::vector<std::string_view>& rest) {
  KISTE_ASSIGN_OR_RETURN(
      Parsed p, parse_flags(rest,
                            {{"resources", "r", true}, {"memory", "m", true}, {"memory-swap", "", true},
                             {"cpu-quota", "", true}, {"cpu-period", "", true}, {"cpu-share", "", true},
                             {"pids-limit", "", true}},
                            true));
  KISTE_ASSIGN_OR_RETURN(std::string id, one_id(p, "update"));
  runtime::Resources res;
  if (auto file = p.get("resources")) {
    std::string text;
    if (*file == "-") {
      KISTE_ASSIGN_OR_RETURN(text, sys::read_all(STDIN_FILENO, "standard input", 1 << 20));
    } else {
      KISTE_ASSIGN_OR_RETURN(text, sys::read_file(*file, 1 << 20));
    }
    KISTE_ASSIGN_OR_RETURN(res, with_context(oci::parse_linux_resources(text), "update --resources"));
  } else {
    auto number = [&](std::string_view flag) -> Result<std::optional<int64_t>> {
      auto v = p.get(flag);
      if (!v) return std::optional<int64_t>{};
      if (flag == "memory" || flag == "memory-swap") {
        if (*v == "-1") return std::optional<int64_t>{-1};
        KISTE_ASSIGN_OR_RETURN(int64_t bytes, with_context(runtime::parse_memory_size(*v), fmt::format("--{}", flag)));
        return std::optional<int64_t>{bytes};
      }
      char* end = nullptr;
      errno = 0;
      const long long n = std::strtoll(v->c_str(), &end, 10);
      if (v->empty() || *end != '\0' || errno != 0) {
        return failf(Errc::InvalidArgument, "--{} {}: not a number", flag, quote(*v));
      }
      return std::optional<int64_t>{n};
    };
    KISTE_ASSIGN_OR_RETURN(res.memory, number("memory"));
    KISTE_ASSIGN_OR_RETURN(res.memory_swap, number("memory-swap"));
    KISTE_ASSIGN_OR_RETURN(res.cpu_quota, number("cpu-quota"));
    KISTE_ASSIGN_OR_RETURN(auto period, number("cpu-period"));
    KISTE_ASSIGN_OR_RETURN(auto shares, number("cpu-share"));
    KISTE_ASSIGN_OR_RETURN(res.pids, number("pids-limit"));
    if (period) res.cpu_period = static_cast<uint64_t>(std::max<int64_t>(*period, 0));
    if (shares) res.cpu_shares = static_cast<uint64_t>(std::max<int64_t>(*shares, 0));
    if (res.memory && *res.memory < 0) res.memory.reset();
  }
  KISTE_TRY(rt.update(id, res));
  return 0;
}

// `events --stats ID`: one stats record; `events [--interval 5s] ID`: one every interval until
// the container stops (then exit 0), and an "oom" record whenever the OOM killer killed one of
// its processes (as the kernel signals it: runtime::OomWatch, as runc's event stream delivers
// them between stats).
Result<int> events(const oci::OciRuntime& rt, const std::vector<std::string_view>& rest) {
  KISTE_ASSIGN_OR_RETURN(Parsed p, parse_flags(rest, {{"stats", "", false}, {"interval", "", true}}, true));
  KISTE_ASSIGN_OR_RETURN(std::string id, one_id(p, "events"));
  int interval_s = 5;
  if (auto iv = p.get("interval")) {
    std::string_view v = *iv;
    if (v.ends_with("s")) v.remove_suffix(1);
    KISTE_ASSIGN_OR_RETURN(interval_s, to_int(v, "--interval"));
    if (interval_s == 0) return fail(Errc::InvalidArgument, "--interval: must be at least 1s");
  }
  auto print = [](std::string line) {
    line += "\n";
    std::fwrite(line.data(), 1, line.size(), stdout);
    std::fflush(stdout);
  };
  if (p.has("stats")) {
    KISTE_ASSIGN_OR_RETURN(std::string line, rt.stats_event(id));
    print(std::move(line));
    return 0;
  }
  // OOM kills before the stream began are not events; those after it come as the kernel signals
  // them (an engine deletes an OOM-killed container, and its cgroup with the counter, within a few
  // tens of milliseconds of its exit). The container's state every 100 ms, stats every interval.
  auto watch = rt.watch_oom(id);
  if (!watch) {
    auto st = rt.state(id);  // gone meanwhile (its cgroup with it): the stream is over
    if (st && st->status == oci::ContainerStatus::Stopped) return 0;
    return std::unexpected(std::move(watch).error());
  }
  std::optional<runtime::OomWatch> oom = std::move(*watch);
  auto report_ooms = [&]() -> Status {
    if (!oom) return {};
    KISTE_ASSIGN_OR_RETURN(uint64_t n, oom->take());
    for (uint64_t i = 0; i < n; ++i) print(nlohmann::json{{"type", "oom"}, {"id", id}}.dump());
    return {};
  };
  auto next_stats = std::chrono::steady_clock::now();
  while (true) {
    auto st = rt.state(id);
    if (!st || st->status == oci::ContainerStatus::Stopped) {
      KISTE_TRY(report_ooms());  // the stream ends when the container does
      return 0;
    }
    if (std::chrono::steady_clock::now() >= next_stats) {
      auto line = rt.stats_event(id);
      if (!line) {
        auto now = rt.state(id);
        if (!now || now->status == oci::ContainerStatus::Stopped) continue;
        return std::unexpected(std::move(line).error());
      }
      print(std::move(*line));
      next_stats += std::chrono::seconds(interval_s);
    }
    struct pollfd pfd {oom ? oom->fd() : -1, POLLIN, 0};
    if (::poll(&pfd, 1, 100) > 0) KISTE_TRY(report_ooms());
  }
}

Result<int> dispatch(std::string_view verb, std::vector<std::string_view> rest, const Parsed& global,
                     const Logger& log) {
  oci::OciRuntime rt(global.get("root").value_or("/run/kiste-runc"));
  auto print = [](const std::string& s) {
    std::fwrite(s.data(), 1, s.size(), stdout);
    return 0;
  };
  if (verb == "create" || verb == "run") {
    KISTE_ASSIGN_OR_RETURN(Parsed p, parse_flags(rest, kCreateFlags, true));
    KISTE_ASSIGN_OR_RETURN(std::string id, one_id(p, verb));
    KISTE_ASSIGN_OR_RETURN(oci::CreateOptions o, create_options(p, global));
    if (p.has("no-pivot")) log.log("warning", "--no-pivot is ignored: kiste always uses pivot_root");
    if (verb == "run") {
      if (p.has("detach")) return fail(Errc::Unsupported, "run --detach is not supported (use create and start)");
      return rt.run(id, o);
    }
    KISTE_ASSIGN_OR_RETURN(auto warnings, rt.create(id, o));
    for (const auto& w : warnings) log.log("warning", w);
    return 0;
  }
  if (verb == "start") {
    KISTE_ASSIGN_OR_RETURN(Parsed p, parse_flags(rest, {}, true));
    KISTE_ASSIGN_OR_RETURN(std::string id, one_id(p, verb));
    KISTE_TRY(rt.start(id));
    return 0;
  }
  if (verb == "state") {
    KISTE_ASSIGN_OR_RETURN(Parsed p, parse_flags(rest, {}, true));
    KISTE_ASSIGN_OR_RETURN(std::string id, one_id(p, verb));
    KISTE_ASSIGN_OR_RETURN(oci::State st, rt.state(id));
    return print(nlohmann::json::parse(st.to_json()).dump(2) + "\n");
  }
  if (verb == "kill") {
    KISTE_ASSIGN_OR_RETURN(Parsed p, parse_flags(rest, {{"all", "a", false}}, true));
    KISTE_ASSIGN_OR_RETURN(std::string id, one_id(p, verb, 1));
    KISTE_TRY(rt.kill(id, p.args.size() > 1 ? p.args[1] : "TERM", p.has("all")));
    return 0;
  }
  if (verb == "delete") {
    KISTE_ASSIGN_OR_RETURN(Parsed p, parse_flags(rest, {{"force", "f", false}}, true));
    KISTE_ASSIGN_OR_RETURN(std::string id, one_id(p, verb));
    KISTE_ASSIGN_OR_RETURN(auto warnings, rt.remove(id, p.has("force")));
    for (const auto& w : warnings) log.log("warning", w);
    return 0;
  }
  if (verb == "ps") {
    KISTE_ASSIGN_OR_RETURN(Parsed p, parse_flags(rest, {{"format", "f", true}}, true));
    if (p.args.empty()) return fail(Errc::InvalidArgument, "ps: a container id is required");
    KISTE_ASSIGN_OR_RETURN(auto pids, rt.pids(p.args[0]));
    if (p.get("format").value_or("table") == "json") return print(nlohmann::json(pids).dump() + "\n");
    std::string out = "PID\tCMD\n";
    for (pid_t pid : pids) {
      std::string comm = sys::read_file(fmt::format("/proc/{}/comm", pid), 256).value_or("?\n");
      out += fmt::format("{}\t{}", pid, comm);
    }
    return print(out);
  }
  if (verb == "list") {
    KISTE_ASSIGN_OR_RETURN(Parsed p, parse_flags(rest, {{"format", "f", true}, {"quiet", "q", false}}, true));
    KISTE_ASSIGN_OR_RETURN(auto all, rt.list());
    std::string out;
    if (p.get("format").value_or("table") == "json") {
      nlohmann::json a = nlohmann::json::array();
      for (const auto& s : all) a.push_back(nlohmann::json::parse(s.to_json()));
      out = a.dump() + "\n";
    } else {
      if (!p.has("quiet")) out = "ID\tPID\tSTATUS\tBUNDLE\tCREATED\n";
      for (const auto& s : all) {
        out += p.has("quiet") ? s.id + "\n"
                              : fmt::format("{}\t{}\t{}\t{}\t{}\n", s.id, s.pid, oci::to_string(s.status),
                                            s.bundle.native(), s.created);
      }
    }
    return print(out);
  }
  if (verb == "exec") {
    KISTE_ASSIGN_OR_RETURN(
        Parsed p, parse_flags(rest,
                              {{"process", "p", true}, {"detach", "d", false}, {"pid-file", "", true},
                               {"tty", "t", false}, {"console-socket", "", true}, {"cwd", "", true},
                               {"env", "e", true}, {"user", "u", true}, {"preserve-fds", "", true},
                               {"no-new-privs", "", false}, {"cap", "c", true}},
                              true));
    if (p.args.empty()) return fail(Errc::InvalidArgument, "exec: a container id is required");
    if (!p.all("cap").empty()) return fail(Errc::Unsupported, "exec --cap is not supported yet");
    oci::ExecOptions o;
    if (auto u = p.get("user")) {
      const size_t colon = u->find(':');
      KISTE_ASSIGN_OR_RETURN(int uid, to_int(u->substr(0, colon), "--user"));
      int gid = 0;
      if (colon != std::string::npos) {
        KISTE_ASSIGN_OR_RETURN(gid, to_int(u->substr(colon + 1), "--user"));
      }
      o.user = std::pair{static_cast<uid_t>(uid), static_cast<gid_t>(gid)};
    }
    o.args.assign(p.args.begin() + 1, p.args.end());
    if (auto f = p.get("process")) o.process_file = absolute_or_cwd(f);
    o.env = p.all("env");
    o.cwd = p.get("cwd").value_or("");
    o.tty = p.has("tty");
    o.detach = p.has("detach");
    if (auto f = p.get("pid-file")) o.pid_file = absolute_or_cwd(f);
    if (auto s = p.get("console-socket")) o.console_socket = absolute_or_cwd(s);
    return rt.exec(p.args[0], o);
  }
  if (verb == "spec") {
    KISTE_ASSIGN_OR_RETURN(Parsed p, parse_flags(rest, {{"bundle", "b", true}, {"rootless", "", false}}, true));
    if (p.has("rootless")) return fail(Errc::Unsupported, "spec --rootless is not supported");
    const fs::path file = absolute_or_cwd(p.get("bundle")) / "config.json";
    if (::access(file.c_str(), F_OK) == 0) {
      return failf(Errc::AlreadyExists, "{} exists: remove it first", quote(file.native()));
    }
    KISTE_TRY(sys::write_file_atomic(file, oci::default_config_json(), 0644));
    return 0;
  }
  if (verb == "features") {
    KISTE_ASSIGN_OR_RETURN(Parsed p, parse_flags(rest, {}, true));
    if (!p.args.empty()) return fail(Errc::InvalidArgument, "features: takes no arguments");
    return print(oci::features_json());
  }
  if (verb == "pause" || verb == "resume") {
    KISTE_ASSIGN_OR_RETURN(Parsed p, parse_flags(rest, {}, true));
    KISTE_ASSIGN_OR_RETURN(std::string id, one_id(p, verb));
    KISTE_TRY(verb == "pause" ? rt.pause(id) : rt.resume(id));
    return 0;
  }
  if (verb == "update") return update(rt, rest);
  if (verb == "events") return events(rt, rest);
  if (verb == "checkpoint" || verb == "restore") {
    return failf(Errc::Unsupported, "{}: not supported by kiste-runc yet", verb);
  }
  return failf(Errc::InvalidArgument, "unknown command {}", quote(verb));
}

}  // namespace

int oci_main(int argc, char** argv) {
  std::vector<std::string_view> words(argv, argv + argc);
  Logger log;
  auto global = parse_flags(words, kGlobalFlags, true);
  if (!global) {
    log.log("error", global.error().to_string());
    return kExitFailure;
  }
  const std::string format = global->get("log-format").value_or("text");
  log.open(global->get("log").value_or(""), format == "json");
  if (format != "text" && format != "json") {
    log.log("error", fmt::format("--log-format {}: must be text or json", quote(format)));
    return kExitFailure;
  }
  if (global->has("version")) {
    std::printf("kiste-runc version 0.1.0\nspec: %s\n", std::string(runtime::oci::kOciVersion).c_str());
    return 0;
  }
  if (global->args.empty() || global->has("help")) {
    std::fputs(kUsage.data(), global->args.empty() && !global->has("help") ? stderr : stdout);
    return global->has("help") ? 0 : kExitFailure;
  }
  if (auto r = global->get("rootless"); r && *r != "false" && *r != "auto") {
    log.log("error", "--rootless: kiste-runc runs as root only");
    return kExitFailure;
  }
  const std::string verb = global->args.front();
  std::vector<std::string_view> rest;
  for (size_t i = 1; i < global->args.size(); ++i) rest.emplace_back(global->args[i]);
  auto rc = dispatch(verb, rest, *global, log);
  if (!rc) {
    log.log("error", rc.error().to_string());
    return kExitFailure;
  }
  std::fflush(stdout);
  return *rc;
}

}  // namespace kiste::cli
