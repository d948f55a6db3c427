#include <kiste/image/staged_blobs.hpp>

#include <algorithm>
#include <cerrno>

#include <kiste/base/log.hpp>
#include <kiste/base/sys.hpp>
#include <kiste/image/store_ops.hpp>

namespace kiste::image {

StagedBlobs::~StagedBlobs() {
  if (done_) return;
  if (auto r = roll_back(); !r) {
    log::warn("{} (left for `kiste prune`)", r.error().to_string());
  }
}

void StagedBlobs::add(const Digest& d) {
  std::lock_guard l(mu_);
  added_.push_back(d);
}

void StagedBlobs::commit() {
  std::lock_guard l(mu_);
  done_ = true;
}

std::vector<Digest> StagedBlobs::staged() const {
  std::lock_guard l(mu_);
  return added_;
}

Status StagedBlobs::roll_back() {
  std::lock_guard l(mu_);
  done_ = true;
  if (added_.empty()) return {};
  KISTE_ASSIGN_OR_RETURN(std::vector<Digest> keep,
                         with_context(reachable_blobs(store_, nullptr),
                                      fmt::format("roll back {} staged blobs", added_.size())));
  std::optional<Error> first;
  for (const auto& d : added_) {
    if (std::find(keep.begin(), keep.end(), d) != keep.end()) continue;
    auto r = sys::unlink(store_.blob_path(d));
    if (!r && r.error().sys_errno != ENOENT && !first) first = std::move(r).error();
  }
  added_.clear();
  if (first) return std::unexpected(std::move(*first));
  return {};
}

Status StagedStoreSink::put_blob(const Descriptor& d, BlobReader& r) {
  bool had = store_.has_blob(d.digest);
  KISTE_TRY(inner_.put_blob(d, r));
  if (!had) staged_.add(d.digest);
  return {};
}

Status StagedStoreSink::put_manifest(const ManifestBlob& m, bool top) {
  bool had = store_.has_blob(m.digest);
  KISTE_TRY(inner_.put_manifest(m, top));
  if (!had) staged_.add(m.digest);
  return {};
}

}  // namespace kiste::image
