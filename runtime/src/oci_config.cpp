// config.json -> ContainerSpec. Every accessor checks the JSON type first: a config is hostile
// input, and nlohmann's get<T>() on the wrong type would throw.
#include <kiste/runtime/oci_config.hpp>

#include <sys/capability.h>
#include <sys/mount.h>
#include <sys/resource.h>

#include <algorithm>
#include <cctype>

#include <nlohmann/json.hpp>

#include <kiste/runtime/id_map.hpp>
#include <kiste/runtime/mount_plan.hpp>
#include <kiste/runtime/run_options.hpp>
#include <kiste/runtime/seccomp_profile.hpp>

namespace kiste::runtime::oci {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

constexpr size_t kMaxConfigBytes = 4 << 20;
constexpr size_t kMaxStringBytes = 1 << 16;

Error bad(std::string_view field, std::string_view why) {
  return Error{.code = Errc::InvalidArgument,
               .message = fmt::format("config.json: {}: {}", field, why)};
}
Error unsupported(std::string_view field, std::string_view why) {
  return Error{.code = Errc::Unsupported,
               .message = fmt::format("config.json: {}: {}", field, why)};
}

// A field that must be an object when present (null counts as absent).
Result<const json*> object_at(const json& j, const char* key, std::string_view field) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return nullptr;
  if (!it->is_object()) return std::unexpected(bad(field, "must be an object"));
  return &*it;
}

Result<std::optional<std::string>> string_at(const json& j, const char* key, std::string_view field) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::optional<std::string>();
  if (!it->is_string()) return std::unexpected(bad(field, "must be a string"));
  std::string s = it->get<std::string>();
  if (s.size() > kMaxStringBytes) return std::unexpected(bad(field, "is too long"));
  if (s.find('\0') != std::string::npos) return std::unexpected(bad(field, "contains a NUL byte"));
  return std::optional<std::string>(std::move(s));
}

Result<std::vector<std::string>> strings_at(const json& j, const char* key, std::string_view field) {
  std::vector<std::string> out;
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return out;
  if (!it->is_array()) return std::unexpected(bad(field, "must be an array of strings"));
  for (const json& e : *it) {
    if (!e.is_string()) return std::unexpected(bad(field, "must be an array of strings"));
    std::string s = e.get<std::string>();
    if (s.size() > kMaxStringBytes || s.find('\0') != std::string::npos) {
      return std::unexpected(bad(field, "holds a string that is too long or contains NUL"));
    }
    out.push_back(std::move(s));
  }
  return out;
}

Result<std::optional<bool>> bool_at(const json& j, const char* key, std::string_view field) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::optional<bool>();
  if (!it->is_boolean()) return std::unexpected(bad(field, "must be true or false"));
  return std::optional<bool>(it->get<bool>());
}

Result<std::optional<int64_t>> int_at(const json& j, const char* key, std::string_view field,
                                      int64_t min, int64_t max) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::optional<int64_t>();
  int64_t v = 0;
  if (it->is_number_unsigned()) {
    const uint64_t u = it->get<uint64_t>();
    if (u > static_cast<uint64_t>(max)) return std::unexpected(bad(field, "is out of range"));
    v = static_cast<int64_t>(u);
  } else if (it->is_number_integer()) {
    v = it->get<int64_t>();
  } else {
    return std::unexpected(bad(field, "must be an integer"));
  }
  if (v < min || v > max) return std::unexpected(bad(field, "is out of range"));
  return std::optional<int64_t>(v);
}

Result<uint64_t> capability_mask(const json& caps, const char* set) {
  KISTE_ASSIGN_OR_RETURN(auto names, strings_at(caps, set, fmt::format("process.capabilities.{}", set)));
  uint64_t mask = 0;
  for (const std::string& n : names) {
    if (!n.starts_with("CAP_")) {
      return std::unexpected(bad(fmt::format("process.capabilities.{}", set),
                                 fmt::format("{} is not a capability name", quote(n))));
    }
    auto bit = parse_capability(n);
    if (!bit || std::popcount(*bit) != 1) {
      return std::unexpected(bad(fmt::format("process.capabilities.{}", set),
                                 fmt::format("unknown capability {}", quote(n))));
    }
    mask |= *bit;
  }
  return mask;
}

