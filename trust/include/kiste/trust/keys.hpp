#pragma once
// Signing keys in sigstore/cosign's formats: ECDSA P-256, the private key as PKCS#8 DER inside
// cosign's "ENCRYPTED SIGSTORE PRIVATE KEY" PEM (JSON: scrypt KDF + nacl/secretbox), the public key
// as a PEM "PUBLIC KEY" (SubjectPublicKeyInfo). Signatures are ECDSA over SHA-256, DER encoded, as
// cosign and containers/image make and check them. Keys never reach a log or an error message.
#include <memory>
#include <string>
#include <string_view>

#include <kiste/base/error.hpp>

namespace kiste::trust {

inline constexpr std::string_view kEncryptedKeyPemType = "ENCRYPTED SIGSTORE PRIVATE KEY";
// What cosign wrote before it was renamed; read, never written.
inline constexpr std::string_view kLegacyEncryptedKeyPemType = "ENCRYPTED COSIGN PRIVATE KEY";

class PublicKey {
 public:
  // A PEM "PUBLIC KEY" (EC or RSA); anything else is refused.
  [[nodiscard]] static Result<PublicKey> parse_pem(std::string_view pem);
  ~PublicKey();
  PublicKey(PublicKey&&) noexcept;
  PublicKey& operator=(PublicKey&&) noexcept;

  // Checks a DER signature over SHA-256(data): true when it verifies.
  [[nodiscard]] bool verify(std::string_view data, std::string_view der_signature) const;
  [[nodiscard]] std::string pem() const;
  // "sha256:<hex>" of the DER SubjectPublicKeyInfo: names a key in messages.
  [[nodiscard]] std::string fingerprint() const;

  struct Impl;

 private:
  explicit PublicKey(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

class PrivateKey {
 public:
  // A fresh ECDSA P-256 key.
  [[nodiscard]] static Result<PrivateKey> generate();
  // Decrypts cosign's encrypted PEM. A wrong passphrase is "wrong passphrase" (the MAC fails);
  // scrypt parameters beyond what sigstore tools write are refused before any work is done.
  [[nodiscard]] static Result<PrivateKey> load_encrypted(std::string_view pem,
                                                         std::string_view passphrase);
  ~PrivateKey();
  PrivateKey(PrivateKey&&) noexcept;
  PrivateKey& operator=(PrivateKey&&) noexcept;

  // cosign's encrypted PEM (scrypt N=32768 r=8 p=1, random salt and nonce).
  [[nodiscard]] Result<std::string> encrypted_pem(std::string_view passphrase) const;
  [[nodiscard]] Result<std::string> public_pem() const;
  [[nodiscard]] Result<PublicKey> public_key() const;
  // DER ECDSA signature over SHA-256(data).
  [[nodiscard]] Result<std::string> sign(std::string_view data) const;

  struct Impl;

 private:
  explicit PrivateKey(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Standard base64 (with padding), as Go's encoding/base64.StdEncoding.
[[nodiscard]] std::string base64_encode(std::string_view bytes);
// Strict: only the standard alphabet, correct padding; whitespace refused.
[[nodiscard]] Result<std::string> base64_decode(std::string_view text);

}  // namespace kiste::trust
