#pragma once
#include <filesystem>
#include <optional>

#include <kiste/base/error.hpp>
#include <kiste/base/unique_fd.hpp>
#include <kiste/image/blob_io.hpp>
#include <kiste/image/digest.hpp>

namespace kiste::image {

// Writes a blob into `tmp/` while hashing it; commit() verifies digest and size, fsyncs, renames
// into `blobs/<alg>/<hex>` and fsyncs the directory. Until then nothing is visible under blobs/;
// an uncommitted writer unlinks its file. The file is flock'ed while open so fsck/prune can tell
// a live writer's file from a crashed one's.
class BlobWriter final : public ByteSink {
 public:
  [[nodiscard]] static Result<BlobWriter> create(const std::filesystem::path& tmp_dir,
                                                 const std::filesystem::path& blobs_dir);
  // A resumable download of `digest`: `tmp/partial-<alg>-<hex>`, whose first `keep` bytes (if
  // it has them) are kept and re-hashed; the rest is truncated. Unlike create(), a writer that
  // is destroyed uncommitted leaves its file for the next resume (prune removes it once no one
  // holds it); a digest or size mismatch at commit still removes it. When another process holds
  // that file, this is a plain create().
  [[nodiscard]] static Result<BlobWriter> resume(const std::filesystem::path& tmp_dir,
                                                 const std::filesystem::path& blobs_dir,
                                                 const Digest& digest, uint64_t keep);
  // Bytes an unheld partial download of `digest` holds (0 when there is none).
  [[nodiscard]] static Result<uint64_t> partial_size(const std::filesystem::path& tmp_dir,
                                                     const Digest& digest);
  BlobWriter(BlobWriter&&) noexcept;
  BlobWriter& operator=(BlobWriter&&) noexcept;
  ~BlobWriter() override;

  [[nodiscard]] Status write(std::string_view bytes) override;
  struct Committed {
    Digest digest;
    int64_t size;
    bool existed;  // the store already had this blob; nothing new became visible
  };
  // `expected`/`expected_size` are checked when given; on mismatch the file is discarded.
  [[nodiscard]] Result<Committed> commit(const std::optional<Digest>& expected = std::nullopt,
                                         std::optional<int64_t> expected_size = std::nullopt);
  [[nodiscard]] uint64_t bytes_written() const { return hasher_.bytes(); }

 private:
  BlobWriter(UniqueFd fd, std::filesystem::path tmp, std::filesystem::path blobs_dir);
  void discard();
  [[nodiscard]] Status flush();

  UniqueFd fd_;
  std::filesystem::path tmp_path_;
  std::filesystem::path blobs_dir_;
  Hasher hasher_;
  std::string buf_;  // small writes are batched into ~1 MiB write(2) calls
  bool done_ = false;
  bool keep_partial_ = false;  // resume(): an uncommitted file stays for the next resume
};

}  // namespace kiste::image