struct RlimitName {
  const char* name;
  int resource;
};
constexpr RlimitName kRlimits[] = {
    {"RLIMIT_AS", RLIMIT_AS},           {"RLIMIT_CORE", RLIMIT_CORE},
    {"RLIMIT_CPU", RLIMIT_CPU},         {"RLIMIT_DATA", RLIMIT_DATA},
    {"RLIMIT_FSIZE", RLIMIT_FSIZE},     {"RLIMIT_LOCKS", RLIMIT_LOCKS},
    {"RLIMIT_MEMLOCK", RLIMIT_MEMLOCK}, {"RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE},
    {"RLIMIT_NICE", RLIMIT_NICE},       {"RLIMIT_NOFILE", RLIMIT_NOFILE},
    {"RLIMIT_NPROC", RLIMIT_NPROC},     {"RLIMIT_RSS", RLIMIT_RSS},
    {"RLIMIT_RTPRIO", RLIMIT_RTPRIO},   {"RLIMIT_RTTIME", RLIMIT_RTTIME},
    {"RLIMIT_SIGPENDING", RLIMIT_SIGPENDING}, {"RLIMIT_STACK", RLIMIT_STACK},
};

Status parse_process(const json& p, BundleConfig& out) {
  ProcessSpec& proc = out.spec.process;
  KISTE_ASSIGN_OR_RETURN(proc.args, strings_at(p, "args", "process.args"));
  if (proc.args.empty()) return std::unexpected(bad("process.args", "must name a command"));
  if (p.contains("commandLine")) return std::unexpected(unsupported("process.commandLine", "is for Windows"));
  KISTE_ASSIGN_OR_RETURN(proc.env, strings_at(p, "env", "process.env"));
  for (const std::string& e : proc.env) {
    if (e.find('=') == std::string::npos) {
      return std::unexpected(bad("process.env", fmt::format("{} is not KEY=VALUE", quote(e))));
    }
  }
  KISTE_ASSIGN_OR_RETURN(auto cwd, string_at(p, "cwd", "process.cwd"));
  if (!cwd || cwd->empty() || cwd->front() != '/') {
    return std::unexpected(bad("process.cwd", "must be an absolute path"));
  }
  proc.cwd = *cwd;
  KISTE_ASSIGN_OR_RETURN(auto terminal, bool_at(p, "terminal", "process.terminal"));
  proc.terminal = terminal.value_or(false);
  proc.interactive = true;  // the engine's stdio are the container's (runc)
  KISTE_ASSIGN_OR_RETURN(const json* user, object_at(p, "user", "process.user"));
  if (user != nullptr) {
    KISTE_ASSIGN_OR_RETURN(auto uid, int_at(*user, "uid", "process.user.uid", 0, UINT32_MAX - 1));
    KISTE_ASSIGN_OR_RETURN(auto gid, int_at(*user, "gid", "process.user.gid", 0, UINT32_MAX - 1));
    proc.uid = static_cast<uid_t>(uid.value_or(0));
    proc.gid = static_cast<gid_t>(gid.value_or(0));
    if (auto it = user->find("additionalGids"); it != user->end() && !it->is_null()) {
      if (!it->is_array() || it->size() > 65536) {
        return std::unexpected(bad("process.user.additionalGids", "must be an array of ids"));
      }
      for (const json& g : *it) {
        if (!g.is_number_unsigned() || g.get<uint64_t>() >= UINT32_MAX) {
          return std::unexpected(bad("process.user.additionalGids", "must be an array of ids"));
        }
        proc.additional_gids.push_back(static_cast<gid_t>(g.get<uint64_t>()));
      }
    }
    KISTE_ASSIGN_OR_RETURN(auto umask, int_at(*user, "umask", "process.user.umask", 0, 0777));
    if (umask && *umask != 022) {
      return std::unexpected(unsupported("process.user.umask", "only 0022 is supported"));
    }
    KISTE_ASSIGN_OR_RETURN(auto username, string_at(*user, "username", "process.user.username"));
    if (username) return std::unexpected(unsupported("process.user.username", "is for Windows"));
  }
  KISTE_ASSIGN_OR_RETURN(const json* caps, object_at(p, "capabilities", "process.capabilities"));
  if (caps != nullptr) {
    CapabilitySets& c = proc.capabilities;
    KISTE_ASSIGN_OR_RETURN(c.bounding, capability_mask(*caps, "bounding"));
    KISTE_ASSIGN_OR_RETURN(c.effective, capability_mask(*caps, "effective"));
    KISTE_ASSIGN_OR_RETURN(c.permitted, capability_mask(*caps, "permitted"));
    KISTE_ASSIGN_OR_RETURN(c.inheritable, capability_mask(*caps, "inheritable"));
    KISTE_ASSIGN_OR_RETURN(c.ambient, capability_mask(*caps, "ambient"));
  }
  if (auto it = p.find("rlimits"); it != p.end() && !it->is_null()) {
    if (!it->is_array()) return std::unexpected(bad("process.rlimits", "must be an array"));
    for (const json& r : *it) {
      if (!r.is_object()) return std::unexpected(bad("process.rlimits", "entries must be objects"));
      KISTE_ASSIGN_OR_RETURN(auto type, string_at(r, "type", "process.rlimits[].type"));
      const RlimitName* known = nullptr;
      for (const RlimitName& n : kRlimits) {
        if (type && *type == n.name) known = &n;
      }
      if (known == nullptr) {
        return std::unexpected(bad("process.rlimits", fmt::format("unknown type {}", quote(type.value_or("")))));
      }
      for (const Rlimit& have : proc.rlimits) {
        if (have.resource == known->resource) {
          return std::unexpected(bad("process.rlimits", fmt::format("{} is given twice", known->name)));
        }
      }
      for (const char* k : {"hard", "soft"}) {
        auto v = r.find(k);
        if (v == r.end() || !v->is_number_unsigned()) {
          return std::unexpected(bad("process.rlimits", fmt::format("{}: {} must be an unsigned integer", known->name, k)));
        }
      }
      Rlimit lim{.resource = known->resource, .soft = r["soft"].get<uint64_t>(), .hard = r["hard"].get<uint64_t>()};
      if (lim.soft > lim.hard) {
        return std::unexpected(bad("process.rlimits", fmt::format("{}: soft is above hard", known->name)));
      }
      proc.rlimits.push_back(lim);
    }
  }
  KISTE_ASSIGN_OR_RETURN(auto nnp, bool_at(p, "noNewPrivileges", "process.noNewPrivileges"));
  proc.no_new_privileges = nnp.value_or(false);
  KISTE_ASSIGN_OR_RETURN(auto oom, int_at(p, "oomScoreAdj", "process.oomScoreAdj", -1000, 1000));
  if (oom) proc.oom_score_adj = static_cast<int>(*oom);
  for (const char* label : {"apparmorProfile", "selinuxLabel"}) {
    KISTE_ASSIGN_OR_RETURN(auto v, string_at(p, label, fmt::format("process.{}", label)));
    if (v && !v->empty()) {
      out.warnings.push_back(fmt::format("process.{} {} is ignored: kiste applies no LSM labels", label, quote(*v)));
    }
  }
  for (const char* no : {"ioPriority", "scheduler", "execCPUAffinity"}) {
    if (p.contains(no) && !p[no].is_null()) {
      return std::unexpected(unsupported(fmt::format("process.{}", no), "is not supported"));
    }
  }
  return {};
}

// The kernel filesystems kiste's mount plan always makes (Docker's set): a config's entry for
// one of them is that mount, not a second one.
bool is_standard_mount(std::string_view dest, std::string_view type) {
  return (dest == "/proc" && type == "proc") || (dest == "/dev" && type == "tmpfs") ||
         (dest == "/dev/pts" && type == "devpts") || (dest == "/dev/shm" && type == "tmpfs") ||
         (dest == "/dev/mqueue" && type == "mqueue") || (dest == "/sys" && type == "sysfs") ||
         (dest == "/sys/fs/cgroup" && (type == "cgroup" || type == "cgroup2"));
}

Status parse_mount(const json& m, const fs::path& bundle, BundleConfig& out) {
  if (!m.is_object()) return std::unexpected(bad("mounts", "entries must be objects"));
  KISTE_ASSIGN_OR_RETURN(auto dest, string_at(m, "destination", "mounts[].destination"));
  if (!dest || dest->empty()) return std::unexpected(bad("mounts[].destination", "is required"));
  KISTE_ASSIGN_OR_RETURN(std::string target, normalize_container_path(*dest));
  const std::string field = fmt::format("mounts[{}]", quote(target));
  KISTE_ASSIGN_OR_RETURN(auto type, string_at(m, "type", field + ".type"));
  KISTE_ASSIGN_OR_RETURN(auto source, string_at(m, "source", field + ".source"));
  KISTE_ASSIGN_OR_RETURN(auto options, strings_at(m, "options", field + ".options"));
  if (m.contains("uidMappings") || m.contains("gidMappings")) {
    return std::unexpected(unsupported(field, "idmapped mounts are not supported"));
  }
  bool bind = type && *type == "bind";
  for (const std::string& o : options) bind = bind || o == "bind" || o == "rbind";
  if (!bind && type && is_standard_mount(target, *type)) return {};

  MountSpec spec;
  spec.destination = target;
  std::vector<std::string> data;
  for (const std::string& o : options) {
    if (o == "ro") {
      spec.readonly = true;
    } else if (o == "rw" || o == "bind" || o == "rbind" || o == "dev" || o == "suid" || o == "exec" ||
               o == "z" || o == "Z") {
      // defaults (kiste binds recursively; SELinux relabelling has nothing to do without SELinux)
    } else if (o == "nosuid") {
      spec.flags |= MS_NOSUID;
    } else if (o == "nodev") {
      spec.flags |= MS_NODEV;
    } else if (o == "noexec") {
      spec.flags |= MS_NOEXEC;
    } else if (o == "private") {
      spec.propagation = Propagation::Private;
    } else if (o == "rprivate") {
      spec.propagation = Propagation::RPrivate;
    } else if (o == "slave") {
      spec.propagation = Propagation::Slave;
    } else if (o == "rslave") {
      spec.propagation = Propagation::RSlave;
    } else if (!bind && (o == "strictatime" || o == "noatime" || o == "relatime" || o == "nodiratime")) {
      spec.flags |= o == "strictatime" ? MS_STRICTATIME
                  : o == "noatime"     ? MS_NOATIME
                  : o == "relatime"    ? MS_RELATIME
                                       : MS_NODIRATIME;
    } else if (!bind && (o.starts_with("size=") || o.starts_with("mode=") || o.starts_with("uid=") ||
                         o.starts_with("gid=") || o.starts_with("nr_inodes=") || o.starts_with("nr_blocks="))) {
      if (o.find(',') != std::string::npos) {
        return std::unexpected(bad(field, fmt::format("option {} contains a comma", quote(o))));
      }
      data.push_back(o);
    } else {
      return std::unexpected(unsupported(field, fmt::format("mount option {} is not supported", quote(o))));
    }
  }
  if (bind) {
    if (!source || source->empty()) return std::unexpected(bad(field + ".source", "a bind mount needs a source"));
    fs::path src = *source;
    if (src.is_relative()) src = bundle / src;
    spec.kind = MountKind::Bind;
    spec.source = src.lexically_normal();
  } else if (type && *type == "tmpfs") {
    spec.kind = MountKind::Tmpfs;
    for (size_t i = 0; i < data.size(); ++i) spec.tmpfs_options += (i ? "," : "") + data[i];
  } else {
    return std::unexpected(unsupported(field, fmt::format("mount type {} is not supported (bind and tmpfs are)",
                                                          quote(type.value_or("")))));
  }
  out.spec.mounts.push_back(std::move(spec));
  return {};
}

Status parse_namespaces(const json& linux, BundleConfig& out) {
  auto it = linux.find("namespaces");
  if (it == linux.end() || it->is_null()) {
    return std::unexpected(unsupported("linux.namespaces", "a container without namespaces is not supported"));
  }
  if (!it->is_array()) return std::unexpected(bad("linux.namespaces", "must be an array"));
  std::vector<std::string> seen;
  Namespaces& ns = out.spec.namespaces;
  ns.network = ns.cgroup = ns.time = false;
  for (const json& n : *it) {
    if (!n.is_object()) return std::unexpected(bad("linux.namespaces", "entries must be objects"));
    KISTE_ASSIGN_OR_RETURN(auto type, string_at(n, "type", "linux.namespaces[].type"));
    KISTE_ASSIGN_OR_RETURN(auto path, string_at(n, "path", "linux.namespaces[].path"));
    const std::string t = type.value_or("");
    const std::string field = fmt::format("linux.namespaces[{}]", quote(t));
    if (std::find(seen.begin(), seen.end(), t) != seen.end()) {
      return std::unexpected(bad(field, "is given twice"));
    }
    seen.push_back(t);
    if (path && !path->empty() && path->front() != '/') {
      return std::unexpected(bad(field + ".path", "must be absolute"));
    }
    const bool join = path && !path->empty();
    if (t == "network") {
      ns.network = true;
      if (join) ns.network_path = *path;
    } else if (t == "ipc") {
      if (join) ns.ipc_path = *path;
    } else if (t == "uts") {
      if (join) ns.uts_path = *path;
    } else if (t == "cgroup") {
      ns.cgroup = true;
      if (join) ns.cgroup_path = *path;
    } else if (t == "time") {
      if (join) return std::unexpected(unsupported(field, "joining an existing one is not supported"));
      ns.time = true;
    } else if (t == "pid") {
      if (join) ns.pid_path = *path;
    } else if (t == "mount") {
      if (join) ns.mount_path = *path;
    } else if (t == "user") {
      if (join) {
        return std::unexpected(unsupported(field + ".path", "joining an existing user namespace is not supported"));
      }
      out.spec.userns.mode = UsernsMode::Private;  // its maps: linux.uidMappings/gidMappings
    } else {
      return std::unexpected(bad(field, "unknown namespace type"));
    }
  }
  for (const char* required : {"pid", "mount", "ipc", "uts"}) {
    if (std::find(seen.begin(), seen.end(), required) == seen.end()) {
      return std::unexpected(unsupported("linux.namespaces",
                                         fmt::format("sharing the host's {} namespace is not supported", required)));
    }
  }
  return {};
}

Status parse_devices(const json& list, BundleConfig& out) {
  if (!list.is_array()) return std::unexpected(bad("linux.resources.devices", "must be an array"));
  for (const json& d : list) {
    if (!d.is_object()) return std::unexpected(bad("linux.resources.devices", "entries must be objects"));
    KISTE_ASSIGN_OR_RETURN(auto allow, bool_at(d, "allow", "linux.resources.devices[].allow"));
    if (!allow) return std::unexpected(bad("linux.resources.devices[].allow", "is required"));
    KISTE_ASSIGN_OR_RETURN(auto type, string_at(d, "type", "linux.resources.devices[].type"));
    KISTE_ASSIGN_OR_RETURN(auto major, int_at(d, "major", "linux.resources.devices[].major", -1, UINT32_MAX));
    KISTE_ASSIGN_OR_RETURN(auto minor, int_at(d, "minor", "linux.resources.devices[].minor", -1, UINT32_MAX));
    KISTE_ASSIGN_OR_RETURN(auto access, string_at(d, "access", "linux.resources.devices[].access"));
    const std::string t = type.value_or("a");
    if (t != "a" && t != "c" && t != "b") return std::unexpected(bad("linux.resources.devices[].type", "must be a, c or b"));
    const std::string acc = access.value_or("rwm");
    if (acc.empty() || acc.find_first_not_of("rwm") != std::string::npos) {
      return std::unexpected(bad("linux.resources.devices[].access", "must be letters of rwm"));
    }
    if (!*allow) {
      // Everything is denied unless allowed: a deny-all entry (runc spec's first) says nothing
      // new, nor does a deny that no earlier allow overlaps (Docker's `c 10:229` for fuse).
      const auto& allowed = out.spec.resources.device_rules;
      if (t == "a" && !major && !minor && acc.size() == 3) {
        if (allowed.empty()) continue;
      } else {
        const bool overlaps = std::any_of(allowed.begin(), allowed.end(), [&](const DeviceRule& a) {
          auto same = [](int64_t x, std::optional<int64_t> y) { return x == -1 || !y || *y == -1 || x == *y; };
          return (a.type == 'a' || a.type == t[0]) && same(a.major, major) && same(a.minor, minor) &&
                 a.access.find_first_of(acc) != std::string::npos;
        });
        if (!overlaps) continue;
      }
      return std::unexpected(unsupported("linux.resources.devices", "a deny rule that narrows an earlier allow rule is not supported"));
    }
    out.spec.resources.device_rules.push_back(
        DeviceRule{.type = t[0], .major = major.value_or(-1), .minor = minor.value_or(-1), .access = acc});
  }
  return {};
}

// linux.devices: nodes the runtime makes (c, b, u, or p: a fifo, which has no numbers).
Status parse_device_nodes(const json& list, BundleConfig& out) {
  if (!list.is_array()) return std::unexpected(bad("linux.devices", "must be an array"));
  for (const json& d : list) {
    if (!d.is_object()) return std::unexpected(bad("linux.devices", "entries must be objects"));
    KISTE_ASSIGN_OR_RETURN(auto path, string_at(d, "path", "linux.devices[].path"));
    if (!path || path->empty() || path->front() != '/') return std::unexpected(bad("linux.devices[].path", "must be an absolute path"));
    KISTE_ASSIGN_OR_RETURN(auto type, string_at(d, "type", "linux.devices[].type"));
    if (!type || (*type != "c" && *type != "b" && *type != "u" && *type != "p")) {
      return std::unexpected(bad("linux.devices[].type", "must be c, u, b or p"));
    }
    const bool fifo = *type == "p";
    KISTE_ASSIGN_OR_RETURN(auto major, int_at(d, "major", "linux.devices[].major", 0, 4095));
    KISTE_ASSIGN_OR_RETURN(auto minor, int_at(d, "minor", "linux.devices[].minor", 0, (1 << 20) - 1));
    if (!fifo && (!major || !minor)) return std::unexpected(bad("linux.devices[]", "major and minor are required"));
    KISTE_ASSIGN_OR_RETURN(auto mode, int_at(d, "fileMode", "linux.devices[].fileMode", 0, 07777));
    KISTE_ASSIGN_OR_RETURN(auto uid, int_at(d, "uid", "linux.devices[].uid", 0, UINT32_MAX - 1));
    KISTE_ASSIGN_OR_RETURN(auto gid, int_at(d, "gid", "linux.devices[].gid", 0, UINT32_MAX - 1));
    out.spec.devices.push_back(DeviceNode{.path = *path,
                                          .type = fifo ? DeviceType::Fifo
                                                  : *type == "b" ? DeviceType::Block
                                                                 : DeviceType::Char,
                                          .major = fifo ? 0U : static_cast<uint32_t>(*major),
                                          .minor = fifo ? 0U : static_cast<uint32_t>(*minor),
                                          .mode = static_cast<uint32_t>(mode.value_or(0666)),
                                          .uid = static_cast<uint32_t>(uid.value_or(0)),
                                          .gid = static_cast<uint32_t>(gid.value_or(0))});
  }
  return {};
}

Status parse_resources(const json& r, BundleConfig& out) {
  Resources& res = out.spec.resources;
  for (auto it = r.begin(); it != r.end(); ++it) {
    const std::string& key = it.key();
    if (it->is_null()) continue;
    if (key == "devices") {
      KISTE_TRY(parse_devices(*it, out));
    } else if (key == "memory") {
      if (!it->is_object()) return std::unexpected(bad("linux.resources.memory", "must be an object"));
      for (auto m = it->begin(); m != it->end(); ++m) {
        if (m->is_null()) continue;
        const std::string field = "linux.resources.memory." + m.key();
        // 0 is "unset" for these, as runc reads them (docker sends them so)
        const bool zero = m->is_number() && m->get<double>() == 0;
        if (zero && (m.key() == "reservation" || m.key() == "kernel" || m.key() == "kernelTCP")) continue;
        if (m.key() == "limit" || m.key() == "swap") {
          KISTE_ASSIGN_OR_RETURN(auto v, int_at(*it, m.key().c_str(), field, -1, INT64_MAX));
          if (*v == 0) continue;  // unset, as runc reads it
          (m.key() == "limit" ? res.memory : res.memory_swap) = *v;
          if (m.key() == "limit" && *v < 0) res.memory.reset();
        } else if (m.key() == "disableOOMKiller" && m->is_boolean() && !m->get<bool>()) {
        } else {
          return std::unexpected(unsupported(field, "is not supported"));
        }
      }
    } else if (key == "cpu") {
      if (!it->is_object()) return std::unexpected(bad("linux.resources.cpu", "must be an object"));
      for (auto c = it->begin(); c != it->end(); ++c) {
        if (c->is_null()) continue;
        const std::string field = "linux.resources.cpu." + c.key();
        const bool zero = c->is_number() && c->get<double>() == 0;
        if (zero && (c.key() == "realtimeRuntime" || c.key() == "realtimePeriod" || c.key() == "burst")) continue;
        if (c.key() == "shares") {
          KISTE_ASSIGN_OR_RETURN(auto v, int_at(*it, "shares", field, 0, 262144));
          if (*v != 0) res.cpu_shares = static_cast<uint64_t>(*v);
        } else if (c.key() == "quota") {
          KISTE_ASSIGN_OR_RETURN(auto v, int_at(*it, "quota", field, -1, INT64_MAX));
          if (*v > 0) res.cpu_quota = *v;
        } else if (c.key() == "period") {
          KISTE_ASSIGN_OR_RETURN(auto v, int_at(*it, "period", field, 0, 1000000));
          if (*v != 0) res.cpu_period = static_cast<uint64_t>(*v);
        } else if ((c.key() == "cpus" || c.key() == "mems") && c->is_string() && c->get<std::string>().empty()) {
        } else {
          return std::unexpected(unsupported(field, "is not supported"));
        }
      }
    } else if (key == "pids") {
      if (!it->is_object()) return std::unexpected(bad("linux.resources.pids", "must be an object"));
      KISTE_ASSIGN_OR_RETURN(auto v, int_at(*it, "limit", "linux.resources.pids.limit", -1, INT64_MAX));
      if (v && *v != 0) res.pids = *v;
    } else if (key == "blockIO" && it->is_object() && it->size() == 1 && it->contains("weight") &&
               (*it)["weight"].is_number_unsigned() && (*it)["weight"].get<uint64_t>() == 0) {
      // weight 0 is "unset" (docker sends it)
    } else if (key == "blockIO" || key == "hugepageLimits" || key == "network" || key == "rdma" ||
               key == "unified") {
      const bool empty = (it->is_object() || it->is_array()) && it->empty();
      if (!empty) return std::unexpected(unsupported("linux.resources." + key, "is not supported"));
    }
  }
  return {};
}

Status parse_seccomp(const json& s, BundleConfig& out) {
  if (!s.is_object()) return std::unexpected(bad("linux.seccomp", "must be an object"));
  for (const char* no : {"listenerPath", "listenerMetadata"}) {
    if (s.contains(no) && !(s[no].is_string() && s[no].get<std::string>().empty()) && !s[no].is_null()) {
      return std::unexpected(unsupported(fmt::format("linux.seccomp.{}", no), "seccomp notification is not supported"));
    }
  }
  KISTE_ASSIGN_OR_RETURN(auto flags, strings_at(s, "flags", "linux.seccomp.flags"));
  if (!flags.empty()) return std::unexpected(unsupported("linux.seccomp.flags", "filter flags are not supported"));
  json docker = json::object();
  for (const char* k : {"defaultAction", "defaultErrnoRet", "architectures", "syscalls"}) {
    if (s.contains(k) && !s[k].is_null()) docker[k] = s[k];
  }
  const std::string text = docker.dump();
  if (text.find("SCMP_ACT_NOTIFY") != std::string::npos) {
    return std::unexpected(unsupported("linux.seccomp", "SCMP_ACT_NOTIFY (a seccomp agent) is not supported"));
  }
  if (docker.contains("syscalls") && docker["syscalls"].is_array()) {
    for (const json& rule : docker["syscalls"]) {
      if (rule.is_object() && (rule.contains("includes") || rule.contains("excludes"))) {
        return std::unexpected(bad("linux.seccomp.syscalls", "includes/excludes are Docker's, not the runtime-spec's"));
      }
    }
  }
  auto parsed = SeccompProfile::parse(text);
  if (!parsed) return std::unexpected(bad("linux.seccomp", parsed.error().message));
  out.spec.seccomp.unconfined = false;
  out.spec.seccomp.profile_json = text;
  return {};
}

Result<std::vector<IdMapping>> id_mappings_at(const json& linux, const char* key) {
  const std::string field = fmt::format("linux.{}", key);
  std::vector<IdMapping> out;
  auto it = linux.find(key);
  if (it == linux.end() || it->is_null()) return out;
  if (!it->is_array()) return std::unexpected(bad(field, "must be an array"));
  for (const json& m : *it) {
    if (!m.is_object()) return std::unexpected(bad(field, "entries must be objects"));
    IdMapping map;
    for (auto [name, to] : {std::pair{"containerID", &map.container_id}, std::pair{"hostID", &map.host_id},
                            std::pair{"size", &map.size}}) {
      KISTE_ASSIGN_OR_RETURN(auto v, int_at(m, name, fmt::format("{}[].{}", field, name), 0, UINT32_MAX));
      if (!v) return std::unexpected(bad(fmt::format("{}[].{}", field, name), "is required"));
      *to = static_cast<uint32_t>(*v);
    }
    if (map.size == 0) return std::unexpected(bad(field + "[].size", "must be positive"));
    out.push_back(map);
  }
  return out;
}

// A new user namespace (linux.namespaces has `user` without a path) takes its maps from
// linux.uidMappings and linux.gidMappings; maps without it, or it without maps, are refused.
// The runtime writes the maps as root; the root filesystem must already be usable by the mapped
// root (kiste does not chown it, as runc does not).
Status parse_id_mappings(const json& linux, BundleConfig& out) {
  KISTE_ASSIGN_OR_RETURN(auto uids, id_mappings_at(linux, "uidMappings"));
  KISTE_ASSIGN_OR_RETURN(auto gids, id_mappings_at(linux, "gidMappings"));
  UserNamespaceSpec& u = out.spec.userns;
  if (u.mode == UsernsMode::Host) {
    if (!uids.empty() || !gids.empty()) {
      return std::unexpected(bad(uids.empty() ? "linux.gidMappings" : "linux.uidMappings",
                                 "given without a new user namespace (linux.namespaces has no `user`)"));
    }
    return {};
  }
  if (uids.empty() || gids.empty()) {
    return std::unexpected(bad(uids.empty() ? "linux.uidMappings" : "linux.gidMappings",
                               "a new user namespace needs both linux.uidMappings and linux.gidMappings"));
  }
  KISTE_TRY(with_context(validate_id_map(uids, "uidmap"), "config.json: linux.uidMappings"));
  KISTE_TRY(with_context(validate_id_map(gids, "gidmap"), "config.json: linux.gidMappings"));
  u.uid_map = std::move(uids);
  u.gid_map = std::move(gids);
  return {};
}

bool namespaced_sysctl(std::string_view key, bool own_net) {
  for (std::string_view ipc : {"kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem",
                               "kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced"}) {
    if (key == ipc) return true;
  }
  if (key.starts_with("fs.mqueue.")) return true;
  return own_net && key.starts_with("net.");
}

Status parse_linux(const json& linux, BundleConfig& out) {
  KISTE_TRY(parse_namespaces(linux, out));
  KISTE_TRY(parse_id_mappings(linux, out));
  KISTE_ASSIGN_OR_RETURN(auto cg, string_at(linux, "cgroupsPath", "linux.cgroupsPath"));
  out.cgroups_path = cg.value_or("");
  KISTE_ASSIGN_OR_RETURN(const json* res, object_at(linux, "resources", "linux.resources"));
  if (res != nullptr) KISTE_TRY(parse_resources(*res, out));
  if (auto it = linux.find("seccomp"); it != linux.end() && !it->is_null()) {
    KISTE_TRY(parse_seccomp(*it, out));
  }
  KISTE_ASSIGN_OR_RETURN(out.spec.masked_paths, strings_at(linux, "maskedPaths", "linux.maskedPaths"));
  KISTE_ASSIGN_OR_RETURN(out.spec.readonly_paths, strings_at(linux, "readonlyPaths", "linux.readonlyPaths"));
  for (auto* list : {&out.spec.masked_paths, &out.spec.readonly_paths}) {
    for (const std::string& p : *list) KISTE_TRY(normalize_container_path(p));
  }
  KISTE_ASSIGN_OR_RETURN(const json* sysctl, object_at(linux, "sysctl", "linux.sysctl"));
  if (sysctl != nullptr) {
    const bool own_net = out.spec.namespaces.network && out.spec.namespaces.network_path.empty();
    for (auto it = sysctl->begin(); it != sysctl->end(); ++it) {
      if (!it->is_string()) return std::unexpected(bad("linux.sysctl." + it.key(), "must be a string"));
      if (!namespaced_sysctl(it.key(), own_net)) {
        return std::unexpected(bad("linux.sysctl", fmt::format("{} is not namespaced: it would change the host",
                                                               quote(it.key()))));
      }
      out.spec.sysctls.emplace_back(it.key(), it->get<std::string>());
    }
  }
  KISTE_ASSIGN_OR_RETURN(auto prop, string_at(linux, "rootfsPropagation", "linux.rootfsPropagation"));
  if (prop && !prop->empty() && *prop != "private" && *prop != "rprivate") {
    return std::unexpected(unsupported("linux.rootfsPropagation", fmt::format("{} is not supported", quote(*prop))));
  }
  KISTE_ASSIGN_OR_RETURN(auto label, string_at(linux, "mountLabel", "linux.mountLabel"));
  if (label && !label->empty()) out.warnings.push_back("linux.mountLabel is ignored: kiste applies no LSM labels");
  if (auto it = linux.find("devices"); it != linux.end() && !it->is_null()) KISTE_TRY(parse_device_nodes(*it, out));
  for (const char* no : {"intelRdt", "personality", "memoryPolicy", "netDevices"}) {
    if (linux.contains(no) && !linux[no].is_null()) {
      return std::unexpected(unsupported(fmt::format("linux.{}", no), "is not supported"));
    }
  }
  return {};
}

Result<std::vector<Hook>> parse_hook_list(const json& hooks, const char* name) {
  std::vector<Hook> out;
  auto it = hooks.find(name);
  if (it == hooks.end() || it->is_null()) return out;
  const std::string field = fmt::format("hooks.{}", name);
  if (!it->is_array()) return std::unexpected(bad(field, "must be an array"));
  for (const json& h : *it) {
    if (!h.is_object()) return std::unexpected(bad(field, "entries must be objects"));
    Hook hook;
    KISTE_ASSIGN_OR_RETURN(auto path, string_at(h, "path", field + "[].path"));
    if (!path || path->empty() || path->front() != '/') {
      return std::unexpected(bad(field + "[].path", "must be an absolute path"));
    }
    hook.path = *path;
    KISTE_ASSIGN_OR_RETURN(hook.args, strings_at(h, "args", field + "[].args"));
    KISTE_ASSIGN_OR_RETURN(hook.env, strings_at(h, "env", field + "[].env"));
    KISTE_ASSIGN_OR_RETURN(auto timeout, int_at(h, "timeout", field + "[].timeout", 1, 86400));
    if (h.contains("timeout") && !h["timeout"].is_null() && !timeout) {
      return std::unexpected(bad(field + "[].timeout", "must be positive"));
    }
    if (timeout) hook.timeout = static_cast<int>(*timeout);
    out.push_back(std::move(hook));
  }
  return out;
}

Result<Hooks> hooks_from(const json& j) {
  Hooks h;
  KISTE_ASSIGN_OR_RETURN(h.prestart, parse_hook_list(j, "prestart"));
  KISTE_ASSIGN_OR_RETURN(h.create_runtime, parse_hook_list(j, "createRuntime"));
  KISTE_ASSIGN_OR_RETURN(h.create_container, parse_hook_list(j, "createContainer"));
  KISTE_ASSIGN_OR_RETURN(h.start_container, parse_hook_list(j, "startContainer"));
  KISTE_ASSIGN_OR_RETURN(h.poststart, parse_hook_list(j, "poststart"));
  KISTE_ASSIGN_OR_RETURN(h.poststop, parse_hook_list(j, "poststop"));
  return h;
}

json hook_list_json(const std::vector<Hook>& list) {
  json a = json::array();
  for (const Hook& h : list) {
    json o = {{"path", h.path}};
    if (!h.args.empty()) o["args"] = h.args;
    if (!h.env.empty()) o["env"] = h.env;
    if (h.timeout) o["timeout"] = *h.timeout;
    a.push_back(std::move(o));
  }
  return a;
}

}  // namespace

