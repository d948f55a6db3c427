// containers-policy.json: the parser against bad input, scope precedence, identity matchers, and
// evaluation against real signatures.
#include <gtest/gtest.h>

#include <kiste/base/sys.hpp>
#include <kiste/testing/temp_root.hpp>
#include <kiste/trust/gpg.hpp>
#include <kiste/trust/policy.hpp>

namespace kiste::trust {
namespace {

image::Reference ref(std::string_view s) { return image::Reference::parse(s).value(); }

TEST(TrustPolicy, BadPoliciesAreRefusedWithTheReason) {
  struct Case {
    std::string text, needle;
  };
  for (const Case& c : std::vector<Case>{
           {"", "not valid JSON"},
           {"[]", "not a JSON object"},
           {"{}", "`default` is missing"},
           {R"({"default":[]})", "empty list"},
           {R"({"default":{}})", "not a list"},
           {R"({"default":[{"type":"insecureAcceptAnything"}],"extra":1})", "unknown field `extra`"},
           {R"({"default":[{"type":"acceptEverything"}]})", "unknown requirement type"},
           {R"({"default":[{"type":"reject","keyPath":"/x"}]})", "unknown field `keyPath`"},
           {R"({"default":[{}]})", "`type` is missing"},
           {R"({"default":[{"type":5}]})", "not a string"},
           {R"({"default":[{"type":"sigstoreSigned"}]})", "exactly one of"},
           {R"({"default":[{"type":"sigstoreSigned","keyPath":"/a","keyData":"QQ=="}]})", "exactly one of"},
           {R"({"default":[{"type":"sigstoreSigned","keyData":"%%%"}]})", "keyData"},
           {R"({"default":[{"type":"sigstoreSigned","keyPath":"/a","fulcio":{}}]})", "not supported"},
           {R"({"default":[{"type":"signedBy","keyType":"X509","keyPath":"/a"}]})", "unsupported keyType"},
           {R"({"default":[{"type":"signedBy","keyType":"GPGKeys","keyPaths":[]}]})", "keyPaths"},
           {R"({"default":[{"type":"sigstoreSigned","keyPath":"/a","signedIdentity":{"type":"matchAll"}}]})", "unknown signedIdentity"},
           {R"({"default":[{"type":"sigstoreSigned","keyPath":"/a","signedIdentity":{"type":"exactReference","dockerReference":"r.io/a"}}]})", "neither tag nor digest"},
           {R"({"default":[{"type":"sigstoreSigned","keyPath":"/a","signedIdentity":{"type":"exactRepository","dockerRepository":"r.io/a:1"}}]})", "has a tag"},
           {R"({"default":[{"type":"sigstoreSigned","keyPath":"/a","signedIdentity":{"type":"remapIdentity","prefix":"a"}}]})", "signedPrefix"},
           {R"({"default":[{"type":"reject"}],"transports":[]})", "`transports` is not an object"},
           {R"({"default":[{"type":"reject"}],"transports":{"docker":[]}})", "not an object of scopes"},
           {R"({"default":[{"type":"reject"}],"transports":{"docker":{"a b":[{"type":"reject"}]}}})", "whitespace"},
           {R"({"default":[{"type":"reject"}],"transports":{"docker":{"r.io":[]}}})", "empty list"},
           {std::string(kMaxPolicyBytes + 1, ' '), "larger than"},
       }) {
    auto p = Policy::parse(c.text);
    ASSERT_FALSE(p) << c.text.substr(0, 200);
    EXPECT_NE(p.error().to_string().find(c.needle), std::string::npos)
        << c.text.substr(0, 200) << " -> " << p.error().to_string();
  }
  // Deep nesting does not crash the parser.
  std::string deep = R"({"default":)" + std::string(100000, '[') + std::string(100000, ']') + "}";
  EXPECT_FALSE(Policy::parse(deep));
}

TEST(TrustPolicy, TheMostSpecificScopeWins) {
  auto p = Policy::parse(R"({
    "default": [{"type": "reject"}],
    "transports": {
      "docker": {
        "": [{"type": "insecureAcceptAnything"}],
        "reg.example.com": [{"type": "reject"}],
        "reg.example.com/prod": [{"type": "insecureAcceptAnything"}],
        "reg.example.com/prod/app": [{"type": "reject"}],
        "reg.example.com/prod/app:stable": [{"type": "insecureAcceptAnything"}],
        "*.example.org": [{"type": "reject"}]
      },
      "docker-daemon": {"": [{"type": "insecureAcceptAnything"}]}
    }
  })");
  ASSERT_TRUE(p) << p.error().to_string();
  EXPECT_EQ(p->requirements_for(ref("reg.example.com/prod/app:stable")).scope, "reg.example.com/prod/app:stable");
  EXPECT_EQ(p->requirements_for(ref("reg.example.com/prod/app:1")).scope, "reg.example.com/prod/app");
  EXPECT_EQ(p->requirements_for(ref("reg.example.com/prod/other:1")).scope, "reg.example.com/prod");
  EXPECT_EQ(p->requirements_for(ref("reg.example.com/staging/app:1")).scope, "reg.example.com");
  EXPECT_EQ(p->requirements_for(ref("a.b.example.org/x:1")).scope, "*.example.org");
  EXPECT_EQ(p->requirements_for(ref("elsewhere.io/x:1")).scope, "docker");
  SignatureSource none;
  image::Digest d = image::Digest::of("m");
  EXPECT_TRUE(p->check(ref("reg.example.com/prod/app:stable"), d, none));
  auto refused = p->check(ref("reg.example.com/prod/app:1"), d, none);
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message.find("reg.example.com/prod/app:1"), std::string::npos);
  EXPECT_NE(refused.error().message.find("reject"), std::string::npos);

