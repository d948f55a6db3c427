#include <kiste/base/sys.hpp>
#include <kiste/base/user_namespace.hpp>

#include <fcntl.h>
#include <signal.h>
#include <linux/openat2.h>
#include <sys/mount.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <sstream>
#include <vector>

#include <dirent.h>

#include <fmt/format.h>

namespace kiste::sys {

namespace fs = std::filesystem;

Result<UniqueFd> open(const fs::path& path, int flags, mode_t mode) {
  int fd = ::open(path.c_str(), flags | O_CLOEXEC, mode);
  if (fd < 0) return std::unexpected(sys_error("open", path.native()));
  return UniqueFd(fd);
}

Result<UniqueFd> openat(int dirfd, const fs::path& path, int flags, mode_t mode) {
  int fd = ::openat(dirfd, path.c_str(), flags | O_CLOEXEC, mode);
  if (fd < 0) return std::unexpected(sys_error("open", path.native()));
  return UniqueFd(fd);
}

namespace {

std::atomic<bool> g_openat2_disabled{false};

// Userspace RESOLVE_IN_ROOT: resolve `path` against `rootfd` component by component, following
// symlinks inside the root only, then open each directory step with O_NOFOLLOW so a component
// swapped for a symlink after resolution makes the open fail instead of escaping.
Result<UniqueFd> open_in_root_fallback(int rootfd, std::string_view path, int flags,
                                       mode_t mode) {
  std::vector<std::string> resolved;  // components below the root, no symlinks, no ".."
  std::vector<std::string> pending;   // still to walk, in reverse order (back() is next)
  auto push_path = [&pending](std::string_view p) {
    std::vector<std::string> parts;
    size_t i = 0;
    while (i <= p.size()) {
      size_t j = p.find('/', i);
      if (j == std::string_view::npos) j = p.size();
      if (j > i) parts.emplace_back(p.substr(i, j - i));
      i = j + 1;
    }
    for (auto it = parts.rbegin(); it != parts.rend(); ++it) pending.push_back(std::move(*it));
  };
  push_path(path);
  int links = 0;
  while (!pending.empty()) {
    std::string comp = std::move(pending.back());
    pending.pop_back();
    if (comp == ".") continue;
    if (comp == "..") {
      if (!resolved.empty()) resolved.pop_back();
      continue;
    }
    // Is resolved/comp a symlink? Only the last component may be missing.
    std::string rel;
    for (const auto& r : resolved) rel += r + "/";
    rel += comp;
    struct stat st {};
    if (::fstatat(rootfd, rel.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode)) {
      bool last = pending.empty();
      if (last && (flags & O_NOFOLLOW)) {
        resolved.push_back(std::move(comp));
        break;  // the final open fails with ELOOP, as openat2 would
      }
      if (++links > 40) return std::unexpected(sys_error_code(ELOOP, "open", path));
      KISTE_ASSIGN_OR_RETURN(std::string target, readlinkat(rootfd, rel));
      if (!target.empty() && target[0] == '/') resolved.clear();
      push_path(target);
      continue;
    }
    resolved.push_back(std::move(comp));
  }
  // Walk the directories with O_NOFOLLOW, then open the leaf relative to its parent.
  UniqueFd cur;
  int curfd = rootfd;
  for (size_t i = 0; i + 1 < resolved.size(); ++i) {
    int fd = ::openat(curfd, resolved[i].c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return std::unexpected(sys_error("open", path));
    cur.reset(fd);
    curfd = fd;
  }
  const char* leaf = resolved.empty() ? "." : resolved.back().c_str();
  int fd = ::openat(curfd, leaf, flags | O_NOFOLLOW | O_CLOEXEC, mode);
  if (fd < 0) return std::unexpected(sys_error("open", path));
  return UniqueFd(fd);
}

}  // namespace

void set_openat2_disabled(bool disabled) { g_openat2_disabled.store(disabled); }

Result<UniqueFd> open_in_root(int dirfd, std::string_view path, int flags, mode_t mode) {
  if (path.find('\0') != std::string_view::npos) {
    return fail(Errc::InvalidArgument, fmt::format("open {}: path contains NUL", quote(path)));
  }
  if (!g_openat2_disabled.load(std::memory_order_relaxed)) {
    struct open_how how {};
    how.flags = static_cast<uint64_t>(flags | O_CLOEXEC);
    how.mode = (flags & (O_CREAT | O_TMPFILE)) ? mode : 0;
    how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
    std::string p(path.empty() ? "." : path);
    for (;;) {
      long fd = ::syscall(SYS_openat2, dirfd, p.c_str(), &how, sizeof(how));
      if (fd >= 0) return UniqueFd(static_cast<int>(fd));
      if (errno == EAGAIN || errno == EINTR) continue;  // rename race inside the root: retry
      if (errno == ENOSYS || errno == EPERM) break;     // no openat2 (or a seccomp filter denies it)
      return std::unexpected(sys_error("open", path));
    }
  }
  return open_in_root_fallback(dirfd, path, flags, mode);
}

namespace {

// `fd` was opened O_NONBLOCK: refuse anything but a regular file, then read blocking again.
Result<UniqueFd> keep_regular(UniqueFd fd, std::string_view path) {
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return std::unexpected(sys_error("stat", path));
  if (!S_ISREG(st.st_mode)) {
    const char* kind = S_ISFIFO(st.st_mode)  ? "a FIFO"
                       : S_ISCHR(st.st_mode) ? "a character device"
                       : S_ISBLK(st.st_mode) ? "a block device"
                       : S_ISSOCK(st.st_mode) ? "a socket"
                       : S_ISDIR(st.st_mode) ? "a directory"
                                             : "not a regular file";
    return failf(Errc::InvalidArgument, "open {}: {}, not a regular file", quote(path), kind);
  }
  int fl = ::fcntl(fd.get(), F_GETFL);
  if (fl < 0 || ::fcntl(fd.get(), F_SETFL, fl & ~O_NONBLOCK) != 0) {
    return std::unexpected(sys_error("fcntl", path));
  }
  return fd;
}

constexpr int kReadUntrusted = O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC;

}  // namespace

Result<UniqueFd> open_regular_in_root(int dirfd, std::string_view path, LastLink last) {
  auto fd = open_in_root(dirfd, path, kReadUntrusted | (last == LastLink::Refuse ? O_NOFOLLOW : 0));
  if (!fd && fd.error().sys_errno == ELOOP) {
    return failf(Errc::InvalidArgument, "open {}: a symlink, not a regular file", quote(path));
  }
  if (!fd) return std::unexpected(std::move(fd).error());
  return keep_regular(std::move(*fd), path);
}

Result<UniqueFd> open_regular(const fs::path& path) {
  KISTE_ASSIGN_OR_RETURN(UniqueFd fd, open(path, kReadUntrusted));
  return keep_regular(std::move(fd), path.native());
}

Result<struct stat> fstat(int fd, std::string_view what) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return std::unexpected(sys_error("stat", what));
  return st;
}

Result<struct stat> fstatat(int dirfd, const fs::path& path, int flags) {
  struct stat st {};
  if (::fstatat(dirfd, path.c_str(), &st, flags) != 0) {
    return std::unexpected(sys_error("stat", path.native()));
  }
  return st;
}

Result<struct stat> lstat(const fs::path& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return std::unexpected(sys_error("stat", path.native()));
  return st;
}

Result<struct statfs> statfs(const fs::path& path) {
  struct statfs st {};
  if (::statfs(path.c_str(), &st) != 0) return std::unexpected(sys_error("statfs", path.native()));
  return st;
}

Result<struct statfs> fstatfs(int fd, std::string_view what) {
  struct statfs st {};
  if (::fstatfs(fd, &st) != 0) return std::unexpected(sys_error("statfs", what));
  return st;
}

Status mkdir(const fs::path& path, mode_t mode) {
  if (::mkdir(path.c_str(), mode) != 0) return std::unexpected(sys_error("mkdir", path.native()));
  return {};
}

Status mkdir_all(const fs::path& path, mode_t mode) {
  if (path.empty()) return {};
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) return {};
    return std::unexpected(sys_error_code(ENOTDIR, "mkdir", path.native()));
  }
  if (errno != ENOENT) return std::unexpected(sys_error("stat", path.native()));
  fs::path parent = path.parent_path();
  if (!parent.empty() && parent != path) KISTE_TRY(mkdir_all(parent, mode));
  // Every component made here gets `mode` (narrowed by the umask only): a parent made on the way
  // to a private directory must not be wider than the directory itself.
  if (::mkdir(path.c_str(), mode) != 0 && errno != EEXIST) {
    return std::unexpected(sys_error("mkdir", path.native()));
  }
  return {};
}

