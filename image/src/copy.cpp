#include <kiste/image/copy.hpp>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <thread>

#include <kiste/image/image_config.hpp>
#include <kiste/image/media_type.hpp>

namespace kiste::image {

namespace {

constexpr int kBlobAttempts = 3;

// Counts bytes for progress as they stream through.
class CountingReader final : public BlobReader {
 public:
  CountingReader(BlobReader& inner, const Descriptor& d, CopyProgress* p, uint64_t& total)
      : inner_(inner), d_(d), p_(p), total_(total) {}
  Result<size_t> read(void* buf, size_t len) override {
    auto n = inner_.read(buf, len);
    if (n && *n > 0) {
      total_ += *n;
      if (p_ != nullptr) p_->blob_bytes(d_, *n);
    }
    return n;
  }

 private:
  BlobReader& inner_;
  const Descriptor& d_;
  CopyProgress* p_;
  uint64_t& total_;
};

class Copier {
 public:
  Copier(ImageSource& src, ImageSink& dst, const CopyOptions& opts)
      : src_(src), dst_(dst), opts_(opts) {}

  Status copy_blob(const Descriptor& d, CopyResult& res, std::mutex& mu) {
    if (opts_.progress != nullptr) opts_.progress->blob_started(d);
    auto done = [&](CopyProgress::Outcome o) {
      if (opts_.progress != nullptr) opts_.progress->blob_done(d, o);
    };
    KISTE_ASSIGN_OR_RETURN(bool present, dst_.has_blob(d));
    if (present) {
      std::lock_guard l(mu);
      ++res.blobs_existing;
      done(CopyProgress::Outcome::Exists);
      return {};
    }
    KISTE_ASSIGN_OR_RETURN(bool mounted, dst_.mount_blob(d, src_));
    if (mounted) {
      std::lock_guard l(mu);
      ++res.blobs_mounted;
      done(CopyProgress::Outcome::Mounted);
      return {};
    }
    // A transfer that failed for a retryable reason (Errc::Unavailable: connection lost, 5xx,
    // 429 after the transport's own retries) is started over from a fresh reader: a streamed
    // upload cannot be rewound inside the transport.
    uint64_t n = 0;
    for (int attempt = 1;; ++attempt) {
      KISTE_ASSIGN_OR_RETURN(auto reader, src_.open_blob(d));
      n = 0;
      CountingReader counting(*reader, d, opts_.progress, n);
      auto put = dst_.put_blob(d, counting);
      if (put) break;
      if (put.error().code != Errc::Unavailable || attempt >= kBlobAttempts) {
        return std::unexpected(std::move(put).error());
      }
    }
    std::lock_guard l(mu);
    ++res.blobs_copied;
    res.bytes_copied += n;
    done(CopyProgress::Outcome::Copied);
    return {};
  }

  // Copies the config and layers of one manifest with `jobs` workers.
  Status copy_blobs(const Manifest& m, CopyResult& res) {
    std::vector<const Descriptor*> blobs;
    blobs.push_back(&m.config);
    for (const auto& l : m.layers) {
      bool dup = std::any_of(blobs.begin(), blobs.end(),
                             [&](const Descriptor* b) { return b->digest == l.digest; });
      if (!dup) blobs.push_back(&l);
    }
    std::mutex mu;
    std::atomic<size_t> next{0};
    std::atomic<bool> failed{false};
    std::optional<Error> first_error;
    auto worker = [&] {
      for (;;) {
        size_t i = next.fetch_add(1);
        if (i >= blobs.size() || failed.load()) return;
        auto r = copy_blob(*blobs[i], res, mu);
        if (!r) {
          std::lock_guard l(mu);
          if (!first_error) first_error = std::move(r).error();
          failed = true;
          return;
        }
      }
    };
    size_t n = std::clamp<size_t>(static_cast<size_t>(std::max(opts_.jobs, 1)), 1, blobs.size());
    std::vector<std::jthread> threads;
    for (size_t t = 1; t < n; ++t) threads.emplace_back(worker);
    worker();
    threads.clear();  // joins
    if (first_error) return std::unexpected(std::move(*first_error));
    return {};
  }

  Status copy_tree(const ManifestBlob& m, bool top, int indexes_above, CopyResult& res) {
    KISTE_TRY(ManifestWalk::check_depth(m, indexes_above));
    if (m.is_index()) {
      for (const auto& child : m.index().manifests) {
        if (!media_type::is_manifest(child.media_type) && !media_type::is_index(child.media_type)) {
          continue;
        }
        KISTE_ASSIGN_OR_RETURN(bool fresh, walk_.enter(child));
        if (!fresh) continue;  // named twice: copied once
        KISTE_ASSIGN_OR_RETURN(ManifestBlob cm, src_.fetch_manifest(child));
        KISTE_TRY(copy_tree(cm, false, indexes_above + 1, res));
      }
    } else {
      KISTE_TRY(copy_blobs(m.manifest(), res));
    }
    return dst_.put_manifest(m, top);
  }

