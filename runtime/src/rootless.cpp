#include <kiste/runtime/rootless.hpp>

#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>

#include <kiste/base/sys.hpp>
#include <kiste/base/user_namespace.hpp>
#include <kiste/base/unique_fd.hpp>

namespace kiste::runtime {

namespace fs = std::filesystem;

namespace {

const char* env_value(const EnvLookup& env, const char* name) {
  const char* v = env(name);
  return v != nullptr && *v != '\0' ? v : nullptr;
}

Result<std::string> find_on_path(const EnvLookup& env, std::string_view name) {
  std::string found = sys::find_on_path(name, env_value(env, "PATH") ? env_value(env, "PATH")
                                                                     : "/usr/local/bin:/usr/bin:/bin");
  if (!found.empty()) return found;
  return failf(Errc::NotFound,
               "{} not found on PATH: rootless kiste maps your subordinate ids with it; install "
               "Debian's `uidmap` package (apt-get install uidmap)",
               name);
}

const SubIdRange* find_range(const std::vector<SubIdRange>& ranges, std::string_view user, uid_t uid) {
  const std::string id = std::to_string(uid);
  auto it = std::find_if(ranges.begin(), ranges.end(), [&](const SubIdRange& r) {
    return (!user.empty() && r.owner == user) || r.owner == id;
  });
  return it == ranges.end() ? nullptr : &*it;
}

// The first 65536 ids from 100000 up that no line of either file gives anyone.
uint64_t free_range_start(const std::vector<SubIdRange>& a, const std::vector<SubIdRange>& b) {
  uint64_t start = 100000;
  for (const auto* list : {&a, &b}) {
    for (const SubIdRange& r : *list) start = std::max<uint64_t>(start, uint64_t{r.start} + r.count);
  }
  return start;
}

// Starts `argv` (newuidmap or newgidmap) with its output on `out_fd`; -1 when fork fails.
pid_t start_helper_step(const char* const* argv, int out_fd) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(out_fd, STDOUT_FILENO);
    ::dup2(out_fd, STDERR_FILENO);
    ::execv(argv[0], const_cast<char* const*>(argv));
    ::_exit(127);
  }
  return pid;
}

// Whether the helper step `pid` (from start_helper_step) exited 0.
bool helper_step_ok(pid_t pid) {
  if (pid < 0) return false;
  int st = 0;
  while (::waitpid(pid, &st, 0) < 0) {
    if (errno != EINTR) return false;
  }
  return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

}  // namespace

Result<UserPaths> user_paths(const EnvLookup& env) {
  UserPaths p;
  if (const char* data = env_value(env, "XDG_DATA_HOME"); data != nullptr && data[0] == '/') {
    p.store = fs::path(data) / "kiste";
  } else if (const char* home = env_value(env, "HOME"); home != nullptr && home[0] == '/') {
    p.store = fs::path(home) / ".local" / "share" / "kiste";
  } else {
    return fail(Errc::InvalidArgument,
                "HOME is not set: rootless kiste keeps its store in $XDG_DATA_HOME/kiste or "
                "~/.local/share/kiste; set HOME (or XDG_DATA_HOME), or give --root DIR");
  }
  const char* run = env_value(env, "XDG_RUNTIME_DIR");
  if (run == nullptr || run[0] != '/') {
    return fail(Errc::InvalidArgument,
                "XDG_RUNTIME_DIR is not set: rootless kiste keeps its runtime state in "
                "$XDG_RUNTIME_DIR/kiste; log in through a session that sets it (pam_systemd), or "
                "export XDG_RUNTIME_DIR=/run/user/$(id -u) pointing at a 0700 directory you own");
  }
  p.state = fs::path(run) / "kiste";
  return p;
}

Result<SubordinateIds> find_subordinate_ids(std::string_view user, uid_t uid, std::string_view subuid_text,
                                            std::string_view subgid_text) {
  const std::vector<SubIdRange> uids = parse_subid(subuid_text), gids = parse_subid(subgid_text);
  const SubIdRange* u = find_range(uids, user, uid);
  const SubIdRange* g = find_range(gids, user, uid);
  if (u == nullptr || g == nullptr) {
    const uint64_t start = free_range_start(uids, gids);
    const std::string name = user.empty() ? std::to_string(uid) : std::string(user);
    const std::string range = fmt::format("{}-{}", start, start + 65535);
    return failf(Errc::NotFound,
                 "user {} has no subordinate {} in {}: rootless kiste needs a range; as root run "
                 "`usermod --add-subuids {} --add-subgids {} {}`",
                 quote(name), u == nullptr ? "uids" : "gids", u == nullptr ? "/etc/subuid" : "/etc/subgid",
                 range, range, name);
  }
  return SubordinateIds{.uids = *u, .gids = *g};
}

std::vector<IdMapping> rootless_uid_map(uid_t uid, const SubIdRange& r) {
  return {{0, static_cast<uint32_t>(uid), 1}, {1, r.start, r.count}};
}

