#pragma once
// The one shape `kiste inspect` prints for a stored image and for `docker://REF`: docker's
// `docker image inspect` object, so scripts and `-f '{{.Config.Env}}'` work unchanged.
//
//   Id            config digest (docker's image ID)
//   RepoTags      ["busybox:1", …]: local names of this image / the tag asked for remotely
//   RepoDigests   ["busybox@sha256:<manifest>", …]
//   Parent, Comment, Created, Author, DockerVersion
//   Config        the config's `config` (User, Env, Cmd, Entrypoint, WorkingDir, Labels, …);
//                 Env, Cmd, Entrypoint, WorkingDir, Labels always present (null or "" if unset)
//   Architecture, Variant (when set), Os
//   Size          bytes of the layers unpacked, as `du -sb` counts them; for `docker://`
//                 (nothing unpacked) the compressed layers, as CompressedSize
//   RootFS        {Type: "layers", Layers: [diff ids]}
//   Metadata      {LastTagTime} (docker's zero time: kiste does not record it)
// kiste additions, after docker's fields:
//   Descriptor     {mediaType, digest, size} of the image manifest (the digest push prints)
//   CompressedSize manifest + config + layers as stored or served
//   Layers         [{MediaType, Digest, Size}] the compressed layer blobs
//   History        the config's history
//   Index          {mediaType, digest, Platforms: ["linux/amd64", …]} when the name is an index
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <kiste/image/manifest.hpp>

namespace kiste::image {

struct InspectInput {
  ManifestBlob manifest;              // an image manifest (not an index)
  std::string config;                 // its config blob
  std::optional<ManifestBlob> index;  // the index the name points at, when it does
  std::vector<std::string> repo_tags;
  std::vector<std::string> repo_digests;
  std::optional<int64_t> unpacked_size;  // nullopt: unknown (Size is then the compressed size)
};

// One JSON object (indented by 4, like docker). Errors: a config that is not JSON.
[[nodiscard]] Result<std::string> inspect_json(const InspectInput& in);

}  // namespace kiste::image
