#pragma once
// The containers-policy.json(5) evaluator, as skopeo and podman read it: per transport scopes
// (kiste enforces the `docker` transport), each a list of requirements that must all accept:
// insecureAcceptAnything, reject, signedBy (GPG keys, checked with gpgv against lookaside
// signatures), sigstoreSigned (keyPath/keyData + signedIdentity). The most specific scope that
// matches the image wins: REG/NS/REPO:TAG (or @DIGEST), REG/NS/REPO, REG/NS, REG, *.DOMAIN, the
// transport's "" scope, then `default`. The file is hostile input: unknown fields, wrong types,
// empty requirement lists and anything kiste cannot enforce are refused when it is parsed.
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <kiste/base/error.hpp>
#include <kiste/image/digest.hpp>
#include <kiste/image/reference.hpp>
#include <kiste/trust/sigstore.hpp>

namespace kiste::trust {

inline constexpr size_t kMaxPolicyBytes = 1024 * 1024;

struct IdentityRule {
  enum class Kind {
    MatchRepoDigestOrExact,
    MatchExact,
    MatchRepository,
    ExactReference,
    ExactRepository,
    RemapIdentity
  };
  Kind kind = Kind::MatchRepoDigestOrExact;
  std::string reference;      // exactReference: dockerReference; exactRepository: dockerRepository
  std::string prefix;         // remapIdentity
  std::string signed_prefix;  // remapIdentity
};

struct Requirement {
  enum class Kind { InsecureAcceptAnything, Reject, SignedBy, SigstoreSigned };
  Kind kind = Kind::Reject;
  std::vector<std::filesystem::path> key_paths;  // keyPath (keyPaths for signedBy)
  std::string key_data;                          // keyData, decoded
  IdentityRule identity;
  [[nodiscard]] std::string describe() const;  // "sigstoreSigned (key `/etc/keys/prod.pub`)"
};

// The signatures of one image, fetched only when a requirement asks for them.
struct SignatureSource {
  std::function<Result<std::vector<SigstoreSignature>>()> sigstore;
  // GPG simple signings (OpenPGP signed messages) from lookaside storage.
  std::function<Result<std::vector<std::string>>()> gpg;
};

class Policy {
 public:
  [[nodiscard]] static Result<Policy> parse(std::string_view json);
  // --policy FILE, else $KISTE_POLICY, else /etc/containers/policy.json when it exists; nullopt
  // when none of them applies (no policy: everything is accepted, as before).
  [[nodiscard]] static Result<std::optional<Policy>> load(const std::string& flag);
  [[nodiscard]] static Result<Policy> load_file(const std::filesystem::path& path);

  // The requirements for the docker image `ref` and the scope they came from ("default" or the
  // scope's name).
  struct Scoped {
    const std::vector<Requirement>* requirements;
    std::string scope;
  };
  [[nodiscard]] Scoped requirements_for(const image::Reference& ref) const;

  // Every requirement for `ref` must accept the image whose manifest digest is `digest`. A
  // refusal is one line naming the image, the requirement (and its key) and why.
  [[nodiscard]] Status check(const image::Reference& ref, const image::Digest& digest,
                             const SignatureSource& sigs) const;

  std::vector<Requirement> default_requirements;
  std::map<std::string, std::vector<Requirement>> docker_scopes;
  std::filesystem::path origin;  // the file it was read from (messages)
};

// Whether the identity a signature claims (`signed_ref`, as written in the payload) is accepted
// for the image `image_ref` under `rule` (containers-policy.json's signedIdentity).
[[nodiscard]] Result<bool> identity_matches(const IdentityRule& rule,
                                            const image::Reference& image_ref,
                                            std::string_view signed_ref);

}  // namespace kiste::trust
