// Simple-signing payloads and cosign signatures: made, checked, and refused when wrong.
#include <gtest/gtest.h>

#include <kiste/trust/sigstore.hpp>

namespace kiste::trust {
namespace {

const image::Digest kDigest = image::Digest::of("manifest");
const image::Digest kOther = image::Digest::of("another manifest");

TEST(TrustSigstore, PayloadIsCosignsShape) {
  std::string p = make_cosign_payload("localhost:5000/app", kDigest);
  EXPECT_EQ(p, R"({"critical":{"identity":{"docker-reference":"localhost:5000/app"},"image":{"docker-manifest-digest":")" +
                   kDigest.str() + R"("},"type":"cosign container image signature"},"optional":null})");
  auto parsed = parse_simple_signing(p);
  ASSERT_TRUE(parsed) << parsed.error().to_string();
  EXPECT_EQ(parsed->docker_reference, "localhost:5000/app");
  EXPECT_EQ(parsed->manifest_digest, kDigest);
  EXPECT_EQ(signature_tag(kDigest), "sha256-" + std::string(kDigest.hex()) + ".sig");
}

TEST(TrustSigstore, AtomicPayloadHasAnOptionalObject) {
  // containers/image refuses `"optional":null` in a GPG simple signing.
  std::string p = make_atomic_payload("localhost:5000/app:1", kDigest);
  EXPECT_EQ(p, R"({"critical":{"identity":{"docker-reference":"localhost:5000/app:1"},"image":{"docker-manifest-digest":")" +
                   kDigest.str() + R"("},"type":"atomic container signature"},"optional":{"creator":"kiste"}})");
  auto parsed = parse_simple_signing(p);
  ASSERT_TRUE(parsed) << parsed.error().to_string();
  EXPECT_EQ(parsed->type, kAtomicSignatureType);
}

TEST(TrustSigstore, HostilePayloads) {
  const std::string d = kDigest.str();
  for (const std::string& bad : std::vector<std::string>{
           std::string("not json"), std::string("[]"), std::string("{}"),
           std::string(R"({"critical":[]})"),
           R"({"critical":{"identity":{"docker-reference":"a"},"image":{"docker-manifest-digest":")" + d + R"("}}})",
           R"({"critical":{"identity":{"docker-reference":1},"image":{"docker-manifest-digest":")" + d + R"("},"type":"x"}})",
           R"({"critical":{"identity":{"docker-reference":"a"},"image":{"docker-manifest-digest":"sha256:zz"},"type":"x"}})",
           R"({"critical":{"identity":{"docker-reference":"a","extra":1},"image":{"docker-manifest-digest":")" + d + R"("},"type":"x"}})",
           R"({"critical":{"identity":{"docker-reference":"a"},"image":{"docker-manifest-digest":")" + d + R"("},"type":"x"},"optional":5})",
           std::string(kMaxPayloadBytes + 1, ' '),
       }) {
    EXPECT_FALSE(parse_simple_signing(bad)) << bad.substr(0, 200);
  }
}

TEST(TrustSigstore, SignVerifyAndEveryRefusal) {
  auto k = PrivateKey::generate();
  ASSERT_TRUE(k);
  auto pub = *k->public_key();
  auto sig = make_sigstore_signature(*k, "localhost:5000/app:1", kDigest);
  ASSERT_TRUE(sig) << sig.error().to_string();
  auto ok = verify_sigstore_signature(pub, *sig, kDigest);
  ASSERT_TRUE(ok) << ok.error().to_string();
  EXPECT_EQ(ok->docker_reference, "localhost:5000/app:1");

  // For another digest.
  auto other = verify_sigstore_signature(pub, *sig, kOther);
  ASSERT_FALSE(other);
  EXPECT_NE(other.error().message.find("signature is for"), std::string::npos);

  // One byte of the signature changed.
  SigstoreSignature t = *sig;
  std::string der = *base64_decode(t.annotations[std::string(kSignatureAnnotation)]);
  der[der.size() - 3] ^= 0x01;
  t.annotations[std::string(kSignatureAnnotation)] = base64_encode(der);
  auto tampered = verify_sigstore_signature(pub, t, kDigest);
  ASSERT_FALSE(tampered);
  EXPECT_NE(tampered.error().message.find("does not verify"), std::string::npos);

  // One byte of the payload changed.
  SigstoreSignature p = *sig;
  p.payload[p.payload.find("app")] = 'b';
  EXPECT_FALSE(verify_sigstore_signature(pub, p, kDigest));

  // Another key.
  auto k2 = PrivateKey::generate();
  EXPECT_FALSE(verify_sigstore_signature(*k2->public_key(), *sig, kDigest));

  // No annotation, or not base64.
  SigstoreSignature n = *sig;
  n.annotations.clear();
  EXPECT_FALSE(verify_sigstore_signature(pub, n, kDigest));
  n.annotations[std::string(kSignatureAnnotation)] = "***";
  EXPECT_FALSE(verify_sigstore_signature(pub, n, kDigest));
}

}  // namespace
}  // namespace kiste::trust
