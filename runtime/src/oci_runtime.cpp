// The OCI verbs over their state directory. Each container's directory is made by `create`
// (mkdir: a second create of the same id fails), holds `lock` (flock'd by every verb that changes
// it), `state.json` (atomic replace) and, until `start`, `exec.fifo`.
#include <kiste/runtime/oci_runtime.hpp>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <algorithm>
#include <chrono>
#include <limits>
#include <cstring>
#include <thread>

#include <nlohmann/json.hpp>

#include <kiste/base/file_lock.hpp>
#include <kiste/base/log.hpp>
#include <kiste/base/sys.hpp>
#include <kiste/runtime/cgroup.hpp>
#include <kiste/runtime/cgroup_stats.hpp>
#include <kiste/runtime/container.hpp>
#include <kiste/runtime/exec.hpp>
#include <kiste/runtime/id_map.hpp>
#include <kiste/runtime/oci_config.hpp>

#include "cgroup_util.hpp"
#include "child.hpp"
#include "fd_passing.hpp"

namespace kiste::runtime::oci {

namespace fs = std::filesystem;
using json = nlohmann::json;

std::string_view to_string(ContainerStatus s) {
  switch (s) {
    case ContainerStatus::Creating: return "creating";
    case ContainerStatus::Created: return "created";
    case ContainerStatus::Running: return "running";
    case ContainerStatus::Paused: return "paused";
    case ContainerStatus::Stopped: return "stopped";
  }
  return "unknown";
}

namespace {
json state_object(const State& s) {
  json ann = json::object();
  for (const auto& [k, v] : s.annotations) ann[k] = v;
  json j = {{"ociVersion", s.oci_version}, {"id", s.id}, {"bundle", s.bundle.native()}, {"annotations", ann}};
  if (!s.created.empty()) j["created"] = s.created;
  return j;
}
}  // namespace

std::string State::to_json() const {
  json j = state_object(*this);
  j["status"] = to_string(status);
  j["pid"] = pid;
  return j.dump();
}

std::string State::to_json_without_status_and_pid() const { return state_object(*this).dump(); }

Status check_container_id(std::string_view id) {
  const bool ok = !id.empty() && id.size() <= 1024 && std::isalnum(static_cast<unsigned char>(id[0])) &&
                  id.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.+-") ==
                      std::string_view::npos;
  if (!ok) {
    return failf(Errc::InvalidArgument, "container id {}: must be letters, digits and `_.+-`, starting "
                                        "with a letter or digit", quote(id));
  }
  return {};
}

Result<int> parse_signal(std::string_view name) {
  static constexpr std::pair<std::string_view, int> kSignals[] = {
      {"HUP", SIGHUP},   {"INT", SIGINT},   {"QUIT", SIGQUIT}, {"ILL", SIGILL},   {"TRAP", SIGTRAP},
      {"ABRT", SIGABRT}, {"BUS", SIGBUS},   {"FPE", SIGFPE},   {"KILL", SIGKILL}, {"USR1", SIGUSR1},
      {"SEGV", SIGSEGV}, {"USR2", SIGUSR2}, {"PIPE", SIGPIPE}, {"ALRM", SIGALRM}, {"TERM", SIGTERM},
      {"CHLD", SIGCHLD}, {"CONT", SIGCONT}, {"STOP", SIGSTOP}, {"TSTP", SIGTSTP}, {"TTIN", SIGTTIN},
      {"TTOU", SIGTTOU}, {"URG", SIGURG},   {"XCPU", SIGXCPU}, {"XFSZ", SIGXFSZ}, {"VTALRM", SIGVTALRM},
      {"PROF", SIGPROF}, {"WINCH", SIGWINCH}, {"IO", SIGIO},   {"PWR", SIGPWR},   {"SYS", SIGSYS}};
  std::string_view n = name;
  if (!n.empty() && std::isdigit(static_cast<unsigned char>(n[0]))) {
    int v = 0;
    for (char c : n) {
      if (!std::isdigit(static_cast<unsigned char>(c)) || v > 1000) {
        return failf(Errc::InvalidArgument, "signal {}: unknown", quote(name));
      }
      v = v * 10 + (c - '0');
    }
    if (v < 1 || v > SIGRTMAX) return failf(Errc::InvalidArgument, "signal {}: unknown", quote(name));
    return v;
  }
  if (n.starts_with("SIG")) n.remove_prefix(3);
  for (const auto& [s, v] : kSignals) {
    if (n == s) return v;
  }
  return failf(Errc::InvalidArgument, "signal {}: unknown", quote(name));
}

namespace {

constexpr const char* kStateFile = "state.json";
constexpr const char* kFifo = "exec.fifo";
constexpr const char* kLock = "lock";

// The stored record: the runtime-spec state plus what later verbs need.
struct Record {
  State state;
  uint64_t pid_start = 0;  // /proc/<pid>/stat starttime: a reused pid is not the container
  std::vector<fs::path> cgroups;
  std::string hooks_json;
};

Error not_found(std::string_view id) {
  return Error{.code = Errc::NotFound, .message = fmt::format("container {} does not exist", quote(id))};
}

// Field 22 of /proc/<pid>/stat and whether the process is a zombie; nullopt when it is gone.
std::optional<std::pair<uint64_t, bool>> process_start(pid_t pid) {
  if (pid <= 0) return std::nullopt;
  auto text = sys::read_file(fmt::format("/proc/{}/stat", pid), 4096);
  if (!text) return std::nullopt;
  const size_t close = text->rfind(')');
  if (close == std::string::npos || close + 2 >= text->size()) return std::nullopt;
  std::string_view rest = std::string_view(*text).substr(close + 2);
  const bool zombie = !rest.empty() && (rest[0] == 'Z' || rest[0] == 'X');
  // rest starts at field 3 (state); starttime is field 22
  for (int field = 3; field < 22; ++field) {
    const size_t sp = rest.find(' ');
    if (sp == std::string_view::npos) return std::nullopt;
    rest.remove_prefix(sp + 1);
  }
  return std::pair{std::strtoull(std::string(rest.substr(0, rest.find(' '))).c_str(), nullptr, 10), zombie};
}

std::string now_rfc3339() {
  struct timespec ts {};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm {};
  ::gmtime_r(&ts.tv_sec, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  return fmt::format("{}.{:09}Z", buf, ts.tv_nsec);
}

Status write_record(const fs::path& dir, const Record& r) {
  json ann = json::object();
  for (const auto& [k, v] : r.state.annotations) ann[k] = v;
  json cg = json::array();
  for (const auto& c : r.cgroups) cg.push_back(c.native());
  json j = {{"ociVersion", r.state.oci_version},
            {"id", r.state.id},
            {"pid", r.state.pid},
            {"pidStart", r.pid_start},
            {"bundle", r.state.bundle.native()},
            {"created", r.state.created},
            {"annotations", ann},
            {"cgroups", cg},
            {"hooks", r.hooks_json}};
  return sys::write_file_atomic(dir / kStateFile, j.dump(), 0600);
}

Result<Record> read_record(const fs::path& dir, std::string_view id) {
  auto text = sys::read_file(dir / kStateFile, 1 << 22);
  if (!text) {
    if (text.error().sys_errno == ENOENT) return std::unexpected(not_found(id));
    return std::unexpected(std::move(text).error());
  }
  json j = json::parse(*text, nullptr, false);
  auto corrupt = [&] { return failf(Errc::Corrupt, "state of container {}: corrupt", quote(id)); };
  if (j.is_discarded() || !j.is_object()) return corrupt();
  Record r;
  try {
    r.state.oci_version = j.at("ociVersion").get<std::string>();
    r.state.id = j.at("id").get<std::string>();
    r.state.pid = j.at("pid").get<pid_t>();
    r.pid_start = j.at("pidStart").get<uint64_t>();
    r.state.bundle = j.at("bundle").get<std::string>();
    r.state.created = j.at("created").get<std::string>();
    for (auto it = j.at("annotations").begin(); it != j.at("annotations").end(); ++it) {
      r.state.annotations.emplace_back(it.key(), it->get<std::string>());
    }
    for (const json& c : j.at("cgroups")) r.cgroups.emplace_back(c.get<std::string>());
    r.hooks_json = j.at("hooks").get<std::string>();
  } catch (const json::exception&) {
    return corrupt();
  }
  return r;
}

// The container's status as the kernel says: alive (same start time, not a zombie) and still
// waiting on its fifo = created; alive = running; else stopped.
// The freezer file of the container's cgroup: v1's freezer.state or v2's cgroup.freeze.
std::optional<fs::path> freezer_file(const Record& r) {
  for (const fs::path& cg : r.cgroups) {
    for (const char* f : {"freezer.state", "cgroup.freeze"}) {
      if (::access((cg / f).c_str(), F_OK) == 0) return cg / f;
    }
  }
  return std::nullopt;
}

bool frozen(const Record& r) {
  auto f = freezer_file(r);
  if (!f) return false;
  auto text = sys::read_file(*f, 64);
  return text && (text->starts_with("FROZEN") || text->starts_with("FREEZING") || text->starts_with("1"));
}

ContainerStatus live_status(const fs::path& dir, const Record& r) {
  auto st = process_start(r.state.pid);
  if (!st || st->second || st->first != r.pid_start) return ContainerStatus::Stopped;
  if (::access((dir / kFifo).c_str(), F_OK) == 0) return ContainerStatus::Created;
  return frozen(r) ? ContainerStatus::Paused : ContainerStatus::Running;
}

// Freezes or thaws the container's cgroup and waits until the kernel says it is done.
Status set_frozen(const Record& r, bool freeze) {
  auto f = freezer_file(r);
  if (!f) return fail(Errc::Unsupported, "the container's cgroup has no freezer");
  const bool v1 = f->filename() == "freezer.state";
  {
    const std::string_view v = v1 ? (freeze ? "FROZEN" : "THAWED") : (freeze ? "1" : "0");
    KISTE_ASSIGN_OR_RETURN(UniqueFd fd, sys::open(*f, O_WRONLY | O_CLOEXEC));
    KISTE_TRY(sys::write_all(fd.get(), v, f->native()));
  }
  for (int i = 0; i < 5000; ++i) {  // v1 reports FREEZING while tasks are still being stopped
    auto text = sys::read_file(*f, 64);
    if (!text) return std::unexpected(std::move(text).error());
    const bool done = v1 ? text->starts_with(freeze ? "FROZEN" : "THAWED") : text->starts_with(freeze ? "1" : "0");
    if (done) return {};
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return failf(Errc::System, "{}: the kernel did not finish {}", quote(f->native()), freeze ? "freezing" : "thawing");
}

Result<Record> load(const fs::path& dir, std::string_view id) {
  KISTE_TRY(check_container_id(id));
  KISTE_ASSIGN_OR_RETURN(Record r, read_record(dir, id));
  r.state.status = live_status(dir, r);
  if (r.state.status == ContainerStatus::Stopped) r.state.pid = 0;
  return r;
}

Result<FileLock> lock(const fs::path& dir, std::string_view id) {
  if (::access(dir.c_str(), F_OK) != 0) return std::unexpected(not_found(id));
  return FileLock::acquire(dir / kLock);
}

// Runs one hook: path with args (args[0] is its argv[0]) and env, the state JSON on stdin, killed
// at its timeout.
Status run_hook(const Hook& h, const std::string& state_json, std::string_view kind) {
  std::vector<std::string> args = h.args.empty() ? std::vector<std::string>{h.path} : h.args;
  std::vector<char*> argv, envp;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env = h.env;
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return std::unexpected(sys_error("pipe2", "hook stdin"));
  UniqueFd r(p[0]), w(p[1]);
  const pid_t pid = ::fork();
  if (pid < 0) return std::unexpected(sys_error("fork", h.path));
  if (pid == 0) {
    if (::dup2(r.get(), STDIN_FILENO) < 0) ::_exit(127);
    ::execve(h.path.c_str(), argv.data(), envp.data());
    ::_exit(127);
  }
  r.reset();
  (void)sys::write_all(w.get(), state_json);  // a hook need not read it
  w.reset();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(h.timeout.value_or(0));
  int status = 0;
  while (true) {
    const pid_t got = ::waitpid(pid, &status, h.timeout ? WNOHANG : 0);
    if (got == pid) break;
    if (got < 0 && errno != EINTR) return std::unexpected(sys_error("waitpid", h.path));
    if (got == 0) {
      if (std::chrono::steady_clock::now() >= deadline) {
        ::kill(pid, SIGKILL);
        (void)::waitpid(pid, &status, 0);
        return failf(Errc::System, "{} hook {}: timed out after {} s", kind, quote(h.path), *h.timeout);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return {};
  return failf(Errc::System, "{} hook {}: {}", kind, quote(h.path),
               WIFEXITED(status) ? fmt::format("exit status {}", WEXITSTATUS(status))
                                 : fmt::format("killed by signal {}", WTERMSIG(status)));
}

Status run_hooks(const std::vector<Hook>& hooks, const State& st, std::string_view kind) {
  const std::string text = st.to_json();
  for (const Hook& h : hooks) KISTE_TRY(run_hook(h, text, kind));
  return {};
}

// The container runs its startContainer hooks after `start` opened the fifo, then execs: the
// fifo closes (close-on-exec), or a failed hook's {index, outcome} comes first and the container
// ends.
Status await_start_hooks(int fifo_fd, const std::vector<Hook>& hooks, const fs::path& dir, const Record& r) {
  int32_t failed[2] = {0, 0};
  size_t got = 0;
  while (got < sizeof failed) {
    struct pollfd p {fifo_fd, POLLIN, 0};
    const int rc = ::poll(&p, 1, 100);
    if (rc < 0 && errno != EINTR) return std::unexpected(sys_error("poll", "exec fifo"));
    if (rc <= 0) continue;
    const ssize_t n = ::read(fifo_fd, reinterpret_cast<char*>(failed) + got, sizeof failed - got);
    if (n == 0) return {};  // exec'd (or ended without a word: its exit status tells)
    if (n < 0 && errno != EAGAIN && errno != EINTR) return std::unexpected(sys_error("read", "exec fifo"));
    if (n > 0) got += static_cast<size_t>(n);
  }
  for (int i = 0; i < 500 && live_status(dir, r) != ContainerStatus::Stopped; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));  // it exits right after
  }
  if (failed[0] < 0 || static_cast<size_t>(failed[0]) >= hooks.size()) {
    return fail(Errc::System, "startContainer hook: failed");
  }
  const Hook& h = hooks[static_cast<size_t>(failed[0])];
  return fail(Errc::System, detail::hook_failure("startContainer", h.path.c_str(), failed[1], h.timeout.value_or(0)));
}

Result<UniqueFd> connect_console(const fs::path& socket_path) {
  UniqueFd s(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!s) return std::unexpected(sys_error("socket", "console socket"));
  struct sockaddr_un addr {};
  addr.sun_family = AF_UNIX;
  if (socket_path.native().size() >= sizeof addr.sun_path) {
    return failf(Errc::InvalidArgument, "console socket {}: path too long", quote(socket_path.native()));
  }
  std::memcpy(addr.sun_path, socket_path.c_str(), socket_path.native().size() + 1);
  if (::connect(s.get(), reinterpret_cast<struct sockaddr*>(&addr), sizeof addr) != 0) {
    return std::unexpected(sys_error("connect", socket_path.native()));
  }
  return s;
}

Status send_console(const fs::path& socket_path, int master) {
  KISTE_ASSIGN_OR_RETURN(UniqueFd s, connect_console(socket_path));
  if (!detail::send_fds(s.get(), 'T', &master, 1)) {
    return std::unexpected(sys_error("send the pty master to", socket_path.native()));
  }
  return {};
}

Status write_pid_file(const fs::path& file, pid_t pid) {
  if (file.empty()) return {};
  return sys::write_file_atomic(file, std::to_string(pid), 0644);
}

// kiste-runc's own default cgroup parent goes with its last container, and so do the directories
// between it and a container of a relative cgroupsPath ("a/b" is /kiste-runc/a/b); an engine's
// parent, such as libpod_parent, is the engine's. (rmdir fails while another container is below.)
void remove_default_parents(const std::vector<fs::path>& container_cgroups) {
  const fs::path root = "/sys/fs/cgroup";
  for (const fs::path& cg : container_cgroups) {
    const fs::path rel = cg.lexically_relative(root);
    if (rel.empty() || *rel.begin() == "..") continue;
    // v2: /sys/fs/cgroup/kiste-runc/…; v1: /sys/fs/cgroup/<hierarchy>/kiste-runc/…
    const fs::path top = *rel.begin() == "kiste-runc" ? root / "kiste-runc" : root / *rel.begin() / "kiste-runc";
    if (!cg.native().starts_with(top.native() + "/")) continue;
    for (fs::path p = cg.parent_path(); p != top && p.native().size() > top.native().size(); p = p.parent_path()) {
      if (::rmdir(p.c_str()) != 0) break;
    }
  }
  (void)::rmdir((root / "kiste-runc").c_str());
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(root, ec)) {
    (void)::rmdir((e.path() / "kiste-runc").c_str());
  }
}

// A failed create: kill what was made and remove the directory.
class CreateGuard {
 public:
  explicit CreateGuard(fs::path dir) : dir_(std::move(dir)) {}
  CreateGuard(const CreateGuard&) = delete;
  CreateGuard& operator=(const CreateGuard&) = delete;
  ~CreateGuard() {
    if (done_) return;
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      int st;
      (void)::waitpid(pid_, &st, 0);
    }
    (void)remove_cgroup_dirs(cgroups_);
    remove_default_parents(cgroups_);
    (void)sys::remove_tree(dir_);
  }
  void made(pid_t pid, std::vector<fs::path> cgroups) {
    pid_ = pid;
    cgroups_ = std::move(cgroups);
  }
  void commit() { done_ = true; }

 private:
  fs::path dir_;
  pid_t pid_ = -1;
  std::vector<fs::path> cgroups_;
  bool done_ = false;
};

// The container's cgroup dir that holds `file` (v1: the one hierarchy with that controller's
// files; v2: the one dir); nullopt when none does.
std::optional<fs::path> cgroup_dir_with(const std::vector<fs::path>& dirs, std::string_view file) {
  for (const fs::path& d : dirs) {
    if (::access((d / file).c_str(), F_OK) == 0) return d;
  }
  return std::nullopt;
}

// The cfs period the container's cgroup has now (v1 cpu.cfs_period_us, v2 cpu.max's second
// field), for a quota given without one.
Result<uint64_t> current_cpu_period(const std::vector<fs::path>& dirs) {
  for (const char* file : {"cpu.cfs_period_us", "cpu.max"}) {
    auto d = cgroup_dir_with(dirs, file);
    if (!d) continue;
    KISTE_ASSIGN_OR_RETURN(std::string text, sys::read_file(*d / file, 256));
    const size_t sp = text.find(' ');
    const std::string num = sp == std::string::npos ? text : text.substr(sp + 1);
    const uint64_t v = std::strtoull(num.c_str(), nullptr, 10);
    if (v != 0) return v;
  }
  return fail(Errc::Unsupported, "update: the container's cgroup has no cpu controller");
}

Status write_cgroup(const std::vector<fs::path>& dirs, const CgroupWrite& w) {
  auto d = cgroup_dir_with(dirs, w.file);
  if (!d) {
    if (w.optional) return {};
    return failf(Errc::Unsupported, "update: the container's cgroup has no {} (controller {})", quote(w.file),
                 quote(w.controller));
  }
  KISTE_ASSIGN_OR_RETURN(UniqueFd fd, sys::open(*d / w.file, O_WRONLY | O_CLOEXEC));
  return sys::write_all(fd.get(), w.value, (*d / w.file).native());
}

}  // namespace

Result<std::vector<std::string>> OciRuntime::create(std::string_view id, const CreateOptions& opts) {
  KISTE_TRY(check_container_id(id));
  if (!opts.bundle.is_absolute()) {
    return failf(Errc::InvalidArgument, "bundle {}: must be an absolute path", quote(opts.bundle.native()));
  }
  KISTE_ASSIGN_OR_RETURN(UniqueFd cfg_fd, with_context(sys::open_regular(opts.bundle / "config.json"), "read the bundle"));
  KISTE_ASSIGN_OR_RETURN(std::string text, sys::read_all(cfg_fd.get(), "config.json", 4 << 20));
  KISTE_ASSIGN_OR_RETURN(BundleConfig cfg, parse_config(text, opts.bundle));
  cfg.spec.id = std::string(id);
  if (cfg.spec.process.terminal && opts.console_socket.empty()) {
    return fail(Errc::InvalidArgument, "process.terminal is set: --console-socket is required");
  }
  if (!cfg.spec.process.terminal && !opts.console_socket.empty()) {
    return fail(Errc::InvalidArgument, "--console-socket given but process.terminal is not set");
  }
  std::string cg_path = cfg.cgroups_path;
  if (opts.systemd_cgroup && !cg_path.empty() && cg_path.find(':') == std::string::npos) {
    return failf(Errc::InvalidArgument, "--systemd-cgroup: cgroupsPath {} is not slice:prefix:name", quote(cg_path));
  }
  KISTE_ASSIGN_OR_RETURN(CgroupLocation where, cgroup_location(cg_path, id));

  KISTE_TRY(sys::mkdir_all(root_, 0700));
  const fs::path d = dir(id);
  if (::mkdir(d.c_str(), 0700) != 0) {
    if (errno == EEXIST) return failf(Errc::AlreadyExists, "container {} already exists", quote(id));
    return std::unexpected(sys_error("mkdir", d.native()));
  }
  CreateGuard guard(d);
  KISTE_ASSIGN_OR_RETURN(FileLock held, FileLock::acquire(d / kLock));
  const fs::path fifo = d / kFifo;
  if (::mkfifo(fifo.c_str(), 0622) != 0) return std::unexpected(sys_error("mkfifo", fifo.native()));
  if (cfg.spec.userns.mode != UsernsMode::Host) {
    // The container's process opens it as the mapped root (as runc, the fifo is that root's).
    auto uid = map_to_host(cfg.spec.userns.uid_map, 0), gid = map_to_host(cfg.spec.userns.gid_map, 0);
    if (::chown(fifo.c_str(), uid.value_or(0), gid.value_or(0)) != 0) {
      return std::unexpected(sys_error("chown", fifo.native()));
    }
  }
  KISTE_ASSIGN_OR_RETURN(UniqueFd fifo_fd, sys::open(fifo, O_PATH | O_CLOEXEC));

  RunContext ctx;
  ctx.cgroups = CgroupPlacement{.manager = CgroupManager::Cgroupfs, .parent = where.parent, .make_parent = true};
  ctx.cgroup_name = where.name;
  ctx.preserve_fds = opts.preserve_fds;
  ctx.exec_fifo_fd = fifo_fd.get();
  ctx.seccomp_cache_dir = root_ / ".seccomp-cache";
  ctx.create_container_hooks = cfg.hooks.create_container;
  ctx.start_container_hooks = cfg.hooks.start_container;
  if (!ctx.create_container_hooks.empty() || !ctx.start_container_hooks.empty()) {
    const State st{.oci_version = cfg.oci_version, .id = std::string(id), .bundle = opts.bundle,
                   .annotations = cfg.annotations};
    ctx.hook_state = st.to_json_without_status_and_pid();
  }
  if (!cfg.hooks.prestart.empty() || !cfg.hooks.create_runtime.empty()) {
    // Run while the container waits with its mounts made, before its createContainer hooks
    // and pivot_root (runc's order); the state says "creating".
    ctx.hooks.mounts_ready = [&](pid_t pid) -> Status {
      const State st{.oci_version = cfg.oci_version, .id = std::string(id), .status = ContainerStatus::Creating,
                     .pid = pid, .bundle = opts.bundle, .annotations = cfg.annotations};
      KISTE_TRY(run_hooks(cfg.hooks.prestart, st, "prestart"));
      return run_hooks(cfg.hooks.create_runtime, st, "createRuntime");
    };
  }
  KISTE_ASSIGN_OR_RETURN(CreatedContainer made, create_container(cfg.spec, ctx));
  guard.made(made.pid, made.cgroup_paths);
  fifo_fd.reset();

  Record r;
  r.state = State{.oci_version = cfg.oci_version,
                  .id = std::string(id),
                  .status = ContainerStatus::Created,
                  .pid = made.pid,
                  .bundle = opts.bundle,
                  .annotations = cfg.annotations,
                  .created = now_rfc3339()};
  auto start = process_start(made.pid);
  if (!start) return failf(Errc::System, "container {}: its process ended during create", quote(id));
  r.pid_start = start->first;
  r.cgroups = made.cgroup_paths;
  r.hooks_json = hooks_to_json(cfg.hooks);
  KISTE_TRY(write_record(d, r));
  if (made.pty_master) KISTE_TRY(send_console(opts.console_socket, made.pty_master.get()));
  made.pty_master.reset();
  KISTE_TRY(write_pid_file(opts.pid_file, made.pid));
  guard.commit();
  return std::move(cfg.warnings);
}

Status OciRuntime::start(std::string_view id) {
  KISTE_TRY(check_container_id(id));
  const fs::path d = dir(id);
  KISTE_ASSIGN_OR_RETURN(FileLock held, lock(d, id));
  KISTE_ASSIGN_OR_RETURN(Record r, load(d, id));
  if (r.state.status != ContainerStatus::Created) {
    return failf(Errc::InvalidArgument, "cannot start container {}: it is {}, not created", quote(id),
                 to_string(r.state.status));
  }
  const fs::path fifo = d / kFifo;
  KISTE_ASSIGN_OR_RETURN(UniqueFd f, sys::open(fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC));
  // The container opens its end for writing (it blocked until now) and writes one byte.
  while (true) {
    struct pollfd p {f.get(), POLLIN, 0};
    const int rc = ::poll(&p, 1, 100);
    if (rc < 0 && errno != EINTR) return std::unexpected(sys_error("poll", fifo.native()));
    if (rc > 0 && (p.revents & POLLIN)) {
      char b;
      if (::read(f.get(), &b, 1) == 1) break;
    }
    if (live_status(d, r) == ContainerStatus::Stopped) {
      (void)sys::unlink(fifo);
      return failf(Errc::System, "cannot start container {}: its process ended", quote(id));
    }
  }
  KISTE_TRY(sys::unlink(fifo));
  KISTE_ASSIGN_OR_RETURN(Hooks hooks, parse_hooks(r.hooks_json));
  if (!hooks.start_container.empty()) KISTE_TRY(await_start_hooks(f.get(), hooks.start_container, d, r));
  r.state.status = ContainerStatus::Running;
  if (auto ran = run_hooks(hooks.poststart, r.state, "poststart"); !ran) {
    return ran;  // the container runs; the engine decides (runc reports the error too)
  }
  return {};
}

Result<State> OciRuntime::state(std::string_view id) const {
  KISTE_TRY(check_container_id(id));
  KISTE_ASSIGN_OR_RETURN(Record r, load(dir(id), id));
  return r.state;
}

Result<std::vector<State>> OciRuntime::list() const {
  std::vector<State> out;
  std::error_code ec;
  if (!fs::exists(root_, ec)) return out;
  for (const auto& e : fs::directory_iterator(root_, ec)) {
    const std::string name = e.path().filename().native();
    if (!check_container_id(name)) continue;
    auto r = load(e.path(), name);
    if (r) out.push_back(std::move(r->state));
  }
  std::sort(out.begin(), out.end(), [](const State& a, const State& b) { return a.id < b.id; });
  return out;
}

Status OciRuntime::kill(std::string_view id, std::string_view signal, bool all) {
  KISTE_ASSIGN_OR_RETURN(int sig, parse_signal(signal));
  KISTE_TRY(check_container_id(id));
  const fs::path d = dir(id);
  KISTE_ASSIGN_OR_RETURN(Record r, load(d, id));
  if (all) {
    for (const fs::path& cg : r.cgroups) {
      for (const char* file : {"cgroup.procs"}) {
        auto text = sys::read_file(cg / file, 1 << 22);
        if (!text) continue;
        for (std::string_view rest = *text; !rest.empty();) {
          const size_t nl = rest.find('\n');
          const pid_t p = std::atoi(std::string(rest.substr(0, nl)).c_str());
          if (p > 0) ::kill(p, sig);
          rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
        }
      }
      break;  // one hierarchy lists them all
    }
    return {};
  }
  if (r.state.status == ContainerStatus::Stopped) {
    return failf(Errc::InvalidArgument, "cannot kill container {}: it is not running", quote(id));
  }
  if (::kill(r.state.pid, sig) != 0) return std::unexpected(sys_error("kill", fmt::format("container {}", id)));
  return {};
}

Result<std::vector<std::string>> OciRuntime::remove(std::string_view id, bool force) {
  KISTE_TRY(check_container_id(id));
  const fs::path d = dir(id);
  // --force of a container that is gone succeeds, as runc's does (containerd's shim cleans up
  // with it after the engine already deleted the container).
  if (force && ::access(d.c_str(), F_OK) != 0 && errno == ENOENT) return std::vector<std::string>{};
  KISTE_ASSIGN_OR_RETURN(FileLock held, lock(d, id));
  auto loaded = load(d, id);
  if (!loaded && loaded.error().code == Errc::NotFound) {
    // A create that died before it wrote its state: only the directory is left.
    KISTE_TRY(sys::remove_tree(d));
    return std::vector<std::string>{};
  }
  if (!loaded) return std::unexpected(std::move(loaded).error());
  Record& r = *loaded;
  if ((r.state.status == ContainerStatus::Running || r.state.status == ContainerStatus::Paused) && !force) {
    return failf(Errc::InvalidArgument, "cannot delete container {} that is not stopped: {}", quote(id),
                 to_string(r.state.status));
  }
  if (r.state.status == ContainerStatus::Paused) {
    ::kill(r.state.pid, SIGKILL);
    KISTE_TRY(set_frozen(r, false));
  }
  if (r.state.status != ContainerStatus::Stopped) {
    ::kill(r.state.pid, SIGKILL);
    for (int i = 0; i < 1000; ++i) {  // until the kernel has taken it down (a zombie counts)
      auto st = process_start(r.state.pid);
      if (!st || st->second || st->first != r.pid_start) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  }
  KISTE_TRY(with_context(remove_cgroup_dirs(r.cgroups), "remove the container cgroup"));
  remove_default_parents(r.cgroups);
  r.state.status = ContainerStatus::Stopped;
  r.state.pid = 0;
  auto hooks = parse_hooks(r.hooks_json);
  held.release();
  KISTE_TRY(sys::remove_tree(d));
  // "delete" is done; a poststop hook that fails only warns (runtime-spec: log a warning, run
  // the remaining hooks and carry on).
  std::vector<std::string> warnings;
  if (!hooks) return std::vector<std::string>{std::move(hooks).error().to_string()};
  const std::string text = r.state.to_json();
  for (const Hook& h : hooks->poststop) {
    if (auto ran = run_hook(h, text, "poststop"); !ran) warnings.push_back(ran.error().to_string());
  }
  return warnings;
}

Status OciRuntime::pause(std::string_view id) { return change_frozen(id, true); }

Status OciRuntime::resume(std::string_view id) { return change_frozen(id, false); }

Status OciRuntime::change_frozen(std::string_view id, bool freeze) {
  KISTE_TRY(check_container_id(id));
  const fs::path d = dir(id);
  KISTE_ASSIGN_OR_RETURN(FileLock held, lock(d, id));
  KISTE_ASSIGN_OR_RETURN(Record r, load(d, id));
  const ContainerStatus from = freeze ? ContainerStatus::Running : ContainerStatus::Paused;
  if (r.state.status != from) {
    return failf(Errc::InvalidArgument, "cannot {} container {}: it is {}, not {}",
                 freeze ? "pause" : "resume", quote(id), to_string(r.state.status), to_string(from));
  }
  return set_frozen(r, freeze);
}

Result<int> OciRuntime::run(std::string_view id, const CreateOptions& opts) {
  KISTE_TRY(create(id, opts));
  KISTE_ASSIGN_OR_RETURN(State st, state(id));
  if (auto started = start(id); !started) {
    (void)remove(id, true);
    return std::unexpected(std::move(started).error());
  }
  int status = 0;
  while (::waitpid(st.pid, &status, 0) < 0) {
    if (errno != EINTR) {
      (void)remove(id, true);
      return std::unexpected(sys_error("waitpid", fmt::format("container {}", id)));
    }
  }
  KISTE_ASSIGN_OR_RETURN(std::vector<std::string> warnings, remove(id, true));
  for (const std::string& w : warnings) log::warn("{}", w);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

Result<std::vector<pid_t>> OciRuntime::pids(std::string_view id) const {
  KISTE_ASSIGN_OR_RETURN(State st, state(id));
  if (st.status == ContainerStatus::Stopped) return std::vector<pid_t>{};
  return container_pids(st.pid);
}

Result<int> OciRuntime::exec(std::string_view id, const ExecOptions& opts) {
  KISTE_ASSIGN_OR_RETURN(State st, state(id));
  if (st.status != ContainerStatus::Running) {
    return failf(Errc::InvalidArgument, "cannot exec in container {}: it is {}, not running", quote(id),
                 to_string(st.status));
  }
  bool terminal = opts.tty;
  ExecRequest req{.target = st.pid, .args = opts.args, .env = opts.env, .cwd = opts.cwd.empty() ? "/" : opts.cwd};
  if (!opts.process_file.empty()) {
    KISTE_ASSIGN_OR_RETURN(std::string text, sys::read_file(opts.process_file, 1 << 22));
    json p = json::parse(text, nullptr, false);
    if (p.is_discarded() || !p.is_object()) {
      return failf(Errc::InvalidArgument, "process file {}: not a JSON object", quote(opts.process_file.native()));
    }
    json wrapper = {{"ociVersion", "1.0.0"}, {"root", {{"path", "/"}}}, {"process", p},
                    {"linux", {{"namespaces", json::array({{{"type", "pid"}}, {{"type", "mount"}},
                                                           {{"type", "ipc"}}, {{"type", "uts"}}})}}}};
    KISTE_ASSIGN_OR_RETURN(BundleConfig parsed, with_context(parse_config(wrapper.dump(), "/"), "process file"));
    req.args = parsed.spec.process.args;
    req.env = parsed.spec.process.env;
    req.cwd = parsed.spec.process.cwd;
    req.user = ExecRequest::User{.uid = parsed.spec.process.uid,
                                 .gid = parsed.spec.process.gid,
                                 .groups = parsed.spec.process.additional_gids};
    terminal = parsed.spec.process.terminal;
  }
  if (opts.user) req.user = ExecRequest::User{.uid = opts.user->first, .gid = opts.user->second};
  if (req.args.empty()) return fail(Errc::InvalidArgument, "exec: no command given");
  UniqueFd console;
  if (terminal) {
    if (opts.console_socket.empty()) return fail(Errc::InvalidArgument, "exec with a terminal: --console-socket is required");
    KISTE_ASSIGN_OR_RETURN(console, connect_console(opts.console_socket));
    req.console_fd = console.get();
  } else if (!opts.console_socket.empty()) {
    return fail(Errc::InvalidArgument, "exec: --console-socket given but no terminal (--tty or process.terminal)");
  }
  if (!opts.pid_file.empty() && !opts.detach) {
    return fail(Errc::Unsupported, "exec --pid-file needs --detach");
  }
  req.detach = opts.detach;
  KISTE_ASSIGN_OR_RETURN(ExecResult res, exec_in_container(req));
  if (!res.exec_error.empty()) return fail(Errc::NotFound, res.exec_error);
  if (opts.detach) KISTE_TRY(write_pid_file(opts.pid_file, res.pid));
  return res.exit_code;
}

Status OciRuntime::update(std::string_view id, const Resources& res) {
  KISTE_TRY(check_container_id(id));
  const fs::path d = dir(id);
  KISTE_ASSIGN_OR_RETURN(FileLock held, lock(d, id));
  KISTE_ASSIGN_OR_RETURN(Record r, load(d, id));
  if (r.state.status == ContainerStatus::Stopped) {
    return failf(Errc::InvalidArgument, "cannot update container {}: it is stopped", quote(id));
  }
  if (!res.device_rules.empty()) return fail(Errc::Unsupported, "update: device rules cannot be changed");
  Resources want = res;
  if (want.cpu_quota && !want.cpu_period) {
    KISTE_ASSIGN_OR_RETURN(want.cpu_period, current_cpu_period(r.cgroups));
  }
  KISTE_ASSIGN_OR_RETURN(CgroupMode mode, detect_cgroup_mode());
  KISTE_ASSIGN_OR_RETURN(CgroupPlan plan, CgroupPlan::from_resources(want, mode, /*privileged=*/true));
  std::vector<CgroupWrite> writes = plan.writes;
  // v1 refuses a memory limit above memory+swap: raising both writes memory+swap first.
  const auto limit = std::find_if(writes.begin(), writes.end(),
                                  [](const CgroupWrite& w) { return w.file == "memory.limit_in_bytes"; });
  const auto memsw = std::find_if(writes.begin(), writes.end(),
                                  [](const CgroupWrite& w) { return w.file == "memory.memsw.limit_in_bytes"; });
  if (limit != writes.end() && memsw != writes.end()) {
    if (auto first = write_cgroup(r.cgroups, *limit); !first) {
      KISTE_TRY(write_cgroup(r.cgroups, *memsw));
      KISTE_TRY(write_cgroup(r.cgroups, *limit));
    } else {
      KISTE_TRY(write_cgroup(r.cgroups, *memsw));
    }
    writes.erase(std::max(limit, memsw));
    writes.erase(std::min(limit, memsw));
  }
  for (const CgroupWrite& w : writes) KISTE_TRY(write_cgroup(r.cgroups, w));
  return {};
}

Result<std::optional<OomWatch>> OciRuntime::watch_oom(std::string_view id) const {
  KISTE_TRY(check_container_id(id));
  KISTE_ASSIGN_OR_RETURN(Record r, load(dir(id), id));
  return with_context(OomWatch::open(r.cgroups), fmt::format("OOM notifications of container {}", quote(id)));
}

Result<std::string> OciRuntime::stats_event(std::string_view id) const {
  KISTE_ASSIGN_OR_RETURN(State st, state(id));
  if (st.status == ContainerStatus::Stopped) {
    return failf(Errc::InvalidArgument, "container {} is not running", quote(id));
  }
  KISTE_ASSIGN_OR_RETURN(StatsSample s, container_stats(st.pid));
  const uint64_t unlimited = std::numeric_limits<uint64_t>::max();
  auto entry = [](uint64_t limit, uint64_t usage) { return json{{"limit", limit}, {"usage", usage}, {"failcnt", 0}}; };
  json blkio = json::object();
  json data = {
      {"cpu", {{"usage", {{"total", s.cpu_usage_ns.value_or(0)}, {"kernel", 0}, {"user", 0}}}, {"throttling", json::object()}}},
      {"memory", {{"usage", entry(s.memory_limit.value_or(unlimited), s.memory_usage.value_or(0))},
                  {"swap", entry(unlimited, 0)},
                  {"kernel", entry(unlimited, 0)},
                  {"kernelTCP", entry(unlimited, 0)}}},
      {"pids", {{"current", s.pids.value_or(0)}}},
      {"blkio", blkio},
      {"hugetlb", json::object()}};
  return json{{"type", "stats"}, {"id", std::string(id)}, {"data", data}}.dump();
}

}  // namespace kiste::runtime::oci
