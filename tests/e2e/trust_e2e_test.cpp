// Issue 19: keys, cosign signatures and the signature policy through the kiste binary, against
// the real registry. The independent side: Debian's skopeo 1.9.3 is built with sigstore disabled
// ("Debian-local change: sigstore disabled": it neither signs nor verifies sigstore signatures),
// so the formats are checked with other implementations: the registry layout with curl, the
// signatures with the openssl CLI, the encrypted key format with tests/e2e/cosign_key.py (Python's
// scrypt and PyNaCl), and skopeo still reads kiste's .sig layout (it names one refusal per
// signature found). A policy gates promote and pull with nothing stored or tagged on refusal.
#include <sys/stat.h>

#include <cstdlib>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <kiste/base/sys.hpp>
#include <kiste/registry/attachments.hpp>
#include <kiste/registry/client.hpp>
#include <kiste/testing/kiste_cli.hpp>
#include <kiste/testing/registry_process.hpp>
#include <kiste/testing/temp_root.hpp>
#include <kiste/trust/sigstore.hpp>

namespace kiste::testing {
namespace {

namespace fs = std::filesystem;

constexpr const char* kPass = "e2e passphrase 19";

size_t lines(const std::string& s) { return static_cast<size_t>(std::count(s.begin(), s.end(), '\n')); }

class Trust : public ::testing::Test {
 protected:
  void SetUp() override {
    ::setenv("KISTE_PASSWORD", kPass, 1);
    ::unsetenv("KISTE_POLICY");
    std::string why;
    reg_ = RegistryProcess::start({}, &why);
    ASSERT_TRUE(reg_) << why;
    h_ = reg_->host();
    // Two images with different digests: busybox with two different configs.
    for (auto [name, cmd] : {std::pair{"one", "/bin/true"}, std::pair{"two", "/bin/false"}}) {
      auto r = kiste_.run(std::string("import -c 'CMD [\"") + cmd + "\"]' " +
                          busybox_tar().native() + " " + name + " 2>&1");
      ASSERT_EQ(r.status, 0) << r.output;
    }
    push("one", "staging/app:1");
    push("two", "staging/other:1");
    gen_key("k");
    gen_key("k2");
    ASSERT_TRUE(sys::write_file_atomic(tmp_ / "pass", kPass));
    // skopeo reads and writes sigstore signatures as registry attachments for this registry.
    fs::create_directories(tmp_ / "registries.d");
    ASSERT_TRUE(sys::write_file_atomic(tmp_ / "registries.d" / "kiste.yaml",
                                       "docker:\n  " + h_ + ":\n    use-sigstore-attachments: true\n"));
  }
  void TearDown() override {
    ::unsetenv("KISTE_PASSWORD");
    ::unsetenv("KISTE_POLICY");
  }

