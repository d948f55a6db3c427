#pragma once
// Unpacked layers. `<root>/snapshots/<diff-id-hex>/` holds one layer unpacked once, with its
// whiteouts as overlay whiteouts, so snapshots stack as overlay lowerdirs. A snapshot is built in
// `<root>/tmp/` and renamed into place only when complete and verified: a failed or corrupt
// unpack leaves nothing. Concurrent requests for the same layer (threads or processes) unpack it
// once (flock per diff id).

#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include <kiste/base/error.hpp>
#include <kiste/image/blob_io.hpp>
#include <kiste/image/digest.hpp>
#include <kiste/image/image_config.hpp>
#include <kiste/image/image_source.hpp>
#include <kiste/image/layer_extract.hpp>
#include <kiste/image/media_type.hpp>

namespace kiste::image {

using BlobOpener = std::function<Result<std::unique_ptr<BlobReader>>()>;

class SnapshotStore {
 public:
  // Creates `<root>/snapshots` and `<root>/tmp` when missing.
  [[nodiscard]] static Result<SnapshotStore> open(const std::filesystem::path& root);

  // The snapshot of `diff_id`, unpacking it from `open_blob()` if it does not exist yet. The blob
  // is only opened when needed. `limits` bound what the layer may contain.
  [[nodiscard]] Result<std::filesystem::path> ensure(const Digest& diff_id,
                                                     media_type::Compression compression,
                                                     const BlobOpener& open_blob,
                                                     const ExtractLimits& limits = {});
  // The snapshot's path if it exists.
  [[nodiscard]] Result<std::optional<std::filesystem::path>> try_get(const Digest& diff_id) const;
  // Removes a snapshot (missing is fine). It disappears atomically, then is deleted.
  [[nodiscard]] Status remove(const Digest& diff_id);
  // Every complete snapshot, sorted.
  [[nodiscard]] Result<std::vector<Digest>> list() const;

  // The unpacked size recorded for `diff_id` (`du -sb` of its snapshot, written when the
  // snapshot is made, or an estimate recorded by record_size before it exists).
  [[nodiscard]] Result<std::optional<int64_t>> recorded_size(const Digest& diff_id) const;
  [[nodiscard]] Status record_size(const Digest& diff_id, int64_t bytes) const;

  [[nodiscard]] std::filesystem::path path_of(const Digest& diff_id) const;
  [[nodiscard]] const std::filesystem::path& root() const { return root_; }

 private:
  explicit SnapshotStore(std::filesystem::path root) : root_(std::move(root)) {}
  [[nodiscard]] std::filesystem::path lock_path(const Digest& diff_id) const;
  [[nodiscard]] std::filesystem::path size_path(const Digest& diff_id) const;
  std::filesystem::path root_;
};

// One layer of an image, for a flattened unpack.
struct LayerSource {
  BlobOpener open_blob;
  media_type::Compression compression = media_type::Compression::Gzip;
  std::optional<Digest> diff_id;  // checked when set
};

// The layers of an image as LayerSources: blobs from `source`, compression from each layer's
// media type, diff_ids from `config` (so unpack_layers/ensure check them). The layer count must
// match the config's diff_ids; a non-layer media type is Errc::Unsupported. `source` must outlive
// the result.
[[nodiscard]] Result<std::vector<LayerSource>> image_layers(ImageSource& source,
                                                            const Manifest& manifest,
                                                            const ImageConfig& config);

// Applies `layers` in order onto `dir` (created if missing), whiteouts applied (kiste unpack).
// `options.whiteouts` and `options.expected_diff_id` are set per layer by this function.
[[nodiscard]] Result<std::vector<ExtractStats>> unpack_layers(const std::vector<LayerSource>& layers,
                                                              const std::filesystem::path& dir,
                                                              const ExtractOptions& options = {});

}  // namespace kiste::image
