// Manifests and indexes, OCI and Docker schema2 (image/manifest.hpp). The first byte picks the
// declared media type (from a descriptor or Content-Type); the rest is the document. What
// parses must serialise to a document that parses to the same value.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include <kiste/image/manifest.hpp>
#include <kiste/image/media_type.hpp>
#include <kiste/image/platform.hpp>

namespace im = kiste::image;

namespace {

constexpr std::string_view kDeclared[] = {
    "", im::media_type::kOciManifest, im::media_type::kOciIndex, im::media_type::kDockerManifest,
    im::media_type::kDockerManifestList, "application/json"};

bool same_manifest(const im::Manifest& a, const im::Manifest& b) {
  return a.media_type == b.media_type && a.artifact_type == b.artifact_type &&
         a.config == b.config && a.layers == b.layers && a.subject == b.subject &&
         a.annotations == b.annotations;
}

bool same_index(const im::Index& a, const im::Index& b) {
  return a.media_type == b.media_type && a.artifact_type == b.artifact_type &&
         a.manifests == b.manifests && a.subject == b.subject && a.annotations == b.annotations;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string_view declared = kDeclared[data[0] % std::size(kDeclared)];
  std::string bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  auto blob = im::parse_manifest(bytes, declared);
  if (!blob) return 0;
  (void)blob->descriptor();
  if (blob->is_index()) {
    const im::Index& idx = blob->index();
    for (std::string_view want : {"linux/amd64", "linux/arm64/v8", "linux/arm/v7", "windows/amd64"}) {
      auto p = im::Platform::parse(want);
      if (p) (void)im::select_platform(idx, *p);
    }
    for (const auto& d : idx.manifests) {
      if (d.platform) (void)d.platform->normalized().str();
    }
    auto again = im::parse_manifest(im::serialize_index(idx), blob->media_type);
    if (!again || !again->is_index() || !same_index(again->index(), idx)) std::abort();
  } else {
    const im::Manifest& m = blob->manifest();
    auto again = im::parse_manifest(im::serialize_manifest(m), blob->media_type);
    if (!again || again->is_index() || !same_manifest(again->manifest(), m)) std::abort();
  }
  return 0;
}