  void push(const std::string& name, const std::string& dest) {
    auto r = kiste_.run("push -q " + name + " docker://" + h_ + "/" + dest + " 2>&1");
    ASSERT_EQ(r.status, 0) << r.output;
  }
  void gen_key(const std::string& name) {
    auto r = kiste_.run("key generate --output-key-prefix " + (tmp_ / name).native() + " 2>&1");
    ASSERT_EQ(r.status, 0) << r.output;
  }
  std::string key(const std::string& name) const { return (tmp_ / name).native(); }
  CliResult kiste(const std::string& args) const { return kiste_.run(args + " 2>&1"); }
  // The digest a tag names, as skopeo sees it ("" when it has none).
  std::string skopeo_digest(const std::string& ref) {
    std::string out;
    if (run_shell("skopeo inspect --tls-verify=false --format '{{.Digest}}' docker://" + h_ + "/" +
                      ref + " 2>/dev/null",
                  &out) != 0) {
      return "";
    }
    return trim(out);
  }
  // skopeo copy to a dir: under `policy`, reading sigstore attachments; its exit status.
  int skopeo_accepts(const fs::path& policy, const std::string& ref, std::string* out) {
    fs::path dst = tmp_ / ("skopeo-dir-" + std::to_string(++copies_));
    return run_shell("skopeo --policy " + policy.native() + " --registries.d " +
                         (tmp_ / "registries.d").native() +
                         " copy --src-tls-verify=false docker://" + h_ + "/" + ref + " dir:" +
                         dst.native() + " 2>&1",
                     out);
  }
  // The signatures in the registry as curl sees them: the `sha256-<hex>.sig` manifest's layers
  // of cosign's media type, each (payload bytes, DER signature from the annotation).
  std::vector<std::pair<std::string, std::string>> raw_signatures(const std::string& repo,
                                                                  const std::string& digest) {
    std::vector<std::pair<std::string, std::string>> out;
    std::string tag = "sha256-" + digest.substr(7) + ".sig";
    std::string body;
    EXPECT_EQ(run_shell("curl -sf -H 'Accept: application/vnd.oci.image.manifest.v1+json' http://" +
                            h_ + "/v2/" + repo + "/manifests/" + tag,
                        &body),
              0)
        << body;
    auto m = nlohmann::json::parse(body, nullptr, false);
    EXPECT_FALSE(m.is_discarded()) << body;
    if (m.is_discarded()) return out;
    EXPECT_EQ(m.value("mediaType", ""), "application/vnd.oci.image.manifest.v1+json");
    for (const auto& l : m["layers"]) {
      EXPECT_EQ(l["mediaType"], "application/vnd.dev.cosign.simplesigning.v1+json");
      std::string payload;
      EXPECT_EQ(run_shell("curl -sf http://" + h_ + "/v2/" + repo + "/blobs/" +
                              l["digest"].get<std::string>(),
                          &payload),
                0);
      auto der = trust::base64_decode(
          l["annotations"]["dev.cosignproject.cosign/signature"].get<std::string>());
      EXPECT_TRUE(der);
      out.emplace_back(payload, der.value_or(""));
    }
    return out;
  }
  // `openssl dgst -sha256 -verify PUB` of one signature.
  bool openssl_verifies(const std::string& pub, const std::string& payload, const std::string& der) {
    fs::path p = tmp_ / "payload", d = tmp_ / "sig.der";
    EXPECT_TRUE(sys::write_file_atomic(p, payload));
    EXPECT_TRUE(sys::write_file_atomic(d, der));
    std::string out;
    int rc = run_shell("openssl dgst -sha256 -verify " + pub + " -signature " + d.native() + " " +
                           p.native() + " 2>&1",
                       &out);
    return rc == 0 && out.find("Verified OK") != std::string::npos;
  }
  fs::path write_policy(const std::string& name, const std::string& json) {
    fs::path p = tmp_ / name;
    EXPECT_TRUE(sys::write_file_atomic(p, json));
    return p;
  }
  std::string sigstore_scope(const std::string& scope, const std::string& pub,
                             const std::string& identity = "") {
    return R"({"default":[{"type":"reject"}],"transports":{"docker":{")" + scope +
           R"(":[{"type":"sigstoreSigned","keyPath":")" + pub + "\"" +
           (identity.empty() ? "" : ",\"signedIdentity\":" + identity) + "}]}}}";
  }

  TempRoot tmp_{"kiste-trust-e2e-"};
  KisteCli kiste_{tmp_ / "root"};
  std::unique_ptr<RegistryProcess> reg_;
  std::string h_;
  int copies_ = 0;
};

TEST_F(Trust, KeyGenerateWritesCosignFilesPrivatelyAndNeverOverwrites) {
  struct stat st {};
  ASSERT_EQ(::stat(key("k.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto text = sys::read_file(key("k.key"));
  ASSERT_TRUE(text);
  EXPECT_TRUE(text->starts_with("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----")) << *text;
  EXPECT_EQ(text->find(kPass), std::string::npos);
  auto pub = sys::read_file(key("k.pub"));
  ASSERT_TRUE(pub);
  EXPECT_TRUE(pub->starts_with("-----BEGIN PUBLIC KEY-----")) << *pub;
  // openssl reads the public key as an EC P-256 key.
  std::string out;
  EXPECT_EQ(run_shell("openssl pkey -pubin -in " + key("k.pub") + " -noout -text 2>&1", &out), 0) << out;
  EXPECT_NE(out.find("prime256v1"), std::string::npos) << out;

  auto again = kiste("key generate --output-key-prefix " + key("k"));
  EXPECT_EQ(again.status, 125) << again.output;
  EXPECT_EQ(lines(again.output), 1u) << again.output;
  EXPECT_NE(again.output.find("exists"), std::string::npos) << again.output;
  EXPECT_EQ(sys::read_file(key("k.key")).value_or(""), *text);
  // Without a passphrase and without a terminal: refused, nothing written.
  auto none = run_shell("env -u KISTE_PASSWORD -u COSIGN_PASSWORD setsid " +
                            kiste_command(kiste_.root(), "key generate --output-key-prefix " + key("nopass")) +
                            " </dev/null 2>&1",
                        &out);
  EXPECT_EQ(none, 125) << out;
  EXPECT_FALSE(fs::exists(key("nopass.key")));
  EXPECT_FALSE(fs::exists(key("nopass.pub")));
}

TEST_F(Trust, KisteSignsSkopeoAcceptsAndRefusesTheUnsignedAndTheOtherKey) {
  auto s = kiste("sign docker://" + h_ + "/staging/app:1 --key " + key("k.key"));
  ASSERT_EQ(s.status, 0) << s.output;
  EXPECT_EQ(s.output.find(kPass), std::string::npos);
  std::string digest = skopeo_digest("staging/app:1");
  ASSERT_FALSE(digest.empty());

  auto v = kiste("verify " + h_ + "/staging/app:1 --key " + key("k.pub"));
  EXPECT_EQ(v.status, 0) << v.output;
  EXPECT_NE(v.output.find("\"docker-manifest-digest\":\"" + digest + "\""), std::string::npos) << v.output;
  auto v2 = kiste("verify " + h_ + "/staging/app:1 --key " + key("k2.pub"));
  EXPECT_EQ(v2.status, 125) << v2.output;
  EXPECT_EQ(lines(v2.output), 1u) << v2.output;
  EXPECT_NE(v2.output.find("does not verify"), std::string::npos) << v2.output;
  auto vu = kiste("verify " + h_ + "/staging/other:1 --key " + key("k.pub"));
  EXPECT_EQ(vu.status, 125) << vu.output;
  EXPECT_NE(vu.output.find("no signature"), std::string::npos) << vu.output;
  // The identity is the reference signed: another tag of the same digest does not carry it.
  auto vi = kiste("verify " + h_ + "/staging/app:1 --key " + key("k.pub") + " --identity " + h_ +
                  "/prod/app:1");
  EXPECT_EQ(vi.status, 125) << vi.output;
  EXPECT_NE(vi.output.find("does not match"), std::string::npos) << vi.output;

  // Signing twice with another key keeps the first signature (appends).
  ASSERT_EQ(kiste("sign " + h_ + "/staging/app:1 --key " + key("k2.key")).status, 0);
  EXPECT_EQ(kiste("verify " + h_ + "/staging/app:1 --key " + key("k.pub")).status, 0);
  EXPECT_EQ(kiste("verify " + h_ + "/staging/app:1 --key " + key("k2.pub")).status, 0);

  // Independently: the layout as curl fetches it, each signature checked by openssl.
  auto raw = raw_signatures("staging/app", digest);
  ASSERT_EQ(raw.size(), 2u);
  EXPECT_TRUE(openssl_verifies(key("k.pub"), raw[0].first, raw[0].second));
  EXPECT_FALSE(openssl_verifies(key("k2.pub"), raw[0].first, raw[0].second));
  EXPECT_TRUE(openssl_verifies(key("k2.pub"), raw[1].first, raw[1].second));
  auto payload = nlohmann::json::parse(raw[0].first);
  EXPECT_EQ(payload["critical"]["type"], "cosign container image signature");
  EXPECT_EQ(payload["critical"]["image"]["docker-manifest-digest"], digest);
  EXPECT_EQ(payload["critical"]["identity"]["docker-reference"], h_ + "/staging/app:1");

  // skopeo reads the layout: one (sigstore-disabled) refusal per signature kiste stored, and
  // "no signature" for the unsigned image.
  std::string out;
  auto policy_k = write_policy("p-k.json", sigstore_scope(h_, key("k.pub")));
  EXPECT_NE(skopeo_accepts(policy_k, "staging/app:1", &out), 0) << out;
  auto reasons = out.substr(out.find("reasons:") == std::string::npos ? 0 : out.find("reasons:"));
  EXPECT_EQ(std::count(reasons.begin(), reasons.end(), ';'), 1) << out;  // two reasons
  out.clear();
  EXPECT_NE(skopeo_accepts(policy_k, "staging/other:1", &out), 0) << out;
  EXPECT_NE(out.find("no signature exists"), std::string::npos) << out;
}

TEST_F(Trust, KeysInterworkWithAnIndependentImplementationOfTheFormat) {
  const std::string py = "/usr/bin/python3 " + std::string(KISTE_SOURCE_DIR) + "/tests/e2e/cosign_key.py ";
  std::string out;
  // kiste's encrypted key, decrypted by the other implementation, is the key of k.pub.
  ASSERT_EQ(run_shell(py + "decrypt " + key("k.key") + " " + (tmp_ / "pass").native() + " " +
                          key("k.der") + " 2>&1",
                      &out),
            0)
      << out;
  out.clear();
  ASSERT_EQ(run_shell("openssl pkey -inform DER -in " + key("k.der") + " -pubout 2>&1", &out), 0) << out;
  EXPECT_EQ(out, sys::read_file(key("k.pub")).value_or("?"));
  // A key made by openssl (PKCS#8, as cosign's format holds) and encrypted by the other
  // implementation signs with kiste.
  out.clear();
  ASSERT_EQ(run_shell("openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 | "
                      "openssl pkcs8 -topk8 -nocrypt -outform DER -out " +
                          key("o.der") + " && openssl pkey -inform DER -in " + key("o.der") +
                          " -pubout -out " + key("o.pub") + " && " + py + "encrypt " + key("o.der") +
                          " " + (tmp_ / "pass").native() + " " + key("o.key") + " 2>&1",
                      &out),
            0)
      << out;
  auto s = kiste("sign docker://" + h_ + "/staging/other:1 --key " + key("o.key"));
  ASSERT_EQ(s.status, 0) << s.output;
  EXPECT_EQ(kiste("verify " + h_ + "/staging/other:1 --key " + key("o.pub")).status, 0);
  auto raw = raw_signatures("staging/other", skopeo_digest("staging/other:1"));
  ASSERT_EQ(raw.size(), 1u);
  EXPECT_TRUE(openssl_verifies(key("o.pub"), raw[0].first, raw[0].second));
  // The wrong passphrase is one line, exit 125, and says so.
  out.clear();
  auto wrong = run_shell("KISTE_PASSWORD=nope " + kiste_command(kiste_.root(), "sign " + h_ +
                         "/staging/other:1 --key " + key("o.key")) + " 2>&1", &out);
  EXPECT_EQ(wrong, 125) << out;
  EXPECT_EQ(lines(out), 1u) << out;
  EXPECT_NE(out.find("wrong passphrase"), std::string::npos) << out;
  // The policy accepts the image signed with it.
  auto policy = write_policy("p.json", sigstore_scope(h_ + "/staging", key("o.pub")));
  auto pull = kiste("pull -q --policy " + policy.native() + " " + h_ + "/staging/other:1");
  EXPECT_EQ(pull.status, 0) << pull.output;
}

TEST_F(Trust, TamperedOrMisplacedSignaturesAreRefused) {
  std::string da = skopeo_digest("staging/app:1");
  std::string db = skopeo_digest("staging/other:1");
  ASSERT_FALSE(da.empty());
  ASSERT_FALSE(db.empty());
  auto k = sys::read_file(key("k.key"));
  ASSERT_TRUE(k);
  auto priv = trust::PrivateKey::load_encrypted(*k, kPass);
  ASSERT_TRUE(priv) << priv.error().to_string();
  auto c = registry::Client::create(h_);
  ASSERT_TRUE(c);
  auto digest_a = image::Digest::parse(da).value();
  auto digest_b = image::Digest::parse(db).value();

  // One byte of a good signature changed, stored as app:1's signature.
  auto sig = trust::make_sigstore_signature(*priv, h_ + "/staging/app:1", digest_a);
  ASSERT_TRUE(sig);
  std::string der = *trust::base64_decode(sig->annotations[std::string(trust::kSignatureAnnotation)]);
  der[der.size() / 2] ^= 0x01;
  auto tampered = sig->annotations;
  tampered[std::string(trust::kSignatureAnnotation)] = trust::base64_encode(der);
  ASSERT_TRUE(registry::append_attached_layer(**c, "staging/app", trust::signature_tag(digest_a),
                                              trust::kSimpleSigningMediaType, sig->payload, tampered));
  auto v = kiste("verify " + h_ + "/staging/app:1 --key " + key("k.pub"));
  EXPECT_EQ(v.status, 125) << v.output;
  EXPECT_EQ(lines(v.output), 1u) << v.output;
  EXPECT_NE(v.output.find("does not verify"), std::string::npos) << v.output;

  // A good signature of app:1's digest stored as other:1's signature.
  auto misplaced = trust::make_sigstore_signature(*priv, h_ + "/staging/other:1", digest_a);
  ASSERT_TRUE(misplaced);
  ASSERT_TRUE(registry::append_attached_layer(**c, "staging/other", trust::signature_tag(digest_b),
                                              trust::kSimpleSigningMediaType, misplaced->payload,
                                              misplaced->annotations));
  auto v2 = kiste("verify " + h_ + "/staging/other:1 --key " + key("k.pub"));
  EXPECT_EQ(v2.status, 125) << v2.output;
  EXPECT_NE(v2.output.find("signature is for " + da), std::string::npos) << v2.output;
  // And the policy refuses both, naming image, requirement and key.
  auto policy = write_policy("p.json", sigstore_scope(h_ + "/staging", key("k.pub")));
  for (const std::string ref : {"staging/app:1", "staging/other:1"}) {
    auto pull = kiste("pull --policy " + policy.native() + " " + h_ + "/" + ref);
    EXPECT_EQ(pull.status, 125) << pull.output;
    EXPECT_EQ(lines(pull.output), 1u) << pull.output;
    EXPECT_NE(pull.output.find(h_ + "/" + ref), std::string::npos) << pull.output;
    EXPECT_NE(pull.output.find("sigstoreSigned (key `" + key("k.pub") + "`)"), std::string::npos) << pull.output;
  }
  auto images = kiste("images");
  EXPECT_EQ(images.output.find("staging/"), std::string::npos) << images.output;  // nothing stored
}

// `sign --registry-referrers-mode=oci-1-1`: the signature as an OCI 1.1 referrer (cosign's
// shape: artifactType application/vnd.dev.cosign.artifact.sig.v1+json, the empty config, the
// payload as the one simple-signing layer, subject = the image). Debian's registry 2.8 has no
// referrers API, so it is listed in the referrers tag schema index `sha256-<hex>` (read here with
// curl); no `.sig` tag is written. verify and the policy find it there as they find `.sig` tags;
// a tampered referrer signature is refused, and promote carries it to prod.
TEST_F(Trust, SignaturesAsReferrersVerifyAndTravelWithPromote) {
  auto s = kiste("sign --registry-referrers-mode oci-1-1 " + h_ + "/staging/app:1 --key " +
                 key("k.key"));
  ASSERT_EQ(s.status, 0) << s.output;
  EXPECT_NE(s.output.find("(referrer sha256:"), std::string::npos) << s.output;
  const std::string da = skopeo_digest("staging/app:1");
  const std::string hex = da.substr(7);
  auto get = [&](const std::string& path, const std::string& accept) {
    std::string body;
    int rc = run_shell("curl -sf -H 'Accept: " + accept + "' http://" + h_ + "/v2/" + path, &body);
    return rc == 0 ? nlohmann::json::parse(body, nullptr, false) : nlohmann::json();
  };
  // No .sig tag; the tag schema index lists one signature artifact.
  auto sig_tag = get("staging/app/manifests/sha256-" + hex + ".sig",
                     "application/vnd.oci.image.manifest.v1+json");
  EXPECT_TRUE(sig_tag.is_null()) << sig_tag.dump();
  auto idx = get("staging/app/manifests/sha256-" + hex, "application/vnd.oci.image.index.v1+json");
  ASSERT_TRUE(idx.is_object()) << idx.dump();
  ASSERT_EQ(idx["manifests"].size(), 1u) << idx.dump();
  EXPECT_EQ(idx["manifests"][0].value("artifactType", ""),
            "application/vnd.dev.cosign.artifact.sig.v1+json");
  const std::string art = idx["manifests"][0].value("digest", "");
  auto m = get("staging/app/manifests/" + art, "application/vnd.oci.image.manifest.v1+json");
  ASSERT_TRUE(m.is_object());
  EXPECT_EQ(m.value("artifactType", ""), "application/vnd.dev.cosign.artifact.sig.v1+json");
  EXPECT_EQ(m["config"].value("mediaType", ""), "application/vnd.oci.empty.v1+json");
  EXPECT_EQ(m["subject"].value("digest", ""), da);
  ASSERT_EQ(m["layers"].size(), 1u);
  const auto& layer = m["layers"][0];
  EXPECT_EQ(layer.value("mediaType", ""), "application/vnd.dev.cosign.simplesigning.v1+json");
  // The signature is cosign's: openssl checks it over the payload blob.
  std::string payload;
  ASSERT_EQ(run_shell("curl -sf http://" + h_ + "/v2/staging/app/blobs/" +
                          layer.value("digest", ""),
                      &payload),
            0);
  auto der = trust::base64_decode(layer["annotations"].value("dev.cosignproject.cosign/signature", ""));
  ASSERT_TRUE(der);
  EXPECT_TRUE(openssl_verifies(key("k.pub"), payload, *der));

  // kiste verify and the policy find it; another key does not verify it.
  auto v = kiste("verify " + h_ + "/staging/app:1 --key " + key("k.pub"));
  EXPECT_EQ(v.status, 0) << v.output;
  auto other = kiste("verify " + h_ + "/staging/app:1 --key " + key("k2.pub"));
  EXPECT_EQ(other.status, 125) << other.output;
  auto policy = write_policy("p.json", sigstore_scope(h_ + "/staging", key("k.pub")));
  auto pull = kiste("pull -q --policy " + policy.native() + " " + h_ + "/staging/app:1");
  EXPECT_EQ(pull.status, 0) << pull.output;

  // promote carries the referrer; prod's policy (remapped to staging's identity) accepts it.
  auto prod_policy = write_policy(
      "prod.json", sigstore_scope(h_ + "/prod", key("k.pub"),
                                  R"({"type":"remapIdentity","prefix":")" + h_ +
                                      R"(/prod","signedPrefix":")" + h_ + R"(/staging"})"));
  auto p = kiste("promote -q --policy " + prod_policy.native() + " " + h_ + "/staging/app:1 " + h_ +
                 "/prod/app:1");
  ASSERT_EQ(p.status, 0) << p.output;
  auto pv = kiste("verify " + h_ + "/prod/app:1 --key " + key("k.pub") + " --identity " + h_ +
                  "/staging/app:1");
  EXPECT_EQ(pv.status, 0) << pv.output;

  // A referrer signature with one byte changed, on other:1: refused by verify and the policy.
  auto k = sys::read_file(key("k.key"));
  ASSERT_TRUE(k);
  auto priv = trust::PrivateKey::load_encrypted(*k, kPass);
  ASSERT_TRUE(priv);
  const std::string db = skopeo_digest("staging/other:1");
  auto c = registry::Client::create(h_);
  ASSERT_TRUE(c);
  auto sig = trust::make_sigstore_signature(*priv, h_ + "/staging/other:1",
                                            image::Digest::parse(db).value());
  ASSERT_TRUE(sig);
  std::string bad = *trust::base64_decode(sig->annotations[std::string(trust::kSignatureAnnotation)]);
  bad[bad.size() / 2] ^= 0x01;
  sig->annotations[std::string(trust::kSignatureAnnotation)] = trust::base64_encode(bad);
  auto subject = (*c)->try_head_manifest("staging/other", db);
  ASSERT_TRUE(subject && *subject);
  ASSERT_TRUE(registry::push_referrer_layer(**c, "staging/other", **subject,
                                            trust::kSignatureArtifactType,
                                            trust::kSimpleSigningMediaType,
                                            {sig->payload, sig->annotations}));
  auto tv = kiste("verify " + h_ + "/staging/other:1 --key " + key("k.pub"));
  EXPECT_EQ(tv.status, 125) << tv.output;
  EXPECT_NE(tv.output.find("does not verify"), std::string::npos) << tv.output;
  auto tp = kiste("pull --policy " + policy.native() + " " + h_ + "/staging/other:1");
  EXPECT_EQ(tp.status, 125) << tp.output;
}

TEST_F(Trust, PolicyGatesPromoteAndNothingIsTaggedOnRefusal) {
  ASSERT_EQ(kiste("sign " + h_ + "/staging/app:1 --key " + key("k.key")).status, 0);
  std::string da = skopeo_digest("staging/app:1");
  // Production accepts images signed by k for their staging name (the signature binds staging's
  // repository; remapIdentity maps prod's name onto it).
  auto policy = write_policy(
      "prod.json",
      sigstore_scope(h_ + "/prod", key("k.pub"),
                     R"({"type":"remapIdentity","prefix":")" + h_ + R"(/prod","signedPrefix":")" +
                         h_ + R"(/staging"})"));
  auto ok = kiste("promote -q --policy " + policy.native() + " " + h_ + "/staging/app:1 " + h_ +
                  "/prod/app:1");
  ASSERT_EQ(ok.status, 0) << ok.output;
  EXPECT_EQ(skopeo_digest("prod/app:1"), da);

  // Unsigned: 125, one line naming the image, the requirement and the key; prod/app:1 unchanged.
  const int puts_before = reg_->count_requests("PUT /v2/prod/");
  auto refused = kiste("promote --policy " + policy.native() + " " + h_ + "/staging/other:1 " + h_ +
                       "/prod/app:1");
  EXPECT_EQ(refused.status, 125) << refused.output;
  EXPECT_EQ(lines(refused.output), 1u) << refused.output;
  EXPECT_NE(refused.output.find(h_ + "/prod/app:1"), std::string::npos) << refused.output;
  EXPECT_NE(refused.output.find("sigstoreSigned (key `" + key("k.pub") + "`)"), std::string::npos)
      << refused.output;
  EXPECT_EQ(skopeo_digest("prod/app:1"), da);
  EXPECT_EQ(reg_->count_requests("PUT /v2/prod/"), puts_before);  // nothing uploaded or tagged

  // The same policy through $KISTE_POLICY, and a source signed by another key.
  ::setenv("KISTE_POLICY", policy.c_str(), 1);
  ASSERT_EQ(kiste("sign " + h_ + "/staging/other:1 --key " + key("k2.key")).status, 0);
  auto other_key = kiste("promote " + h_ + "/staging/other:1 " + h_ + "/prod/other:1");
  EXPECT_EQ(other_key.status, 125) << other_key.output;
  EXPECT_NE(other_key.output.find("does not verify"), std::string::npos) << other_key.output;
  EXPECT_EQ(skopeo_digest("prod/other:1"), "");
  ::unsetenv("KISTE_POLICY");

  // --require-signed-by gates the source under its own name.
  auto req = kiste("promote --require-signed-by " + key("k.pub") + " " + h_ + "/staging/other:1 " +
                   h_ + "/prod/req:1");
  EXPECT_EQ(req.status, 125) << req.output;
  EXPECT_EQ(skopeo_digest("prod/req:1"), "");
  auto req_ok = kiste("promote -q --require-signed-by " + key("k2.pub") + " " + h_ +
                      "/staging/other:1 " + h_ + "/prod/req:1");
  EXPECT_EQ(req_ok.status, 0) << req_ok.output;
}

TEST_F(Trust, PromoteSignByReSignsForTheDestination) {
  ASSERT_EQ(kiste("sign " + h_ + "/staging/app:1 --key " + key("k.key")).status, 0);
  auto p = kiste("promote -q --sign-by " + key("k2.key") + " " + h_ + "/staging/app:1 " + h_ +
                 "/prod/app:1");
  ASSERT_EQ(p.status, 0) << p.output;
  // The prod copy verifies under prod's identity with the new key; staging's signature (copied
  // along) still verifies for staging and binds staging's name only.
  EXPECT_EQ(kiste("verify " + h_ + "/prod/app:1 --key " + key("k2.pub")).status, 0);
  EXPECT_EQ(kiste("verify " + h_ + "/staging/app:1 --key " + key("k.pub")).status, 0);
  EXPECT_EQ(kiste("verify " + h_ + "/prod/app:1 --key " + key("k.pub")).status, 125);
  // A policy for prod with the default identity rule (matchRepoDigestOrExact) accepts it.
  auto policy = write_policy("prod.json", sigstore_scope(h_ + "/prod", key("k2.pub")));
  auto pull = kiste("pull -q --policy " + policy.native() + " " + h_ + "/prod/app:1");
  EXPECT_EQ(pull.status, 0) << pull.output;
}

// GPG simple signing as skopeo --sign-by writes it (lookaside storage named in registries.d):
// kiste's signedBy policy accepts it where skopeo's does, and refuses another key, a missing
// signature and a signature with one byte changed.
TEST_F(Trust, SkopeoGpgSignaturesAreCheckedBySignedBy) {
  const fs::path home = tmp_ / "gnupg";
  fs::create_directories(home);
  fs::permissions(home, fs::perms::owner_all, fs::perm_options::replace);
  // gpg starts an agent for this home; it is ended with the test.
  struct AgentGuard {
    fs::path home;
    ~AgentGuard() { (void)run_shell("gpgconf --homedir " + home.native() + " --kill all 2>/dev/null"); }
  } agent{home};
  const std::string gpg = "GNUPGHOME=" + home.native() + " gpg --batch --passphrase '' ";
  std::string out;
  for (const char* who : {"kiste e2e <e2e@example.invalid>", "other <other@example.invalid>"}) {
    ASSERT_EQ(run_shell(gpg + "--quick-gen-key '" + who + "' ed25519 sign never 2>&1", &out), 0) << out;
  }
  auto fpr_of = [&](const std::string& uid) {
    std::string o;
    EXPECT_EQ(run_shell(gpg + "--list-keys --with-colons '" + uid +
                            "' | awk -F: '/^fpr/{print $10; exit}'",
                        &o),
              0);
    return trim(o);
  };
  const std::string fpr = fpr_of("e2e@example.invalid");
  const std::string other = fpr_of("other@example.invalid");
  ASSERT_EQ(fpr.size(), 40u) << fpr;
  ASSERT_EQ(run_shell(gpg + "--armor --export " + fpr + " > " + key("gpg.asc") + " && " + gpg +
                          "--export " + other + " > " + key("other.gpg")),
            0);
  const fs::path look = tmp_ / "lookaside";
  const fs::path rd = tmp_ / "registries-gpg.d";
  fs::create_directories(rd);
  ASSERT_TRUE(sys::write_file_atomic(rd / "gpg.yaml",
                                     "# where skopeo --sign-by puts GPG signatures\ndocker:\n  " + h_ +
                                         ":\n    lookaside: file://" + look.native() +
                                         "\n    lookaside-staging: 'file://" + look.native() + "'\n"));
  ASSERT_EQ(run_shell("GNUPGHOME=" + home.native() + " skopeo --insecure-policy --registries.d " +
                          rd.native() + " copy --src-tls-verify=false --dest-tls-verify=false --sign-by " +
                          fpr + " docker://" + h_ + "/staging/app:1 docker://" + h_ + "/gpg/app:1 2>&1",
                      &out),
            0)
      << out;
  push("two", "gpg/unsigned:1");
  auto policy = write_policy("gpg.json", R"({"default":[{"type":"reject"}],"transports":{"docker":{")" + h_ +
                                             R"(/gpg":[{"type":"signedBy","keyType":"GPGKeys","keyPath":")" +
                                             key("gpg.asc") + R"("}]}}})");
  const std::string flags = "--policy " + policy.native() + " --registries.d " + rd.native() + " ";
  // skopeo accepts it under this policy, and so does kiste.
  out.clear();
  EXPECT_EQ(run_shell("skopeo --policy " + policy.native() + " --registries.d " + rd.native() +
                          " copy --src-tls-verify=false docker://" + h_ + "/gpg/app:1 dir:" +
                          (tmp_ / "gpg-dir").native() + " 2>&1",
                      &out),
            0)
      << out;
  auto ok = kiste("pull -q " + flags + h_ + "/gpg/app:1");
  EXPECT_EQ(ok.status, 0) << ok.output;

