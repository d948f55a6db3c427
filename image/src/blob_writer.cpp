#include <kiste/image/blob_writer.hpp>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

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

namespace {
fs::path partial_path(const fs::path& tmp_dir, const Digest& digest) {
  return tmp_dir / fmt::format("partial-{}-{}", digest.algorithm_name(), digest.hex());
}
}  // namespace

Result<uint64_t> BlobWriter::partial_size(const fs::path& tmp_dir, const Digest& digest) {
  const fs::path p = partial_path(tmp_dir, digest);
  const int fd = ::open(p.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return uint64_t{0};
    return std::unexpected(sys_error("open", p.native()));
  }
  UniqueFd guard(fd);
  struct stat st {};
  if (::fstat(fd, &st) != 0) return std::unexpected(sys_error("stat", p.native()));
  // Held by a live download of the same blob: that one resumes it, not us.
  if (!S_ISREG(st.st_mode) || ::flock(fd, LOCK_SH | LOCK_NB) != 0) return uint64_t{0};
  return static_cast<uint64_t>(st.st_size);
}

Result<BlobWriter> BlobWriter::resume(const fs::path& tmp_dir, const fs::path& blobs_dir,
                                      const Digest& digest, uint64_t keep) {
  const fs::path p = partial_path(tmp_dir, digest);
  KISTE_ASSIGN_OR_RETURN(UniqueFd fd, sys::open(p, O_RDWR | O_CREAT | O_NOFOLLOW, 0644));
  if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno != EWOULDBLOCK) return std::unexpected(sys_error("lock", p.native()));
    return create(tmp_dir, blobs_dir);  // another process downloads this blob right now
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return std::unexpected(sys_error("stat", p.native()));
  if (!S_ISREG(st.st_mode)) return failf(Errc::Corrupt, "{}: not a regular file", quote(p.native()));
  BlobWriter w(std::move(fd), p, blobs_dir);
  w.keep_partial_ = true;
  if (static_cast<uint64_t>(st.st_size) < keep) {
    // Changed since partial_size(): the reader starts at an offset we no longer have.
    return failf(Errc::Unavailable, "{}: holds {} bytes, not the {} to resume from",
                 quote(p.native()), st.st_size, keep);
  }
  // The kept prefix is hashed again: the digest is checked over the whole blob at commit.
  if (keep > 0) {
    std::string buf(1 << 20, '\0');
    uint64_t off = 0;
    while (off < keep) {
      const size_t want = static_cast<size_t>(std::min<uint64_t>(buf.size(), keep - off));
      const ssize_t n = ::pread(w.fd_.get(), buf.data(), want, static_cast<off_t>(off));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return std::unexpected(sys_error("read", p.native()));
      w.hasher_.update(std::string_view(buf.data(), static_cast<size_t>(n)));
      off += static_cast<uint64_t>(n);
    }
  }
  if (::ftruncate(w.fd_.get(), static_cast<off_t>(keep)) != 0 ||
      ::lseek(w.fd_.get(), static_cast<off_t>(keep), SEEK_SET) < 0) {
    return std::unexpected(sys_error("truncate", p.native()));
  }
  return w;
}

BlobWriter::BlobWriter(UniqueFd fd, fs::path tmp, fs::path blobs_dir)
    : fd_(std::move(fd)), tmp_path_(std::move(tmp)), blobs_dir_(std::move(blobs_dir)) {}

BlobWriter::BlobWriter(BlobWriter&& o) noexcept
    : fd_(std::move(o.fd_)),
      tmp_path_(std::move(o.tmp_path_)),
      blobs_dir_(std::move(o.blobs_dir_)),
      hasher_(std::move(o.hasher_)),
      buf_(std::move(o.buf_)),
      done_(std::exchange(o.done_, true)),
      keep_partial_(o.keep_partial_) {}

BlobWriter& BlobWriter::operator=(BlobWriter&& o) noexcept {
  if (this != &o) {
    discard();
    fd_ = std::move(o.fd_);
    tmp_path_ = std::move(o.tmp_path_);
    blobs_dir_ = std::move(o.blobs_dir_);
    hasher_ = std::move(o.hasher_);
    buf_ = std::move(o.buf_);
    done_ = std::exchange(o.done_, true);
    keep_partial_ = o.keep_partial_;
  }
  return *this;
}

BlobWriter::~BlobWriter() {
  if (!done_ && keep_partial_) {
    // Interrupted: what arrived stays (a prefix of the blob) for the next resume.
    if (!buf_.empty()) (void)flush();
    done_ = true;
    fd_.reset();
    return;
  }
  discard();
}

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
