#include <kiste/image/snapshot.hpp>

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include <kiste/base/disk_usage.hpp>
#include <kiste/base/file_lock.hpp>
#include <kiste/base/sys.hpp>
#include <kiste/base/temp_dir.hpp>
#include <kiste/image/root_layout.hpp>

namespace kiste::image {

namespace fs = std::filesystem;

Result<SnapshotStore> SnapshotStore::open(const fs::path& root) {
  // Private as in Store::open: snapshots hold image files (setuid binaries, device nodes).
  KISTE_TRY(sys::mkdir_all(root, 0700));
  KISTE_TRY(sys::restrict_dir(RootLayout(root).snapshots(), 0700));
  KISTE_TRY(sys::restrict_dir(RootLayout(root).tmp(), 0700));
  return SnapshotStore(root);
}

fs::path SnapshotStore::path_of(const Digest& diff_id) const {
  return RootLayout(root_).snapshots() / std::string(diff_id.hex());
}

fs::path SnapshotStore::lock_path(const Digest& diff_id) const {
  // Lock files stay (unlinking a lock file others may wait on breaks the exclusion); they are
  // dot-files, which list() ignores.
  return RootLayout(root_).snapshots() / ("." + std::string(diff_id.hex()) + ".lock");
}

fs::path SnapshotStore::size_path(const Digest& diff_id) const {
  return RootLayout(root_).snapshots() / ("." + std::string(diff_id.hex()) + ".size");
}

Result<std::optional<int64_t>> SnapshotStore::recorded_size(const Digest& diff_id) const {
  auto text = sys::read_file(size_path(diff_id), 64);
  if (!text) {
    if (text.error().sys_errno == ENOENT) return std::optional<int64_t>{};
    return std::unexpected(std::move(text).error());
  }
  char* end = nullptr;
  long long v = std::strtoll(text->c_str(), &end, 10);
  if (end == text->c_str() || v < 0) return std::optional<int64_t>{};  // unreadable: measure again
  return std::optional<int64_t>{v};
}

Status SnapshotStore::record_size(const Digest& diff_id, int64_t bytes) const {
  return sys::write_file_atomic(size_path(diff_id), std::to_string(bytes) + "\n", 0600);
}

Result<std::optional<fs::path>> SnapshotStore::try_get(const Digest& diff_id) const {
  fs::path p = path_of(diff_id);
  struct stat st {};
  if (::lstat(p.c_str(), &st) != 0) {
    if (errno == ENOENT) return std::optional<fs::path>{};
    return std::unexpected(sys_error("stat", p.native()));
  }
  if (!S_ISDIR(st.st_mode)) {
    return failf(Errc::Corrupt, "snapshot {}: not a directory", quote(p.native()));
  }
  return std::optional<fs::path>{p};
}

Result<fs::path> SnapshotStore::ensure(const Digest& diff_id, media_type::Compression compression,
                                       const BlobOpener& open_blob, const ExtractLimits& limits) {
  auto context = fmt::format("unpack layer {}", diff_id);
  KISTE_ASSIGN_OR_RETURN(auto existing, try_get(diff_id));
  if (existing) return *existing;
  KISTE_ASSIGN_OR_RETURN(FileLock lock, FileLock::acquire(lock_path(diff_id)));
  KISTE_ASSIGN_OR_RETURN(existing, try_get(diff_id));  // another process may have finished it
  if (existing) return *existing;

  KISTE_ASSIGN_OR_RETURN(TempDir tmp, TempDir::create(RootLayout(root_).tmp(), "snapshot-"));
  if (::chmod(tmp.path().c_str(), 0755) != 0) {
    return std::unexpected(sys_error("chmod", tmp.path().native()));
  }
  KISTE_ASSIGN_OR_RETURN(UniqueFd dirfd, sys::open(tmp.path(), O_RDONLY | O_DIRECTORY));
  auto blob = open_blob();
  if (!blob) return std::unexpected(std::move(blob).error().with_context(context));
  ExtractOptions opts{.whiteouts = WhiteoutMode::Overlay,
                      .limits = limits,
                      .expected_diff_id = diff_id};
  auto stats = extract_layer(**blob, compression, dirfd.get(), opts);
  if (!stats) return std::unexpected(std::move(stats).error().with_context(context));
  // Data first, then the name: a crash never leaves a complete-looking, half-written snapshot.
  if (::syncfs(dirfd.get()) != 0) return std::unexpected(sys_error("syncfs", tmp.path().native()));
  // Its size as `du -sb` counts it, for `kiste images` (a measured estimate is replaced).
  if (auto u = tree_usage(tmp.path())) (void)record_size(diff_id, u->bytes);
  KISTE_TRY(with_context(sys::rename(tmp.path(), path_of(diff_id)), context));
  tmp.keep();
  KISTE_TRY(sys::fsync_dir(RootLayout(root_).snapshots()));
  return path_of(diff_id);
}

Status SnapshotStore::remove(const Digest& diff_id) {
  KISTE_ASSIGN_OR_RETURN(FileLock lock, FileLock::acquire(lock_path(diff_id)));
  KISTE_ASSIGN_OR_RETURN(auto existing, try_get(diff_id));
  if (!existing) return {};
  fs::path doomed = RootLayout(root_).tmp() / ("removing-" + std::string(diff_id.hex()) + "-" + sys::random_hex(4));
  KISTE_TRY(sys::rename(*existing, doomed));
  ::unlink(size_path(diff_id).c_str());
  return sys::remove_tree(doomed);
}

Result<std::vector<Digest>> SnapshotStore::list() const {
  fs::path dir = RootLayout(root_).snapshots();
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return std::unexpected(sys_error("opendir", dir.native()));
  std::vector<Digest> out;
  while (struct dirent* de = ::readdir(d)) {
    std::string_view n = de->d_name;
    if (n.starts_with('.')) continue;
    auto dg = Digest::parse(std::string(n.size() == 128 ? "sha512:" : "sha256:") + std::string(n));
    if (dg) out.push_back(std::move(*dg));
  }
  ::closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

Result<std::vector<LayerSource>> image_layers(ImageSource& source, const Manifest& manifest,
                                              const ImageConfig& config) {
  if (manifest.layers.size() != config.diff_ids.size()) {
    return failf(Errc::Corrupt, "image {}: {} layers but {} diff_ids in its config",
                 source.describe(), manifest.layers.size(), config.diff_ids.size());
  }
  std::vector<LayerSource> out;
  for (size_t i = 0; i < manifest.layers.size(); ++i) {
    const Descriptor& d = manifest.layers[i];
    if (!media_type::is_layer(d.media_type)) {
      return failf(Errc::Unsupported, "image {}: layer {} has unsupported media type {}",
                   source.describe(), d.digest, quote(d.media_type));
    }
    out.push_back({[&source, d]() { return source.open_blob(d); },
                   media_type::layer_compression(d.media_type), config.diff_ids[i]});
  }
  return out;
}

Result<std::vector<ExtractStats>> unpack_layers(const std::vector<LayerSource>& layers,
                                                const fs::path& dir,
                                                const ExtractOptions& options) {
  KISTE_TRY(sys::mkdir_all(dir));
  KISTE_ASSIGN_OR_RETURN(UniqueFd dirfd, sys::open(dir, O_RDONLY | O_DIRECTORY));
  std::vector<ExtractStats> out;
  for (size_t i = 0; i < layers.size(); ++i) {
    auto context = fmt::format("unpack layer {} of {} into {}", i + 1, layers.size(), quote(dir.native()));
    auto blob = layers[i].open_blob();
    if (!blob) return std::unexpected(std::move(blob).error().with_context(context));
    ExtractOptions o = options;
    o.whiteouts = WhiteoutMode::Apply;
    o.expected_diff_id = layers[i].diff_id;
    auto stats = extract_layer(**blob, layers[i].compression, dirfd.get(), o);
    if (!stats) return std::unexpected(std::move(stats).error().with_context(context));
    out.push_back(std::move(*stats));
  }
  return out;
}

}  // namespace kiste::image
