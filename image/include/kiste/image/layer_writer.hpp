#pragma once
// Deterministic layer packing: a directory (or an overlay upper dir, see layer_diff.hpp) becomes
// a PAX tar stream with entries in path order (parents first, siblings byte-sorted), owners
// 0:0 with empty names unless asked, no atime/ctime, mtimes clamped to SOURCE_DATE_EPOCH when
// set, compressed with a fixed-header gzip or zstd. The same tree gives the same digest, bit for
// bit. Both digests are computed while streaming; nothing is buffered whole.

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include <kiste/base/error.hpp>
#include <kiste/image/blob_io.hpp>
#include <kiste/image/compression.hpp>
#include <kiste/image/digest.hpp>

namespace kiste::image {

struct PackOptions {
  CompressOptions compress;
  // Clamp every mtime to at most this (seconds since the epoch). See source_date_epoch_from_env().
  std::optional<int64_t> source_date_epoch;
  // Keep the files' uid/gid (default: every entry is 0:0).
  bool keep_owners = false;
  // Record extended attributes (user.*, security.*, trusted.* except overlay's own).
  bool xattrs = true;
};

struct LayerResult {
  Digest digest;           // sha256 of the compressed blob
  uint64_t size = 0;       // compressed size
  Digest diff_id;          // sha256 of the uncompressed tar
  uint64_t tar_size = 0;
  std::string media_type;  // application/vnd.oci.image.layer.v1.tar[+gzip|+zstd]
};

// $SOURCE_DATE_EPOCH as seconds, nullopt when unset; an invalid value is an error.
[[nodiscard]] Result<std::optional<int64_t>> source_date_epoch_from_env();

// Packs the tree below `dir` (not `dir` itself) into `out`.
[[nodiscard]] Result<LayerResult> write_layer(const std::filesystem::path& dir, ByteSink& out,
                                              const PackOptions& options);

}  // namespace kiste::image
