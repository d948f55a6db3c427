#include <kiste/image/blob_writer.hpp>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <kiste/base/interrupt.hpp>
#include <kiste/base/sys.hpp>

namespace kiste::image {

namespace fs = std::filesystem;

namespace {
constexpr size_t kFlushBytes = 1 << 20;
constexpr size_t kDirectWriteBytes = 64 << 10;
}

Result<BlobWriter> BlobWriter::create(const fs::path& tmp_dir, const fs::path& blobs_dir) {
  fs::path tmp = tmp_dir / ("blob-" + sys::random_hex(12));
  KISTE_ASSIGN_OR_RETURN(UniqueFd fd, sys::open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0644));
  // Held until the writer is gone: a lockable tmp file belongs to nobody (a crashed writer).
  if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    Error e = sys_error("lock", tmp.native());
    ::unlink(tmp.c_str());
    return std::unexpected(std::move(e));
  }
  return BlobWriter(std::move(fd), std::move(tmp), blobs_dir);
}

BlobWriter::BlobWriter(UniqueFd fd, fs::path tmp, fs::path blobs_dir)
    : fd_(std::move(fd)), tmp_path_(std::move(tmp)), blobs_dir_(std::move(blobs_dir)) {}

BlobWriter::BlobWriter(BlobWriter&& o) noexcept
    : fd_(std::move(o.fd_)),
      tmp_path_(std::move(o.tmp_path_)),
      blobs_dir_(std::move(o.blobs_dir_)),
      hasher_(std::move(o.hasher_)),
      buf_(std::move(o.buf_)),
      done_(std::exchange(o.done_, true)) {}

BlobWriter& BlobWriter::operator=(BlobWriter&& o) noexcept {
  if (this != &o) {
    discard();
    fd_ = std::move(o.fd_);
    tmp_path_ = std::move(o.tmp_path_);
    blobs_dir_ = std::move(o.blobs_dir_);
    hasher_ = std::move(o.hasher_);
    buf_ = std::move(o.buf_);
    done_ = std::exchange(o.done_, true);
  }
  return *this;
}

BlobWriter::~BlobWriter() { discard(); }

void BlobWriter::discard() {
  if (!done_ && !tmp_path_.empty()) ::unlink(tmp_path_.c_str());
  done_ = true;
  fd_.reset();
}

Status BlobWriter::write(std::string_view bytes) {
  KISTE_CHECK(!done_);
  // Every store write (pull, import, load, a build's layers) streams through here.
  KISTE_TRY(check_interrupted());
  hasher_.update(bytes);
  // Large writes (streamed blobs) go straight through; small ones are batched.
  if (buf_.empty() && bytes.size() >= kDirectWriteBytes) {
    return sys::write_all(fd_.get(), bytes, tmp_path_.native());
  }
  buf_.append(bytes);
  if (buf_.size() >= kFlushBytes) return flush();
  return {};
}

Status BlobWriter::flush() {
  auto r = sys::write_all(fd_.get(), buf_, tmp_path_.native());
  buf_.clear();
  return r;
}

Result<BlobWriter::Committed> BlobWriter::commit(const std::optional<Digest>& expected,
                                                 std::optional<int64_t> expected_size) {
  KISTE_CHECK(!done_);
  if (auto r = flush(); !r) {
    discard();
    return std::unexpected(r.error());
  }
  int64_t size = static_cast<int64_t>(hasher_.bytes());
  Digest got = hasher_.finish();
  if (expected_size && *expected_size != size) {
    discard();
    return failf(Errc::Corrupt, "blob {}: size is {} bytes, expected {}",
                 expected ? expected->str() : got.str(), size, *expected_size);
  }
  if (expected && *expected != got) {
    discard();
    return failf(Errc::Corrupt, "blob {}: content does not match (its digest is {})", *expected,
                 got);
  }
  if (auto r = sys::fsync(fd_.get(), tmp_path_.native()); !r) {
    discard();
    return std::unexpected(r.error());
  }
  fs::path dir = blobs_dir_ / std::string(got.algorithm_name());
  fs::path final_path = dir / std::string(got.hex());
  struct stat st {};
  if (::stat(final_path.c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
    discard();
    return Committed{std::move(got), size, true};
  }
  if (auto r = sys::rename(tmp_path_, final_path); !r) {
    discard();
    return std::unexpected(r.error());
  }
  done_ = true;
  fd_.reset();
  KISTE_TRY(sys::fsync_dir(dir));
  return Committed{std::move(got), size, false};
}

}  // namespace kiste::image
