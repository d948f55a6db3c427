#include "trust_gate.hpp"

#include <algorithm>

#include <kiste/base/sys.hpp>
#include <kiste/registry/attachments.hpp>
#include <kiste/registry/lookaside.hpp>
#include <kiste/trust/sigstore.hpp>

namespace kiste::cli {

Result<std::vector<trust::SigstoreSignature>> fetch_sigstore_signatures(
    registry::Client& c, std::string_view repo, const image::Digest& digest) {
  KISTE_ASSIGN_OR_RETURN(auto layers,
                         registry::fetch_attached_layers(c, repo, trust::signature_tag(digest),
                                                         trust::kSimpleSigningMediaType,
                                                         trust::kMaxPayloadBytes));
  // Referrers too: cosign's artifactType, and the payload's media type as artifactType, which
  // some writers use.
  KISTE_ASSIGN_OR_RETURN(
      auto referred,
      registry::fetch_referrer_layers(
          c, repo, digest, {trust::kSignatureArtifactType, trust::kSimpleSigningMediaType},
          trust::kSimpleSigningMediaType, trust::kMaxPayloadBytes));
  std::vector<trust::SigstoreSignature> out;
  for (auto* from : {&layers, &referred}) {
    for (auto& l : *from) {
      trust::SigstoreSignature sig{std::move(l.bytes), std::move(l.annotations)};
      bool seen = std::any_of(out.begin(), out.end(), [&](const trust::SigstoreSignature& o) {
        return o.payload == sig.payload && o.annotations == sig.annotations;
      });
      if (!seen) out.push_back(std::move(sig));
    }
  }
  return out;
}

trust::SignatureSource signature_source(registry::Client& c, const image::Reference& ref,
                                        const image::Digest& digest,
                                        const std::string& registries_d) {
  return {.sigstore = [&c, repo = ref.repository(), digest] {
            return fetch_sigstore_signatures(c, repo, digest);
          },
          .gpg = [ref, digest, registries_d]() -> Result<std::vector<std::string>> {
            std::string dir = registries_d.empty() ? "/etc/containers/registries.d" : registries_d;
            KISTE_ASSIGN_OR_RETURN(registry::LookasideConfig conf,
                                   registry::load_registries_d(dir));
            std::optional<std::string> url = conf.lookaside_for(ref);
            if (!url) {
              return failf(Errc::NotFound, "no lookaside storage for `{}` in `{}`", ref.name(), dir);
            }
            return registry::read_lookaside_signatures(*url, ref, digest);
          }};
}

Result<registry::SourceGate> policy_gate(const std::string& policy_flag,
                                         const std::string& registries_d) {
  KISTE_ASSIGN_OR_RETURN(std::optional<trust::Policy> p, trust::Policy::load(policy_flag));
  if (!p) return registry::SourceGate{};
  auto policy = std::make_shared<const trust::Policy>(std::move(*p));
  return registry::SourceGate([policy, registries_d](registry::Client& c,
                                                     const image::Reference& ref,
                                                     const image::Digest& top) -> Status {
    return policy->check(ref, top, signature_source(c, ref, top, registries_d));
  });
}

Result<trust::Policy> signed_by_policy(const std::string& pub_path) {
  KISTE_ASSIGN_OR_RETURN(std::string pem, sys::read_file(pub_path, 64 * 1024));
  KISTE_TRY(with_context(trust::PublicKey::parse_pem(pem), fmt::format("`{}`", pub_path)));
  trust::Policy p;
  p.origin = "--require-signed-by";
  p.default_requirements.push_back(
      {.kind = trust::Requirement::Kind::SigstoreSigned, .key_paths = {pub_path}});
  return p;
}

}  // namespace kiste::cli
