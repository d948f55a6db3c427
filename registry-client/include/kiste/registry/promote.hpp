#pragma once
// The release step: copy an image between repositories (same or another registry) without
// changing a byte. Manifest bytes are copied as they are (an index and every child), blobs are
// mounted across repositories when both live in one registry, and the destination is checked to
// serve the source digest afterwards. Cosign-style `sha256-<hex>.sig/.att/.sbom` tags, the
// referrers tag schema `sha256-<hex>` and OCI referrers travel along.
#include <kiste/image/copy.hpp>
#include <kiste/image/reference.hpp>
#include <kiste/registry/client.hpp>
#include <functional>
#include <optional>

namespace kiste::registry {

struct PromoteOptions {
  // Refuse (nothing tagged, nothing uploaded) unless the source digest equals this.
  std::optional<image::Digest> expect_digest;
  // Copy the signature/attestation/SBOM tags and referrers of the image.
  bool copy_signatures = true;
  int jobs = 6;
  image::CopyProgress* progress = nullptr;
  // Asked with the source client, the reference below and the source's digest before anything is
  // copied (the signature policy and --require-signed-by plug in here).
  std::function<Status(Client& src_client, const image::Digest& digest)> gate;
};

struct PromoteResult {
  image::Digest digest;  // what the destination serves (== the source's)
  image::CopyResult copy;
  int artifacts_copied = 0;  // signature/attestation/SBOM tags and referrers
};

// `src_client` / `dst_client` may be the same object.
[[nodiscard]] Result<PromoteResult> promote(Client& src_client, const image::Reference& src,
                                            Client& dst_client, const image::Reference& dst,
                                            const PromoteOptions& opts = {});

}  // namespace kiste::registry
