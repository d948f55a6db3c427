#include "shifted_copy.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <map>
#include <string>
#include <utility>

#include <kiste/base/sys.hpp>
#include <kiste/base/unique_fd.hpp>
#include <kiste/runtime/id_map.hpp>

namespace kiste::runtime::detail {

namespace fs = std::filesystem;

namespace {

class ShiftedCopy {
 public:
  ShiftedCopy(const std::vector<IdMapping>& uids, const std::vector<IdMapping>& gids, int dst_root)
      : uids_(uids), gids_(gids), dst_root_(dst_root) {}

  // Copies the children of `src_dir` into `dst_dir`; `rel` names them (for links and errors).
  Status copy_dir(int src_dir, int dst_dir, const std::string& rel) {
    KISTE_ASSIGN_OR_RETURN(UniqueFd listing, sys::openat(src_dir, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    DIR* d = ::fdopendir(listing.get());
    if (d == nullptr) return std::unexpected(sys_error("opendir", rel));
    (void)listing.release();
    std::unique_ptr<DIR, int (*)(DIR*)> guard(d, ::closedir);
    while (struct dirent* e = ::readdir(d)) {
      const std::string name = e->d_name;
      if (name == "." || name == "..") continue;
      KISTE_TRY(copy_entry(src_dir, dst_dir, name, rel.empty() ? name : rel + "/" + name));
    }
    return {};
  }

 private:
  Status copy_entry(int src_dir, int dst_dir, const std::string& name, const std::string& rel) {
    struct stat st {};
    if (::fstatat(src_dir, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      return std::unexpected(sys_error("stat", rel));
    }
    const uid_t uid = map_to_host(uids_, st.st_uid).value_or(st.st_uid);
    const gid_t gid = map_to_host(gids_, st.st_gid).value_or(st.st_gid);
    if (!S_ISDIR(st.st_mode) && st.st_nlink > 1) {
      auto [it, first] = links_.try_emplace({st.st_dev, st.st_ino}, rel);
      if (!first) {
        if (::linkat(dst_root_, it->second.c_str(), dst_dir, name.c_str(), 0) != 0) {
          return std::unexpected(sys_error("link", rel));
        }
        return {};
      }
    }
    const mode_t perm = st.st_mode & 07777;
    switch (st.st_mode & S_IFMT) {
      case S_IFDIR: {
        if (::mkdirat(dst_dir, name.c_str(), 0700) != 0) return std::unexpected(sys_error("mkdir", rel));
        KISTE_ASSIGN_OR_RETURN(UniqueFd s, sys::openat(src_dir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        KISTE_ASSIGN_OR_RETURN(UniqueFd d, sys::openat(dst_dir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        KISTE_TRY(copy_dir(s.get(), d.get(), rel));
        KISTE_TRY(copy_xattrs(s.get(), d.get(), rel));
        return finish(d.get(), uid, gid, perm, st, rel);
      }
      case S_IFREG: {
        KISTE_ASSIGN_OR_RETURN(UniqueFd s, sys::openat(src_dir, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
        const int fd = ::openat(dst_dir, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0) return std::unexpected(sys_error("create", rel));
        UniqueFd d(fd);
        KISTE_TRY(copy_data(s.get(), d.get(), st.st_size, rel));
        KISTE_TRY(copy_xattrs(s.get(), d.get(), rel));
        return finish(d.get(), uid, gid, perm, st, rel);
      }
      case S_IFLNK: {
        std::string target(static_cast<size_t>(st.st_size) + 1, '\0');
        ssize_t n = ::readlinkat(src_dir, name.c_str(), target.data(), target.size());
        if (n < 0 || static_cast<size_t>(n) >= target.size()) return std::unexpected(sys_error("readlink", rel));
        target.resize(static_cast<size_t>(n));
        if (::symlinkat(target.c_str(), dst_dir, name.c_str()) != 0) return std::unexpected(sys_error("symlink", rel));
        if (::fchownat(dst_dir, name.c_str(), uid, gid, AT_SYMLINK_NOFOLLOW) != 0) {
          return std::unexpected(sys_error("chown", rel));
        }
        const struct timespec times[2] = {st.st_atim, st.st_mtim};
        (void)::utimensat(dst_dir, name.c_str(), times, AT_SYMLINK_NOFOLLOW);
        return {};
      }
      case S_IFCHR:
      case S_IFIFO: {
        const bool whiteout = S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0);
        if (S_ISCHR(st.st_mode) && !whiteout) break;
        if (::mknodat(dst_dir, name.c_str(), (st.st_mode & S_IFMT) | 0600, st.st_rdev) != 0) {
          return std::unexpected(sys_error("mknod", rel));
        }
        if (::fchownat(dst_dir, name.c_str(), uid, gid, AT_SYMLINK_NOFOLLOW) != 0 ||
            ::fchmodat(dst_dir, name.c_str(), perm, 0) != 0) {
          return std::unexpected(sys_error("chown", rel));
        }
        return {};
      }
      default:
        break;
    }
    return failf(Errc::Unsupported, "copy {}: a device node or socket in a layer", quote(rel));
  }

  static Status copy_data(int from, int to, off_t size, const std::string& rel) {
    off_t left = size;
    while (left > 0) {
      ssize_t n = ::copy_file_range(from, nullptr, to, nullptr, static_cast<size_t>(left), 0);
      if (n < 0 && (errno == EXDEV || errno == ENOSYS || errno == EINVAL)) {
        char buf[1 << 16];
        n = ::read(from, buf, sizeof buf);
        if (n > 0 && ::write(to, buf, static_cast<size_t>(n)) != n) n = -1;
      }
      if (n < 0) return std::unexpected(sys_error("copy", rel));
      if (n == 0) break;
      left -= n;
    }
    return {};
  }

  // The overlay's own xattrs (opaque dirs, whiteouts) must come along; the rest (file
  // capabilities, which the kernel ties to a namespace's root) is best effort.
  static Status copy_xattrs(int from, int to, const std::string& rel) {
    char names[1 << 16];
    ssize_t len = ::flistxattr(from, names, sizeof names);
    if (len <= 0) return {};
    for (ssize_t at = 0; at < len;) {
      const std::string name(names + at);
      at += static_cast<ssize_t>(name.size()) + 1;
      std::string value(1 << 16, '\0');
      ssize_t n = ::fgetxattr(from, name.c_str(), value.data(), value.size());
      if (n < 0) continue;
      if (::fsetxattr(to, name.c_str(), value.data(), static_cast<size_t>(n), 0) != 0 &&
          name.starts_with("user.overlay.")) {
        return std::unexpected(sys_error("set xattr " + name, rel));
      }
    }
    return {};
  }

  // Owner, then mode (chown clears set-id bits), then times.
  static Status finish(int fd, uid_t uid, gid_t gid, mode_t perm, const struct stat& st,
                       const std::string& rel) {
    if (::fchown(fd, uid, gid) != 0) return std::unexpected(sys_error("chown", rel));
    if (::fchmod(fd, perm) != 0) return std::unexpected(sys_error("chmod", rel));
    const struct timespec times[2] = {st.st_atim, st.st_mtim};
    (void)::futimens(fd, times);
    return {};
  }

  const std::vector<IdMapping>& uids_;
  const std::vector<IdMapping>& gids_;
  int dst_root_;
  std::map<std::pair<dev_t, ino_t>, std::string> links_;  // first copy of each hard-linked inode
};

}  // namespace

Status copy_tree_shifted(const fs::path& src, const fs::path& dst, const std::vector<IdMapping>& uid_map,
                         const std::vector<IdMapping>& gid_map) {
  KISTE_ASSIGN_OR_RETURN(UniqueFd s, sys::open(src, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  struct stat st {};
  if (::fstat(s.get(), &st) != 0) return std::unexpected(sys_error("stat", src.native()));
  if (::mkdir(dst.c_str(), 0700) != 0) return std::unexpected(sys_error("mkdir", dst.native()));
  KISTE_ASSIGN_OR_RETURN(UniqueFd d, sys::open(dst, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  ShiftedCopy copy(uid_map, gid_map, d.get());
  KISTE_TRY(with_context(copy.copy_dir(s.get(), d.get(), ""), fmt::format("copy layer {}", quote(src.native()))));
  const uid_t uid = map_to_host(uid_map, st.st_uid).value_or(st.st_uid);
  const gid_t gid = map_to_host(gid_map, st.st_gid).value_or(st.st_gid);
  if (::fchown(d.get(), uid, gid) != 0 || ::fchmod(d.get(), st.st_mode & 07777) != 0) {
    return std::unexpected(sys_error("chown", dst.native()));
  }
  return {};
}

}  // namespace kiste::runtime::detail