Result<BundleConfig> parse_config(std::string_view text, const fs::path& bundle) {
  if (text.size() > kMaxConfigBytes) return fail(Errc::InvalidArgument, "config.json: larger than 4 MiB");
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded()) return fail(Errc::InvalidArgument, "config.json: not valid JSON");
  if (!j.is_object()) return fail(Errc::InvalidArgument, "config.json: must be a JSON object");
  BundleConfig out;
  KISTE_ASSIGN_OR_RETURN(auto version, string_at(j, "ociVersion", "ociVersion"));
  if (!version || !version->starts_with("1.")) {
    return std::unexpected(bad("ociVersion", fmt::format("{} is not a 1.x runtime-spec version",
                                                          quote(version.value_or("")))));
  }
  out.oci_version = *version;
  // Defaults that differ from `kiste run`'s: the config says everything.
  out.spec.seccomp.unconfined = true;
  out.spec.hostname.clear();

  KISTE_ASSIGN_OR_RETURN(const json* root, object_at(j, "root", "root"));
  if (root == nullptr) return std::unexpected(bad("root", "is required"));
  KISTE_ASSIGN_OR_RETURN(auto root_path, string_at(*root, "path", "root.path"));
  if (!root_path || root_path->empty()) return std::unexpected(bad("root.path", "is required"));
  fs::path rootfs = *root_path;
  if (rootfs.is_relative()) rootfs = bundle / rootfs;
  out.spec.root.rootfs = rootfs.lexically_normal();
  KISTE_ASSIGN_OR_RETURN(auto ro, bool_at(*root, "readonly", "root.readonly"));
  out.spec.root.readonly = ro.value_or(false);

  KISTE_ASSIGN_OR_RETURN(const json* process, object_at(j, "process", "process"));
  if (process == nullptr) return std::unexpected(bad("process", "is required to create a container"));
  KISTE_TRY(parse_process(*process, out));
  KISTE_ASSIGN_OR_RETURN(auto hostname, string_at(j, "hostname", "hostname"));
  if (hostname) {
    if (hostname->size() > 64) return std::unexpected(bad("hostname", "is longer than 64 bytes"));
    out.spec.hostname = *hostname;
  }
  KISTE_ASSIGN_OR_RETURN(auto domain, string_at(j, "domainname", "domainname"));
  if (domain && !domain->empty()) return std::unexpected(unsupported("domainname", "is not supported"));

  KISTE_ASSIGN_OR_RETURN(const json* linux, object_at(j, "linux", "linux"));
  if (linux == nullptr) return std::unexpected(bad("linux", "is required on Linux"));
  KISTE_TRY(parse_linux(*linux, out));
  if (auto it = j.find("mounts"); it != j.end() && !it->is_null()) {
    if (!it->is_array()) return std::unexpected(bad("mounts", "must be an array"));
    for (const json& m : *it) KISTE_TRY(parse_mount(m, bundle, out));
  }
  KISTE_ASSIGN_OR_RETURN(const json* hooks, object_at(j, "hooks", "hooks"));
  if (hooks != nullptr) {
    KISTE_ASSIGN_OR_RETURN(out.hooks, hooks_from(*hooks));
  }
  KISTE_ASSIGN_OR_RETURN(const json* ann, object_at(j, "annotations", "annotations"));
  if (ann != nullptr) {
    for (auto it = ann->begin(); it != ann->end(); ++it) {
      if (!it->is_string()) return std::unexpected(bad("annotations." + it.key(), "must be a string"));
      out.annotations.emplace_back(it.key(), it->get<std::string>());
    }
  }
  return out;
}