  Result<CopyResult> run() {
    CopyResult res;
    const ManifestBlob& top = src_.top();
    if (top.is_index() && !opts_.all) {
      Platform want = opts_.platform.value_or(Platform::host());
      KISTE_ASSIGN_OR_RETURN(Descriptor d, select_platform(top.index(), want));
      KISTE_ASSIGN_OR_RETURN(ManifestBlob child, src_.fetch_manifest(d));
      KISTE_TRY(copy_tree(child, true, 1, res));
      res.top = std::move(child);
    } else {
      KISTE_TRY(copy_tree(top, true, 0, res));
      res.top = top;
    }
    return res;
  }

 private:
  ImageSource& src_;
  ImageSink& dst_;
  const CopyOptions& opts_;
  ManifestWalk walk_;
};

Status validate_blob(ImageSource& src, const Descriptor& d) {
  KISTE_ASSIGN_OR_RETURN(auto r, src.open_blob(d));
  KISTE_ASSIGN_OR_RETURN(HashedStream hs, hash_stream(*r, d.digest.algorithm() == DigestAlgorithm::Sha512));
  int64_t size = static_cast<int64_t>(hs.size);
  const std::string& got = hs.digest;
  if (got != d.digest.str()) return failf(Errc::Corrupt, "blob {}: content has digest {}", d.digest, got);
  if (size != d.size) {
    return failf(Errc::Corrupt, "blob {}: {} bytes, descriptor says {}", d.digest, size, d.size);
  }
  return {};
}

Status validate_tree(ImageSource& src, const ManifestBlob& m, int indexes_above,
                     ManifestWalk& walk) {
  KISTE_TRY(ManifestWalk::check_depth(m, indexes_above));
  if (m.is_index()) {
    for (const auto& child : m.index().manifests) {
      if (!media_type::is_manifest(child.media_type) && !media_type::is_index(child.media_type)) {
        continue;
      }
      KISTE_ASSIGN_OR_RETURN(bool fresh, walk.enter(child));
      if (!fresh) continue;
      KISTE_ASSIGN_OR_RETURN(ManifestBlob cm, src.fetch_manifest(child));
      if (cm.digest != child.digest) {
        return failf(Errc::Corrupt, "manifest {}: content has digest {}", child.digest, cm.digest);
      }
      KISTE_TRY(validate_tree(src, cm, indexes_above + 1, walk));
    }
    return {};
  }
  const Manifest& man = m.manifest();
  KISTE_TRY(validate_blob(src, man.config));
  if (media_type::is_config(man.config.media_type)) {
    KISTE_ASSIGN_OR_RETURN(auto r, src.open_blob(man.config));
    KISTE_ASSIGN_OR_RETURN(std::string bytes, read_bounded(*r, kMaxManifestBytes, "config"));
    KISTE_ASSIGN_OR_RETURN(ImageConfig cfg, ImageConfig::parse(bytes));
    size_t layers = std::count_if(man.layers.begin(), man.layers.end(), [](const Descriptor& d) {
      return media_type::is_layer(d.media_type);
    });
    if (cfg.diff_ids.size() != layers) {
      return failf(Errc::Corrupt, "image {}: config lists {} diff_ids for {} layers", m.digest,
                   cfg.diff_ids.size(), layers);
    }
  }
  for (const auto& l : man.layers) KISTE_TRY(validate_blob(src, l));
  return {};
}

}  // namespace

Result<CopyResult> copy_image(ImageSource& src, ImageSink& dst, const CopyOptions& opts) {
  Copier c(src, dst, opts);
  return with_context(c.run(), fmt::format("copy {} to {}", src.describe(), dst.describe()));
}

Result<CopyProgress::Outcome> copy_blob(ImageSource& src, ImageSink& dst, const Descriptor& d,
                                        const CopyOptions& opts) {
  CopyResult res;
  std::mutex mu;
  KISTE_TRY(Copier(src, dst, opts).copy_blob(d, res, mu));
  if (res.blobs_existing > 0) return CopyProgress::Outcome::Exists;
  if (res.blobs_mounted > 0) return CopyProgress::Outcome::Mounted;
  return CopyProgress::Outcome::Copied;
}

Status validate_image(ImageSource& src) {
  ManifestWalk walk;
  return with_context(validate_tree(src, src.top(), 0, walk),
                      fmt::format("validate {}", src.describe()));
}

}  // namespace kiste::image