Status restrict_dir(const fs::path& path, mode_t mode) {
  if (::mkdir(path.c_str(), mode) == 0) return {};
  if (errno != EEXIST) return std::unexpected(sys_error("mkdir", path.native()));
  KISTE_ASSIGN_OR_RETURN(UniqueFd fd, open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
  KISTE_ASSIGN_OR_RETURN(struct stat st, fstat(fd.get(), path.native()));
  if ((st.st_mode & 07777 & ~mode) != 0 && ::fchmod(fd.get(), st.st_mode & mode & 07777) != 0) {
    return std::unexpected(sys_error("chmod", path.native()));
  }
  return {};
}

Status mkdirat(int dirfd, const fs::path& path, mode_t mode) {
  if (::mkdirat(dirfd, path.c_str(), mode) != 0) {
    return std::unexpected(sys_error("mkdir", path.native()));
  }
  return {};
}

Status rename(const fs::path& from, const fs::path& to) {
  if (::rename(from.c_str(), to.c_str()) != 0) {
    return std::unexpected(sys_error("rename", from.native() + "` to `" + to.native()));
  }
  return {};
}

Status renameat(int olddirfd, const fs::path& from, int newdirfd, const fs::path& to,
                unsigned flags) {
  if (::renameat2(olddirfd, from.c_str(), newdirfd, to.c_str(), flags) != 0) {
    return std::unexpected(sys_error("rename", from.native() + "` to `" + to.native()));
  }
  return {};
}

Status unlink(const fs::path& path) {
  if (::unlink(path.c_str()) != 0) return std::unexpected(sys_error("unlink", path.native()));
  return {};
}

Status unlinkat(int dirfd, const fs::path& path, int flags) {
  if (::unlinkat(dirfd, path.c_str(), flags) != 0) {
    return std::unexpected(sys_error("unlink", path.native()));
  }
  return {};
}

Status fsync(int fd, std::string_view what) {
  if (::fsync(fd) != 0) return std::unexpected(sys_error("fsync", what));
  return {};
}

Status fsync_dir(const fs::path& dir) {
  KISTE_ASSIGN_OR_RETURN(UniqueFd fd, open(dir, O_RDONLY | O_DIRECTORY));
  return fsync(fd.get(), dir.native());
}

Status ftruncate(int fd, off_t size, std::string_view what) {
  if (::ftruncate(fd, size) != 0) return std::unexpected(sys_error("truncate", what));
  return {};
}

Result<std::string> readlinkat(int dirfd, const fs::path& path) {
  std::string buf(256, '\0');
  for (;;) {
    ssize_t n = ::readlinkat(dirfd, path.c_str(), buf.data(), buf.size());
    if (n < 0) return std::unexpected(sys_error("readlink", path.native()));
    if (static_cast<size_t>(n) < buf.size()) {
      buf.resize(static_cast<size_t>(n));
      return buf;
    }
    buf.resize(buf.size() * 2);
  }
}

Result<std::string> fd_path(int fd) {
  return readlinkat(AT_FDCWD, "/proc/self/fd/" + std::to_string(fd));
}

Result<std::vector<std::string>> list_dir(int dirfd, std::string_view what) {
  int fd = ::openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return std::unexpected(sys_error("open", what));
  DIR* d = ::fdopendir(fd);
  if (d == nullptr) {
    Error e = sys_error("opendir", what);
    ::close(fd);
    return std::unexpected(std::move(e));
  }
  std::vector<std::string> names;
  errno = 0;
  while (struct dirent* e = ::readdir(d)) {
    std::string_view n = e->d_name;
    if (n != "." && n != "..") names.emplace_back(n);
  }
  int err = errno;
  ::closedir(d);
  if (err != 0) return std::unexpected(sys_error_code(err, "read directory", what));
  return names;
}

Status write_all(int fd, std::string_view data, std::string_view what) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return std::unexpected(sys_error("write", what));
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return {};
}