Result<Resources> parse_linux_resources(std::string_view text) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return std::unexpected(bad("resources", "must be a JSON object"));
  BundleConfig out;
  if (auto parsed = parse_resources(j, out); !parsed) {
    Error e = std::move(parsed).error();
    if (e.message.starts_with("config.json: ")) e.message.erase(0, std::string_view("config.json: ").size());
    return std::unexpected(std::move(e));
  }
  return std::move(out.spec.resources);
}

std::string hooks_to_json(const Hooks& h) {
  json j = json::object();
  auto put = [&j](const char* name, const std::vector<Hook>& l) {
    if (!l.empty()) j[name] = hook_list_json(l);
  };
  put("prestart", h.prestart);
  put("createRuntime", h.create_runtime);
  put("createContainer", h.create_container);
  put("startContainer", h.start_container);
  put("poststart", h.poststart);
  put("poststop", h.poststop);
  return j.dump();
}

Result<Hooks> parse_hooks(std::string_view text) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return fail(Errc::Corrupt, "hooks: not a JSON object");
  return hooks_from(j);
}

Result<CgroupLocation> cgroup_location(std::string_view path, std::string_view id) {
  auto check_part = [&path](std::string_view part) -> Status {
    if (part.empty() || part == "." || part == ".." || part.find('/') != std::string_view::npos ||
        part.find('\0') != std::string_view::npos) {
      return failf(Errc::InvalidArgument, "config.json: linux.cgroupsPath {}: invalid", quote(path));
    }
    return {};
  };
  if (path.empty()) return CgroupLocation{.parent = "/kiste-runc", .name = std::string(id)};
  if (path.front() != '/' && path.find(':') != std::string_view::npos) {
    // systemd's "slice:prefix:name"
    const size_t a = path.find(':');
    const size_t b = path.find(':', a + 1);
    if (b == std::string_view::npos || path.find(':', b + 1) != std::string_view::npos) {
      return failf(Errc::InvalidArgument, "config.json: linux.cgroupsPath {}: expected slice:prefix:name",
                   quote(path));
    }
    std::string_view slice = path.substr(0, a), prefix = path.substr(a + 1, b - a - 1), name = path.substr(b + 1);
    if (slice.empty()) slice = "system.slice";
    KISTE_ASSIGN_OR_RETURN(std::string slice_dir, slice_path(slice));
    KISTE_TRY(check_part(name));
    std::string unit = name.ends_with(".slice") || name.ends_with(".scope")
                           ? std::string(name)
                           : (prefix.empty() ? std::string(name) : fmt::format("{}-{}", prefix, name)) + ".scope";
    return CgroupLocation{.parent = "/" + slice_dir, .name = unit};
  }
  std::string full = path.front() == '/' ? std::string(path) : "/kiste-runc/" + std::string(path);
  while (full.size() > 1 && full.back() == '/') full.pop_back();
  const size_t slash = full.rfind('/');
  std::string parent = slash == 0 ? "/" : full.substr(0, slash);
  std::string name = full.substr(slash + 1);
  KISTE_TRY(check_part(name));
  std::string_view rest = parent == "/" ? std::string_view() : std::string_view(parent);
  while (!rest.empty()) {
    rest.remove_prefix(1);
    const size_t next = rest.find('/');
    KISTE_TRY(check_part(rest.substr(0, next)));
    rest = next == std::string_view::npos ? std::string_view() : rest.substr(next);
  }
  return CgroupLocation{.parent = parent, .name = name};
}

