#include <kiste/base/temp_dir.hpp>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cstdlib>

#include <kiste/base/log.hpp>
#include <kiste/base/sys.hpp>

namespace kiste {

Result<TempDir> TempDir::create(const std::filesystem::path& parent, std::string_view prefix) {
  std::string tmpl = (parent / (std::string(prefix) + "XXXXXX")).native();
  if (::mkdtemp(tmpl.data()) == nullptr) return std::unexpected(sys_error("mkdtemp", tmpl));
  const int fd = ::open(tmpl.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0 || ::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    Error e = sys_error(fd < 0 ? "open" : "lock", tmpl);
    if (fd >= 0) ::close(fd);
    ::rmdir(tmpl.c_str());
    return std::unexpected(std::move(e));
  }
  return TempDir(std::filesystem::path(tmpl), UniqueFd(fd));
}

TempDir& TempDir::operator=(TempDir&& o) noexcept {
  if (this != &o) {
    TempDir old(std::move(*this));
    path_ = std::exchange(o.path_, {});
    lock_ = std::move(o.lock_);
  }
  return *this;
}

TempDir::~TempDir() {
  if (path_.empty()) return;
  if (auto r = sys::remove_tree(path_); !r) {
    log::warn("leaving temporary directory behind: {}", r.error().to_string());
  }
}

}  // namespace kiste
