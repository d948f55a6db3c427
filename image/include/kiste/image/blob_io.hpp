#pragma once
// Byte streams between stores, archives, registries and the layer engine. Blobs are always
// streamed: nothing here holds a whole blob in memory.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <kiste/base/error.hpp>
#include <kiste/base/unique_fd.hpp>

namespace kiste::image {

class BlobReader {
 public:
  virtual ~BlobReader() = default;
  // Reads up to `len` bytes; 0 means end of stream.
  [[nodiscard]] virtual Result<size_t> read(void* buf, size_t len) = 0;
  // Where in the blob the first byte read() yields lies: 0, or the offset a resumed download
  // (ImageSource::open_blob_at) really starts at.
  [[nodiscard]] virtual uint64_t start_offset() const { return 0; }
};

class ByteSink {
 public:
  virtual ~ByteSink() = default;
  [[nodiscard]] virtual Status write(std::string_view bytes) = 0;
};

// Reads an owned file descriptor.
class FdReader final : public BlobReader {
 public:
  FdReader(UniqueFd fd, std::string what) : fd_(std::move(fd)), what_(std::move(what)) {}
  [[nodiscard]] Result<size_t> read(void* buf, size_t len) override;
  [[nodiscard]] int fd() const { return fd_.get(); }

 private:
  UniqueFd fd_;
  std::string what_;
};

// Reads a string held by the reader (manifests, configs, tests).
class StringReader final : public BlobReader {
 public:
  explicit StringReader(std::string data) : data_(std::move(data)) {}
  [[nodiscard]] Result<size_t> read(void* buf, size_t len) override;

 private:
  std::string data_;
  size_t pos_ = 0;
};

// Writes to a borrowed file descriptor.
class FdSink final : public ByteSink {
 public:
  FdSink(int fd, std::string what) : fd_(fd), what_(std::move(what)) {}
  [[nodiscard]] Status write(std::string_view bytes) override;

 private:
  int fd_;
  std::string what_;
};

// Reads everything (bounded): for manifests and configs, never for layers.
[[nodiscard]] Result<std::string> read_bounded(BlobReader& r, size_t max_bytes,
                                               std::string_view what);

struct HashedStream {
  std::string digest;  // "sha256:…"
  uint64_t size = 0;
};
// Reads `r` to the end, hashing it (sha256 or sha512).
[[nodiscard]] Result<HashedStream> hash_stream(BlobReader& r, bool sha512 = false);

}  // namespace kiste::image