Result<size_t> read_some(int fd, void* buf, size_t len, std::string_view what) {
  for (;;) {
    ssize_t n = ::read(fd, buf, len);
    if (n >= 0) return static_cast<size_t>(n);
    if (errno != EINTR) return std::unexpected(sys_error("read", what));
  }
}

Result<std::string> read_all(int fd, std::string_view what, size_t max_bytes) {
  std::string out;
  char buf[65536];
  for (;;) {
    KISTE_ASSIGN_OR_RETURN(size_t n, read_some(fd, buf, sizeof buf, what));
    if (n == 0) return out;
    if (out.size() + n > max_bytes) {
      return failf(Errc::InvalidArgument, "read {}: larger than {} bytes", quote(what), max_bytes);
    }
    out.append(buf, n);
  }
}

std::string find_on_path(std::string_view name, std::string_view path_list) {
  while (true) {
    const size_t colon = path_list.find(':');
    std::string_view dir = path_list.substr(0, colon);
    if (!dir.empty() && dir.front() == '/') {
      std::string candidate = std::string(dir) + "/" + std::string(name);
      if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    }
    if (colon == std::string_view::npos) return {};
    path_list.remove_prefix(colon + 1);
  }
}

bool process_alive(pid_t pid) {
  if (pid <= 0 || (::kill(pid, 0) != 0 && errno != EPERM)) return false;
  // "pid (comm) S …": the state follows the last ')' (comm may hold one).
  auto stat = read_file(fmt::format("/proc/{}/stat", pid), 4096);
  if (!stat) return true;  // no /proc: what kill says
  const size_t close = stat->rfind(')');
  if (close == std::string::npos || close + 2 >= stat->size()) return true;
  const char state = (*stat)[close + 2];
  return state != 'Z' && state != 'X';
}

