#pragma once
// A stat-keyed cache of context files' content digests (git's index trick): a file whose
// (size, mtime_ns, ctime_ns, inode, device) are all unchanged since it was hashed is not read
// again, so a cached rebuild of a large context costs a walk, not a re-hash. Any stat change
// re-hashes. Files changed within 100 ms before they were hashed are not cached (their
// mtime could still change within the timestamp granularity: git's "racily clean" case).
// Stored as one text file per context under <root>/cache/context/.
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include <kiste/base/error.hpp>
#include <kiste/image/digest.hpp>

namespace kiste::builder {

struct FileStamp {
  uint64_t size = 0;
  int64_t mtime_ns = 0;
  int64_t ctime_ns = 0;
  uint64_t ino = 0;
  uint64_t dev = 0;
  friend bool operator==(const FileStamp&, const FileStamp&) = default;
};

class ContextHashCache {
 public:
  // The cache file for `context_dir` below `cache_root` (<root>/cache/context).
  [[nodiscard]] static std::filesystem::path file_for(const std::filesystem::path& cache_root,
                                                      const std::filesystem::path& context_dir);
  // Loads `file`; a missing or corrupt file (or corrupt lines) is an empty cache.
  [[nodiscard]] static ContextHashCache load(std::filesystem::path file);

  [[nodiscard]] std::optional<image::Digest> find(std::string_view path,
                                                  const FileStamp& stamp) const;
  void put(std::string_view path, const FileStamp& stamp, const image::Digest& digest);
  // Writes the file (atomically) when something changed.
  [[nodiscard]] Status save();

  [[nodiscard]] size_t hits() const { return hits_; }
  [[nodiscard]] size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    FileStamp stamp;
    image::Digest digest = image::Digest::of("");
  };
  std::filesystem::path file_;
  std::map<std::string, Entry, std::less<>> entries_;
  bool dirty_ = false;
  mutable size_t hits_ = 0;
};

}  // namespace kiste::builder