  auto only_default = Policy::parse(R"({"default":[{"type":"reject"}]})");
  ASSERT_TRUE(only_default);
  EXPECT_EQ(only_default->requirements_for(ref("r.io/a")).scope, "default");
}

TEST(TrustPolicy, IdentityMatchers) {
  using K = IdentityRule::Kind;
  image::Digest d = image::Digest::of("m");
  auto img_tag = ref("r.io/ns/app:1");
  auto img_dig = image::Reference::parse("r.io/ns/app@" + d.str()).value();
  auto m = [](IdentityRule r, const image::Reference& i, std::string s) {
    auto v = identity_matches(r, i, s);
    EXPECT_TRUE(v) << s;
    return v && *v;
  };
  IdentityRule def;
  EXPECT_TRUE(m(def, img_tag, "r.io/ns/app:1"));
  EXPECT_FALSE(m(def, img_tag, "r.io/ns/app:2"));
  EXPECT_FALSE(m(def, img_tag, "r.io/ns/app"));
  EXPECT_TRUE(m(def, img_dig, "r.io/ns/app"));
  EXPECT_TRUE(m(def, img_dig, "r.io/ns/app:anything"));
  EXPECT_FALSE(m(def, img_dig, "r.io/ns/other"));
  IdentityRule exact{.kind = K::MatchExact};
  EXPECT_TRUE(m(exact, img_tag, "r.io/ns/app:1"));
  EXPECT_FALSE(m(exact, img_dig, "r.io/ns/app"));
  IdentityRule repo{.kind = K::MatchRepository};
  EXPECT_TRUE(m(repo, img_tag, "r.io/ns/app"));
  EXPECT_TRUE(m(repo, img_tag, "r.io/ns/app:7"));
  EXPECT_FALSE(m(repo, img_tag, "r.io/ns/app2"));
  IdentityRule er{.kind = K::ExactReference, .reference = "r.io/signed/app:v1"};
  EXPECT_TRUE(m(er, img_tag, "r.io/signed/app:v1"));
  EXPECT_FALSE(m(er, img_tag, "r.io/ns/app:1"));
  IdentityRule erepo{.kind = K::ExactRepository, .reference = "r.io/signed/app"};
  EXPECT_TRUE(m(erepo, img_tag, "r.io/signed/app:x"));
  EXPECT_FALSE(m(erepo, img_tag, "r.io/ns/app:1"));
  IdentityRule remap{.kind = K::RemapIdentity, .prefix = "r.io/ns", .signed_prefix = "staging.io/team"};
  EXPECT_TRUE(m(remap, img_tag, "staging.io/team/app:1"));
  EXPECT_FALSE(m(remap, img_tag, "r.io/ns/app:1"));
  EXPECT_TRUE(m(remap, img_dig, "staging.io/team/app"));
  // "r.io/n" is not a prefix at a path boundary of r.io/ns/app: no remap, the image's own name.
  IdentityRule partial{.kind = K::RemapIdentity, .prefix = "r.io/n", .signed_prefix = "x.io/y"};
  EXPECT_TRUE(m(partial, img_tag, "r.io/ns/app:1"));
  EXPECT_FALSE(m(partial, img_tag, "x.io/ys/app:1"));
  EXPECT_FALSE(identity_matches(def, img_tag, "not a reference!"));
}

