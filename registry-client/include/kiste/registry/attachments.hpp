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

}  // namespace kiste::registry
