#pragma once
// Signatures in the sigstore/cosign registry layout: the manifest tagged `sha256-<hex>.sig` in the
// image's repository holds one layer per signature, the simple-signing payload, whose annotation
// `dev.cosignproject.cosign/signature` is the base64 DER signature over the payload bytes. trust/
// checks what it is handed; registry-client fetches and stores the manifest and the payloads.
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <kiste/base/error.hpp>
#include <kiste/image/digest.hpp>
#include <kiste/trust/keys.hpp>
#include <kiste/trust/simple_signing.hpp>

namespace kiste::trust {

inline constexpr std::string_view kSimpleSigningMediaType =
    "application/vnd.dev.cosign.simplesigning.v1+json";
// A signature stored as an OCI 1.1 referrer (cosign `--registry-referrers-mode=oci-1-1`): an
// artifact manifest of this artifactType whose one layer is the payload as above.
inline constexpr std::string_view kSignatureArtifactType =
    "application/vnd.dev.cosign.artifact.sig.v1+json";
inline constexpr std::string_view kSignatureAnnotation = "dev.cosignproject.cosign/signature";
inline constexpr size_t kMaxPayloadBytes = 64 * 1024;

// One signature as found: the payload blob's bytes and its layer annotations.
struct SigstoreSignature {
  std::string payload;
  std::map<std::string, std::string> annotations;
};

// `sha256-<hex>.sig`: the tag that holds the signatures of the manifest `d`.
[[nodiscard]] std::string signature_tag(const image::Digest& d);

// Checks one signature: the annotation's signature over the payload with `key`, then that the
// payload is a cosign simple-signing payload for `manifest_digest`. The payload's identity is
// returned for the caller's identity rule. Errors say which check failed.
[[nodiscard]] Result<SimpleSigningPayload> verify_sigstore_signature(
    const PublicKey& key, const SigstoreSignature& sig, const image::Digest& manifest_digest);

// A new signature: the payload for (identity, digest) and its annotations, signed with `key`.
[[nodiscard]] Result<SigstoreSignature> make_sigstore_signature(const PrivateKey& key,
                                                                std::string_view identity,
                                                                const image::Digest& digest);

}  // namespace kiste::trust
