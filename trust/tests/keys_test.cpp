// Keys: generate, encrypt in cosign's format, decrypt, sign, verify; hostile key files.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <kiste/trust/keys.hpp>

namespace kiste::trust {
namespace {

TEST(TrustKeys, Base64RoundTripAndStrictness) {
  for (const std::string& s : std::vector<std::string>{"", "f", "fo", "foo", "foob", "fooba", "foobar",
                                                       std::string("\0\xff\x10", 3)}) {
    auto d = base64_decode(base64_encode(s));
    ASSERT_TRUE(d) << s;
    EXPECT_EQ(*d, s);
  }
  EXPECT_EQ(base64_encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(base64_encode("fo"), "Zm8=");
  EXPECT_FALSE(base64_decode("Zm8"));       // length
  EXPECT_FALSE(base64_decode("Zm=8"));      // padding in the middle
  EXPECT_FALSE(base64_decode("Zm 8"));      // whitespace
  EXPECT_FALSE(base64_decode("Zm8=Zm8="));  // padding before the end
}

TEST(TrustKeys, GenerateEncryptDecryptSignVerify) {
  auto k = PrivateKey::generate();
  ASSERT_TRUE(k) << k.error().to_string();
  auto pem = k->encrypted_pem("correct horse");
  ASSERT_TRUE(pem) << pem.error().to_string();
  EXPECT_TRUE(pem->starts_with("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n")) << *pem;
  EXPECT_EQ(pem->find("correct horse"), std::string::npos);

  // The JSON inside is sigstore's: scrypt N=32768 r=8 p=1, nacl/secretbox, 32-byte salt.
  std::string body;
  {
    size_t b = pem->find('\n') + 1;
    size_t e = pem->find("-----END");
    for (char c : pem->substr(b, e - b)) if (c != '\n') body += c;
  }
  auto decoded = base64_decode(body);
  ASSERT_TRUE(decoded);
  auto doc = nlohmann::json::parse(*decoded);
  EXPECT_EQ(doc["kdf"]["name"], "scrypt");
  EXPECT_EQ(doc["kdf"]["params"]["N"], 32768);
  EXPECT_EQ(doc["kdf"]["params"]["r"], 8);
  EXPECT_EQ(doc["kdf"]["params"]["p"], 1);
  EXPECT_EQ(base64_decode(doc["kdf"]["salt"].get<std::string>())->size(), 32u);
  EXPECT_EQ(doc["cipher"]["name"], "nacl/secretbox");
  EXPECT_EQ(base64_decode(doc["cipher"]["nonce"].get<std::string>())->size(), 24u);

  auto loaded = PrivateKey::load_encrypted(*pem, "correct horse");
  ASSERT_TRUE(loaded) << loaded.error().to_string();
  auto wrong = PrivateKey::load_encrypted(*pem, "wrong horse");
  ASSERT_FALSE(wrong);
  EXPECT_NE(wrong.error().message.find("wrong passphrase"), std::string::npos);

  auto pub_pem = k->public_pem();
  ASSERT_TRUE(pub_pem);
  EXPECT_TRUE(pub_pem->starts_with("-----BEGIN PUBLIC KEY-----\n"));
  auto pub = PublicKey::parse_pem(*pub_pem);
  ASSERT_TRUE(pub) << pub.error().to_string();
  auto sig = loaded->sign("payload");
  ASSERT_TRUE(sig);
  EXPECT_TRUE(pub->verify("payload", *sig));
  EXPECT_FALSE(pub->verify("payloaD", *sig));
  std::string tampered = *sig;
  tampered[tampered.size() / 2] ^= 1;
  EXPECT_FALSE(pub->verify("payload", tampered));
  // Another key does not verify it.
  auto other = PrivateKey::generate();
  ASSERT_TRUE(other);
  EXPECT_FALSE(other->public_key()->verify("payload", *sig));
  EXPECT_NE(other->public_key()->fingerprint(), pub->fingerprint());
}

std::string encrypted_with(const std::string& json_text) {
  std::string b64 = base64_encode(json_text);
  return "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n" + b64 +
         "\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n";
}

TEST(TrustKeys, HostileKeyFilesAreRefusedWithoutWork) {
  EXPECT_FALSE(PrivateKey::load_encrypted("", "x"));
  EXPECT_FALSE(PrivateKey::load_encrypted("-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n", "x"));
  EXPECT_FALSE(PrivateKey::load_encrypted(encrypted_with("not json"), "x"));
  EXPECT_FALSE(PrivateKey::load_encrypted(encrypted_with("[]"), "x"));
  const std::string salt = base64_encode(std::string(32, 'a'));
  const std::string nonce = base64_encode(std::string(24, 'b'));
  auto doc = [&](std::string n, std::string r, std::string p, std::string kdf = "scrypt",
                 std::string cipher = "nacl/secretbox", std::string ct = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA") {
    return encrypted_with(R"({"kdf":{"name":")" + kdf + R"(","params":{"N":)" + n + R"(,"r":)" + r +
                          R"(,"p":)" + p + R"(},"salt":")" + salt + R"("},"cipher":{"name":")" +
                          cipher + R"(","nonce":")" + nonce + R"("},"ciphertext":")" + ct + R"("})");
  };
  // A memory bomb (N = 2^40) is refused before scrypt runs.
  auto bomb = PrivateKey::load_encrypted(doc("1099511627776", "8", "1"), "x");
  ASSERT_FALSE(bomb);
  EXPECT_NE(bomb.error().message.find("scrypt parameters"), std::string::npos) << bomb.error().to_string();
  EXPECT_FALSE(PrivateKey::load_encrypted(doc("-1", "8", "1"), "x"));
  EXPECT_FALSE(PrivateKey::load_encrypted(doc("32767", "8", "1"), "x"));
  EXPECT_FALSE(PrivateKey::load_encrypted(doc("\"32768\"", "8", "1"), "x"));
  EXPECT_FALSE(PrivateKey::load_encrypted(doc("32768", "8", "1", "pbkdf2"), "x"));
  EXPECT_FALSE(PrivateKey::load_encrypted(doc("32768", "8", "1", "scrypt", "aes"), "x"));
  EXPECT_FALSE(PrivateKey::load_encrypted(doc("32768", "8", "1", "scrypt", "nacl/secretbox", "AAAA"), "x"));
  auto garbage = PrivateKey::load_encrypted(doc("32768", "8", "1"), "x");
  ASSERT_FALSE(garbage);
  EXPECT_NE(garbage.error().message.find("wrong passphrase"), std::string::npos);
}

TEST(TrustKeys, HostilePublicKeys) {
  EXPECT_FALSE(PublicKey::parse_pem(""));
  EXPECT_FALSE(PublicKey::parse_pem("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"));
  EXPECT_FALSE(PublicKey::parse_pem("-----BEGIN PUBLIC KEY-----\n!!!!\n-----END PUBLIC KEY-----\n"));
  EXPECT_FALSE(PublicKey::parse_pem("-----BEGIN PUBLIC KEY-----\nAAAA\n"));
  auto k = PrivateKey::generate();
  ASSERT_TRUE(k);
  auto pem = *k->public_pem();
  // Trailing bytes after the DER are refused.
  std::string der;
  {
    size_t b = pem.find('\n') + 1;
    size_t e = pem.find("-----END");
    std::string body;
    for (char c : pem.substr(b, e - b)) if (c != '\n') body += c;
    der = *base64_decode(body);
  }
  std::string extended = "-----BEGIN PUBLIC KEY-----\n" + base64_encode(der + "x") +
                         "\n-----END PUBLIC KEY-----\n";
  EXPECT_FALSE(PublicKey::parse_pem(extended));
}

}  // namespace
}  // namespace kiste::trust
