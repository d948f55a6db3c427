#pragma once
// Build attestations (`kiste build --sbom --provenance`): an SPDX 2.3 SBOM and an in-toto
// Statement v1 with a SLSA provenance v1 predicate, each stored as an OCI 1.1 artifact manifest
// (artifactType, the empty config, the document as its one layer) whose `subject` is the image
// manifest, and recorded as a store-side referrer of it (image::Store::add_referrer). The image
// itself is not touched, so its digest is the one a build without them gives. Every byte comes
// from the build's inputs and SOURCE_DATE_EPOCH: the same inputs give the same digests.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <kiste/base/error.hpp>
#include <kiste/image/descriptor.hpp>
#include <kiste/image/manifest.hpp>
#include <kiste/image/store.hpp>

namespace kiste::builder {

inline constexpr std::string_view kSpdxMediaType = "application/spdx+json";
inline constexpr std::string_view kInTotoMediaType = "application/vnd.in-toto+json";
inline constexpr std::string_view kSlsaProvenanceV1 = "https://slsa.dev/provenance/v1";
inline constexpr std::string_view kKisteBuildType = "https://kiste.dev/build/v1";

// An image a build used (FROM, COPY --from): as written and the manifest digest it resolved to.
struct BaseImageUse {
  std::string ref;
  image::Digest digest = image::Digest::of("");
  friend bool operator==(const BaseImageUse&, const BaseImageUse&) = default;
};

// What the provenance records, and what `promote --require-rebuild` reads back.
struct ProvenanceInputs {
  std::string containerfile;  // its file name as given ("Containerfile", or -f's name)
  image::Digest containerfile_digest = image::Digest::of("");
  std::map<std::string, std::string> build_args;
  std::string target;    // --target, "" for the last stage
  std::string platform;  // os/arch[/variant]
  std::vector<BaseImageUse> base_images;  // in the order the build resolved them, no repeats
  int64_t source_date_epoch = 0;
  std::string builder_id;  // "https://kiste.dev/kiste@<version>"
};

// The in-toto Statement (subject: `name` and the image manifest digest).
[[nodiscard]] std::string provenance_json(std::string_view name, const image::Digest& image,
                                          const ProvenanceInputs& in);
// `promote --attest-rebuild`: an in-toto Statement v1 (predicateType kRebuildPredicate) saying
// that `builder_id` rebuilt `image` from a context whose Containerfile had `containerfile_digest`
// with the inputs of the provenance `provenance` (its manifest digest; none when the image had
// no provenance) and got the same digest.
inline constexpr std::string_view kRebuildPredicate = "https://kiste.dev/rebuild/v1";
[[nodiscard]] std::string rebuild_statement_json(std::string_view name, const image::Digest& image,
                                                 const std::optional<image::Digest>& provenance,
                                                 const ProvenanceInputs& inputs);
// Reads a statement provenance_json wrote (a foreign predicate type is an error).
[[nodiscard]] Result<ProvenanceInputs> parse_provenance(std::string_view json);

struct SbomInputs {
  std::string name;  // the image's name ("" → its digest)
  int64_t source_date_epoch = 0;
  std::string tool;  // "kiste-<version>"
  // The layers of the image made by COPY/ADD in this build: their files are listed.
  std::vector<image::Digest> copied_layers;
};
// The SPDX 2.3 document of a stored image: the packages of its dpkg status and apk installed
// databases and the files of `copied_layers`.
[[nodiscard]] Result<std::string> sbom_json(const image::Store& store,
                                            const image::ManifestBlob& image,
                                            const SbomInputs& in);

// Stores `document` (of `media_type`, also the artifactType) as an artifact manifest whose
// subject is `subject`, and records it as the subject's referrer. Returns its descriptor
// (with artifactType and annotations, as a referrers index lists it).
[[nodiscard]] Result<image::Descriptor> attach_attestation(const image::Store& store,
                                                           const image::Descriptor& subject,
                                                           std::string_view media_type,
                                                           const std::string& document,
                                                           int64_t source_date_epoch);

}  // namespace kiste::builder
