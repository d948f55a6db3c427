#include <kiste/runtime/mount_plan.hpp>

#include <sys/mount.h>
#include <sys/sysmacros.h>

#include <algorithm>

namespace kiste::runtime {

namespace fs = std::filesystem;

Result<std::string> normalize_container_path(std::string_view path) {
  if (path.find('\0') != std::string_view::npos) {
    return failf(Errc::InvalidArgument, "container path {}: contains a NUL byte", quote(path));
  }
  if (path.empty() || path.front() != '/') {
    return failf(Errc::InvalidArgument, "container path {}: must be absolute", quote(path));
  }
  std::string out;
  size_t i = 0;
  while (i < path.size()) {
    while (i < path.size() && path[i] == '/') ++i;
    size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    std::string_view comp = path.substr(i, j - i);
    i = j;
    if (comp.empty() || comp == ".") continue;
    if (comp == "..") {
      return failf(Errc::InvalidArgument, "container path {}: `..` would leave the root",
                   quote(path));
    }
    out += '/';
    out += comp;
  }
  if (out.empty()) {
    return failf(Errc::InvalidArgument, "container path {}: cannot mount over the root",
                 quote(path));
  }
  return out;
}

namespace {

constexpr unsigned long kNoSuidExecDev = MS_NOSUID | MS_NOEXEC | MS_NODEV;

MountOp mnt(std::string fstype, std::string source, std::string target, unsigned long flags,
            std::string data) {
  return MountOp{.kind = MountOpKind::Mount,
                 .source = std::move(source),
                 .target = std::move(target),
                 .fstype = std::move(fstype),
                 .flags = flags,
                 .data = std::move(data),
                 .create = CreateKind::Dir};
}

Status check_option_text(std::string_view what, std::string_view s) {
  if (s.find_first_of(std::string_view(",:\0", 3)) != std::string_view::npos) {
    return failf(Errc::InvalidArgument, "{} {}: must not contain `,`, `:` or NUL", what, quote(s));
  }
  return {};
}

// Everything mounted inside the root, in order: kernel filesystems, the cgroup part, the
// runtime's files, the user's mounts, masked and read-only paths.
Status add_container_mounts(MountPlan& plan, const ContainerSpec& spec, const MountPlanContext& ctx) {
  auto& ops = plan.ops;
  // Kernel filesystems, in Docker's order and with Docker's options.
  ops.push_back(mnt("proc", "proc", "/proc", kNoSuidExecDev, ""));
  ops.push_back(mnt("tmpfs", "tmpfs", "/dev", MS_NOSUID | MS_STRICTATIME,
                    "mode=755,size=65536k"));
  struct Dev {
    const char* name;
    unsigned major, minor;
  };
  for (Dev d : {Dev{"null", 1, 3}, Dev{"zero", 1, 5}, Dev{"full", 1, 7}, Dev{"random", 1, 8},
                Dev{"urandom", 1, 9}, Dev{"tty", 5, 0}}) {
    ops.push_back(MountOp{.kind = MountOpKind::Mknod,
                          .target = std::string("/dev/") + d.name,
                          .dev = makedev(d.major, d.minor)});
  }
  for (const DeviceNode& d : spec.devices) {
    KISTE_ASSIGN_OR_RETURN(std::string target, normalize_container_path(d.path));
    if (target == "/dev") return fail(Errc::InvalidArgument, "device node `/dev`: not a device path");
    if (d.mode > 07777) return failf(Errc::InvalidArgument, "device node {}: mode {:o} is not permission bits", quote(target), d.mode);
    ops.push_back(MountOp{.kind = MountOpKind::Mknod,
                          .target = std::move(target),
                          .dev = makedev(d.major, d.minor),
                          .mode = d.mode,
                          .uid = d.uid,
                          .gid = d.gid,
                          .node = d.type});
  }
  ops.push_back(mnt("devpts", "devpts", "/dev/pts", MS_NOSUID | MS_NOEXEC,
                    "newinstance,ptmxmode=0666,mode=0620,gid=5"));
  ops.push_back(MountOp{.kind = MountOpKind::Symlink, .source = "pts/ptmx", .target = "/dev/ptmx"});
  ops.push_back(MountOp{.kind = MountOpKind::Symlink, .source = "/proc/self/fd", .target = "/dev/fd"});
  ops.push_back(MountOp{.kind = MountOpKind::Symlink, .source = "/proc/self/fd/0", .target = "/dev/stdin"});
  ops.push_back(MountOp{.kind = MountOpKind::Symlink, .source = "/proc/self/fd/1", .target = "/dev/stdout"});
  ops.push_back(MountOp{.kind = MountOpKind::Symlink, .source = "/proc/self/fd/2", .target = "/dev/stderr"});
  ops.push_back(mnt("tmpfs", "shm", "/dev/shm", kNoSuidExecDev, "mode=1777,size=65536k"));
  ops.push_back(mnt("mqueue", "mqueue", "/dev/mqueue", kNoSuidExecDev, ""));
  for (const auto& [key, value] : spec.sysctls) {
    if (key.empty() || key.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") !=
                           std::string::npos || key.front() == '.' || key.find("..") != std::string::npos) {
      return failf(Errc::InvalidArgument, "sysctl {}: not a kernel parameter name", quote(key));
    }
    if (value.find('\0') != std::string::npos) {
      return failf(Errc::InvalidArgument, "sysctl {}: the value contains a NUL byte", quote(key));
    }
    std::string path = "/proc/sys/" + key;
    std::replace(path.begin() + 10, path.end(), '.', '/');
    ops.push_back(MountOp{.kind = MountOpKind::WriteFile, .target = path, .data = value});
  }
  const unsigned long sys_ro = spec.privileged ? 0UL : static_cast<unsigned long>(MS_RDONLY);
  if (ctx.userns && !spec.namespaces.network) {
    ops.push_back(MountOp{.kind = MountOpKind::Bind,
                          .source = "/sys",
                          .target = "/sys",
                          .flags = sys_ro,
                          .create = CreateKind::Dir});
  } else {
    ops.push_back(mnt("sysfs", "sysfs", "/sys", kNoSuidExecDev | sys_ro, ""));
  }
  // The cgroup part (join, cgroup namespace, cgroupfs) goes last, so the setup's mounts are not
  // charged to the container (see JoinCgroup); it stays in Docker's place when a user mount lies
  // below /sys/fs/cgroup.
  std::vector<MountOp> cg_ops;
  cg_ops.push_back(MountOp{.kind = MountOpKind::JoinCgroup});
  if (ctx.cgroup_v2) {
    cg_ops.push_back(mnt("cgroup2", "cgroup", "/sys/fs/cgroup", kNoSuidExecDev | sys_ro, ""));
  } else if (!ctx.cgroup_v1.empty()) {
    cg_ops.push_back(mnt("tmpfs", "cgroup", "/sys/fs/cgroup", kNoSuidExecDev, "mode=755"));
    for (const CgroupV1Hierarchy& h : ctx.cgroup_v1) {
      if (h.name.empty() || h.name.find('/') != std::string::npos || h.name == "..") {
        return failf(Errc::InvalidArgument, "cgroup hierarchy name {}: invalid", quote(h.name));
      }
      cg_ops.push_back(mnt("cgroup", "cgroup", "/sys/fs/cgroup/" + h.name, kNoSuidExecDev | sys_ro,
                        h.options));
    }
    if (!spec.privileged) {
      cg_ops.push_back(MountOp{.kind = MountOpKind::RemountReadonly,
                            .target = "/sys/fs/cgroup",
                            .flags = kNoSuidExecDev});
    }
  }

  bool user_below_cgroup = false;
  for (const MountSpec& m : spec.mounts) {
    user_below_cgroup = user_below_cgroup || m.destination.starts_with("/sys/fs/cgroup");
  }
  if (user_below_cgroup) {
    ops.insert(ops.end(), cg_ops.begin(), cg_ops.end());
    cg_ops.clear();
  }

  // Files the runtime provides (/etc/hosts, /etc/hostname, /etc/resolv.conf), when there is no
  // runtime layer for them.
  for (const auto& [path, content] : plan.runtime_layer ? decltype(ctx.runtime_files){} : ctx.runtime_files) {
    KISTE_ASSIGN_OR_RETURN(std::string target, normalize_container_path(path));
    ops.push_back(MountOp{.kind = MountOpKind::RuntimeFile,
                          .target = target,
                          .data = content,
                          .create = CreateKind::File});
  }

  // User volumes, in the order given.
  for (const MountSpec& m : spec.mounts) {
    KISTE_ASSIGN_OR_RETURN(std::string target, normalize_container_path(m.destination));
    if (m.kind == MountKind::Bind) {
      if (!m.source.is_absolute()) {
        return failf(Errc::InvalidArgument, "bind mount source {}: must be absolute",
                     quote(m.source.native()));
      }
      if (m.source.native().find('\0') != std::string::npos) {
        return fail(Errc::InvalidArgument, "bind mount source: contains a NUL byte");
      }
      std::error_code ec;
      auto st = fs::status(m.source, ec);
      if (ec || !fs::exists(st)) {
        return failf(Errc::NotFound, "bind mount source {}: does not exist",
                     quote(m.source.native()));
      }
      unsigned long prop = 0;
      switch (m.propagation) {
        case Propagation::Private: prop = MS_PRIVATE; break;
        case Propagation::RPrivate: prop = MS_PRIVATE | MS_REC; break;
        case Propagation::Slave: prop = MS_SLAVE; break;
        case Propagation::RSlave: prop = MS_SLAVE | MS_REC; break;
      }
      if (prop & MS_SLAVE) plan.root_propagation = MS_SLAVE;
      ops.push_back(MountOp{.kind = MountOpKind::Bind,
                            .source = m.source.native(),
                            .target = target,
                            .flags = (m.readonly ? static_cast<unsigned long>(MS_RDONLY) : 0UL) |
                                     (m.flags & (MS_NOSUID | MS_NODEV | MS_NOEXEC)),
                            .create = fs::is_directory(st) ? CreateKind::Dir : CreateKind::File,
                            .propagation = prop,
                            .idmap = m.idmap});
    } else {
      if (m.tmpfs_options.find('\0') != std::string::npos) {
        return fail(Errc::InvalidArgument, "tmpfs options: contain a NUL byte");
      }
      ops.push_back(mnt("tmpfs", "tmpfs", target,
                        MS_NOSUID | MS_NODEV | m.flags | (m.readonly ? static_cast<unsigned long>(MS_RDONLY) : 0UL), m.tmpfs_options));
    }
  }

  if (!spec.privileged) {
    std::vector<std::string> masked = spec.masked_paths;
    masked.insert(masked.end(), ctx.extra_masked_paths.begin(), ctx.extra_masked_paths.end());
    for (const std::string& p : masked) {
      KISTE_ASSIGN_OR_RETURN(std::string target, normalize_container_path(p));
      ops.push_back(MountOp{.kind = MountOpKind::Mask, .source = "/dev/null", .target = target});
    }
    for (const std::string& p : spec.readonly_paths) {
      KISTE_ASSIGN_OR_RETURN(std::string target, normalize_container_path(p));
      ops.push_back(MountOp{.kind = MountOpKind::ReadonlyPath, .target = target});
    }
  }
  ops.insert(ops.end(), cg_ops.begin(), cg_ops.end());
  return {};
}

}  // namespace

Result<MountPlan> MountPlan::from_spec(const ContainerSpec& spec, const MountPlanContext& ctx) {
  MountPlan plan;
  const RootSpec& root = spec.root;
  if (!root.rootfs.empty()) {
    if (!root.rootfs.is_absolute() || root.rootfs.native().find('\0') != std::string::npos) {
      return failf(Errc::InvalidArgument, "root filesystem {}: must be an absolute path",
                   quote(root.rootfs.native()));
    }
    plan.bind_root = root.rootfs;
    plan.merged_dir = root.rootfs;
    plan.readonly_root = root.readonly;
    KISTE_TRY(add_container_mounts(plan, spec, ctx));
    return plan;
  }
  if (root.lower_dirs.empty()) {
    return fail(Errc::InvalidArgument, "container root: no layer directories");
  }
  if (root.container_dir.empty() || !root.container_dir.is_absolute()) {
    return failf(Errc::InvalidArgument, "container dir {}: must be absolute",
                 quote(root.container_dir.native()));
  }
  const bool by_fd = ctx.upper_fd >= 0 && ctx.work_fd >= 0;
  plan.merged_dir = by_fd ? root.container_dir : root.container_dir / "merged";
  if (by_fd) {
    plan.upper_fd = ctx.upper_fd;
    plan.work_fd = ctx.work_fd;
  }
  plan.readonly_root = root.readonly;

  // overlayfs: the leftmost lowerdir is the top. Layers are given bottom first.
  const size_t n = root.lower_dirs.size();
  bool plain_paths = true;  // no ':', ',' or '\\' that the option syntax would need escaped
  for (size_t i = 0; i < n; ++i) {
    const fs::path& dir = root.lower_dirs[i];
    if (!dir.is_absolute()) {
      return failf(Errc::InvalidArgument, "layer dir {}: must be absolute", quote(dir.native()));
    }
    if (dir.native().find('\0') != std::string::npos) {
      return fail(Errc::InvalidArgument, "layer dir: contains a NUL byte");
    }
    plain_paths = plain_paths && dir.native().find_first_of(":,\\") == std::string::npos;
  }
  const fs::path upper = root.container_dir / "upper";
  const fs::path work = root.container_dir / "work";
  KISTE_TRY(check_option_text("upper dir", upper.native()));
  std::string dirs =
      by_fd ? fmt::format(",upperdir=/proc/self/fd/{},workdir=/proc/self/fd/{}", ctx.upper_fd, ctx.work_fd)
            : ",upperdir=" + upper.native() + ",workdir=" + work.native();
  if (ctx.userxattr) dirs += ",userxattr";
  // The runtime layer, when it can be used (see MountPlanContext::runtime_files).
  const bool etc_ok = ctx.image_etc.kind == ImageEtc::Kind::Directory ||
                      ctx.image_etc.kind == ImageEtc::Kind::Absent;
  if (etc_ok && !ctx.runtime_files.empty() && !root.readonly && !ctx.userns) {
    RuntimeLayer layer;
    if (ctx.image_etc.kind == ImageEtc::Kind::Directory) {
      layer.etc_mode = ctx.image_etc.mode & 07777;
      layer.etc_uid = ctx.image_etc.uid;
      layer.etc_gid = ctx.image_etc.gid;
    }
    for (const auto& [path, content] : ctx.runtime_files) {
      KISTE_ASSIGN_OR_RETURN(std::string target, normalize_container_path(path));
      std::string_view name = target;
      if (!name.starts_with("/etc/") || name.find('/', 5) != std::string_view::npos) {
        layer.files.clear();
        break;
      }
      layer.files.emplace_back(name.substr(5), content);
    }
    if (!layer.files.empty()) plan.runtime_layer = std::move(layer);
  }
  // (The mount point shares the upper dir's checked prefix.)
  const std::string top = plan.runtime_layer ? plan.merged_dir.native() + ":" : std::string();
  std::string lowers;
  for (size_t i = n; i-- > 0;) {
    lowers += root.lower_dirs[i].native();
    if (i != 0) lowers += ':';
  }
  plan.overlay_data = "lowerdir=" + top + lowers + dirs;
  if (!plain_paths || plan.overlay_data.size() + 1 > ctx.page_size) {
    // Too long (many layers) or not expressible: short relative links "0", "1", … instead.
    plan.lower_link_dir = root.container_dir / "lower";
    lowers.clear();
    for (size_t i = n; i-- > 0;) {
      lowers += std::to_string(i);
      if (i != 0) lowers += ':';
    }
    for (size_t i = 0; i < n; ++i) plan.lower_links.emplace_back(std::to_string(i), root.lower_dirs[i]);
    plan.overlay_data = "lowerdir=" + top + lowers + dirs;
  }
  if (root.volatile_upper) {
    plan.overlay_data_plain = plan.overlay_data;
    plan.overlay_data += ",volatile";
  }
  if (plan.overlay_data.size() + 1 > ctx.page_size) {
    return failf(Errc::InvalidArgument,
                 "overlay options for {} layers are {} bytes, more than the kernel's {}", n,
                 plan.overlay_data.size(), ctx.page_size);
  }

  KISTE_TRY(add_container_mounts(plan, spec, ctx));
  return plan;
}

const std::vector<std::string>& docker_masked_paths() {
  static const std::vector<std::string> kPaths = {
      "/proc/acpi",        "/proc/asound",      "/proc/interrupts", "/proc/kcore",
      "/proc/keys",        "/proc/latency_stats", "/proc/sched_debug", "/proc/scsi",
      "/proc/timer_list",  "/proc/timer_stats", "/sys/devices/virtual/powercap",
      "/sys/firmware"};
  return kPaths;
}

const std::vector<std::string>& docker_readonly_paths() {
  static const std::vector<std::string> kPaths = {"/proc/bus", "/proc/fs", "/proc/irq",
                                                  "/proc/sys", "/proc/sysrq-trigger"};
  return kPaths;
}

}  // namespace kiste::runtime
