// RunOptions + ImageProcessDefaults -> ContainerSpec.
#include <kiste/runtime/run_options.hpp>

#include <fcntl.h>
#include <pwd.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <charconv>

#include <sys/capability.h>

#include <kiste/base/log.hpp>
#include <kiste/base/split.hpp>
#include <kiste/base/sys.hpp>
#include <kiste/runtime/cgroup.hpp>
#include <kiste/runtime/id_map.hpp>
#include <kiste/runtime/passwd.hpp>
#include <kiste/runtime/rootless.hpp>
#include <kiste/runtime/volume.hpp>

namespace kiste::runtime {

namespace fs = std::filesystem;

namespace {

template <class T>
bool parse_num(std::string_view s, T& out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return !s.empty() && ec == std::errc{} && p == s.data() + s.size();
}

std::optional<std::string> host_lookup(const char* const* env, std::string_view key) {
  if (env == nullptr) return std::nullopt;
  for (; *env; ++env) {
    std::string_view e(*env);
    if (e.size() > key.size() && e.starts_with(key) && e[key.size()] == '=') {
      return std::string(e.substr(key.size() + 1));
    }
  }
  return std::nullopt;
}

// Sets KEY=VALUE in env, replacing an earlier KEY.
void set_env(std::vector<std::string>& env, std::string kv) {
  std::string_view key = std::string_view(kv).substr(0, kv.find('='));
  for (auto& e : env) {
    if (e.size() > key.size() && e.starts_with(key) && e[key.size()] == '=') {
      e = std::move(kv);
      return;
    }
  }
  env.push_back(std::move(kv));
}

Status add_env_entry(std::vector<std::string>& env, std::string_view entry,
                     const char* const* host_env) {
  if (entry.empty() || entry.front() == '=' || entry.find('\0') != std::string_view::npos) {
    return failf(Errc::InvalidArgument, "environment variable {}: invalid", quote(entry));
  }
  if (entry.find('=') != std::string_view::npos) {
    set_env(env, std::string(entry));
  } else if (auto v = host_lookup(host_env, entry)) {
    set_env(env, std::string(entry) + "=" + *v);
  }
  return {};
}

// Reads `name` from the top-most layer that has it, resolving inside that layer only.
Result<std::optional<std::string>> read_image_file(const std::vector<fs::path>& lowers,
                                                   std::string_view name) {
  for (auto it = lowers.rbegin(); it != lowers.rend(); ++it) {
    KISTE_ASSIGN_OR_RETURN(UniqueFd root, sys::open(*it, O_PATH | O_DIRECTORY | O_CLOEXEC));
    auto at = sys::open_in_root(root.get(), name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (!at) {
      if (at.error().sys_errno == ENOENT) continue;
      return std::unexpected(std::move(at).error());
    }
    KISTE_ASSIGN_OR_RETURN(struct stat st, sys::fstat(at->get(), name));
    if (S_ISCHR(st.st_mode) && st.st_rdev == 0) break;  // an overlay whiteout: deleted above
    // Host root reads the image's file: never a FIFO (hangs), a device node (the host's), or
    // anything but a regular file; a symlink resolves inside this layer.
    auto fd = sys::open_regular_in_root(root.get(), name, sys::LastLink::FollowInRoot);
    if (!fd && fd.error().sys_errno == ENOENT) continue;  // a dangling symlink
    if (!fd) return std::unexpected(std::move(fd).error().with_context("image file"));
    KISTE_ASSIGN_OR_RETURN(std::string text, sys::read_all(fd->get(), name, 1 << 22));
    return std::optional<std::string>(std::move(text));
  }
  return std::optional<std::string>();
}

struct RlimitName {
  const char* name;
  int resource;
};
constexpr RlimitName kRlimits[] = {
    {"core", RLIMIT_CORE},       {"cpu", RLIMIT_CPU},         {"data", RLIMIT_DATA},
    {"fsize", RLIMIT_FSIZE},     {"locks", RLIMIT_LOCKS},     {"memlock", RLIMIT_MEMLOCK},
    {"msgqueue", RLIMIT_MSGQUEUE}, {"nice", RLIMIT_NICE},     {"nofile", RLIMIT_NOFILE},
    {"nproc", RLIMIT_NPROC},     {"rss", RLIMIT_RSS},         {"rtprio", RLIMIT_RTPRIO},
    {"rttime", RLIMIT_RTTIME},   {"sigpending", RLIMIT_SIGPENDING}, {"stack", RLIMIT_STACK},
};

Result<Rlimit> parse_ulimit(std::string_view text) {
  size_t eq = text.find('=');
  if (eq == std::string_view::npos) {
    return failf(Errc::InvalidArgument, "ulimit {}: expected NAME=SOFT[:HARD]", quote(text));
  }
  std::string_view name = text.substr(0, eq), vals = text.substr(eq + 1);
  Rlimit r;
  bool found = false;
  for (const auto& n : kRlimits) {
    if (name == n.name) {
      r.resource = n.resource;
      found = true;
    }
  }
  if (!found) return failf(Errc::InvalidArgument, "ulimit {}: unknown limit", quote(name));
  auto parts = split(vals, ':');
  auto num = [](std::string_view s, uint64_t& out) {
    if (s == "-1" || s == "unlimited") {
      out = RLIM_INFINITY;
      return true;
    }
    return parse_num(s, out);
  };
  if (parts.size() > 2 || !num(parts[0], r.soft) || !num(parts.back(), r.hard) || r.soft > r.hard) {
    return failf(Errc::InvalidArgument, "ulimit {}: expected SOFT[:HARD] with SOFT <= HARD",
                 quote(text));
  }
  return r;
}

Result<Propagation> parse_propagation(std::string_view spec, std::string_view p) {
  if (p == "private") return Propagation::Private;
  if (p == "rprivate") return Propagation::RPrivate;
  if (p == "slave") return Propagation::Slave;
  if (p == "rslave") return Propagation::RSlave;
  if (p == "shared" || p == "rshared") {
    return failf(Errc::Unsupported,
                 "{}: propagation {} is not supported: kiste never lets mounts made in a container "
                 "propagate to the host (rslave gives the host-to-container half)",
                 quote(spec), quote(p));
  }
  return failf(Errc::InvalidArgument, "{}: unknown propagation {}", quote(spec), quote(p));
}

void note_selinux_label(std::string_view spec) {
  log::warn("volume {}: `z`/`Z` (SELinux relabel) ignored: kiste runs without SELinux labels",
            quote(spec));
}

Result<MountSpec> parse_volume(std::string_view v, const fs::path& volumes_dir) {
  auto parts = split(v, ':');
  if (parts.size() < 2 || parts.size() > 3 || parts[0].empty() || parts[1].empty()) {
    return failf(Errc::InvalidArgument, "volume {}: expected HOST:CONTAINER[:OPTIONS]", quote(v));
  }
  MountSpec m;
  m.kind = MountKind::Bind;
  const bool named = parts[0].front() != '/';
  if (!named) {
    m.source = fs::path(parts[0]).lexically_normal();
  } else {
    KISTE_TRY(with_context(validate_volume_name(parts[0]), fmt::format("volume {}", quote(v))));
    if (volumes_dir.empty()) {
      return failf(Errc::InvalidArgument, "volume {}: named volumes need a kiste root", quote(v));
    }
  }
  m.destination = std::string(parts[1]);
  if (parts.size() == 3) {
    for (auto o : split(parts[2], ',')) {
      if (o == "ro") m.readonly = true;
      else if (o == "rw") m.readonly = false;
      else if (o == "z" || o == "Z") note_selinux_label(v);
      else if (o == "idmap") m.idmap = true;
      else if (o == "nocopy") {
      } else {
        auto p = parse_propagation(v, o);
        if (!p) {
          if (p.error().code == Errc::Unsupported) return std::unexpected(std::move(p).error());
          return failf(Errc::InvalidArgument, "volume {}: unknown option {}", quote(v), quote(o));
        }
        m.propagation = *p;
      }
    }
  }
  if (named) {  // created only once the whole spec is known to be valid
    KISTE_ASSIGN_OR_RETURN(m.source, ensure_volume(volumes_dir, parts[0]));
  }
  return m;
}

Result<MountSpec> parse_mount(std::string_view v, const fs::path& volumes_dir) {
  MountSpec m;
  std::string type;
  bool have_target = false;
  std::vector<std::string> tmpfs_opts;
  std::string source;
  for (const KeyValue& kv : split_kv(v)) {
    const std::string_view k = kv.key, val = kv.value;
    if (k == "type") type = val;
    else if (k == "source" || k == "src") source = val;
    else if (k == "target" || k == "destination" || k == "dst") {
      m.destination = val;
      have_target = true;
    } else if (k == "readonly" || k == "ro") m.readonly = val.empty() || val == "true" || val == "1";
    else if (k == "tmpfs-size") tmpfs_opts.push_back("size=" + std::string(val));
    else if (k == "tmpfs-mode") tmpfs_opts.push_back("mode=" + std::string(val));
    else if (k == "bind-propagation") {
      KISTE_ASSIGN_OR_RETURN(m.propagation, parse_propagation(v, val));
    } else if (k == "idmap") {
      m.idmap = val.empty() || val == "true";
    } else if (k == "volume-nocopy") {
    } else return failf(Errc::InvalidArgument, "mount {}: unknown key {}", quote(v), quote(k));
  }
  if (!have_target) return failf(Errc::InvalidArgument, "mount {}: target is missing", quote(v));
  if (type == "bind") {
    m.kind = MountKind::Bind;
    m.source = fs::path(source).lexically_normal();
    if (source.empty() || !m.source.is_absolute()) {
      return failf(Errc::InvalidArgument, "mount {}: bind needs an absolute source", quote(v));
    }
  } else if (type == "volume") {
    m.kind = MountKind::Bind;
    KISTE_TRY(with_context(validate_volume_name(source), fmt::format("mount {}", quote(v))));
    if (volumes_dir.empty()) {
      return failf(Errc::InvalidArgument, "mount {}: named volumes need a kiste root", quote(v));
    }
    KISTE_ASSIGN_OR_RETURN(m.source, ensure_volume(volumes_dir, source));
  } else if (type == "tmpfs") {
    m.kind = MountKind::Tmpfs;
    for (size_t i = 0; i < tmpfs_opts.size(); ++i) {
      if (i) m.tmpfs_options += ',';
      m.tmpfs_options += tmpfs_opts[i];
    }
  } else {
    return failf(Errc::InvalidArgument, "mount {}: type must be bind, volume or tmpfs", quote(v));
  }
  return m;
}

}  // namespace

std::vector<PasswdEntry> parse_passwd(std::string_view text) {
  std::vector<PasswdEntry> out;
  for (std::string_view line : split(text, '\n')) {
    auto f = split(line, ':');
    if (f.size() < 7) continue;
    PasswdEntry e{std::string(f[0]), 0, 0, std::string(f[5])};
    if (!parse_num(f[2], e.uid) || !parse_num(f[3], e.gid)) continue;
    out.push_back(std::move(e));
  }
  return out;
}

std::vector<GroupEntry> parse_group(std::string_view text) {
  std::vector<GroupEntry> out;
  for (std::string_view line : split(text, '\n')) {
    auto f = split(line, ':');
    if (f.size() < 4) continue;
    GroupEntry g{std::string(f[0]), 0, {}};
    if (!parse_num(f[2], g.gid)) continue;
    if (!f[3].empty()) {
      for (auto m : split(f[3], ',')) g.members.emplace_back(m);
    }
    out.push_back(std::move(g));
  }
  return out;
}


uint64_t all_capabilities() {
  int last = static_cast<int>(cap_max_bits()) - 1;
  if (last < 40) last = 40;
  if (last > 63) last = 63;
  return last == 63 ? ~uint64_t{0} : (uint64_t{1} << (last + 1)) - 1;
}

Result<uint64_t> parse_capability(std::string_view name) {
  std::string n(name);
  std::transform(n.begin(), n.end(), n.begin(), ::tolower);
  if (n == "all") return all_capabilities();
  if (!n.starts_with("cap_")) n = "cap_" + n;
  cap_value_t v;
  if (cap_from_name(n.c_str(), &v) != 0 || v < 0 || v > 63) {
    return failf(Errc::InvalidArgument, "capability {}: unknown", quote(name));
  }
  return uint64_t{1} << v;
}

Result<std::vector<std::string>> read_env_file(const fs::path& file, const char* const* host_env) {
  KISTE_ASSIGN_OR_RETURN(std::string text, sys::read_file(file, 1 << 22));
  std::vector<std::string> env;
  size_t lineno = 0;
  for (std::string_view line : split(text, '\n')) {
    ++lineno;
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.remove_suffix(1);
    while (!line.empty() && line.front() == ' ') line.remove_prefix(1);
    if (line.empty() || line.front() == '#') continue;
    auto r = add_env_entry(env, line, host_env);
    if (!r) {
      return std::unexpected(std::move(r).error().with_context(
          fmt::format("env file {} line {}", quote(file.native()), lineno)));
    }
  }
  return env;
}

Result<ResolvedUser> resolve_user(std::string_view user, const std::vector<fs::path>& lowers) {
  ResolvedUser out;
  out.home = "/";
  if (user.empty()) user = "0";
  size_t colon = user.find(':');
  std::string_view u = user.substr(0, colon);
  std::optional<std::string_view> g;
  if (colon != std::string_view::npos) g = user.substr(colon + 1);
  if (u.empty() || (g && g->empty())) {
    return failf(Errc::InvalidArgument, "user {}: expected NAME|UID[:GROUP|GID]", quote(user));
  }
  KISTE_ASSIGN_OR_RETURN(auto passwd_text, read_image_file(lowers, "/etc/passwd"));
  KISTE_ASSIGN_OR_RETURN(auto group_text, read_image_file(lowers, "/etc/group"));
  auto passwd = parse_passwd(passwd_text.value_or(""));
  auto groups = parse_group(group_text.value_or(""));
  const PasswdEntry* pw = nullptr;
  uid_t uid_num;
  if (parse_num(u, uid_num)) {
    out.uid = uid_num;
    for (const auto& e : passwd) {
      if (e.uid == uid_num) {
        pw = &e;
        break;
      }
    }
    out.gid = pw ? pw->gid : 0;
  } else {
    for (const auto& e : passwd) {
      if (e.name == u) {
        pw = &e;
        break;
      }
    }
    if (!pw) {
      return failf(Errc::NotFound, "user {}: no such user in the image's /etc/passwd", quote(u));
    }
    out.uid = pw->uid;
    out.gid = pw->gid;
  }
  if (pw) out.home = pw->home.empty() ? "/" : pw->home;
  if (g) {
    gid_t gid_num;
    if (parse_num(*g, gid_num)) {
      out.gid = gid_num;
    } else {
      const GroupEntry* ge = nullptr;
      for (const auto& e : groups) {
        if (e.name == *g) ge = &e;
      }
      if (!ge) {
        return failf(Errc::NotFound, "group {}: no such group in the image's /etc/group", quote(*g));
      }
      out.gid = ge->gid;
    }
  } else if (pw) {
    // Supplementary groups as initgroups(3) sets them: the primary group and every group that
    // lists the user by name.
    out.additional_gids.push_back(out.gid);
    for (const auto& e : groups) {
      if (std::find(e.members.begin(), e.members.end(), pw->name) != e.members.end() &&
          e.gid != out.gid) {
        out.additional_gids.push_back(e.gid);
      }
    }
  }
  return out;
}

namespace {

// The container id that kiste's own 0 (the user) is in a keep-id map.
uint32_t keep_id_of(const std::vector<IdMapping>& map) {
  for (const IdMapping& m : map) {
    if (m.host_id == 0) return m.container_id;
  }
  return 0;
}

// --userns, --uidmap, --gidmap (podman's rules: --gidmap defaults to the --uidmap).
Result<UserNamespaceSpec> userns_spec(const RunOptions& opts) {
  UserNamespaceSpec u;
  const bool maps = !opts.uidmap.empty() || !opts.gidmap.empty();
  if (opts.userns.empty() || opts.userns == "host") {
    if (maps && opts.userns == "host") {
      return fail(Errc::InvalidArgument, "userns host: conflicts with --uidmap/--gidmap");
    }
    if (!maps) return u;
    u.mode = UsernsMode::Private;
    for (const auto& m : opts.uidmap) {
      KISTE_ASSIGN_OR_RETURN(IdMapping x, parse_id_mapping(m));
      u.uid_map.push_back(x);
    }
    for (const auto& m : opts.gidmap) {
      KISTE_ASSIGN_OR_RETURN(IdMapping x, parse_id_mapping(m));
      u.gid_map.push_back(x);
    }
    if (u.uid_map.empty()) u.uid_map = u.gid_map;
    if (u.gid_map.empty()) u.gid_map = u.uid_map;
    KISTE_TRY(validate_id_map(u.uid_map, "uidmap"));
    KISTE_TRY(validate_id_map(u.gid_map, "gidmap"));
    return u;
  }
  if (opts.userns == "auto") {
    if (maps) return fail(Errc::InvalidArgument, "userns auto: conflicts with --uidmap/--gidmap");
    u.mode = UsernsMode::Auto;
    return u;
  }
  if (opts.userns == "keep-id") {
    if (maps) return fail(Errc::InvalidArgument, "userns keep-id: conflicts with --uidmap/--gidmap");
    if (!running_rootless()) {
      return fail(Errc::InvalidArgument,
                  "userns keep-id: keeps an ordinary user's own id in a rootless container; as root "
                  "there is none to keep (podman refuses it too): use --userns=auto or --uidmap");
    }
    KISTE_ASSIGN_OR_RETURN(std::string own_uid, sys::read_file("/proc/self/uid_map", 1 << 16));
    KISTE_ASSIGN_OR_RETURN(std::string own_gid, sys::read_file("/proc/self/gid_map", 1 << 16));
    KISTE_ASSIGN_OR_RETURN(KeepIdMaps k, keep_id_maps(own_uid, own_gid));
    u.mode = UsernsMode::KeepId;
    u.uid_map = std::move(k.uid_map);
    u.gid_map = std::move(k.gid_map);
    return u;
  }
  return failf(Errc::InvalidArgument, "userns {}: expected host, auto or keep-id", quote(opts.userns));
}

// --init: the static kiste-init, bind-mounted read-only at /dev/init (kiste's own tmpfs: nothing
// in the image or the upper dir changes), is PID 1 and starts the command. Mounted after the
// user's mounts, so none of them covers it.
Status add_init(ContainerSpec& spec, const fs::path& init_binary) {
  if (init_binary.empty()) {
    return fail(Errc::NotFound, "--init: no kiste-init binary (it is installed beside kiste)");
  }
  spec.mounts.push_back(MountSpec{.kind = MountKind::Bind,
                                  .source = init_binary,
                                  .destination = std::string(kInitPath),
                                  .readonly = true});
  spec.process.args.insert(spec.process.args.begin(), {std::string(kInitPath), "--"});
  return {};
}

}  // namespace

Result<ContainerSpec> make_spec(const RunOptions& opts, const MakeSpecInput& in) {
  ContainerSpec spec;
  if (in.id.empty()) return fail(Errc::InvalidArgument, "container id: empty");
  spec.id = in.id;
  spec.root.lower_dirs = in.lower_dirs;
  spec.root.container_dir = in.container_dir;
  spec.root.readonly = opts.read_only;
  spec.privileged = opts.privileged;
  spec.init = opts.init;
  KISTE_ASSIGN_OR_RETURN(spec.userns, userns_spec(opts));

  // Process args: Docker's entrypoint/cmd rules.
  std::vector<std::string> entry = in.image.entrypoint;
  std::vector<std::string> cmd = in.image.cmd;
  if (opts.entrypoint) {
    entry.clear();
    if (!opts.entrypoint->empty()) entry.push_back(*opts.entrypoint);
    cmd.clear();  // --entrypoint resets the image's Cmd
  }
  if (!opts.command.empty()) cmd = opts.command;
  spec.process.args = entry;
  spec.process.args.insert(spec.process.args.end(), cmd.begin(), cmd.end());
  if (spec.process.args.empty()) {
    return fail(Errc::InvalidArgument, "no command: the image has no Entrypoint or Cmd; give one");
  }
  for (const auto& a : spec.process.args) {
    if (a.find('\0') != std::string::npos) return fail(Errc::InvalidArgument, "command: contains a NUL byte");
  }

  // Environment: PATH default, image env, env files, -e (later wins), HOSTNAME, HOME.
  auto& env = spec.process.env;
  env.push_back("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
  for (const auto& e : in.image.env) KISTE_TRY(add_env_entry(env, e, nullptr));
  for (const auto& f : opts.env_files) {
    KISTE_ASSIGN_OR_RETURN(auto fe, read_env_file(f, in.host_env));
    for (auto& e : fe) set_env(env, std::move(e));
  }
  for (const auto& e : opts.env) KISTE_TRY(add_env_entry(env, e, in.host_env));

  spec.hostname = opts.hostname.empty() ? in.id.substr(0, 12) : opts.hostname;
  if (spec.hostname.size() > 64 || spec.hostname.find_first_of(std::string_view("/\0 ", 3)) != std::string::npos) {
    return failf(Errc::InvalidArgument, "hostname {}: invalid", quote(spec.hostname));
  }
  set_env(env, "HOSTNAME=" + spec.hostname);

  // User. keep-id: the user's own ids (the one kiste's 0 is), its home and name, unless -u says.
  std::string user = opts.user.empty() ? in.image.user : opts.user;
  const struct passwd* keep = nullptr;
  if (spec.userns.mode == UsernsMode::KeepId && opts.user.empty()) {
    const uint32_t uid = keep_id_of(spec.userns.uid_map), gid = keep_id_of(spec.userns.gid_map);
    user = fmt::format("{}:{}", uid, gid);
    keep = ::getpwuid(uid);
  }
  KISTE_ASSIGN_OR_RETURN(ResolvedUser ru, resolve_user(user, in.lower_dirs));
  spec.process.uid = ru.uid;
  spec.process.gid = ru.gid;
  spec.process.additional_gids = ru.additional_gids;
  if (keep != nullptr && keep->pw_dir != nullptr && keep->pw_name != nullptr) {
    set_env(env, std::string("HOME=") + keep->pw_dir);
    set_env(env, std::string("USER=") + keep->pw_name);
  }
  if (std::none_of(env.begin(), env.end(), [](const std::string& e) { return e.starts_with("HOME="); })) {
    env.push_back("HOME=" + ru.home);
  }

  std::string cwd = opts.workdir.empty() ? in.image.working_dir : opts.workdir;
  if (cwd.empty()) cwd = "/";
  if (cwd.front() != '/' || cwd.find('\0') != std::string::npos) {
    return failf(Errc::InvalidArgument, "working directory {}: must be absolute", quote(cwd));
  }
  spec.process.cwd = cwd;
  spec.process.terminal = opts.tty;
  spec.process.interactive = opts.interactive;

  for (const auto& u : opts.ulimits) {
    KISTE_ASSIGN_OR_RETURN(Rlimit r, parse_ulimit(u));
    for (const auto& x : spec.process.rlimits) {
      if (x.resource == r.resource) return failf(Errc::InvalidArgument, "ulimit {}: given twice", quote(u));
    }
    spec.process.rlimits.push_back(r);
  }

  // Capabilities (Docker's rules): the 14 defaults; --cap-drop ALL starts from nothing; then the
  // adds; then the named drops.
  uint64_t caps = opts.privileged ? all_capabilities() : kDockerDefaultCaps;
  uint64_t add = 0, drop = 0;
  for (const auto& c : opts.cap_add) {
    KISTE_ASSIGN_OR_RETURN(uint64_t m, parse_capability(c));
    add |= m;
  }
  bool drop_all = false;
  for (const auto& c : opts.cap_drop) {
    KISTE_ASSIGN_OR_RETURN(uint64_t m, parse_capability(c));
    if (m == all_capabilities()) drop_all = true;
    else drop |= m;
  }
  if (drop_all) caps = 0;
  caps = (caps | add) & ~drop;
  spec.process.capabilities = CapabilitySets{
      .bounding = caps, .effective = caps, .permitted = caps, .inheritable = 0, .ambient = 0};

  // Security options.
  if (opts.privileged) spec.seccomp.unconfined = true;
  for (const auto& so : opts.security_opts) {
    std::string_view s = so;
    size_t sep = s.find_first_of("=:");
    std::string_view k = s.substr(0, sep);
    std::string_view v = sep == std::string_view::npos ? std::string_view() : s.substr(sep + 1);
    if (k == "seccomp") {
      if (v == "unconfined") {
        spec.seccomp.unconfined = true;
      } else if (v.empty()) {
        return fail(Errc::InvalidArgument, "security-opt seccomp: needs a profile path or unconfined");
      } else {
        auto text = sys::read_file(std::string(v), 1 << 22);
        if (!text) return std::unexpected(std::move(text).error().with_context("seccomp profile"));
        spec.seccomp.unconfined = false;
        spec.seccomp.profile_json = std::move(*text);
      }
    } else if (k == "no-new-privileges") {
      if (v.empty() || v == "true") spec.process.no_new_privileges = true;
      else if (v == "false") spec.process.no_new_privileges = false;
      else return failf(Errc::InvalidArgument, "security-opt {}: expected true or false", quote(so));
    } else if (k == "apparmor" || k == "label") {
      // No LSM support on this runtime; accepted for compatibility when disabled.
      if (v != "unconfined" && v != "disable") {
        return failf(Errc::Unsupported, "security-opt {}: LSM profiles are not supported", quote(so));
      }
    } else {
      return failf(Errc::InvalidArgument, "security-opt {}: unknown option", quote(so));
    }
  }

  // Resources.
  Resources& r = spec.resources;
  if (!opts.memory.empty()) {
    KISTE_ASSIGN_OR_RETURN(int64_t m, parse_memory_size(opts.memory));
    // Docker refuses this up front; below it the process is OOM-killed as it starts.
    if (m < kMinMemoryLimit) {
      return failf(Errc::InvalidArgument,
                   "memory {}: below the minimum memory limit of 6MB (docker's too)",
                   quote(opts.memory));
    }
    r.memory = m;
  }
  if (!opts.memory_swap.empty()) {
    if (opts.memory_swap == "-1") {
      r.memory_swap = -1;
    } else {
      KISTE_ASSIGN_OR_RETURN(int64_t m, parse_memory_size(opts.memory_swap));
      r.memory_swap = m;
    }
  }
  if (!opts.cpus.empty()) {
    r.cpu_period = 100000;
    KISTE_ASSIGN_OR_RETURN(int64_t q, parse_cpus(opts.cpus, 100000));
    r.cpu_quota = q;
  }
  r.cpu_shares = opts.cpu_shares;
  if (opts.pids_limit) r.pids = *opts.pids_limit <= 0 ? -1 : *opts.pids_limit;
  // Validate now so bad values fail before anything is created.
  KISTE_TRY(CgroupPlan::from_resources(r, CgroupMode::Legacy, opts.privileged));

  // Network.
  if (opts.network == "none" || opts.network.empty()) {
    spec.network = NetworkMode::None;
  } else if (opts.network == "host") {
    spec.network = NetworkMode::Host;
    spec.namespaces.network = false;
  } else if (opts.network == "pasta") {
    spec.network = NetworkMode::Pasta;  // user-mode networking; the caller starts pasta
  } else if (opts.network == "slirp4netns") {
    return fail(Errc::Unsupported, "network `slirp4netns`: kiste's user-mode network is pasta "
                                   "(--network pasta, from Debian's `passt` package)");
  } else if (opts.network.starts_with("container:")) {
    spec.network = NetworkMode::Container;  // the caller finds it and sets namespaces.network_path
    spec.network_name = opts.network.substr(10);
    spec.namespaces.network = false;         // no namespace of its own
    if (spec.network_name.empty()) {
      return fail(Errc::InvalidArgument, "network `container:`: name the container (container:NAME|ID)");
    }
  } else {
    spec.network = NetworkMode::Bridge;  // a bridge network; the caller checks the name
    spec.network_name = opts.network == "bridge" ? "kiste" : opts.network;
  }

  for (const auto& v : opts.volumes) {
    KISTE_ASSIGN_OR_RETURN(MountSpec m, parse_volume(v, in.volumes_dir));
    spec.mounts.push_back(std::move(m));
  }
  for (const auto& v : opts.mounts) {
    KISTE_ASSIGN_OR_RETURN(MountSpec m, parse_mount(v, in.volumes_dir));
    spec.mounts.push_back(std::move(m));
  }
  for (const MountSpec& m : in.mounts) {
    if (m.kind == MountKind::Bind && !m.source.is_absolute()) {
      return failf(Errc::InvalidArgument, "mount {}: bind needs an absolute source",
                   quote(m.destination));
    }
    spec.mounts.push_back(m);
  }
  for (const MountSpec& m : spec.mounts) {
    const bool slave = m.propagation == Propagation::Slave || m.propagation == Propagation::RSlave;
    if (m.idmap && (m.kind != MountKind::Bind || spec.userns.mode == UsernsMode::Host)) {
      return failf(Errc::InvalidArgument, "volume {}: idmap needs a user namespace (--userns)",
                   quote(m.destination));
    }
    if (slave && spec.userns.mode != UsernsMode::Host) {
      // The parent clones bind sources for a user namespace (userns_setup.hpp); a detached clone
      // has no master to receive from.
      return failf(Errc::Unsupported, "volume {}: slave propagation needs --userns=host",
                   quote(m.destination));
    }
  }
  if (opts.init) KISTE_TRY(add_init(spec, in.init_binary));
  if (!opts.privileged) {
    spec.masked_paths = docker_masked_paths();
    spec.readonly_paths = docker_readonly_paths();
  }
  return spec;
}

std::string sys_admin_warning(const ContainerSpec& spec, const std::filesystem::path& lsm_list) {
  if (spec.privileged || (spec.process.capabilities.bounding & (uint64_t{1} << CAP_SYS_ADMIN)) == 0) {
    return {};
  }
  std::string lsms = sys::read_file(lsm_list, 4096).value_or("");
  if (lsms.empty() && lsm_list == "/sys/kernel/security/lsm") {  // securityfs not mounted
    if (sys::read_file("/sys/module/apparmor/parameters/enabled", 16).value_or("").starts_with("Y")) {
      lsms = "apparmor";
    }
    if (::access("/sys/fs/selinux/enforce", F_OK) == 0) lsms += ",selinux";
  }
  for (const char* mac : {"apparmor", "selinux", "smack", "tomoyo"}) {
    if (lsms.find(mac) != std::string::npos) return {};
  }
  return "CAP_SYS_ADMIN is added and no security module (AppArmor, SELinux) confines the "
         "container on this host: it can mount filesystems and use interfaces Docker relies on "
         "AppArmor to block";
}

fs::path default_init_binary() {
  std::error_code ec;
  if (const char* env = std::getenv("KISTE_INIT"); env != nullptr && *env == '/') {
    return fs::is_regular_file(env, ec) ? fs::path(env) : fs::path();
  }
  fs::path self = fs::read_symlink("/proc/self/exe", ec);
  if (ec) return {};
  fs::path dir = self.parent_path();
  for (fs::path p : {dir / "kiste-init", dir.parent_path() / "libexec" / "kiste" / "kiste-init"}) {
    if (fs::is_regular_file(p, ec)) return p;
  }
  return {};
}

}  // namespace kiste::runtime
