#pragma once
// Where the signature policy (trust/) meets the registry (registry-client/): the gate that pull,
// copy, build and promote ask before copying, fed with the cosign signatures found in the
// registry. Wiring only: the evaluation is trust::Policy, the fetching registry::attachments.
#include <memory>
#include <string>
#include <vector>

#include <kiste/registry/access.hpp>
#include <kiste/trust/policy.hpp>

namespace kiste::cli {

// The cosign signatures of `digest` in `repo` (the `sha256-<hex>.sig` manifest's payloads).
[[nodiscard]] Result<std::vector<trust::SigstoreSignature>> fetch_sigstore_signatures(
    registry::Client& c, std::string_view repo, const image::Digest& digest);

// Signatures of `digest` in `ref`'s repository, fetched on first use: cosign's from the registry,
// GPG simple signings from the lookaside storage that the registries.d directory `registries_d`
// names (empty: /etc/containers/registries.d).
[[nodiscard]] trust::SignatureSource signature_source(registry::Client& c,
                                                      const image::Reference& ref,
                                                      const image::Digest& digest,
                                                      const std::string& registries_d);

// The gate for `policy_flag` (see trust::Policy::load); an empty function when no policy applies.
[[nodiscard]] Result<registry::SourceGate> policy_gate(const std::string& policy_flag,
                                                       const std::string& registries_d);

// A one-requirement policy: signed with the public key in `pub_path` (sigstoreSigned, the image's
// own identity by matchRepoDigestOrExact); what --require-signed-by asks.
[[nodiscard]] Result<trust::Policy> signed_by_policy(const std::string& pub_path);

}  // namespace kiste::cli