  auto unsigned_ = kiste("pull " + flags + h_ + "/gpg/unsigned:1");
  EXPECT_EQ(unsigned_.status, 125) << unsigned_.output;
  EXPECT_EQ(lines(unsigned_.output), 1u) << unsigned_.output;
  EXPECT_NE(unsigned_.output.find("no GPG signature"), std::string::npos) << unsigned_.output;

  auto other_policy = write_policy("gpg-other.json", R"({"default":[{"type":"signedBy","keyType":"GPGKeys","keyPath":")" +
                                                         key("other.gpg") + R"("}]})");
  auto wrong = kiste("pull --policy " + other_policy.native() + " --registries.d " + rd.native() +
                     " " + h_ + "/gpg/app:1");
  EXPECT_EQ(wrong.status, 125) << wrong.output;
  EXPECT_NE(wrong.output.find("does not verify"), std::string::npos) << wrong.output;
  EXPECT_NE(wrong.output.find("signedBy (key `" + key("other.gpg") + "`)"), std::string::npos) << wrong.output;

  // One byte of the stored signature changed.
  std::string sig_file;
  for (const auto& e : fs::recursive_directory_iterator(look)) {
    if (e.path().filename() == "signature-1") sig_file = e.path();
  }
  ASSERT_FALSE(sig_file.empty());
  auto bytes = sys::read_file(sig_file);
  ASSERT_TRUE(bytes);
  (*bytes)[bytes->size() / 2] ^= 0x01;
  ASSERT_TRUE(sys::write_file_atomic(sig_file, *bytes));
  auto tampered = kiste("pull " + flags + h_ + "/gpg/app:1");
  EXPECT_EQ(tampered.status, 125) << tampered.output;
  EXPECT_EQ(lines(tampered.output), 1u) << tampered.output;

  // kiste signs with GPG as skopeo --sign-by does (the key in the user's GnuPG home, the
  // signature in the lookaside storage registries.d names): skopeo's signedBy policy accepts it,
  // and kiste's. Signed by the other key instead: skopeo refuses it.
  push("one", "gpg/kiste:1");
  push("two", "gpg/kiste-other:1");
  auto kiste_gpg = [&](const std::string& args) {
    CliResult r;
    r.status = run_shell("GNUPGHOME=" + home.native() + " " +
                             kiste_command(kiste_.root(), args + " 2>&1"),
                         &r.output);
    return r;
  };
  auto signed_ = kiste_gpg("sign --sign-by " + fpr + " --registries.d " + rd.native() + " " + h_ +
                           "/gpg/kiste:1");
  ASSERT_EQ(signed_.status, 0) << signed_.output;
  EXPECT_NE(signed_.output.find("/signature-1"), std::string::npos) << signed_.output;
  auto by_other = kiste_gpg("sign --sign-by " + other + " --registries.d " + rd.native() + " " +
                            h_ + "/gpg/kiste-other:1");
  ASSERT_EQ(by_other.status, 0) << by_other.output;
  out.clear();
  EXPECT_EQ(run_shell("skopeo --policy " + policy.native() + " --registries.d " + rd.native() +
                          " copy --src-tls-verify=false docker://" + h_ + "/gpg/kiste:1 dir:" +
                          (tmp_ / "gpg-kiste-dir").native() + " 2>&1",
                      &out),
            0)
      << out;
  out.clear();
  EXPECT_NE(run_shell("skopeo --policy " + policy.native() + " --registries.d " + rd.native() +
                          " copy --src-tls-verify=false docker://" + h_ + "/gpg/kiste-other:1 dir:" +
                          (tmp_ / "gpg-kiste-other-dir").native() + " 2>&1",
                      &out),
            0)
      << out;
  auto kiste_ok = kiste("pull -q " + flags + h_ + "/gpg/kiste:1");
  EXPECT_EQ(kiste_ok.status, 0) << kiste_ok.output;
  // A key that is not a fingerprint, and one the home does not have: one line, nothing written.
  auto bad = kiste_gpg("sign --sign-by 'not hex' --registries.d " + rd.native() + " " + h_ +
                       "/gpg/kiste:1");
  EXPECT_EQ(bad.status, 125) << bad.output;
  EXPECT_EQ(lines(bad.output), 1u) << bad.output;
  auto missing = kiste_gpg("sign --sign-by " + std::string(40, 'A') + " --registries.d " +
                           rd.native() + " " + h_ + "/gpg/kiste:1");
  EXPECT_EQ(missing.status, 125) << missing.output;
  EXPECT_EQ(lines(missing.output), 1u) << missing.output;
  size_t files = 0;
  for (const auto& e : fs::recursive_directory_iterator(look)) files += e.is_regular_file() ? 1 : 0;
  EXPECT_EQ(files, 3u);  // skopeo's, and kiste's two
}

}  // namespace
}  // namespace kiste::testing
