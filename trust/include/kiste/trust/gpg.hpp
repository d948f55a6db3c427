#pragma once
// GPG "simple signing" (containers-signature(5)) as skopeo --sign-by writes it: an OpenPGP signed
// message whose content is the simple-signing payload of type "atomic container signature",
// stored in lookaside storage (registry-client reads it). Checked with Debian's gpgv against the
// policy's keys only (its own empty home directory, no agent, no user keyring).
#include <string>
#include <string_view>

#include <kiste/base/error.hpp>
#include <kiste/image/digest.hpp>
#include <kiste/trust/simple_signing.hpp>

namespace kiste::trust {

inline constexpr size_t kMaxGpgSignatureBytes = 64 * 1024;
inline constexpr size_t kMaxGpgKeyringBytes = 1024 * 1024;

struct GpgVerified {
  std::string payload;      // the signed content
  std::string fingerprint;  // of the key that made the signature (gpgv's VALIDSIG)
};

// OpenPGP public keys as binary packets: ASCII armor ("-----BEGIN PGP PUBLIC KEY BLOCK-----",
// one or more blocks) is decoded, binary input is returned as it is.
[[nodiscard]] Result<std::string> dearmor_public_keys(std::string_view keys);

// gpgv over `signature` with only `keyring` (binary packets) trusted.
[[nodiscard]] Result<GpgVerified> gpgv_verify(std::string_view keyring, std::string_view signature);

// A GPG simple signing for `digest`: verifies with `keyring`, parses the payload, checks its type
// and digest. The payload (with its identity) is returned for the identity rule.
[[nodiscard]] Result<SimpleSigningPayload> verify_gpg_signature(std::string_view keyring,
                                                                std::string_view signature,
                                                                const image::Digest& digest);

// A new GPG simple signing of (identity, digest), as skopeo --sign-by makes it: the atomic
// payload signed (an OpenPGP signed message, not detached) by the secret key `fingerprint` of
// the user's GnuPG home ($GNUPGHOME, else ~/.gnupg) with Debian's gpg in batch mode (a key with
// a passphrase needs gpg-agent to have it). The signature is checked with gpgv against the key
// before it is returned.
[[nodiscard]] Result<std::string> make_gpg_signature(std::string_view fingerprint,
                                                     std::string_view identity,
                                                     const image::Digest& digest);

}  // namespace kiste::trust
