#pragma once
#include <filesystem>

#include <kiste/base/error.hpp>
#include <kiste/base/unique_fd.hpp>

namespace kiste {

// flock(2) on a lock file, held until destruction.
class FileLock {
 public:
  enum class Mode { Shared, Exclusive };
  [[nodiscard]] static Result<FileLock> acquire(const std::filesystem::path& path,
                                                Mode mode = Mode::Exclusive);
  FileLock(FileLock&&) noexcept = default;
  FileLock& operator=(FileLock&&) noexcept = default;
  void release() { fd_.reset(); }  // unlocks now

 private:
  explicit FileLock(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;  // closing the fd releases the lock
};

}  // namespace kiste