Result<RootlessPlan> plan_rootless(uid_t uid, gid_t gid, std::string_view user, const EnvLookup& env,
                                   const fs::path& subuid, const fs::path& subgid) {
  RootlessPlan p{.uid = uid, .gid = gid};
  KISTE_ASSIGN_OR_RETURN(p.newuidmap, find_on_path(env, "newuidmap"));
  KISTE_ASSIGN_OR_RETURN(p.newgidmap, find_on_path(env, "newgidmap"));
  auto read = [](const fs::path& f) -> Result<std::string> {
    auto text = sys::read_file(f, 1 << 22);
    if (!text && text.error().sys_errno == ENOENT) return std::string();
    return text;
  };
  KISTE_ASSIGN_OR_RETURN(std::string u, read(subuid));
  KISTE_ASSIGN_OR_RETURN(std::string g, read(subgid));
  KISTE_ASSIGN_OR_RETURN(p.ids, find_subordinate_ids(user, uid, u, g));
  KISTE_TRY(validate_id_map(rootless_uid_map(uid, p.ids.uids), "/etc/subuid range"));
  KISTE_TRY(validate_id_map(rootless_uid_map(gid, p.ids.gids), "/etc/subgid range"));
  return p;
}

Status enter_rootless_namespace(const RootlessPlan& plan) {
  // Everything the helper needs, made before it is forked.
  const std::string pid = std::to_string(::getpid());
  auto words = [&pid](const std::string& prog, uint32_t id, const SubIdRange& r) {
    return std::vector<std::string>{prog, pid, "0", std::to_string(id), "1", "1",
                                    std::to_string(r.start), std::to_string(r.count)};
  };
  const std::vector<std::string> uw = words(plan.newuidmap, plan.uid, plan.ids.uids);
  const std::vector<std::string> gw = words(plan.newgidmap, plan.gid, plan.ids.gids);
  std::vector<const char*> uargv, gargv;
  for (const auto& w : uw) uargv.push_back(w.c_str());
  for (const auto& w : gw) gargv.push_back(w.c_str());
  uargv.push_back(nullptr);
  gargv.push_back(nullptr);

  int go_fds[2], out_fds[2];
  if (::pipe2(go_fds, O_CLOEXEC) != 0) return std::unexpected(sys_error("pipe2", "user namespace"));
  UniqueFd go_rd(go_fds[0]), go_wr(go_fds[1]);
  if (::pipe2(out_fds, O_CLOEXEC) != 0) return std::unexpected(sys_error("pipe2", "user namespace"));
  UniqueFd out_rd(out_fds[0]), out_wr(out_fds[1]);

  const pid_t helper = ::fork();
  if (helper < 0) return std::unexpected(sys_error("fork", "the id map helper"));
  if (helper == 0) {
    // Still in the initial namespace: waits until the parent has its new one, then maps it.
    go_wr.reset();
    out_rd.reset();
    char c = 0;
    ssize_t n;
    do n = ::read(go_rd.get(), &c, 1);
    while (n < 0 && errno == EINTR);
    if (n != 1) ::_exit(3);
    // Both maps at once: each is a setuid exec of its own (~3 ms), and neither needs the other.
    const pid_t u = start_helper_step(uargv.data(), out_wr.get());
    const pid_t g = start_helper_step(gargv.data(), out_wr.get());
    const bool uid_ok = helper_step_ok(u);
    const bool gid_ok = helper_step_ok(g);
    ::_exit(!uid_ok ? 1 : !gid_ok ? 2 : 0);
  }
  go_rd.reset();
  out_wr.reset();
  auto reap = [helper]() -> int {
    int st = 0;
    while (::waitpid(helper, &st, 0) < 0 && errno == EINTR) {
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
  };
  if (::unshare(CLONE_NEWUSER) != 0) {
    Error e = sys_error("unshare", "a user namespace");
    go_wr.reset();  // the helper reads EOF and exits
    (void)reap();
    return std::unexpected(std::move(e));
  }
  if (::write(go_wr.get(), "g", 1) != 1) {
    Error e = sys_error("write", "the id map helper");
    go_wr.reset();
    (void)reap();
    return std::unexpected(std::move(e));
  }
  go_wr.reset();
  std::string said = sys::read_all(out_rd.get(), "the id map helper").value_or("");
  const int status = reap();
  if (status != 0) {
    std::replace(said.begin(), said.end(), '\n', ' ');
    while (!said.empty() && said.back() == ' ') said.pop_back();
    const std::string& prog = status == 2 ? plan.newgidmap : plan.newuidmap;
    const SubIdRange& r = status == 2 ? plan.ids.gids : plan.ids.uids;
    return failf(Errc::PermissionDenied,
                 "{} {} {} {}: {} (is it setuid root, and does /etc/sub{}id grant the range?)", prog,
                 r.start, r.count, status == 1 || status == 2 ? "failed" : "did not run",
                 said.empty() ? "no message" : said, status == 2 ? "g" : "u");
  }
  // uid/gid 0 here are the user; the capabilities unshare gave are this namespace's.
  if (::setresgid(0, 0, 0) != 0) return std::unexpected(sys_error("setresgid", "0"));
  if (::setresuid(0, 0, 0) != 0) return std::unexpected(sys_error("setresuid", "0"));
  if (::unshare(CLONE_NEWNS) != 0) return std::unexpected(sys_error("unshare", "a mount namespace"));
  // Mounts kiste makes (build views, cp) stay in here and die with it.
  KISTE_TRY(sys::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr));
  return {};
}

