#pragma once
#include <filesystem>

#include <kiste/base/error.hpp>
#include <kiste/base/unique_fd.hpp>

namespace kiste {

// A directory created with mkdtemp; its tree is removed on destruction unless keep() was called.
// Removal never crosses into another filesystem (a leftover mount is reported, not emptied).
// While owned, the directory itself is flock'ed (LOCK_EX): a lockable directory under the
// store's tmp/ belongs to a process that is gone, so prune can tell it from a live one's.
class TempDir {
 public:
  // Creates `<parent>/<prefix>XXXXXX`.
  [[nodiscard]] static Result<TempDir> create(const std::filesystem::path& parent,
                                              std::string_view prefix = "kiste-");
  TempDir(TempDir&& o) noexcept : path_(std::exchange(o.path_, {})), lock_(std::move(o.lock_)) {}
  TempDir& operator=(TempDir&& o) noexcept;
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir();

  [[nodiscard]] const std::filesystem::path& path() const { return path_; }
  // Stop owning the directory (and drop its lock); returns its path.
  std::filesystem::path keep() {
    lock_.reset();
    return std::exchange(path_, {});
  }

 private:
  TempDir(std::filesystem::path p, UniqueFd lock) : path_(std::move(p)), lock_(std::move(lock)) {}
  std::filesystem::path path_;
  UniqueFd lock_;  // the directory, flock'ed while owned
};

}  // namespace kiste