TEST(TrustPolicy, SigstoreSignedAgainstRealSignatures) {
  testing::TempRoot tmp;
  auto k = PrivateKey::generate();
  auto other = PrivateKey::generate();
  ASSERT_TRUE(k && other);
  auto key_path = tmp.path() / "prod.pub";
  ASSERT_TRUE(sys::write_file_atomic(key_path, *k->public_pem()));
  auto p = Policy::parse(R"({"default":[{"type":"reject"}],"transports":{"docker":{"r.io/prod":[{"type":"sigstoreSigned","keyPath":")" +
                         key_path.string() + R"("}]}}})");
  ASSERT_TRUE(p) << p.error().to_string();
  image::Digest d = image::Digest::of("m");
  auto img = ref("r.io/prod/app:1");
  auto sigs = [](std::vector<SigstoreSignature> v) {
    return SignatureSource{.sigstore = [v] { return Result<std::vector<SigstoreSignature>>(v); }};
  };
  auto good = *make_sigstore_signature(*k, "r.io/prod/app:1", d);
  auto wrong_key = *make_sigstore_signature(*other, "r.io/prod/app:1", d);
  auto wrong_digest = *make_sigstore_signature(*k, "r.io/prod/app:1", image::Digest::of("x"));
  auto wrong_identity = *make_sigstore_signature(*k, "r.io/prod/app:2", d);

  EXPECT_TRUE(p->check(img, d, sigs({good})));
  EXPECT_TRUE(p->check(img, d, sigs({wrong_key, good})));  // one good one is enough
  auto none = p->check(img, d, sigs({}));
  ASSERT_FALSE(none);
  EXPECT_NE(none.error().message.find("no signature for"), std::string::npos) << none.error().message;
  EXPECT_NE(none.error().message.find(key_path.string()), std::string::npos) << none.error().message;
  for (auto& [s, needle] : std::vector<std::pair<SigstoreSignature, std::string>>{
           {wrong_key, "does not verify"}, {wrong_digest, "signature is for"},
           {wrong_identity, "does not match"}}) {
    auto r = p->check(img, d, sigs({s}));
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message.find(needle), std::string::npos) << r.error().message;
    EXPECT_EQ(r.error().message.find('\n'), std::string::npos);
  }
  // Outside r.io/prod the default rejects.
  EXPECT_FALSE(p->check(ref("r.io/staging/app:1"), d, sigs({good})));
  // keyData carries the same key.
  auto pd = Policy::parse(R"({"default":[{"type":"sigstoreSigned","keyData":")" +
                          base64_encode(*k->public_pem()) + R"("}]})");
  ASSERT_TRUE(pd) << pd.error().to_string();
  EXPECT_TRUE(pd->check(img, d, sigs({good})));
  EXPECT_FALSE(pd->check(img, d, sigs({wrong_key})));
  // A missing key file is a refusal that names it.
  auto pm = Policy::parse(R"({"default":[{"type":"sigstoreSigned","keyPath":"/nonexistent/k.pub"}]})");
  ASSERT_TRUE(pm);
  auto r = pm->check(img, d, sigs({good}));
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("/nonexistent/k.pub"), std::string::npos);
}

TEST(TrustGpg, DearmorDecodesEveryBlockAndKeepsBinary) {
  const std::string a("\x99\x01\x02key-a", 8), b("\x99\x03key-b", 7);
  auto block = [](const std::string& bytes, const std::string& headers) {
    return "-----BEGIN PGP PUBLIC KEY BLOCK-----\n" + headers + "\n" + base64_encode(bytes) +
           "\n=AbCd\n-----END PGP PUBLIC KEY BLOCK-----\n";
  };
  auto both = dearmor_public_keys(block(a, "Comment: one\n") + block(b, ""));
  ASSERT_TRUE(both) << both.error().to_string();
  EXPECT_EQ(*both, a + b);
  EXPECT_EQ(dearmor_public_keys(a).value_or("?"), a);  // binary keys stay as they are
  EXPECT_FALSE(dearmor_public_keys("-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nAAAA\n"));
  EXPECT_FALSE(dearmor_public_keys(block(a, "").replace(40, 4, "!!!!")));
  EXPECT_FALSE(dearmor_public_keys(std::string(kMaxGpgKeyringBytes + 1, 'x')));
  // signedBy with nothing to find signatures with is a refusal naming the requirement.
  auto p = Policy::parse(R"({"default":[{"type":"signedBy","keyType":"GPGKeys","keyData":")" +
                         base64_encode(a) + R"("}]})");
  ASSERT_TRUE(p) << p.error().to_string();
  auto r = p->check(ref("r.io/a:1"), image::Digest::of("m"), SignatureSource{});
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("signedBy (keyData)"), std::string::npos) << r.error().message;
}

}  // namespace
}  // namespace kiste::trust