Status join_rootless_namespace_of(pid_t pid) {
  const std::string path = fmt::format("/proc/{}/ns/user", pid);
  KISTE_ASSIGN_OR_RETURN(UniqueFd ns, sys::open(path, O_RDONLY | O_CLOEXEC));
  if (::setns(ns.get(), CLONE_NEWUSER) != 0) return std::unexpected(sys_error("setns", path));
  if (::setresgid(0, 0, 0) != 0) return std::unexpected(sys_error("setresgid", "0"));
  if (::setresuid(0, 0, 0) != 0) return std::unexpected(sys_error("setresuid", "0"));
  if (::unshare(CLONE_NEWNS) != 0) return std::unexpected(sys_error("unshare", "a mount namespace"));
  return sys::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr);
}

namespace {

// One keep-id map from kiste's own ("0 ID 1\n1 START COUNT\n"); `id` gets the user's id.
Result<std::vector<IdMapping>> keep_id_map(std::string_view own, std::string_view what,
                                           uint32_t& id) {
  std::vector<IdMapping> lines;
  size_t at = 0;
  while (at < own.size()) {
    size_t nl = own.find('\n', at);
    std::string_view line = own.substr(at, nl == std::string_view::npos ? own.size() - at : nl - at);
    at = nl == std::string_view::npos ? own.size() : nl + 1;
    IdMapping m;
    if (std::sscanf(std::string(line).c_str(), "%u %u %u", &m.container_id, &m.host_id, &m.size) == 3) {
      lines.push_back(m);
    }
  }
  if (lines.size() != 2 || lines[0].container_id != 0 || lines[0].size != 1 ||
      lines[1].container_id != 1 || lines[1].size == 0) {
    return failf(Errc::Unsupported,
                 "userns keep-id: kiste's own {} map is not the rootless one (0 = you, then your "
                 "subordinate range)",
                 what);
  }
  id = lines[0].host_id;
  const uint32_t n = lines[1].size;
  if (id > n) {
    return failf(Errc::Unsupported,
                 "userns keep-id: your {} {} is beyond your subordinate range of {} ids, so it "
                 "cannot be itself inside",
                 what, id, n);
  }
  std::vector<IdMapping> out;
  if (id > 0) out.push_back({0, 1, id});
  out.push_back({id, 0, 1});
  if (n > id) out.push_back({id + 1, id + 1, n - id});
  return out;
}

}  // namespace

Result<KeepIdMaps> keep_id_maps(std::string_view own_uid_map, std::string_view own_gid_map) {
  KeepIdMaps k;
  KISTE_ASSIGN_OR_RETURN(k.uid_map, keep_id_map(own_uid_map, "uid", k.uid));
  KISTE_ASSIGN_OR_RETURN(k.gid_map, keep_id_map(own_gid_map, "gid", k.gid));
  return k;
}

CgroupPlacement rootless_cgroup_placement(CgroupMode mode, bool systemd_booted,
                                          const EnvLookup& env) {
  CgroupPlacement p{.manager = CgroupManager::None};
  if (mode != CgroupMode::Unified) {
    p.no_cgroup_reason = "rootless, and cgroup v1 hierarchies are not delegated to users";
    return p;
  }
  if (!systemd_booted) {
    p.no_cgroup_reason = "rootless, and no systemd runs here to delegate a cgroup v2 subtree to you";
    return p;
  }
  // The bus sd_bus_open_user() would use; an address that is not a socket path is taken on trust.
  std::string bus;
  if (const char* addr = env_value(env, "DBUS_SESSION_BUS_ADDRESS"); addr != nullptr) {
    std::string_view a = addr;
    if (a.starts_with("unix:path=")) {
      a.remove_prefix(10);
      bus = std::string(a.substr(0, a.find(',')));
    }
  } else if (const char* run = env_value(env, "XDG_RUNTIME_DIR"); run != nullptr) {
    bus = (fs::path(run) / "bus").native();
  }
  if (!bus.empty() && ::access(bus.c_str(), F_OK) != 0) {
    p.no_cgroup_reason = fmt::format(
        "rootless, and your systemd user manager, which delegates cgroups to you, has no bus at {} "
        "(`loginctl enable-linger` or a login through pam_systemd starts it)",
        quote(bus));
    return p;
  }
  p.manager = CgroupManager::Systemd;
  p.systemd = SystemdInstance::User;
  return p;
}

bool running_rootless() { return !sys::in_initial_user_namespace(); }

}  // namespace kiste::runtime
