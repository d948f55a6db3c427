#include "local_dir.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <kiste/base/sys.hpp>
#include <kiste/image/digest.hpp>
#include <kiste/image/store.hpp>

namespace kiste::image::detail {

namespace fs = std::filesystem;

Result<UniqueFd> open_directory(const fs::path& dir) {
  return sys::open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

Result<UniqueFd> open_regular_in(int rootfd, std::string_view rel, std::string_view what) {
  auto fd = sys::open_in_root(rootfd, rel, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (!fd) {
    if (fd.error().sys_errno == ENOENT) {
      return failf(Errc::NotFound, "{}: {} is missing", what, quote(rel));
    }
    return std::unexpected(std::move(fd).error().with_context(std::string(what)));
  }
  KISTE_ASSIGN_OR_RETURN(struct stat st, sys::fstat(fd->get(), rel));
  if (!S_ISREG(st.st_mode)) {
    return failf(Errc::Corrupt, "{}: {} is not a regular file", what, quote(rel));
  }
  // Back to blocking reads (O_NONBLOCK only kept a FIFO from hanging the open).
  int fl = ::fcntl(fd->get(), F_GETFL);
  if (fl >= 0) ::fcntl(fd->get(), F_SETFL, fl & ~O_NONBLOCK);
  return std::move(*fd);
}

Result<std::string> read_small_in(int rootfd, std::string_view rel, size_t max,
                                  std::string_view what) {
  KISTE_ASSIGN_OR_RETURN(UniqueFd fd, open_regular_in(rootfd, rel, what));
  auto bytes = sys::read_all(fd.get(), rel, max);
  if (!bytes) {
    return failf(Errc::Corrupt, "{}: {}: {}", what, quote(rel), bytes.error().message);
  }
  return std::move(*bytes);
}

Result<ManifestBlob> read_manifest_in(int rootfd, std::string_view rel, const Descriptor& d,
                                      std::string_view what) {
  if (d.size > static_cast<int64_t>(kMaxManifestBytes)) {
    return failf(Errc::Corrupt, "{}: manifest {} of {} bytes is over the limit", what, d.digest,
                 d.size);
  }
  KISTE_ASSIGN_OR_RETURN(std::string bytes, read_small_in(rootfd, rel, kMaxManifestBytes, what));
  if (static_cast<int64_t>(bytes.size()) != d.size) {
    return failf(Errc::Corrupt, "{}: manifest {} has {} bytes, its descriptor says {}", what,
                 d.digest, bytes.size(), d.size);
  }
  Digest got = Digest::of(bytes, d.digest.algorithm());
  if (got != d.digest) {
    return failf(Errc::Corrupt, "{}: manifest {} does not match its content (digest {})", what,
                 d.digest, got);
  }
  return with_context(parse_manifest(std::move(bytes), d.media_type),
                      fmt::format("{}: manifest {}", what, d.digest));
}

namespace {

// Hashes what passes through on its way into a file.
class HashingFileSink final : public ByteSink {
 public:
  HashingFileSink(int fd, std::string what, DigestAlgorithm alg)
      : fd_(fd), what_(std::move(what)), hasher_(alg) {}
  Status write(std::string_view bytes) override {
    hasher_.update(bytes);
    return sys::write_all(fd_, bytes, what_);
  }
  Hasher& hasher() { return hasher_; }

 private:
  int fd_;
  std::string what_;
  Hasher hasher_;
};

}  // namespace

Status write_verified(const fs::path& dir, const std::string& name, const Descriptor& d,
                      BlobReader& r) {
  fs::path tmp = dir / (".kiste-tmp-" + sys::random_hex(8));
  KISTE_ASSIGN_OR_RETURN(UniqueFd fd,
                         sys::open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
  struct Unlink {
    fs::path p;
    bool armed = true;
    ~Unlink() {
      if (armed) ::unlink(p.c_str());
    }
  } guard{tmp};
  HashingFileSink sink(fd.get(), tmp.native(), d.digest.algorithm());
  KISTE_ASSIGN_OR_RETURN(uint64_t n, pump(r, sink));
  if (static_cast<int64_t>(n) != d.size) {
    return failf(Errc::Corrupt, "blob {}: size is {} bytes, expected {}", d.digest, n, d.size);
  }
  Digest got = sink.hasher().finish();
  if (got != d.digest) {
    return failf(Errc::Corrupt, "blob {}: content does not match (its digest is {})", d.digest,
                 got);
  }
  KISTE_TRY(sys::fsync(fd.get(), tmp.native()));
  KISTE_TRY(sys::rename(tmp, dir / name));
  guard.armed = false;
  return sys::fsync_dir(dir);
}

Result<bool> missing_or_empty(const fs::path& dir) {
  auto st = sys::lstat(dir);
  if (!st) {
    if (st.error().sys_errno == ENOENT) return true;
    return std::unexpected(std::move(st).error());
  }
  if (!S_ISDIR(st->st_mode)) {
    return failf(Errc::InvalidArgument, "{} is not a directory", quote(dir.native()));
  }
  KISTE_ASSIGN_OR_RETURN(UniqueFd fd, open_directory(dir));
  KISTE_ASSIGN_OR_RETURN(auto names, sys::list_dir(fd.get(), dir.native()));
  return names.empty();
}

}  // namespace kiste::image::detail
