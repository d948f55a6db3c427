#pragma once
// Applying an OCI layer (a possibly compressed tar stream) onto a directory, safely.
//
// Layers are hostile input. Every filesystem operation is relative to a directory fd of the
// target root: parents are resolved with sys::open_in_root (openat2 RESOLVE_IN_ROOT, or its
// checked userspace fallback), leaves are created with *at() calls that never follow a symlink
// (O_NOFOLLOW, AT_SYMLINK_NOFOLLOW, linkat without AT_SYMLINK_FOLLOW). Entry names are cleaned
// lexically as if the root were "/", so `..` and absolute names stay inside. libarchive only
// parses the tar; it never writes to disk.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include <kiste/base/error.hpp>
#include <kiste/image/blob_io.hpp>
#include <kiste/image/digest.hpp>
#include <kiste/image/media_type.hpp>

namespace kiste::image {

enum class WhiteoutMode {
  // Flatten onto the directory: `.wh.NAME` deletes NAME, `.wh..wh..opq` deletes the lower
  // children of its directory (kiste unpack, umoci unpack).
  Apply,
  // Keep them for overlayfs: `.wh.NAME` becomes a 0:0 char device, `.wh..wh..opq` sets
  // trusted.overlay.opaque=y on the directory (snapshots used as overlay lowerdirs); in a user
  // namespace other than the initial one (rootless) user.overlay.opaque=y, for `userxattr`.
  Overlay,
};

struct ExtractLimits {
  uint64_t max_entries = 1'000'000;
  size_t max_path_length = 4096;          // bytes, after cleaning
  uint64_t max_total_bytes = 64ull << 30;  // sum of regular file sizes
  uint64_t max_entry_size = 32ull << 30;   // one regular file
};

struct ExtractOptions {
  WhiteoutMode whiteouts = WhiteoutMode::Apply;
  // Device nodes (char/block) in the layer. nullopt: allowed only when running as root.
  // When not allowed, a device entry is an error (it is never silently skipped).
  std::optional<bool> allow_devices;
  // chown entries to the uid/gid in the tar. nullopt: only when running as root.
  std::optional<bool> same_owner;
  ExtractLimits limits;
  // When set, the sha256 of the uncompressed tar stream must equal it; otherwise Errc::Corrupt.
  // Callers that need "nothing visible on mismatch" extract into a temp dir (SnapshotStore does).
  std::optional<Digest> expected_diff_id;
};

struct ExtractStats {
  Digest diff_id;             // sha256 of the uncompressed tar stream
  uint64_t entries = 0;       // tar entries read
  uint64_t bytes = 0;         // regular file bytes written
  uint64_t whiteouts = 0;     // whiteouts and opaque markers seen
};

// Reads `compressed` to its end and applies it onto the directory `root_dirfd` (borrowed).
[[nodiscard]] Result<ExtractStats> extract_layer(BlobReader& compressed,
                                                 media_type::Compression compression,
                                                 int root_dirfd, const ExtractOptions& options);

// What the layer takes once unpacked, as `du -sb` would count it, read from its tar headers
// without writing anything: for images whose layers are not unpacked yet.
[[nodiscard]] Result<int64_t> measure_layer(BlobReader& compressed,
                                            media_type::Compression compression);

// One tar entry as read_layer_entries sees it (nothing is written anywhere).
struct LayerEntry {
  enum class Type { File, Dir, Symlink, Hardlink, Other };
  std::string path;  // cleaned as extraction cleans it: relative, no "..", "" for the root
  Type type = Type::Other;
  uint32_t mode = 0;  // permission bits
  int64_t uid = 0, gid = 0;
  int64_t mtime = 0;
  int64_t size = 0;  // regular files only
  std::string link;  // symlink target or hard link name (as written)
};
// Called once per entry, in tar order; `data` reads the entry's bytes (what is left unread is
// skipped). An error from the visitor stops the walk and is returned.
using LayerEntryVisitor = std::function<Status(const LayerEntry&, BlobReader& data)>;

// Walks the entries of a layer without extracting it; returns the diff_id. Hostile tars get the
// extraction limits on entries and name lengths.
[[nodiscard]] Result<Digest> read_layer_entries(BlobReader& compressed,
                                                media_type::Compression compression,
                                                const LayerEntryVisitor& visit,
                                                const ExtractLimits& limits = {});

}  // namespace kiste::image
