#pragma once
// The "simple signing" payload that sigstore (cosign) and containers/image sign:
//   {"critical":{"identity":{"docker-reference":R},"image":{"docker-manifest-digest":D},
//    "type":"cosign container image signature"},"optional":null}
// It binds a manifest digest to an identity (a repository, or a repository with a tag).
#include <string>
#include <string_view>

#include <kiste/base/error.hpp>
#include <kiste/image/digest.hpp>

namespace kiste::trust {

inline constexpr std::string_view kCosignSignatureType = "cosign container image signature";
// The GPG "atomic" flavour (skopeo --sign-by): same fields, another type.
inline constexpr std::string_view kAtomicSignatureType = "atomic container signature";

struct SimpleSigningPayload {
  std::string docker_reference;
  image::Digest manifest_digest = image::Digest::of("");
  std::string type;
};

// The payload bytes kiste signs (stable key order, no whitespace).
[[nodiscard]] std::string make_cosign_payload(std::string_view docker_reference,
                                              const image::Digest& manifest_digest);
// The same for a GPG simple signing (type kAtomicSignatureType), as skopeo --sign-by signs it.
[[nodiscard]] std::string make_atomic_payload(std::string_view docker_reference,
                                              const image::Digest& manifest_digest);
// Parses payload bytes (hostile: bounded, each field of the right type, the digest valid).
[[nodiscard]] Result<SimpleSigningPayload> parse_simple_signing(std::string_view bytes);

}  // namespace kiste::trust
