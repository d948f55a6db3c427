// The simple-signing payload and cosign's signature layout: making and checking one signature.
#include <kiste/trust/sigstore.hpp>
#include <kiste/trust/simple_signing.hpp>

#include <nlohmann/json.hpp>

namespace kiste::trust {

namespace {
using json = nlohmann::json;

// The object member `key` of `j` when it is an object of exactly the keys `allowed`.
Result<const json*> exact_object(const json& j, std::string_view what,
                                 std::initializer_list<std::string_view> allowed) {
  if (!j.is_object()) return failf(Errc::Corrupt, "signature payload: {} is not an object", what);
  for (const auto& [k, v] : j.items()) {
    bool known = false;
    for (auto a : allowed) known = known || k == a;
    if (!known) {
      return failf(Errc::Corrupt, "signature payload: unknown field `{}` in {}", k, what);
    }
  }
  for (auto a : allowed) {
    if (!j.contains(std::string(a))) {
      return failf(Errc::Corrupt, "signature payload: {} has no `{}`", what, a);
    }
  }
  return &j;
}
}  // namespace

namespace {
// `optional` is null in cosign's payload; containers/image wants an object in the atomic one
// (skopeo refuses null: "JSON object expected").
std::string simple_signing_payload(std::string_view docker_reference,
                                   const image::Digest& manifest_digest, std::string_view type,
                                   json optional) {
  json doc = {{"critical",
               {{"identity", {{"docker-reference", std::string(docker_reference)}}},
                {"image", {{"docker-manifest-digest", manifest_digest.str()}}},
                {"type", std::string(type)}}},
              {"optional", std::move(optional)}};
  return doc.dump();
}
}  // namespace

std::string make_cosign_payload(std::string_view docker_reference,
                                const image::Digest& manifest_digest) {
  return simple_signing_payload(docker_reference, manifest_digest, kCosignSignatureType, nullptr);
}

std::string make_atomic_payload(std::string_view docker_reference,
                                const image::Digest& manifest_digest) {
  return simple_signing_payload(docker_reference, manifest_digest, kAtomicSignatureType,
                                {{"creator", "kiste"}});
}

Result<SimpleSigningPayload> parse_simple_signing(std::string_view bytes) {
  if (bytes.size() > kMaxPayloadBytes) {
    return fail(Errc::Corrupt, "signature payload: larger than 64 KiB");
  }
  json doc = json::parse(bytes, nullptr, false);
  if (doc.is_discarded()) return fail(Errc::Corrupt, "signature payload: not JSON");
  // "optional" may be absent (some writers), null or an object.
  if (!doc.is_object() || !doc.contains("critical")) {
    return fail(Errc::Corrupt, "signature payload: no `critical` object");
  }
  if (doc.contains("optional") && !doc["optional"].is_null() && !doc["optional"].is_object()) {
    return fail(Errc::Corrupt, "signature payload: `optional` is not an object");
  }
  KISTE_ASSIGN_OR_RETURN(const json* crit,
                         exact_object(doc["critical"], "critical", {"identity", "image", "type"}));
  KISTE_ASSIGN_OR_RETURN(const json* ident,
                         exact_object((*crit)["identity"], "critical.identity", {"docker-reference"}));
  KISTE_ASSIGN_OR_RETURN(const json* img,
                         exact_object((*crit)["image"], "critical.image", {"docker-manifest-digest"}));
  const json& type = (*crit)["type"];
  const json& ref = (*ident)["docker-reference"];
  const json& dig = (*img)["docker-manifest-digest"];
  if (!type.is_string() || !ref.is_string() || !dig.is_string()) {
    return fail(Errc::Corrupt, "signature payload: type, docker-reference and digest must be strings");
  }
  SimpleSigningPayload p;
  p.type = type.get<std::string>();
  p.docker_reference = ref.get<std::string>();
  KISTE_ASSIGN_OR_RETURN(p.manifest_digest,
                         with_context(image::Digest::parse(dig.get<std::string>()),
                                      "signature payload: docker-manifest-digest"));
  return p;
}

std::string signature_tag(const image::Digest& d) {
  return std::string(d.algorithm_name()) + "-" + std::string(d.hex()) + ".sig";
}

Result<SimpleSigningPayload> verify_sigstore_signature(const PublicKey& key,
                                                       const SigstoreSignature& sig,
                                                       const image::Digest& manifest_digest) {
  auto it = sig.annotations.find(std::string(kSignatureAnnotation));
  if (it == sig.annotations.end()) {
    return failf(Errc::Corrupt, "signature: no `{}` annotation", kSignatureAnnotation);
  }
  KISTE_ASSIGN_OR_RETURN(std::string der,
                         with_context(base64_decode(it->second), "signature annotation"));
  if (!key.verify(sig.payload, der)) {
    return failf(Errc::PermissionDenied, "signature does not verify with key {}",
                 key.fingerprint());
  }
  KISTE_ASSIGN_OR_RETURN(SimpleSigningPayload p, parse_simple_signing(sig.payload));
  if (p.type != kCosignSignatureType) {
    return failf(Errc::PermissionDenied, "signed payload has type `{}`, not `{}`", p.type,
                 kCosignSignatureType);
  }
  if (p.manifest_digest != manifest_digest) {
    return failf(Errc::PermissionDenied, "signature is for {}, not for {}", p.manifest_digest,
                 manifest_digest);
  }
  return p;
}

Result<SigstoreSignature> make_sigstore_signature(const PrivateKey& key, std::string_view identity,
                                                  const image::Digest& digest) {
  SigstoreSignature s;
  s.payload = make_cosign_payload(identity, digest);
  KISTE_ASSIGN_OR_RETURN(std::string der, key.sign(s.payload));
  s.annotations[std::string(kSignatureAnnotation)] = base64_encode(der);
  return s;
}

}  // namespace kiste::trust
