#pragma once
// Streaming (de)compression of layer blobs: gzip (zlib) and zstd, behind the BlobReader/ByteSink
// interfaces so callers never hold a whole layer in memory. The compressors are deterministic:
// gzip writes a fixed header (no name, mtime 0, OS=Unix), zstd always runs in its multi-threaded
// mode (whose output does not depend on the number of workers), so the same input gives the same
// bytes on any machine.

#include <memory>

#include <kiste/base/error.hpp>
#include <kiste/image/blob_io.hpp>
#include <kiste/image/digest.hpp>
#include <kiste/image/media_type.hpp>

namespace kiste::image {

// Wraps `compressed` (borrowed, must outlive the result) into a reader of the decompressed bytes.
// Compression::None returns a pass-through. Corrupt input (bad header, bad checksum, truncated
// stream, trailing garbage) is Errc::Corrupt. Concatenated gzip members / zstd frames are read.
[[nodiscard]] std::unique_ptr<BlobReader> make_decompressor(BlobReader& compressed,
                                                            media_type::Compression c);

struct CompressOptions {
  media_type::Compression compression = media_type::Compression::Gzip;
  // gzip: 1..9 (default 6); zstd: 1..19 (default 3). 0 means the default.
  int level = 0;
  // Compression threads for large layers (0 = one per core, at most 4): pigz-style blocks for
  // gzip, zstd workers. The output does not depend on it.
  int threads = 0;
};

// A sink that compresses into `out` (borrowed). finish() must be called once at the end.
class CompressingSink : public ByteSink {
 public:
  [[nodiscard]] static Result<std::unique_ptr<CompressingSink>> create(ByteSink& out,
                                                                       const CompressOptions& o);
  [[nodiscard]] virtual Status finish() = 0;
};

// Forwards to `out` (borrowed) and hashes/counts what passes.
class HashingSink final : public ByteSink {
 public:
  explicit HashingSink(ByteSink& out) : out_(out) {}
  [[nodiscard]] Status write(std::string_view bytes) override {
    hasher_.update(bytes);
    return out_.write(bytes);
  }
  [[nodiscard]] uint64_t bytes() const { return hasher_.bytes(); }
  [[nodiscard]] Digest finish() { return hasher_.finish(); }

 private:
  ByteSink& out_;
  Hasher hasher_;
};

// A sink that discards (used to compute digests only).
class NullSink final : public ByteSink {
 public:
  [[nodiscard]] Status write(std::string_view) override { return {}; }
};

}  // namespace kiste::image
