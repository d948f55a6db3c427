// A blob download that survives dropped connections: it resumes with `Range: bytes=<off>-`
// and hands the bytes on unhashed; the sink verifies the whole digest at the end.
#include <kiste/base/log.hpp>
#include <kiste/registry/errors.hpp>

#include "client_impl.hpp"

namespace kiste::registry {

namespace {

class RemoteBlobReader final : public image::BlobReader {
 public:
  RemoteBlobReader(Client::Impl& c, std::string repo, image::Descriptor d, uint64_t offset)
      : c_(c),
        repo_(std::move(repo)),
        d_(std::move(d)),
        what_(fmt::format("get blob {} from `{}/{}`", d_.digest, c_.registry, repo_)),
        off_(offset),
        start_(offset) {}

  Status open() {
    Call call{.target = fmt::format("/v2/{}/blobs/{}", repo_, d_.digest.str()),
              .scopes = {repository_scope(repo_, false)},
              .what = what_,
              .blob_body = true};
    if (off_ > 0) call.headers.push_back(fmt::format("Range: bytes={}-", off_));
    KISTE_ASSIGN_OR_RETURN(t_, c_.send(call, {200, 206}));
    if (off_ > 0 && t_->status() == 206) {
      // Content-Range: bytes <first>-<last>/<size>
      auto cr = t_->head().header("content-range").value_or("");
      uint64_t first = 0;
      if (std::sscanf(cr.c_str(), "bytes %lu-", &first) != 1 || first != off_) {
        return failf(Errc::Corrupt, "{}: resumed at {} but the registry sent range {}", what_, off_,
                     quote(cr));
      }
    } else if (off_ > 0 && !opened_) {
      // A resume the registry ignored (200): start over rather than download the kept bytes
      // only to skip them; the sink truncates what it kept.
      off_ = start_ = 0;
    } else if (off_ > 0) {
      // The registry ignored Range: skip what we already have.
      uint64_t skip = off_;
      char buf[64 * 1024];
      while (skip > 0) {
        KISTE_ASSIGN_OR_RETURN(size_t n, t_->read(buf, std::min<uint64_t>(skip, sizeof buf)));
        if (n == 0) return failf(Errc::Unavailable, "{}: ended before offset {}", what_, off_);
        skip -= n;
      }
    }
    opened_ = true;
    return {};
  }

  [[nodiscard]] uint64_t start_offset() const override { return start_; }

  Result<size_t> read(void* buf, size_t len) override {
    const uint64_t size = static_cast<uint64_t>(d_.size);
    for (int failures = 0;;) {
      Result<size_t> r = 0;
      if (!t_) {
        auto o = open();
        if (!o) r = std::unexpected(std::move(o).error());
      }
      if (r && t_) r = t_->read(buf, len);
      if (r) {
        if (*r == 0 && off_ < size) {
          r = failf(Errc::Unavailable, "{}: connection ended at {} of {} bytes", what_, off_, size);
        } else {
          off_ += *r;
          c_.stats.down += *r;
          if (off_ > size) {
            return failf(Errc::Corrupt, "{}: more than the {} bytes the descriptor says", what_,
                         size);
          }
          if (*r == 0) t_.reset();
          return r;
        }
      }
      t_.reset();
      Error e = std::move(r).error();
      if (!is_retryable(e) || ++failures >= c_.opts.retry.attempts) {
        return std::unexpected(std::move(e));
      }
      log::debug("{}: {}; resuming at byte {}", what_, e.to_string(), off_);
      c_.backoff(failures, std::nullopt, e);
    }
  }

 private:
  Client::Impl& c_;
  std::string repo_;
  image::Descriptor d_;
  std::string what_;
  uint64_t off_ = 0;
  uint64_t start_ = 0;   // where the first byte read() yields lies in the blob
  bool opened_ = false;  // a first response arrived (later ones are reconnections)
  std::unique_ptr<detail::Transfer> t_;
};

}  // namespace

Result<std::unique_ptr<image::BlobReader>> open_remote_blob(Client::Impl& c, std::string repo,
                                                            const image::Descriptor& d,
                                                            uint64_t offset) {
  auto r = std::make_unique<RemoteBlobReader>(c, std::move(repo), d, offset);
  KISTE_TRY(r->open());  // errors like BLOB_UNKNOWN surface here, not mid-copy
  return std::unique_ptr<image::BlobReader>(std::move(r));
}

}  // namespace kiste::registry
