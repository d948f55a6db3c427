// containers-policy.json(5): parsing (strict, hostile input) and evaluation for docker images.
#include <kiste/trust/policy.hpp>

#include <cstdlib>

#include <nlohmann/json.hpp>

#include <kiste/base/sys.hpp>
#include <kiste/trust/gpg.hpp>

namespace kiste::trust {

namespace {

using json = nlohmann::json;

std::unexpected<Error> bad(std::string_view where, std::string_view why) {
  return failf(Errc::InvalidArgument, "{}: {}", where, why);
}

// Every key of `j` is one of `allowed`.
Status only_fields(const json& j, std::string_view where,
                   std::initializer_list<std::string_view> allowed) {
  for (const auto& [k, v] : j.items()) {
    bool known = false;
    for (auto a : allowed) known = known || k == a;
    if (!known) return bad(where, fmt::format("unknown field `{}`", k));
  }
  return {};
}

Result<std::string> string_field(const json& j, std::string_view where, const char* name) {
  if (!j.contains(name)) return bad(where, fmt::format("`{}` is missing", name));
  if (!j[name].is_string()) return bad(where, fmt::format("`{}` is not a string", name));
  std::string s = j[name].get<std::string>();
  if (s.empty()) return bad(where, fmt::format("`{}` is empty", name));
  return s;
}

Result<IdentityRule> parse_identity(const json& j, std::string_view where) {
  if (!j.is_object()) return bad(where, "signedIdentity is not an object");
  KISTE_ASSIGN_OR_RETURN(std::string type, string_field(j, where, "type"));
  IdentityRule r;
  auto parse_ref = [&](const std::string& s, bool need_tag) -> Status {
    auto ref = image::Reference::parse(s, {.default_tag = false});
    if (!ref) return bad(where, fmt::format("`{}` is not a docker reference", s));
    if (need_tag && !ref->tag() && !ref->digest()) {
      return bad(where, fmt::format("dockerReference `{}` has neither tag nor digest", s));
    }
    if (!need_tag && (ref->tag() || ref->digest())) {
      return bad(where, fmt::format("dockerRepository `{}` has a tag or digest", s));
    }
    return {};
  };
  if (type == "matchExact" || type == "matchRepoDigestOrExact" || type == "matchRepository") {
    KISTE_TRY(only_fields(j, where, {"type"}));
    r.kind = type == "matchExact"               ? IdentityRule::Kind::MatchExact
             : type == "matchRepoDigestOrExact" ? IdentityRule::Kind::MatchRepoDigestOrExact
                                                : IdentityRule::Kind::MatchRepository;
  } else if (type == "exactReference") {
    KISTE_TRY(only_fields(j, where, {"type", "dockerReference"}));
    r.kind = IdentityRule::Kind::ExactReference;
    KISTE_ASSIGN_OR_RETURN(r.reference, string_field(j, where, "dockerReference"));
    KISTE_TRY(parse_ref(r.reference, true));
  } else if (type == "exactRepository") {
    KISTE_TRY(only_fields(j, where, {"type", "dockerRepository"}));
    r.kind = IdentityRule::Kind::ExactRepository;
    KISTE_ASSIGN_OR_RETURN(r.reference, string_field(j, where, "dockerRepository"));
    KISTE_TRY(parse_ref(r.reference, false));
  } else if (type == "remapIdentity") {
    KISTE_TRY(only_fields(j, where, {"type", "prefix", "signedPrefix"}));
    r.kind = IdentityRule::Kind::RemapIdentity;
    KISTE_ASSIGN_OR_RETURN(r.prefix, string_field(j, where, "prefix"));
    KISTE_ASSIGN_OR_RETURN(r.signed_prefix, string_field(j, where, "signedPrefix"));
    for (const std::string* p : {&r.prefix, &r.signed_prefix}) {
      if (p->find('@') != std::string::npos || p->back() == '/' ||
          p->find_first_of(" \t\n") != std::string::npos) {
        return bad(where, fmt::format("remapIdentity prefix `{}` is not host[/path]", *p));
      }
    }
  } else {
    return bad(where, fmt::format("unknown signedIdentity type `{}`", type));
  }
  return r;
}

Result<Requirement> parse_requirement(const json& j, std::string_view where) {
  if (!j.is_object()) return bad(where, "requirement is not an object");
  KISTE_ASSIGN_OR_RETURN(std::string type, string_field(j, where, "type"));
  Requirement r;
  auto keys = [&](bool allow_paths) -> Status {
    int given = (j.contains("keyPath") ? 1 : 0) + (j.contains("keyPaths") ? 1 : 0) +
                (j.contains("keyData") ? 1 : 0);
    if (given != 1) {
      return bad(where, fmt::format("{} needs exactly one of keyPath{}, keyData", type,
                                    allow_paths ? ", keyPaths" : ""));
    }
    if (j.contains("keyPath")) {
      KISTE_ASSIGN_OR_RETURN(std::string p, string_field(j, where, "keyPath"));
      r.key_paths.emplace_back(p);
    } else if (j.contains("keyPaths")) {
      const json& ps = j["keyPaths"];
      if (!ps.is_array() || ps.empty()) return bad(where, "`keyPaths` is not a non-empty array");
      for (const auto& p : ps) {
        if (!p.is_string() || p.get<std::string>().empty()) {
          return bad(where, "`keyPaths` holds something other than a path");
        }
        r.key_paths.emplace_back(p.get<std::string>());
      }
    } else {
      KISTE_ASSIGN_OR_RETURN(std::string data, string_field(j, where, "keyData"));
      KISTE_ASSIGN_OR_RETURN(r.key_data, with_context(base64_decode(data), std::string(where) + ": keyData"));
    }
    if (j.contains("signedIdentity")) {
      KISTE_ASSIGN_OR_RETURN(r.identity, parse_identity(j["signedIdentity"], where));
    }
    return {};
  };
  if (type == "insecureAcceptAnything" || type == "reject") {
    KISTE_TRY(only_fields(j, where, {"type"}));
    r.kind = type == "reject" ? Requirement::Kind::Reject
                              : Requirement::Kind::InsecureAcceptAnything;
  } else if (type == "signedBy") {
    KISTE_TRY(only_fields(j, where, {"type", "keyType", "keyPath", "keyPaths", "keyData",
                                     "signedIdentity"}));
    KISTE_ASSIGN_OR_RETURN(std::string kt, string_field(j, where, "keyType"));
    if (kt != "GPGKeys") return bad(where, fmt::format("unsupported keyType `{}`", kt));
    r.kind = Requirement::Kind::SignedBy;
    KISTE_TRY(keys(true));
  } else if (type == "sigstoreSigned") {
    for (const char* f : {"fulcio", "rekorPublicKeyPath", "rekorPublicKeyData"}) {
      if (j.contains(f)) {
        return failf(Errc::Unsupported, "{}: sigstoreSigned with `{}` is not supported (keys only)",
                     where, f);
      }
    }
    KISTE_TRY(only_fields(j, where, {"type", "keyPath", "keyData", "signedIdentity"}));
    r.kind = Requirement::Kind::SigstoreSigned;
    KISTE_TRY(keys(false));
  } else {
    return bad(where, fmt::format("unknown requirement type `{}`", type));
  }
  return r;
}

Result<std::vector<Requirement>> parse_list(const json& j, const std::string& where) {
  if (!j.is_array()) return bad(where, "not a list of requirements");
  if (j.empty()) return bad(where, "empty list of requirements (say reject or insecureAcceptAnything)");
  if (j.size() > 256) return bad(where, "more than 256 requirements");
  std::vector<Requirement> out;
  for (size_t i = 0; i < j.size(); ++i) {
    KISTE_ASSIGN_OR_RETURN(Requirement r, parse_requirement(j[i], fmt::format("{}[{}]", where, i)));
    out.push_back(std::move(r));
  }
  return out;
}

bool same_exact(const image::Reference& a, const image::Reference& b) {
  return a.name() == b.name() && a.tag() == b.tag() && a.digest() == b.digest();
}

bool repo_digest_or_exact(const image::Reference& img, const image::Reference& sig) {
  if (img.digest()) return img.name() == sig.name();
  if (img.tag()) return same_exact(img, sig);
  return false;
}

}  // namespace

std::string Requirement::describe() const {
  std::string key;
  if (!key_paths.empty()) {
    key = fmt::format(" (key `{}`{})", key_paths.front().string(),
                      key_paths.size() > 1 ? fmt::format(" and {} more", key_paths.size() - 1) : "");
  } else if (!key_data.empty()) {
    key = " (keyData)";
  }
  switch (kind) {
    case Kind::InsecureAcceptAnything: return "insecureAcceptAnything";
    case Kind::Reject: return "reject";
    case Kind::SignedBy: return "signedBy" + key;
    case Kind::SigstoreSigned: return "sigstoreSigned" + key;
  }
  return "?";
}

Result<bool> identity_matches(const IdentityRule& rule, const image::Reference& img,
                              std::string_view signed_ref) {
  auto sig = image::Reference::parse(signed_ref, {.default_tag = false});
  if (!sig) {
    return failf(Errc::Corrupt, "signed identity `{}` is not a docker reference", signed_ref);
  }
  switch (rule.kind) {
    case IdentityRule::Kind::MatchRepoDigestOrExact:
      return repo_digest_or_exact(img, *sig);
    case IdentityRule::Kind::MatchExact:
      return (img.tag() || img.digest()) && same_exact(img, *sig);
    case IdentityRule::Kind::MatchRepository:
      return img.name() == sig->name();
    case IdentityRule::Kind::ExactReference: {
      KISTE_ASSIGN_OR_RETURN(auto want, image::Reference::parse(rule.reference, {.default_tag = false}));
      return same_exact(want, *sig);
    }
    case IdentityRule::Kind::ExactRepository: {
      KISTE_ASSIGN_OR_RETURN(auto want, image::Reference::parse(rule.reference, {.default_tag = false}));
      return want.name() == sig->name();
    }
    case IdentityRule::Kind::RemapIdentity: {
      std::string name = img.name();
      const std::string& p = rule.prefix;
      if (name.starts_with(p) && (name.size() == p.size() || name[p.size()] == '/')) {
        std::string remapped = rule.signed_prefix + name.substr(p.size());
        if (img.tag()) remapped += ":" + *img.tag();
        if (img.digest()) remapped += "@" + img.digest()->str();
        auto r = image::Reference::parse(remapped, {.default_tag = false});
        if (!r) {
          return failf(Errc::InvalidArgument, "remapIdentity: `{}` is not a docker reference",
                       remapped);
        }
        return repo_digest_or_exact(*r, *sig);
      }
      return repo_digest_or_exact(img, *sig);
    }
  }
  return false;
}

// Why none of `sigs` is accepted: `verify` checks one and returns its payload, whose signed
// identity `rule` must then match; nullopt when one is accepted.
template <class Sig, class Verify>
std::optional<std::string> none_accepted(const std::vector<Sig>& sigs, std::string_view what,
                                         const IdentityRule& rule, const image::Reference& ref,
                                         Verify verify) {
  std::string first_failure;
  for (const auto& sig : sigs) {
    auto payload = verify(sig);
    if (!payload) {
      if (first_failure.empty()) first_failure = payload.error().to_string();
      continue;
    }
    auto ok = identity_matches(rule, ref, payload->docker_reference);
    if (ok && *ok) return std::nullopt;
    if (first_failure.empty()) {
      first_failure = ok ? fmt::format("signed identity `{}` does not match `{}`",
                                       payload->docker_reference, ref.str())
                         : ok.error().to_string();
    }
  }
  return fmt::format("{} {}{}, none accepted: {}", sigs.size(), what, sigs.size() == 1 ? "" : "s",
                     first_failure);
}

Result<Policy> Policy::parse(std::string_view text) {
  if (text.size() > kMaxPolicyBytes) return fail(Errc::InvalidArgument, "policy: larger than 1 MiB");
  json doc = json::parse(text, nullptr, false);
  if (doc.is_discarded()) return fail(Errc::InvalidArgument, "policy: not valid JSON");
  if (!doc.is_object()) return fail(Errc::InvalidArgument, "policy: not a JSON object");
  KISTE_TRY(only_fields(doc, "policy", {"default", "transports"}));
  if (!doc.contains("default")) return fail(Errc::InvalidArgument, "policy: `default` is missing");
  Policy p;
  KISTE_ASSIGN_OR_RETURN(p.default_requirements, parse_list(doc["default"], "default"));
  if (doc.contains("transports")) {
    const json& ts = doc["transports"];
    if (!ts.is_object()) return fail(Errc::InvalidArgument, "policy: `transports` is not an object");
    for (const auto& [transport, scopes] : ts.items()) {
      std::string tw = fmt::format("transports.{}", transport);
      if (!scopes.is_object()) return bad(tw, "not an object of scopes");
      for (const auto& [scope, list] : scopes.items()) {
        std::string where = fmt::format("{}[\"{}\"]", tw, scope);
        if (scope.find_first_of(" \t\r\n") != std::string::npos) {
          return bad(where, "scope contains whitespace");
        }
        KISTE_ASSIGN_OR_RETURN(auto reqs, parse_list(list, where));
        if (transport == "docker") p.docker_scopes[scope] = std::move(reqs);
      }
    }
  }
  return p;
}

Result<Policy> Policy::load_file(const std::filesystem::path& path) {
  KISTE_ASSIGN_OR_RETURN(std::string text,
                         with_context(sys::read_file(path, kMaxPolicyBytes),
                                      fmt::format("policy `{}`", path.string())));
  KISTE_ASSIGN_OR_RETURN(Policy p,
                         with_context(Policy::parse(text), fmt::format("policy `{}`", path.string())));
  p.origin = path;
  return p;
}

Result<std::optional<Policy>> Policy::load(const std::string& flag) {
  std::filesystem::path path = flag;
  if (path.empty()) {
    const char* env = std::getenv("KISTE_POLICY");
    if (env && *env) path = env;
  }
  if (path.empty()) {
    std::error_code ec;
    if (!std::filesystem::exists("/etc/containers/policy.json", ec)) return std::nullopt;
    path = "/etc/containers/policy.json";
  }
  KISTE_ASSIGN_OR_RETURN(Policy p, load_file(path));
  return std::optional<Policy>(std::move(p));
}

Policy::Scoped Policy::requirements_for(const image::Reference& ref) const {
  std::vector<std::string> candidates;
  if (ref.digest()) candidates.push_back(ref.name() + "@" + ref.digest()->str());
  if (ref.tag()) candidates.push_back(ref.name() + ":" + *ref.tag());
  std::string name = ref.name();
  while (true) {
    candidates.push_back(name);
    size_t slash = name.rfind('/');
    if (slash == std::string::npos) break;
    name.resize(slash);
  }
  // *.example.com for registry a.b.example.com: *.b.example.com, *.example.com, *.com
  std::string host = ref.registry();
  if (size_t colon = host.find(':'); colon != std::string::npos) host.resize(colon);
  for (size_t dot = host.find('.'); dot != std::string::npos; dot = host.find('.', dot + 1)) {
    candidates.push_back("*" + host.substr(dot));
  }
  candidates.emplace_back("");
  for (const auto& c : candidates) {
    if (auto it = docker_scopes.find(c); it != docker_scopes.end()) {
      return {&it->second, c.empty() ? "docker" : c};
    }
  }
  return {&default_requirements, "default"};
}

Status Policy::check(const image::Reference& ref, const image::Digest& digest,
                     const SignatureSource& source) const {
  Scoped s = requirements_for(ref);
  std::optional<std::vector<SigstoreSignature>> sigs;
  std::optional<std::vector<std::string>> gpg_sigs;
  std::string where = origin.empty() ? std::string("policy") : fmt::format("policy `{}`", origin.string());
  auto refuse = [&](const Requirement& r, std::string_view why) {
    return failf(Errc::PermissionDenied, "`{}` refused by {} (scope `{}`): {}: {}", ref.str(), where,
                 s.scope, r.describe(), why);
  };
  for (const Requirement& r : *s.requirements) {
    switch (r.kind) {
      case Requirement::Kind::InsecureAcceptAnything:
        continue;
      case Requirement::Kind::Reject:
        return refuse(r, "images here are rejected");
      case Requirement::Kind::SignedBy: {
        std::string keyring;
        if (!r.key_data.empty()) {
          auto k = dearmor_public_keys(r.key_data);
          if (!k) return refuse(r, k.error().to_string());
          keyring = std::move(*k);
        }
        for (const auto& path : r.key_paths) {
          auto text = sys::read_file(path, kMaxGpgKeyringBytes);
          if (!text) return refuse(r, "cannot read the keys: " + text.error().to_string());
          auto k = dearmor_public_keys(*text);
          if (!k) return refuse(r, fmt::format("`{}`: {}", path.string(), k.error().to_string()));
          keyring += *k;
        }
        if (!gpg_sigs) {
          if (!source.gpg) return refuse(r, "no GPG signatures can be found for this source");
          auto got = source.gpg();
          if (!got) return refuse(r, "finding GPG signatures: " + got.error().to_string());
          gpg_sigs = std::move(*got);
        }
        if (gpg_sigs->empty()) {
          return refuse(r, fmt::format("no GPG signature for {} in lookaside storage", digest));
        }
        auto why = none_accepted(*gpg_sigs, "GPG signature", r.identity, ref, [&](const std::string& sig) {
          return verify_gpg_signature(keyring, sig, digest);
        });
        if (why) return refuse(r, *why);
        continue;
      }
      case Requirement::Kind::SigstoreSigned: {
        std::string pem = r.key_data;
        if (pem.empty()) {
          auto text = sys::read_file(r.key_paths.front(), 64 * 1024);
          if (!text) return refuse(r, "cannot read the key: " + text.error().to_string());
          pem = std::move(*text);
        }
        auto key = PublicKey::parse_pem(pem);
        if (!key) return refuse(r, key.error().to_string());
        if (!sigs) {
          if (!source.sigstore) return refuse(r, "no signatures can be found for this source");
          auto got = source.sigstore();
          if (!got) return refuse(r, "finding signatures: " + got.error().to_string());
          sigs = std::move(*got);
        }
        if (sigs->empty()) return refuse(r, fmt::format("no signature for {}", digest));
        auto why = none_accepted(*sigs, "signature", r.identity, ref, [&](const SigstoreSignature& sig) {
          return verify_sigstore_signature(*key, sig, digest);
        });
        if (why) return refuse(r, *why);
        continue;
      }
    }
  }
  return {};
}

}  // namespace kiste::trust