Result<std::string> read_file(const fs::path& path, size_t max_bytes) {
  KISTE_ASSIGN_OR_RETURN(UniqueFd fd, open(path, O_RDONLY));
  return read_all(fd.get(), path.native(), max_bytes);
}

Status write_file_atomic(const fs::path& path, std::string_view data, mode_t mode, Sync sync) {
  fs::path dir = path.parent_path();
  if (dir.empty()) dir = ".";
  fs::path tmp = dir / ("." + path.filename().native() + ".tmp-" + random_hex(6));
  KISTE_ASSIGN_OR_RETURN(UniqueFd fd, open(tmp, O_WRONLY | O_CREAT | O_EXCL, mode));
  auto cleanup_on_error = [&](Error e) {
    ::unlink(tmp.c_str());
    return std::unexpected(std::move(e));
  };
  if (auto r = write_all(fd.get(), data, tmp.native()); !r) return cleanup_on_error(r.error());
  if (::fchmod(fd.get(), mode) != 0) return cleanup_on_error(sys_error("chmod", tmp.native()));
  if (sync == Sync::Yes) {
    if (auto r = fsync(fd.get(), tmp.native()); !r) return cleanup_on_error(r.error());
  }
  fd.reset();
  if (auto r = sys::rename(tmp, path); !r) return cleanup_on_error(r.error());
  return sync == Sync::Yes ? fsync_dir(dir) : Status{};
}

