#include "userns_setup.hpp"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cstring>

#include <kiste/base/sys.hpp>
#include <kiste/base/user_namespace.hpp>

#include "fd_passing.hpp"
#include "shifted_copy.hpp"

namespace kiste::runtime::detail {

namespace fs = std::filesystem;

namespace {

Status write_proc(pid_t pid, const char* file, std::string_view text) {
  fs::path p = fmt::format("/proc/{}/{}", pid, file);
  KISTE_ASSIGN_OR_RETURN(UniqueFd fd, sys::open(p, O_WRONLY | O_CLOEXEC));
  // One write: the kernel takes the whole map at once or not at all.
  if (::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
    return std::unexpected(sys_error("write", p.native()));
  }
  return {};
}

Status chown_to(const fs::path& p, uint32_t uid, uint32_t gid) {
  if (::lchown(p.c_str(), uid, gid) != 0) return std::unexpected(sys_error("chown", p.native()));
  return {};
}

}  // namespace

Result<UsernsSetup> UsernsSetup::prepare(const ContainerSpec& spec, const MountPlan& plan,
                                         const UsernsContext& ctx) {
  UsernsSetup u;
  if (spec.userns.mode == UsernsMode::Host) return u;
  u.active_ = true;
  u.spec_ = &spec;
  if (spec.userns.mode == UsernsMode::Auto) {
    if (ctx.lock_dir.empty()) return fail(Errc::InvalidArgument, "userns auto: no lock directory");
    KISTE_ASSIGN_OR_RETURN(IdRangeLease lease, IdRangeLease::acquire(ctx.lock_dir, ctx.id_ranges));
    u.uid_map_ = lease.uid_map();
    u.gid_map_ = lease.gid_map();
    u.lease_.emplace(std::move(lease));
  } else {
    KISTE_TRY(validate_id_map(spec.userns.uid_map, "uidmap"));
    KISTE_TRY(validate_id_map(spec.userns.gid_map, "gidmap"));
    u.uid_map_ = spec.userns.uid_map;
    u.gid_map_ = spec.userns.gid_map;
  }
  u.lowers_ = spec.root.lower_dirs;
  if (spec.userns.mode == UsernsMode::KeepId) {
    // Rootless: no idmapped mount is possible, so the container sees a copy of each layer whose
    // owners are moved the way its map moves them back (UsernsMode::KeepId). It lives in the
    // container's dir and goes with it.
    const fs::path base = spec.root.container_dir / "keep-id";
    KISTE_TRY(sys::mkdir_all(base, 0700));
    u.lowers_.clear();
    u.idmap_lowers_ = false;
    for (size_t i = 0; i < spec.root.lower_dirs.size(); ++i) {
      const fs::path copy = base / std::to_string(i);
      KISTE_TRY(copy_tree_shifted(spec.root.lower_dirs[i], copy, u.uid_map_, u.gid_map_));
      u.lowers_.push_back(copy);
    }
  }
  // The container's root owns its upper dir (so `/` and everything it creates are its own). A
  // given root filesystem (an OCI bundle's) is the bundle's to make usable by the mapped root.
  auto root_uid = map_to_host(u.uid_map_, 0), root_gid = map_to_host(u.gid_map_, 0);
  if (root_uid && root_gid && spec.root.rootfs.empty()) {
    const fs::path& dir = spec.root.container_dir;
    for (const char* f : {"upper"}) {
      if (::access((dir / f).c_str(), F_OK) == 0) KISTE_TRY(chown_to(dir / f, *root_uid, *root_gid));
    }
  }
  u.op_fd_numbers_.assign(plan.ops.size(), -1);
  for (size_t i = 0; i < plan.ops.size(); ++i) {
    const MountOp& op = plan.ops[i];
    if (op.kind != MountOpKind::Bind) continue;
    int fd = ::open_tree(AT_FDCWD, op.source.c_str(), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
    if (fd < 0) return std::unexpected(sys_error("open_tree", op.source));
    u.op_fds_.emplace_back(fd);
    u.op_fd_numbers_[i] = fd;
    if (op.idmap) u.idmapped_fds_.push_back(fd);
  }
  KISTE_ASSIGN_OR_RETURN(u.merged_, sys::open(plan.merged_dir, O_PATH | O_DIRECTORY | O_CLOEXEC));
  return u;
}

Status UsernsSetup::start(pid_t pid, int sync_fd) {
  if (!active_) return {};
  KISTE_TRY(write_proc(pid, "uid_map", format_id_map(uid_map_)));
  KISTE_TRY(write_proc(pid, "gid_map", format_id_map(gid_map_)));
  KISTE_ASSIGN_OR_RETURN(UniqueFd userns, sys::open(fmt::format("/proc/{}/ns/user", pid), O_RDONLY | O_CLOEXEC));

  // `:idmap` volumes: the clones the child inherited are the same mounts, still detached.
  for (int fd : idmapped_fds_) {
    struct mount_attr attr {};
    attr.attr_set = MOUNT_ATTR_IDMAP;
    attr.userns_fd = static_cast<uint64_t>(userns.get());
    if (::mount_setattr(fd, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof attr) != 0) {
      return std::unexpected(sys_error("idmap the volume", sys::fd_path(fd).value_or("?")));
    }
  }
  const RootSpec& root = spec_->root;
  if (!root.rootfs.empty()) {
    // A given root filesystem: a detached clone of its tree, attached by the child like the
    // overlay below (its owners are as the bundle made them).
    UniqueFd tree(::open_tree(AT_FDCWD, root.rootfs.c_str(), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE));
    if (!tree) return std::unexpected(sys_error("open_tree", root.rootfs.native()));
    // A clone of a shared mount (systemd makes / shared) is the original's peer: private, so
    // nothing the container mounts on it reaches the host, and pivot_root takes it.
    struct mount_attr priv {};
    priv.propagation = MS_PRIVATE;
    if (::mount_setattr(tree.get(), "", AT_EMPTY_PATH | AT_RECURSIVE, &priv, sizeof priv) != 0) {
      return std::unexpected(sys_error("make private", root.rootfs.native()));
    }
    return send_root(tree.get(), sync_fd);
  }
  // Idmapped lowers (or keep-id's copies as they are), top first (overlayfs' order).
  std::vector<UniqueFd> lowers;
  for (auto it = lowers_.rbegin(); it != lowers_.rend(); ++it) {
    UniqueFd fd(::open_tree(AT_FDCWD, it->c_str(), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC));
    if (!fd) return std::unexpected(sys_error("open_tree", it->native()));
    if (!idmap_lowers_) {
      lowers.push_back(std::move(fd));
      continue;
    }
    struct mount_attr attr {};
    attr.attr_set = MOUNT_ATTR_IDMAP;
    attr.userns_fd = static_cast<uint64_t>(userns.get());
    if (::mount_setattr(fd.get(), "", AT_EMPTY_PATH, &attr, sizeof attr) != 0) {
      return std::unexpected(sys_error("idmap the layer", it->native()));
    }
    lowers.push_back(std::move(fd));
  }
  UniqueFd fsfd(::fsopen("overlay", FSOPEN_CLOEXEC));
  if (!fsfd) return std::unexpected(sys_error("fsopen", "overlay"));
  for (const UniqueFd& l : lowers) {
    if (::fsconfig(fsfd.get(), FSCONFIG_SET_FD, "lowerdir+", nullptr, l.get()) != 0) {
      // Kernels before 6.13 take layers by path only: name the fd through /proc.
      std::string p = fmt::format("/proc/self/fd/{}", l.get());
      if (::fsconfig(fsfd.get(), FSCONFIG_SET_STRING, "lowerdir+", p.c_str(), 0) != 0) {
        return std::unexpected(sys_error("overlay lowerdir+", p));
      }
    }
  }
  const fs::path upper = root.container_dir / "upper", work = root.container_dir / "work";
  if (::fsconfig(fsfd.get(), FSCONFIG_SET_STRING, "upperdir", upper.c_str(), 0) != 0) {
    return std::unexpected(sys_error("overlay upperdir", upper.native()));
  }
  if (::fsconfig(fsfd.get(), FSCONFIG_SET_STRING, "workdir", work.c_str(), 0) != 0) {
    return std::unexpected(sys_error("overlay workdir", work.native()));
  }
  // Rootless kiste: overlay keeps its state in user.overlay.* xattrs (as the snapshots do).
  if (!sys::in_initial_user_namespace() &&
      ::fsconfig(fsfd.get(), FSCONFIG_SET_FLAG, "userxattr", nullptr, 0) != 0) {
    return std::unexpected(sys_error("overlay userxattr", root.container_dir.native()));
  }
  if (root.volatile_upper) {  // see RootSpec; a kernel without it (< 5.10) goes on without
    (void)::fsconfig(fsfd.get(), FSCONFIG_SET_FLAG, "volatile", nullptr, 0);
  }
  if (::fsconfig(fsfd.get(), FSCONFIG_CMD_CREATE, nullptr, nullptr, 0) != 0) {
    return std::unexpected(sys_error("create the overlay root", root.container_dir.native()));
  }
  // --read-only: the child remounts it once the mount points are made.
  UniqueFd mnt(::fsmount(fsfd.get(), FSMOUNT_CLOEXEC, 0));
  if (!mnt) return std::unexpected(sys_error("fsmount", "the overlay root"));
  return send_root(mnt.get(), sync_fd);
}

Status UsernsSetup::send_root(int root_fd, int sync_fd) {
  if (!send_fds(sync_fd, 'U', &root_fd, 1)) {
    return std::unexpected(sys_error("send", "the root to the container"));
  }
  // The child has its own copies of these; the waiting runtime keeps nothing of the host open.
  op_fds_.clear();
  idmapped_fds_.clear();
  merged_.reset();
  return {};
}

}  // namespace kiste::runtime::detail
