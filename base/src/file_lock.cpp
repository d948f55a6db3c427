#include <kiste/base/file_lock.hpp>

#include <fcntl.h>
#include <sys/file.h>

#include <cerrno>

#include <kiste/base/sys.hpp>

namespace kiste {

Result<FileLock> FileLock::acquire(const std::filesystem::path& path, Mode mode) {
  KISTE_ASSIGN_OR_RETURN(UniqueFd fd, sys::open(path, O_RDWR | O_CREAT, 0644));
  int op = mode == Mode::Exclusive ? LOCK_EX : LOCK_SH;
  while (::flock(fd.get(), op) != 0) {
    if (errno != EINTR) return std::unexpected(sys_error("lock", path.native()));
  }
  return FileLock(std::move(fd));
}

}  // namespace kiste