namespace {

std::vector<std::string> cap_names(uint64_t mask) {
  std::vector<std::string> out;
  for (int c = 0; c < 64; ++c) {
    if (!((mask >> c) & 1)) continue;
    char* n = cap_to_name(static_cast<cap_value_t>(c));
    if (n == nullptr) continue;
    std::string s = n;
    cap_free(n);
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char ch) { return std::toupper(ch); });
    out.push_back(s);
  }
  return out;
}

}  // namespace

std::string default_config_json() {
  const std::vector<std::string> caps = cap_names(kDockerDefaultCaps);
  json mounts = json::array({
      {{"destination", "/proc"}, {"type", "proc"}, {"source", "proc"}, {"options", {"nosuid", "noexec", "nodev"}}},
      {{"destination", "/dev"}, {"type", "tmpfs"}, {"source", "tmpfs"},
       {"options", {"nosuid", "strictatime", "mode=755", "size=65536k"}}},
      {{"destination", "/dev/pts"}, {"type", "devpts"}, {"source", "devpts"},
       {"options", {"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}}},
      {{"destination", "/dev/shm"}, {"type", "tmpfs"}, {"source", "shm"},
       {"options", {"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}}},
      {{"destination", "/dev/mqueue"}, {"type", "mqueue"}, {"source", "mqueue"}, {"options", {"nosuid", "noexec", "nodev"}}},
      {{"destination", "/sys"}, {"type", "sysfs"}, {"source", "sysfs"}, {"options", {"nosuid", "noexec", "nodev", "ro"}}},
      {{"destination", "/sys/fs/cgroup"}, {"type", "cgroup"}, {"source", "cgroup"},
       {"options", {"nosuid", "noexec", "nodev", "relatime", "ro"}}},
  });
  json devices = json::array({{{"allow", false}, {"access", "rwm"}}});
  json config = {
      {"ociVersion", kOciVersion},
      {"process",
       {{"terminal", true},
        {"user", {{"uid", 0}, {"gid", 0}}},
        {"args", {"sh"}},
        {"env", {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"}},
        {"cwd", "/"},
        {"capabilities", {{"bounding", caps}, {"effective", caps}, {"permitted", caps}}},
        {"rlimits", json::array({{{"type", "RLIMIT_NOFILE"}, {"hard", 1024}, {"soft", 1024}}})},
        {"noNewPrivileges", false}}},
      {"root", {{"path", "rootfs"}, {"readonly", false}}},
      {"hostname", "kiste"},
      {"mounts", mounts},
      {"linux",
       {{"resources", {{"devices", devices}}},
        {"namespaces", json::array({{{"type", "pid"}}, {{"type", "network"}}, {{"type", "ipc"}},
                                    {{"type", "uts"}}, {{"type", "mount"}}, {{"type", "cgroup"}}})},
        {"maskedPaths", docker_masked_paths()},
        {"readonlyPaths", docker_readonly_paths()}}},
  };
  return config.dump(2) + "\n";
}

std::string features_json() {
  json f = {
      {"ociVersionMin", "1.0.0"},
      {"ociVersionMax", kOciVersion},
      {"hooks", {"prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"}},
      {"mountOptions", {"ro", "rw", "bind", "rbind", "nosuid", "nodev", "noexec", "suid", "dev", "exec",
                        "private", "rprivate", "slave", "rslave", "strictatime", "noatime", "relatime",
                        "nodiratime"}},
      {"linux",
       {{"namespaces", {"cgroup", "ipc", "mount", "network", "pid", "time", "uts"}},
        {"capabilities", cap_names(all_capabilities())},
        {"cgroup", {{"v1", true}, {"v2", true}, {"systemd", false}, {"systemdUser", false}}},
        {"seccomp",
         {{"enabled", true},
          {"actions", {"SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
                       "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_TRACE", "SCMP_ACT_TRAP"}},
          {"operators", {"SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT",
                         "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"}}}},
        {"apparmor", {{"enabled", false}}},
        {"selinux", {{"enabled", false}}}}},
      {"annotations", {{"org.kiste.runtime", "kiste-runc"}}},
  };
  return f.dump(2) + "\n";
}

}  // namespace kiste::runtime::oci
