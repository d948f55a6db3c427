#include <kiste/image/blob_io.hpp>

#include <algorithm>
#include <cstring>

#include <kiste/base/sys.hpp>
#include <kiste/image/digest.hpp>

namespace kiste::image {

Result<size_t> FdReader::read(void* buf, size_t len) {
  return sys::read_some(fd_.get(), buf, len, what_);
}

Result<size_t> StringReader::read(void* buf, size_t len) {
  size_t n = std::min(len, data_.size() - pos_);
  std::memcpy(buf, data_.data() + pos_, n);
  pos_ += n;
  return n;
}

Status FdSink::write(std::string_view bytes) { return sys::write_all(fd_, bytes, what_); }

Result<std::string> read_bounded(BlobReader& r, size_t max_bytes, std::string_view what) {
  std::string out;
  char buf[65536];
  for (;;) {
    KISTE_ASSIGN_OR_RETURN(size_t n, r.read(buf, sizeof buf));
    if (n == 0) return out;
    if (out.size() + n > max_bytes) {
      return failf(Errc::InvalidArgument, "read {}: larger than the limit of {} bytes",
                   quote(what), max_bytes);
    }
    out.append(buf, n);
  }
}

Result<HashedStream> hash_stream(BlobReader& r, bool sha512) {
  Hasher h(sha512 ? DigestAlgorithm::Sha512 : DigestAlgorithm::Sha256);
  std::string buf(1 << 20, '\0');
  for (;;) {
    KISTE_ASSIGN_OR_RETURN(size_t n, r.read(buf.data(), buf.size()));
    if (n == 0) break;
    h.update(buf.data(), n);
  }
  uint64_t size = h.bytes();
  return HashedStream{h.finish().str(), size};
}

}  // namespace kiste::image
