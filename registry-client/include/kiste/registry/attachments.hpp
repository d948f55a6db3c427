#pragma once
// Attachments in the cosign tag layout: a manifest tagged `sha256-<hex>.sig` (or .att) in the
// image's repository whose layers are small blobs (a signature payload each) with annotations.
// registry-client only fetches and stores them; trust/ decides what they are worth.
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <kiste/base/error.hpp>
#include <kiste/image/digest.hpp>
#include <kiste/registry/client.hpp>

namespace kiste::registry {

struct AttachedLayer {
  std::string bytes;  // the blob, verified against its digest
  std::map<std::string, std::string> annotations;
};

// The layers of media type `media_type` of the manifest at `tag` (none when the tag is absent);
// each blob at most `max_bytes`, at most 256 of them.
[[nodiscard]] Result<std::vector<AttachedLayer>> fetch_attached_layers(
    Client& c, std::string_view repo, std::string_view tag, std::string_view media_type,
    size_t max_bytes);

// Adds one layer (`bytes` with `annotations`) to the manifest at `tag`, keeping the layers already
// there (other signers' signatures), or makes that manifest. A layer already present with the same
// digest and annotations is not added twice. Returns the manifest digest now at `tag`.
[[nodiscard]] Result<image::Digest> append_attached_layer(
    Client& c, std::string_view repo, std::string_view tag, std::string_view media_type,
    const std::string& bytes, const std::map<std::string, std::string>& annotations);

// After an artifact manifest whose `subject` is `subject` was pushed to `repo`: a registry with
// the referrers API lists it by itself; one without gets it added to the referrers tag schema
// index at `<alg>-<hex>` (distribution-spec 1.1), keeping the entries already there. `artifact`
// carries the manifest's artifactType and annotations. Returns whether the tag was used.
[[nodiscard]] Result<bool> register_referrer(Client& c, std::string_view repo,
                                             const image::Digest& subject,
                                             const image::Descriptor& artifact);

// Pushes `document` to `repo` as an OCI 1.1 artifact manifest (artifactType `media_type`, the
// empty config, the document as its one layer, `subject`), by digest, and registers it as a
// referrer of the subject (register_referrer). Returns its descriptor as a referrers index
// lists it.
[[nodiscard]] Result<image::Descriptor> push_artifact(
    Client& c, std::string_view repo, const image::Descriptor& subject, std::string_view media_type,
    const std::string& document, const std::map<std::string, std::string>& annotations);

// Pushes an OCI 1.1 artifact manifest (artifactType `artifact_type`, the empty config, `layer` as
// its one layer with the layer's annotations, `subject`) to `repo` by digest and registers it as
// a referrer of the subject (register_referrer): the shape cosign's
// `--registry-referrers-mode=oci-1-1` gives a signature. Returns its descriptor.
[[nodiscard]] Result<image::Descriptor> push_referrer_layer(Client& c, std::string_view repo,
                                                            const image::Descriptor& subject,
                                                            std::string_view artifact_type,
                                                            std::string_view layer_media_type,
                                                            const AttachedLayer& layer);

// The layers of media type `layer_media_type` of every referrer of `subject` in `repo` whose
// artifactType is one of `artifact_types` (referrers API, else the referrers tag schema), each
// manifest checked to name `subject`, each blob at most `max_bytes` and verified.
[[nodiscard]] Result<std::vector<AttachedLayer>> fetch_referrer_layers(
    Client& c, std::string_view repo, const image::Digest& subject,
    const std::vector<std::string_view>& artifact_types, std::string_view layer_media_type,
    size_t max_bytes);

// The referrers of `subject` in `repo`: the referrers API's answer, else the referrers tag
// schema index; none when neither has any. `artifact_type` ("" for all) filters them.
[[nodiscard]] Result<std::vector<image::Descriptor>> list_referrers(Client& c, std::string_view repo,
                                                                    const image::Digest& subject,
                                                                    std::string_view artifact_type);

// The one layer of the artifact manifest `artifact` in `repo` (at most `max_bytes`, verified),
// checked to refer to `subject`.
[[nodiscard]] Result<std::string> fetch_artifact_document(Client& c, std::string_view repo,
                                                          const image::Digest& artifact,
                                                          const image::Digest& subject,
                                                          size_t max_bytes);

}  // namespace kiste::registry
