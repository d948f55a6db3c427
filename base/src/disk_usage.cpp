#include <kiste/base/disk_usage.hpp>

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <set>
#include <utility>

namespace kiste {

namespace {

struct Walk {
  dev_t dev = 0;
  std::set<std::pair<dev_t, ino_t>> linked;  // inodes with nlink > 1 already counted
  TreeUsage usage;
  std::string top;

  void count(const struct stat& st) {
    if (st.st_nlink > 1 && !S_ISDIR(st.st_mode) && !linked.insert({st.st_dev, st.st_ino}).second) {
      return;
    }
    usage.bytes += st.st_size;
  }

  Status dir(int fd) {
    DIR* d = ::fdopendir(fd);
    if (d == nullptr) {
      int err = errno;
      ::close(fd);
      return std::unexpected(sys_error_code(err, "read directory", top));
    }
    Status out;
    while (dirent* e = ::readdir(d)) {
      std::string_view n = e->d_name;
      if (n == "." || n == "..") continue;
      struct stat st {};
      if (::fstatat(::dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;  // vanished
      ++usage.entries;
      count(st);
      if (!S_ISDIR(st.st_mode) || st.st_dev != dev) continue;
      int sub = ::openat(::dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (sub < 0) continue;
      out = dir(sub);
      if (!out) break;
    }
    ::closedir(d);
    return out;
  }
};

}  // namespace

Result<TreeUsage> tree_usage(const std::filesystem::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return TreeUsage{};
    return std::unexpected(sys_error("open", path.native()));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    Error e = sys_error("stat", path.native());
    ::close(fd);
    return std::unexpected(std::move(e));
  }
  Walk w{.dev = st.st_dev, .top = path.native()};
  w.usage.bytes = st.st_size;
  KISTE_TRY(w.dir(fd));
  return w.usage;
}

}  // namespace kiste
