#pragma once
// Private: the deterministic tar writer shared by write_layer and diff_overlay_upper.

#include <sys/stat.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>

#include <kiste/base/error.hpp>
#include <kiste/image/compression.hpp>
#include <kiste/image/layer_writer.hpp>

#include "archive_ptr.hpp"

namespace kiste::image::detail {

class TarStream {
 public:
  [[nodiscard]] static Result<std::unique_ptr<TarStream>> open(ByteSink& out,
                                                               const PackOptions& options);
  ~TarStream();

  // Adds `name` in `dirfd` (lstat result `st`) as `path`. Regular file data is read from
  // `data_fd` when given (metacopy copy-ups), else from the file itself.
  [[nodiscard]] Status add(int dirfd, const std::string& name, const std::string& path,
                           const struct stat& st, int data_fd = -1);
  // An empty regular file entry (whiteouts and opaque markers).
  [[nodiscard]] Status add_marker(const std::string& path, int64_t mtime);
  [[nodiscard]] Result<LayerResult> finish();

  [[nodiscard]] int64_t clamp_mtime(int64_t t) const {
    return options_.source_date_epoch && t > *options_.source_date_epoch ? *options_.source_date_epoch
                                                                         : t;
  }

 private:
  TarStream(ByteSink& out, const PackOptions& o);
  static la_ssize_t write_cb(archive*, void* self, const void* buf, size_t n);
  [[nodiscard]] Status check(int rc, std::string_view what);
  [[nodiscard]] Status write_data(int fd, int64_t size, const std::string& path);

  PackOptions options_;
  HashingSink compressed_;
  std::unique_ptr<CompressingSink> compressor_;
  std::unique_ptr<HashingSink> tar_;
  ArchiveWritePtr a_;
  std::optional<Error> sink_error_;
  std::map<std::pair<dev_t, ino_t>, std::string> links_;
  std::unique_ptr<char[]> buf_;
};

// Hooks for walk_tree. `special` may emit its own entries for an item and return true to skip
// the default handling; `after_dir` runs after a directory entry, before its children.
struct WalkHooks {
  std::function<Result<bool>(TarStream&, int dirfd, const std::string& name,
                             const std::string& path, const struct stat& st)>
      special;
  std::function<Status(TarStream&, int dirfd, const std::string& path, const struct stat& st)>
      after_dir;
};

// Walks the tree below `rootfd` in path order (parents first, siblings byte-sorted), never
// following symlinks and never leaving the root's filesystem.
[[nodiscard]] Status walk_tree(int rootfd, TarStream& tar, const WalkHooks& hooks);

}  // namespace kiste::image::detail
