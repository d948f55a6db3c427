#pragma once
// The parent's part of a container in its own user namespace (--userns=auto, --uidmap).
//
// Image layers stay owned by host root on disk; the container sees them owned by its own root
// through idmapped mounts (open_tree(OPEN_TREE_CLONE) + mount_setattr(MOUNT_ATTR_IDMAP) with the
// container's user namespace). Only host root may idmap a mount of a host filesystem, so the
// parent builds the whole root: a detached overlay (fsopen/fsmount, nothing appears on the host)
// over the idmapped lowers with an upper dir owned by the mapped root, and hands its fd to the
// child, which attaches it in its own mount namespace. A given root filesystem (an OCI bundle's
// root.path) is sent as a detached clone of its tree instead, owned as the bundle made it. Bind sources are cloned (open_tree) by the
// parent too: the mapped root could not even look them up below kiste's 0700 directories.
//
// Sequence (container.cpp): prepare() before clone (lease, chown, bind clones), clone with
// CLONE_NEWUSER (and without CLONE_NEWNS: the child unshares it once it is in the namespace, so
// the mount namespace belongs to it), start() right after clone (maps, overlay, send).
#include <sys/types.h>

#include <optional>
#include <vector>

#include <kiste/base/error.hpp>
#include <kiste/base/unique_fd.hpp>
#include <kiste/runtime/id_map.hpp>
#include <kiste/runtime/mount_plan.hpp>
#include <kiste/runtime/spec.hpp>

namespace kiste::runtime::detail {

struct UsernsContext {
  std::filesystem::path lock_dir;  // --userns=auto leases live here
  IdRangeSource id_ranges;
};

class UsernsSetup {
 public:
  UsernsSetup() = default;  // no user namespace
  UsernsSetup(UsernsSetup&&) noexcept = default;
  UsernsSetup& operator=(UsernsSetup&&) noexcept = default;

  [[nodiscard]] static Result<UsernsSetup> prepare(const ContainerSpec& spec, const MountPlan& plan,
                                                   const UsernsContext& ctx);
  [[nodiscard]] bool active() const { return active_; }
  // One entry per plan op: a detached clone of a Bind op's source, -1 for every other op.
  [[nodiscard]] const std::vector<int>& op_fds() const { return op_fd_numbers_; }
  // O_PATH fd of <container>/merged: the child's cwd when it unshares its mount namespace.
  [[nodiscard]] int merged_fd() const { return merged_.get(); }
  [[nodiscard]] const std::vector<IdMapping>& uid_map() const { return uid_map_; }
  [[nodiscard]] const std::vector<IdMapping>& gid_map() const { return gid_map_; }

  // After clone: writes the child's maps, builds the overlay on idmapped lowers and sends its fd
  // to the child over `sync_fd`.
  [[nodiscard]] Status start(pid_t pid, int sync_fd);

 private:
  [[nodiscard]] Status send_root(int root_fd, int sync_fd);
  bool active_ = false;
  const ContainerSpec* spec_ = nullptr;
  std::optional<IdRangeLease> lease_;
  std::vector<IdMapping> uid_map_, gid_map_;
  std::vector<UniqueFd> op_fds_;
  std::vector<int> op_fd_numbers_;
  std::vector<int> idmapped_fds_;  // bind clones to idmap once the namespace exists
  // The overlay's lowers, bottom first: the image's (idmapped in start()) or, for keep-id, the
  // copies with moved owners (used as they are).
  std::vector<std::filesystem::path> lowers_;
  bool idmap_lowers_ = true;
  UniqueFd merged_;
};

}  // namespace kiste::runtime::detail
