#pragma once
// Where images come from and go to. One copy routine (copy.hpp) moves an image between any
// source and sink: pull, push, promote, save and load are all copy_image with other ends.
#include <memory>
#include <optional>
#include <string>

#include <kiste/base/error.hpp>
#include <kiste/image/blob_io.hpp>
#include <kiste/image/manifest.hpp>

namespace kiste::image {

// Eager: an ImageSource exists only after its top manifest was fetched and verified.
class ImageSource {
 public:
  virtual ~ImageSource() = default;
  // The manifest or index the reference names.
  [[nodiscard]] virtual const ManifestBlob& top() const = 0;
  // A child manifest of an index (verified against the descriptor's digest and size).
  [[nodiscard]] virtual Result<ManifestBlob> fetch_manifest(const Descriptor& d) = 0;
  // Streams a blob. Readers are not required to verify: copy_image and the sinks do.
  [[nodiscard]] virtual Result<std::unique_ptr<BlobReader>> open_blob(const Descriptor& d) = 0;
  // Streams a blob from `offset` on where the source can (a registry honouring Range); the
  // reader's start_offset() says where it really starts (0 when the source starts over).
  [[nodiscard]] virtual Result<std::unique_ptr<BlobReader>> open_blob_at(const Descriptor& d,
                                                                          uint64_t offset) {
    (void)offset;
    return open_blob(d);
  }
  // For messages: "docker://localhost:5000/a/b:1", "store `/var/lib/kiste` busybox:latest".
  [[nodiscard]] virtual std::string describe() const = 0;
  // Registry host and repository when the blobs live in a registry (for cross-repo mounts).
  [[nodiscard]] virtual std::optional<std::pair<std::string, std::string>> registry_location()
      const {
    return std::nullopt;
  }
};

class ImageSink {
 public:
  virtual ~ImageSink() = default;
  [[nodiscard]] virtual Result<bool> has_blob(const Descriptor& d) = 0;
  // Streams `r` into the sink, verifying digest and size; on mismatch nothing becomes visible.
  [[nodiscard]] virtual Status put_blob(const Descriptor& d, BlobReader& r) = 0;
  // How many bytes of `d` an interrupted earlier put_blob kept (the sink resumes from there
  // when the reader starts at that offset); 0 for sinks that do not resume.
  [[nodiscard]] virtual Result<uint64_t> resume_offset(const Descriptor& d) {
    (void)d;
    return uint64_t{0};
  }
  // Cross-repository mount from `from` (same registry); false when not possible or refused.
  [[nodiscard]] virtual Result<bool> mount_blob(const Descriptor& d, const ImageSource& from) {
    (void)d;
    (void)from;
    return false;
  }
  // Stores a manifest with its exact bytes. `top` is the document the destination name points
  // to; children of an index are stored first, by digest.
  [[nodiscard]] virtual Status put_manifest(const ManifestBlob& m, bool top) = 0;
  [[nodiscard]] virtual std::string describe() const = 0;
};

}  // namespace kiste::image
