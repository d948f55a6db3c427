#pragma once
// Whole releases: promote a set of images (a release's services) so that production never sees
// half a release. Strictly in phases:
//   verify    resolve every source, check --expect-digest and the gate (the signature policy);
//   blobs     copy every blob (cross-repository mounts within one registry);
//   manifests push every manifest by digest (no tag: invisible to anyone pulling by tag);
//   tags      only now move the tags: signature/attestation tags first, then the images' tags,
//             the release index last.
// A failure before the tag phase leaves every destination tag exactly as it was. Manifest bytes
// are copied unchanged, as promote does.
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <kiste/image/copy.hpp>
#include <kiste/image/reference.hpp>
#include <kiste/registry/client.hpp>

namespace kiste::registry {

struct ReleaseItem {
  image::Reference source;
  image::Reference destination;
  std::optional<image::Digest> expect_digest;
  // What `promote --require-rebuild` rebuilds this image from, as the release file gives it
  // (JSON only; paths as written, the caller resolves them). Carried, never read here.
  std::string context;
  std::string containerfile;
  std::vector<std::string> build_args;  // KEY=VALUE, in the file's order
};

// A release file, as a user writes it by hand. Either JSON:
//   [{"source": "REG/staging/api:1.4", "destination": "REG/prod/api:1.4",
//     "expectDigest": "sha256:…"}, …]        (or {"images": [ … ]}; expectDigest optional)
// with, for `promote --require-rebuild`, optional "context": "DIR", "containerfile": "FILE" and
// "buildArgs": {"KEY": "VALUE", …}
// or one image per line, `SOURCE DESTINATION [EXPECT-DIGEST]`, `#` starting a comment.
// References may carry `docker://`. Unknown JSON keys, a destination named twice and an empty
// release are refused; errors name the entry (line or index).
[[nodiscard]] Result<std::vector<ReleaseItem>> parse_release(std::string_view text);
// SRC DEST pairs as given on the command line (an even, non-zero count).
[[nodiscard]] Result<std::vector<ReleaseItem>> release_from_pairs(
    const std::vector<std::string>& args);

enum class ReleasePhase { Verify, Blobs, Manifests, Tags };
[[nodiscard]] std::string_view phase_name(ReleasePhase p);

// One image finished one phase (reported under a lock, in completion order).
struct ReleaseEvent {
  ReleasePhase phase;
  size_t index = 0;  // into the release's items; == count for the release index
  size_t count = 0;  // items
  const image::Reference* source = nullptr;
  const image::Reference* destination = nullptr;
  image::Digest digest = image::Digest::of("");
  image::CopyResult blobs;  // Blobs: this image's own blobs (not its artifacts')
  int artifacts = 0;        // signature/attestation/SBOM tags and referrers carried along
};

struct ReleaseOptions {
  // Carry the `sha256-<hex>.sig/.att/.sbom` tags, the referrers tag schema and OCI referrers.
  bool copy_signatures = true;
  // Images handled at once; each copies its blobs with `blob_jobs` requests.
  int jobs = 8;
  int blob_jobs = 4;
  // Asked in the verify phase for every image, with its source client and digest.
  std::function<Status(Client& src, const ReleaseItem& item, const image::Digest& digest)> gate;
  // Called in the tag phase for each destination (and the release index), after the artifact
  // tags moved and before any image tag does: --sign-by signs here.
  std::function<Status(Client& dst, const image::Reference& dst_ref, const image::Digest& digest)>
      sign;
  // Also write an OCI index of every image (annotated with its destination and source) to this
  // reference; its repository receives every image by digest.
  std::optional<image::Reference> index;
  std::function<void(const ReleaseEvent&)> on_event;
};

// Returns the client for a registry host (owned by the caller, alive for the release).
using ClientFor = std::function<Result<Client*>(const std::string& registry)>;

struct PlannedImage {
  ReleaseItem item;
  image::Digest digest = image::Digest::of("");
  std::string media_type;
  std::vector<std::string> artifact_tags;  // moved along (sha256-<hex>.sig …)
  int referrers = 0;                       // pushed by digest
};

struct ReleaseResult {
  std::vector<PlannedImage> images;
  std::optional<image::Digest> index_digest;
  image::CopyResult blobs;  // totals over every image and artifact
  int artifacts = 0;
  int tags_moved = 0;           // the images' (and the release index's)
  int artifact_tags_moved = 0;  // sha256-<hex>.sig/.att/.sbom and referrers tag schema
};

class Release {
 public:
  // The verify phase: resolves and checks every item (reads only). Clients are looked up here.
  [[nodiscard]] static Result<Release> prepare(std::vector<ReleaseItem> items,
                                               const ClientFor& client_for, ReleaseOptions opts);
  Release(Release&&) noexcept;
  Release& operator=(Release&&) noexcept;
  ~Release();

  [[nodiscard]] const std::vector<PlannedImage>& plan() const;
  // The blob, manifest and tag phases. Called once.
  [[nodiscard]] Result<ReleaseResult> run();

  struct State;

 private:
  explicit Release(std::unique_ptr<State> s);
  std::unique_ptr<State> s_;
};

}  // namespace kiste::registry