namespace {

Status remove_children(int dirfd, dev_t dev, const std::string& where) {
  KISTE_ASSIGN_OR_RETURN(std::vector<std::string> names, list_dir(dirfd, where));
  for (const auto& n : names) {
    std::string child = where + "/" + n;
    struct stat st {};
    if (::fstatat(dirfd, n.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT) continue;
      return std::unexpected(sys_error("stat", child));
    }
    if (S_ISDIR(st.st_mode)) {
      if (st.st_dev != dev) {
        return fail(Errc::System,
                    fmt::format("remove {}: a filesystem is mounted there", quote(child)));
      }
      int fd = ::openat(dirfd, n.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (fd < 0) return std::unexpected(sys_error("open", child));
      UniqueFd guard(fd);
      KISTE_TRY(remove_children(fd, dev, child));
      if (::unlinkat(dirfd, n.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT) {
        return std::unexpected(sys_error("rmdir", child));
      }
    } else if (::unlinkat(dirfd, n.c_str(), 0) != 0 && errno != ENOENT) {
      return std::unexpected(sys_error("unlink", child));
    }
  }
  return {};
}

}  // namespace

Status remove_tree_at(int dirfd, std::string_view name) {
  std::string n(name);
  struct stat st {};
  if (::fstatat(dirfd, n.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return {};
    return std::unexpected(sys_error("stat", n));
  }
  if (!S_ISDIR(st.st_mode)) {
    if (::unlinkat(dirfd, n.c_str(), 0) != 0 && errno != ENOENT) {
      return std::unexpected(sys_error("unlink", n));
    }
    return {};
  }
  int fd = ::openat(dirfd, n.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return std::unexpected(sys_error("open", n));
  UniqueFd guard(fd);
  struct stat dst {};
  if (::fstat(fd, &dst) != 0) return std::unexpected(sys_error("stat", n));
  KISTE_TRY(remove_children(fd, dst.st_dev, n));
  if (::unlinkat(dirfd, n.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT) {
    return std::unexpected(sys_error("rmdir", n));
  }
  return {};
}

Status remove_tree(const fs::path& path) {
  fs::path parent = path.parent_path();
  if (parent.empty()) parent = ".";
  KISTE_ASSIGN_OR_RETURN(UniqueFd pfd, open(parent, O_PATH | O_DIRECTORY));
  auto r = remove_tree_at(pfd.get(), path.filename().native());
  if (!r) {
    Error e = std::move(r).error();
    e.message = fmt::format("remove {}: {}", quote(path.native()), e.message);
    return std::unexpected(std::move(e));
  }
  return {};
}

Status mount(const char* source, const fs::path& target, const char* fstype, unsigned long flags,
             const char* data) {
  if (::mount(source, target.c_str(), fstype, flags, data) != 0) {
    std::string what = fmt::format("{} on", source ? quote(source) : std::string("(none)"));
    return std::unexpected(sys_error("mount " + what, target.native()));
  }
  return {};
}

Status umount2(const fs::path& target, int flags) {
  if (::umount2(target.c_str(), flags) != 0) {
    return std::unexpected(sys_error("umount", target.native()));
  }
  return {};
}

Status pivot_root(const fs::path& new_root, const fs::path& put_old) {
  if (::syscall(SYS_pivot_root, new_root.c_str(), put_old.c_str()) != 0) {
    return std::unexpected(sys_error("pivot_root", new_root.native()));
  }
  return {};
}

bool in_initial_user_namespace() {
  auto map = read_file("/proc/self/uid_map", 4096);
  if (!map) return true;  // no /proc: nothing to go on, assume the host
  std::istringstream in(*map);
  unsigned long long inside = 1, outside = 1, count = 0;
  in >> inside >> outside >> count;
  return inside == 0 && outside == 0 && count == 4294967295ULL;
}

std::string random_hex(size_t bytes) {
  std::string raw(bytes, '\0');
  size_t got = 0;
  while (got < bytes) {
    ssize_t n = ::getrandom(raw.data() + got, bytes - got, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      KISTE_CHECK(false && "getrandom failed");
    }
    got += static_cast<size_t>(n);
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes * 2);
  for (unsigned char c : raw) {
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  return out;
}

}  // namespace kiste::sys
