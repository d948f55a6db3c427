#pragma once
#include <atomic>
#include <cstdint>
#include <optional>

#include <kiste/image/image_source.hpp>
#include <kiste/image/platform.hpp>

namespace kiste::image {

// Progress callbacks; called from worker threads (implementations must be thread-safe).
class CopyProgress {
 public:
  virtual ~CopyProgress() = default;
  virtual void blob_started(const Descriptor& d) { (void)d; }
  // Unpacking a layer (run): layer `index` (1-based) of `count` starts; blob_bytes (compressed
  // bytes read) and blob_done follow as for a copy.
  virtual void layer_started(const Descriptor& d, size_t index, size_t count) {
    (void)index;
    (void)count;
    blob_started(d);
  }
  virtual void blob_bytes(const Descriptor& d, uint64_t n) {
    (void)d;
    (void)n;
  }
  enum class Outcome { Copied, Exists, Mounted };
  virtual void blob_done(const Descriptor& d, Outcome o) {
    (void)d;
    (void)o;
  }
};

struct CopyOptions {
  // For an index without `all`: the platform to select (default: the host's).
  std::optional<Platform> platform;
  // Keep the whole index and copy every child.
  bool all = false;
  // Parallel blob transfers.
  int jobs = 4;
  CopyProgress* progress = nullptr;
};

struct CopyResult {
  ManifestBlob top;  // what the destination now names (the index, or the selected manifest)
  int blobs_copied = 0;
  int blobs_existing = 0;
  int blobs_mounted = 0;
  uint64_t bytes_copied = 0;
  // Set by registry::copy between the store, archives and OCI layouts: the image's store-side
  // referrers (attestations) carried along, and those the destination cannot hold
  // (docker-archive, dir:).
  int referrers_copied = 0;
  int referrers_left_out = 0;
};

// Copies manifests byte for byte; blobs are skipped when present, mounted when possible, and
// streamed otherwise. Never re-serialises or recompresses anything.
[[nodiscard]] Result<CopyResult> copy_image(ImageSource& src, ImageSink& dst,
                                            const CopyOptions& opts = {});

// Copies one blob the way copy_image does (skipped when present, mounted when possible, else
// streamed and verified by the sink, retried on Errc::Unavailable); for a build cache's layers.
[[nodiscard]] Result<CopyProgress::Outcome> copy_blob(ImageSource& src, ImageSink& dst,
                                                      const Descriptor& d,
                                                      const CopyOptions& opts = {});

// Checks every manifest, config and blob reachable from src.top(): digests, sizes, config
// parse, one diff_id per layer.
[[nodiscard]] Status validate_image(ImageSource& src);

}  // namespace kiste::image
