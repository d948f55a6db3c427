#include <kiste/runtime/container_copy.hpp>

#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include <fmt/format.h>

#include <kiste/base/sys.hpp>
#include <kiste/base/user_namespace.hpp>
#include <kiste/base/unique_fd.hpp>
#include <kiste/image/blob_io.hpp>
#include <kiste/image/layer_extract.hpp>

namespace kiste::runtime {

namespace fs = std::filesystem;

namespace {

// Deeper trees are refused: each level holds two fds.
constexpr int kMaxDepth = 256;

// A path as the user gave it, taken apart: the normalised path, the parent and the last name
// ("" for the root itself), and the two docker spellings that change what a copy does.
struct PathParts {
  std::string clean;   // "/etc/x" (a container path is absolute; a host path as given, normalised)
  std::string parent;  // "/etc"
  std::string name;    // "x"; "" when clean is the root
  bool contents = false;        // ends in "/." (or is "."): a directory's contents
  bool trailing_slash = false;  // ends in '/': must be a directory
};

PathParts split(const CopyEnd& end) {
  PathParts p;
  std::string_view s = end.path;
  p.contents = s == "." || s.ends_with("/.");
  p.trailing_slash = s.ends_with('/');
  fs::path path = end.root_fd >= 0 ? fs::path("/") / fs::path(end.path) : fs::absolute(fs::path(end.path));
  path = path.lexically_normal();
  std::string clean = path.native();
  while (clean.size() > 1 && clean.back() == '/') clean.pop_back();
  p.clean = clean;
  if (clean == "/") {
    p.parent = "/";
    return p;
  }
  size_t slash = clean.rfind('/');
  p.parent = slash == 0 ? "/" : clean.substr(0, slash);
  p.name = clean.substr(slash + 1);
  return p;
}

// Where the user sees a path: "CONTAINER:/etc/x" is shown as "/etc/x" in the container.
std::string shown(const CopyEnd& end) { return fmt::format("`{}`", end.path); }

// Opens `path` of `end`'s side: inside the container's root (never leaving it), or on the host.
Result<UniqueFd> open_at_end(const CopyEnd& end, const std::string& path, int flags) {
  if (end.root_fd >= 0) return sys::open_in_root(end.root_fd, path, flags | O_CLOEXEC);
  return sys::open(path, flags | O_CLOEXEC);
}

Status copy_bytes(int from, int to, const std::string& what, CopyStats& stats) {
  bool plain = false;
  for (;;) {
    ssize_t n = plain ? 0 : ::copy_file_range(from, nullptr, to, nullptr, 1 << 30, 0);
    if (!plain && n < 0 && (errno == EXDEV || errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP)) {
      plain = true;
    }
    if (plain) n = ::sendfile(to, from, nullptr, 1 << 30);
    if (n < 0) {
      if (errno == EINTR) continue;
      return std::unexpected(sys_error(plain ? "sendfile" : "copy_file_range", what));
    }
    if (n == 0) return {};
    stats.bytes += static_cast<uint64_t>(n);
  }
}

// Removes a non-directory `name` in `dirfd` that stands where a copy puts something else (a file
// or a symlink of the destination is replaced, as docker replaces them).
Status replace_non_dir(int dirfd, const std::string& name, const std::string& what) {
  struct stat st{};
  if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return std::unexpected(sys_error("stat", what));
  if (S_ISDIR(st.st_mode)) {
    return failf(Errc::AlreadyExists, "copy to `{}`: cannot overwrite a directory with a non-directory", what);
  }
  if (::unlinkat(dirfd, name.c_str(), 0) != 0) return std::unexpected(sys_error("unlink", what));
  return {};
}

Status set_times(int dirfd, const std::string& name, const struct stat& st, const std::string& what) {
  const timespec times[2] = {st.st_atim, st.st_mtim};
  if (::utimensat(dirfd, name.c_str(), times, AT_SYMLINK_NOFOLLOW) != 0) {
    return std::unexpected(sys_error("utimensat", what));
  }
  return {};
}

// Copies the entry `sname` of the directory `sdir` to `dname` in `ddir`, recursively; neither
// side follows a symlink. `what` is the destination's path, for errors.
Status copy_entry(int sdir, const std::string& sname, int ddir, const std::string& dname,
                  const std::string& what, int depth, CopyStats& stats) {
  if (depth > kMaxDepth) return failf(Errc::InvalidArgument, "copy to `{}`: deeper than {} directories", what, kMaxDepth);
  struct stat st{};
  if (::fstatat(sdir, sname.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    return std::unexpected(sys_error("stat", sname));
  }
  const mode_t perm = st.st_mode & 07777;
  if (S_ISDIR(st.st_mode)) {
    UniqueFd s(::openat(sdir, sname.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!s) return std::unexpected(sys_error("open", sname));
    if (::mkdirat(ddir, dname.c_str(), 0700) != 0) {
      if (errno != EEXIST) return std::unexpected(sys_error("mkdir", what));
      struct stat dst{};
      if (::fstatat(ddir, dname.c_str(), &dst, AT_SYMLINK_NOFOLLOW) != 0) return std::unexpected(sys_error("stat", what));
      if (!S_ISDIR(dst.st_mode)) {
        return failf(Errc::AlreadyExists, "copy to `{}`: cannot overwrite a non-directory with a directory", what);
      }
    }
    UniqueFd d(::openat(ddir, dname.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!d) return std::unexpected(sys_error("open", what));
    KISTE_ASSIGN_OR_RETURN(std::vector<std::string> names, sys::list_dir(s.get(), sname));
    for (const std::string& n : names) {
      KISTE_TRY(copy_entry(s.get(), n, d.get(), n, what + "/" + n, depth + 1, stats));
    }
    if (::fchmod(d.get(), perm) != 0) return std::unexpected(sys_error("chmod", what));
    const timespec times[2] = {st.st_atim, st.st_mtim};
    if (::futimens(d.get(), times) != 0) return std::unexpected(sys_error("futimens", what));
    ++stats.dirs;
    return {};
  }
  if (S_ISREG(st.st_mode)) {
    // O_NONBLOCK: a FIFO put there since the stat cannot hang the open; fstat says what it is.
    UniqueFd s(::openat(sdir, sname.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
    if (!s) return std::unexpected(sys_error("open", sname));
    KISTE_ASSIGN_OR_RETURN(struct stat now, sys::fstat(s.get(), sname));
    if (!S_ISREG(now.st_mode)) return failf(Errc::InvalidArgument, "copy `{}`: changed while copied", sname);
    const int wflags = O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC;
    UniqueFd d(::openat(ddir, dname.c_str(), wflags, 0600));
    if (!d && (errno == ELOOP || errno == ENXIO || errno == ETXTBSY)) {
      KISTE_TRY(replace_non_dir(ddir, dname, what));
      d = UniqueFd(::openat(ddir, dname.c_str(), wflags | O_EXCL, 0600));
    }
    if (!d && errno == EISDIR) {
      return failf(Errc::AlreadyExists, "copy to `{}`: cannot overwrite a directory with a non-directory", what);
    }
    if (!d) return std::unexpected(sys_error("open", what));
    KISTE_ASSIGN_OR_RETURN(struct stat dst, sys::fstat(d.get(), what));
    if (!S_ISREG(dst.st_mode)) return failf(Errc::InvalidArgument, "copy to `{}`: not a regular file", what);
    KISTE_TRY(copy_bytes(s.get(), d.get(), what, stats));
    if (::fchmod(d.get(), perm) != 0) return std::unexpected(sys_error("chmod", what));
    const timespec times[2] = {st.st_atim, st.st_mtim};
    if (::futimens(d.get(), times) != 0) return std::unexpected(sys_error("futimens", what));
    ++stats.files;
    return {};
  }
  if (S_ISLNK(st.st_mode)) {
    KISTE_ASSIGN_OR_RETURN(std::string target, sys::readlinkat(sdir, sname));
    if (::symlinkat(target.c_str(), ddir, dname.c_str()) != 0) {
      if (errno != EEXIST) return std::unexpected(sys_error("symlink", what));
      KISTE_TRY(replace_non_dir(ddir, dname, what));
      if (::symlinkat(target.c_str(), ddir, dname.c_str()) != 0) return std::unexpected(sys_error("symlink", what));
    }
    KISTE_TRY(set_times(ddir, dname, st, what));
    ++stats.links;
    return {};
  }
  if (S_ISFIFO(st.st_mode) || S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
    if (::mknodat(ddir, dname.c_str(), st.st_mode, st.st_rdev) != 0) {
      if (errno != EEXIST) return std::unexpected(sys_error("mknod", what));
      KISTE_TRY(replace_non_dir(ddir, dname, what));
      if (::mknodat(ddir, dname.c_str(), st.st_mode, st.st_rdev) != 0) return std::unexpected(sys_error("mknod", what));
    }
    return set_times(ddir, dname, st, what);
  }
  return {};  // a socket: nothing to copy
}

}  // namespace

Result<CopyStats> copy_path(const CopyEnd& src, const CopyEnd& dest) {
  const PathParts sp = split(src);
  const PathParts dp = split(dest);
  CopyStats stats;
  // The source: its parent directory, and the entry in it ("." for a root, which then gives its
  // contents).
  auto sparent = open_at_end(src, sp.parent, O_PATH | O_DIRECTORY);
  if (!sparent) return std::unexpected(std::move(sparent).error().with_context(fmt::format("copy {}", shown(src))));
  const std::string sname = sp.name.empty() ? "." : sp.name;
  struct stat st{};
  if (::fstatat(sparent->get(), sname.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    return failf(errno == ENOENT ? Errc::NotFound : Errc::System, "copy {}: {}", shown(src),
                 errno == ENOENT ? "no such file or directory" : std::strerror(errno));
  }
  const bool src_dir = S_ISDIR(st.st_mode);
  if (!src_dir && (sp.trailing_slash || sp.contents)) {
    return failf(Errc::InvalidArgument, "copy {}: not a directory", shown(src));
  }
  const bool contents = src_dir && (sp.contents || sp.name.empty());
  // The destination: an existing directory (symlinks in the container resolved inside its root)
  // takes the source under its name, or its contents.
  auto ddir = open_at_end(dest, dp.clean, O_PATH | O_DIRECTORY);
  if (ddir) {
    if (contents) {
      UniqueFd s(::openat(sparent->get(), sname.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!s) return std::unexpected(sys_error("open", src.path));
      UniqueFd d(::openat(ddir->get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
      if (!d) return std::unexpected(sys_error("open", dest.path));
      KISTE_ASSIGN_OR_RETURN(std::vector<std::string> names, sys::list_dir(s.get(), src.path));
      for (const std::string& n : names) {
        KISTE_TRY(copy_entry(s.get(), n, d.get(), n, dp.clean + "/" + n, 1, stats));
      }
      return stats;
    }
    KISTE_TRY(copy_entry(sparent->get(), sname, ddir->get(), sp.name, dp.clean + "/" + sp.name, 0, stats));
    return stats;
  }
  if (ddir.error().sys_errno != ENOENT && ddir.error().sys_errno != ENOTDIR) {
    return std::unexpected(std::move(ddir).error().with_context(fmt::format("copy to {}", shown(dest))));
  }
  if (ddir.error().sys_errno == ENOENT && dp.trailing_slash && !src_dir) {
    return failf(Errc::NotFound, "copy to {}: no such directory", shown(dest));
  }
  if (ddir.error().sys_errno == ENOTDIR && src_dir) {
    return failf(Errc::InvalidArgument, "copy to {}: cannot copy a directory to a file", shown(dest));
  }
  if (dp.name.empty()) return failf(Errc::InvalidArgument, "copy to {}: not a directory", shown(dest));
  auto dparent = open_at_end(dest, dp.parent, O_PATH | O_DIRECTORY);
  if (!dparent) {
    return failf(Errc::NotFound, "copy to {}: its directory `{}` does not exist", shown(dest), dp.parent);
  }
  KISTE_TRY(copy_entry(sparent->get(), sname, dparent->get(), dp.name, dp.clean, 0, stats));
  return stats;
}

Status extract_tar_into(int root_fd, const std::string& dir, int tar_fd) {
  const CopyEnd end{.root_fd = root_fd, .path = dir};
  const PathParts p = split(end);
  auto d = open_at_end(end, p.clean, O_RDONLY | O_DIRECTORY);
  if (!d) {
    return failf(d.error().sys_errno == ENOENT || d.error().sys_errno == ENOTDIR ? Errc::NotFound : d.error().code,
                 "copy to {}: not a directory (`-` unpacks a tar stream into a directory)", shown(end));
  }
  UniqueFd in(::fcntl(tar_fd, F_DUPFD_CLOEXEC, 0));
  if (!in) return std::unexpected(sys_error("dup", "stdin"));
  image::FdReader reader(std::move(in), "the tar stream on stdin");
  auto st = image::extract_layer(reader, image::media_type::Compression::None, d->get(), {});
  if (!st) return std::unexpected(std::move(st).error().with_context(fmt::format("copy to {}", shown(end))));
  return {};
}

Status with_stopped_root(const fs::path& container_dir, const std::vector<fs::path>& lower_dirs,
                         const std::function<Status(int root_fd)>& fn) {
  if (lower_dirs.empty()) return fail(Errc::InvalidArgument, "container root: no layers");
  std::string data = "lowerdir=";
  for (size_t i = lower_dirs.size(); i-- > 0;) {
    const std::string& d = lower_dirs[i].native();
    if (d.find_first_of(":,\\") != std::string::npos) {
      return failf(Errc::Unsupported, "container root: layer `{}` has a character overlay options cannot hold", d);
    }
    data += d;
    if (i != 0) data += ':';
  }
  data += fmt::format(",upperdir={},workdir={}", (container_dir / "upper").native(), (container_dir / "work").native());
  if (!sys::in_initial_user_namespace()) data += ",userxattr";  // rootless: see layer_extract.hpp
  if (data.size() >= static_cast<size_t>(::sysconf(_SC_PAGESIZE))) {
    return fail(Errc::Unsupported, "container root: too many layers for one overlay mount option");
  }
  // The mount point: an empty dir of the container's own, removed again here (a cp killed
  // before that leaves only it, and `rm` takes it with the container's dir).
  std::string point = (container_dir / "cp.XXXXXX").native();
  if (::mkdtemp(point.data()) == nullptr) return std::unexpected(sys_error("mkdtemp", point));
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
    ::rmdir(point.c_str());
    return std::unexpected(sys_error("pipe2", "cp"));
  }
  UniqueFd rd(pipe_fds[0]), wr(pipe_fds[1]);
  const pid_t child = ::fork();
  if (child < 0) {
    ::rmdir(point.c_str());
    return std::unexpected(sys_error("fork", "cp"));
  }
  if (child == 0) {
    rd.reset();
    auto work = [&]() -> Status {
      if (::unshare(CLONE_NEWNS) != 0) return std::unexpected(sys_error("unshare", "mount namespace"));
      KISTE_TRY(sys::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr));
      KISTE_TRY(sys::mount("overlay", point, "overlay", 0, data.c_str()));
      KISTE_ASSIGN_OR_RETURN(UniqueFd root, sys::open(point, O_PATH | O_DIRECTORY | O_CLOEXEC));
      return fn(root.get());
    };
    Status s = work();
    if (!s) {
      (void)sys::write_all(wr.get(), s.error().to_string());
      _exit(1);
    }
    _exit(0);
  }
  wr.reset();
  auto message = sys::read_all(rd.get(), "cp", 64 * 1024);
  int status = 0;
  while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  ::rmdir(point.c_str());
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return {};
  if (message && !message->empty()) return fail(Errc::System, *message);
  return fail(Errc::System, "cp: the process that mounted the container's root failed");
}

}  // namespace kiste::runtime
