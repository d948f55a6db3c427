#pragma once
#include <filesystem>

#include <kiste/base/error.hpp>

namespace kiste {

// A directory created with mkdtemp; its tree is removed on destruction unless keep() was called.
// Removal never crosses into another filesystem (a leftover mount is reported, not emptied).
class TempDir {
 public:
  // Creates `<parent>/<prefix>XXXXXX`.
  [[nodiscard]] static Result<TempDir> create(const std::filesystem::path& parent,
                                              std::string_view prefix = "kiste-");
  TempDir(TempDir&& o) noexcept : path_(std::exchange(o.path_, {})) {}
  TempDir& operator=(TempDir&& o) noexcept;
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir();

  [[nodiscard]] const std::filesystem::path& path() const { return path_; }
  // Stop owning the directory; returns its path.
  std::filesystem::path keep() { return std::exchange(path_, {}); }

 private:
  explicit TempDir(std::filesystem::path p) : path_(std::move(p)) {}
  std::filesystem::path path_;
};

}  // namespace kiste
