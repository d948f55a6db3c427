#pragma once
// What promote shares with the signing commands (cli/cmd_trust.cpp).
#include <string>

#include <kiste/image/reference.hpp>
#include <kiste/registry/client.hpp>
#include <kiste/trust/keys.hpp>

#include "globals.hpp"

namespace kiste::cli {

// key generate, sign, verify
void register_trust_commands(CLI::App& app, Globals& g);

// An encrypted private key, its passphrase from $KISTE_PASSWORD/$COSIGN_PASSWORD or the terminal.
[[nodiscard]] Result<trust::PrivateKey> load_private_key(const std::string& path);
// --identity as given (checked), or the default for `ref`.
[[nodiscard]] Result<std::string> checked_identity(const std::string& identity,
                                                   const image::Reference& ref);
// Signs `digest` as `identity` and appends the signature to `ref`'s repository's .sig manifest.
[[nodiscard]] Result<image::Digest> sign_in_registry(registry::Client& c,
                                                     const image::Reference& ref,
                                                     const image::Digest& digest,
                                                     const trust::PrivateKey& key,
                                                     const std::string& identity);
// The same signature as an OCI 1.1 referrer of `digest` in `ref`'s repository (cosign's
// `--registry-referrers-mode=oci-1-1` shape), listed by the referrers API or, where the registry
// has none, the referrers tag schema index `sha256-<hex>`. Returns the artifact's digest.
[[nodiscard]] Result<image::Digest> sign_as_referrer(registry::Client& c,
                                                     const image::Reference& ref,
                                                     const image::Digest& digest,
                                                     const trust::PrivateKey& key,
                                                     const std::string& identity);

}  // namespace kiste::cli
