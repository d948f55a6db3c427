// ECDSA keys with OpenSSL; cosign's encrypted private key format with libsodium (scrypt and
// XSalsa20-Poly1305 "secretbox", the MAC before the ciphertext as nacl writes it).
#include <kiste/trust/keys.hpp>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sodium.h>

#include <array>
#include <nlohmann/json.hpp>

#include <kiste/image/digest.hpp>

namespace kiste::trust {

// OpenSSL handles owned by the key classes' Impl (outside the anonymous namespace: Impl's members
// must not have internal linkage).
namespace detail {
struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;
}  // namespace detail
using detail::PkeyPtr;

namespace {

using json = nlohmann::json;

struct MdCtxFree {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
struct P8Free {
  void operator()(PKCS8_PRIV_KEY_INFO* p) const { PKCS8_PRIV_KEY_INFO_free(p); }
};

// Wipes a string that held key material or a derived key.
struct Wipe {
  std::string& s;
  ~Wipe() { sodium_memzero(s.data(), s.size()); }
};

// scrypt parameters of what sigstore tools write (N=2^15 cosign, 2^16 the "standard" set);
// anything above kMaxScryptN would let a hostile key file ask for gigabytes.
constexpr uint64_t kScryptN = 32768;
constexpr uint32_t kScryptR = 8;
constexpr uint32_t kScryptP = 1;
constexpr uint64_t kMaxScryptN = uint64_t{1} << 17;

Status sodium_ready() {
  if (sodium_init() < 0) return fail(Errc::System, "libsodium: initialisation failed");
  return {};
}

Result<std::string> spki_der(EVP_PKEY* k) {
  unsigned char* der = nullptr;
  int n = i2d_PUBKEY(k, &der);
  if (n <= 0) return fail(Errc::System, "encode public key: OpenSSL refused it");
  std::string out(reinterpret_cast<char*>(der), static_cast<size_t>(n));
  OPENSSL_free(der);
  return out;
}

Result<std::string> derive_key(std::string_view passphrase, std::string_view salt, uint64_t n,
                               uint32_t r, uint32_t p) {
  std::string key(crypto_secretbox_KEYBYTES, '\0');
  if (crypto_pwhash_scryptsalsa208sha256_ll(
          reinterpret_cast<const uint8_t*>(passphrase.data()), passphrase.size(),
          reinterpret_cast<const uint8_t*>(salt.data()), salt.size(), n, r, p,
          reinterpret_cast<uint8_t*>(key.data()), key.size()) != 0) {
    return fail(Errc::System, "scrypt: key derivation failed (out of memory?)");
  }
  return key;
}

// The PEM block of type `type` in `pem`: its base64 body decoded. Bounded and strict.
Result<std::string> pem_body(std::string_view pem, std::string_view type) {
  std::string begin = "-----BEGIN " + std::string(type) + "-----";
  std::string end = "-----END " + std::string(type) + "-----";
  size_t b = pem.find(begin);
  if (b == std::string_view::npos) return failf(Errc::InvalidArgument, "no PEM block `{}`", type);
  size_t body = b + begin.size();
  size_t e = pem.find(end, body);
  if (e == std::string_view::npos) return failf(Errc::InvalidArgument, "PEM block `{}` not closed", type);
  std::string b64;
  for (char c : pem.substr(body, e - body)) {
    if (c == '\n' || c == '\r') continue;
    b64 += c;
  }
  return base64_decode(b64);
}

std::string pem_wrap(std::string_view type, std::string_view der) {
  std::string b64 = base64_encode(der);
  std::string out = "-----BEGIN " + std::string(type) + "-----\n";
  for (size_t i = 0; i < b64.size(); i += 64) out += b64.substr(i, 64) + "\n";
  out += "-----END " + std::string(type) + "-----\n";
  return out;
}

}  // namespace

// ---- base64 ----------------------------------------------------------------------------------

std::string base64_encode(std::string_view bytes) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    uint32_t v = (uint32_t(uint8_t(bytes[i])) << 16) | (uint32_t(uint8_t(bytes[i + 1])) << 8) |
                 uint8_t(bytes[i + 2]);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  size_t rest = bytes.size() - i;
  if (rest > 0) {
    uint32_t v = uint32_t(uint8_t(bytes[i])) << 16;
    if (rest == 2) v |= uint32_t(uint8_t(bytes[i + 1])) << 8;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += rest == 2 ? kAlphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

Result<std::string> base64_decode(std::string_view text) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  if (text.size() % 4 != 0) return fail(Errc::InvalidArgument, "base64: length is not a multiple of 4");
  std::string out;
  out.reserve(text.size() / 4 * 3);
  for (size_t i = 0; i < text.size(); i += 4) {
    bool last = i + 4 == text.size();
    int pad = 0;
    if (last && text[i + 3] == '=') pad = text[i + 2] == '=' ? 2 : 1;
    uint32_t v = 0;
    for (size_t j = 0; j < 4; ++j) {
      int d = 0;
      if (j >= 4 - static_cast<size_t>(pad)) {
        if (text[i + j] != '=') return fail(Errc::InvalidArgument, "base64: bad padding");
      } else {
        d = value(text[i + j]);
        if (d < 0) return fail(Errc::InvalidArgument, "base64: invalid character");
      }
      v = (v << 6) | static_cast<uint32_t>(d);
    }
    out += static_cast<char>((v >> 16) & 0xff);
    if (pad < 2) out += static_cast<char>((v >> 8) & 0xff);
    if (pad < 1) out += static_cast<char>(v & 0xff);
  }
  return out;
}

// ---- public keys -----------------------------------------------------------------------------

struct PublicKey::Impl {
  PkeyPtr key;
};

PublicKey::PublicKey(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
PublicKey::~PublicKey() = default;
PublicKey::PublicKey(PublicKey&&) noexcept = default;
PublicKey& PublicKey::operator=(PublicKey&&) noexcept = default;

Result<PublicKey> PublicKey::parse_pem(std::string_view pem) {
  if (pem.size() > 64 * 1024) return fail(Errc::InvalidArgument, "public key: larger than 64 KiB");
  KISTE_ASSIGN_OR_RETURN(std::string der,
                         with_context(pem_body(pem, "PUBLIC KEY"), "public key"));
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  PkeyPtr k(d2i_PUBKEY(nullptr, &p, static_cast<long>(der.size())));
  if (!k || p != reinterpret_cast<const unsigned char*>(der.data()) + der.size()) {
    return fail(Errc::InvalidArgument, "public key: not a valid SubjectPublicKeyInfo");
  }
  int id = EVP_PKEY_get_base_id(k.get());
  if (id != EVP_PKEY_EC && id != EVP_PKEY_RSA) {
    return fail(Errc::Unsupported, "public key: only ECDSA and RSA keys are supported");
  }
  auto impl = std::make_unique<Impl>();
  impl->key = std::move(k);
  return PublicKey(std::move(impl));
}

bool PublicKey::verify(std::string_view data, std::string_view der_signature) const {
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  if (!ctx) return false;
  if (EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, impl_->key.get()) != 1) {
    return false;
  }
  return EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(der_signature.data()),
                          der_signature.size(),
                          reinterpret_cast<const unsigned char*>(data.data()), data.size()) == 1;
}

std::string PublicKey::pem() const {
  auto der = spki_der(impl_->key.get());
  return der ? pem_wrap("PUBLIC KEY", *der) : std::string();
}

std::string PublicKey::fingerprint() const {
  auto der = spki_der(impl_->key.get());
  return der ? image::Digest::of(*der).str() : std::string("sha256:?");
}

// ---- private keys ----------------------------------------------------------------------------

struct PrivateKey::Impl {
  PkeyPtr key;
};

PrivateKey::PrivateKey(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
PrivateKey::~PrivateKey() = default;
PrivateKey::PrivateKey(PrivateKey&&) noexcept = default;
PrivateKey& PrivateKey::operator=(PrivateKey&&) noexcept = default;

Result<PrivateKey> PrivateKey::generate() {
  PkeyPtr k(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  if (!k) return fail(Errc::System, "generate ECDSA P-256 key: OpenSSL failed");
  auto impl = std::make_unique<Impl>();
  impl->key = std::move(k);
  return PrivateKey(std::move(impl));
}

Result<std::string> PrivateKey::encrypted_pem(std::string_view passphrase) const {
  KISTE_TRY(sodium_ready());
  std::unique_ptr<PKCS8_PRIV_KEY_INFO, P8Free> p8(EVP_PKEY2PKCS8(impl_->key.get()));
  if (!p8) return fail(Errc::System, "encode private key: OpenSSL failed");
  unsigned char* der = nullptr;
  int n = i2d_PKCS8_PRIV_KEY_INFO(p8.get(), &der);
  if (n <= 0) return fail(Errc::System, "encode private key: OpenSSL failed");
  std::string plain(reinterpret_cast<char*>(der), static_cast<size_t>(n));
  OPENSSL_clear_free(der, static_cast<size_t>(n));
  Wipe wipe_plain{plain};

  std::string salt(32, '\0');
  std::string nonce(crypto_secretbox_NONCEBYTES, '\0');
  randombytes_buf(salt.data(), salt.size());
  randombytes_buf(nonce.data(), nonce.size());
  KISTE_ASSIGN_OR_RETURN(std::string key, derive_key(passphrase, salt, kScryptN, kScryptR, kScryptP));
  Wipe wipe_key{key};
  std::string sealed(plain.size() + crypto_secretbox_MACBYTES, '\0');
  crypto_secretbox_easy(reinterpret_cast<uint8_t*>(sealed.data()),
                        reinterpret_cast<const uint8_t*>(plain.data()), plain.size(),
                        reinterpret_cast<const uint8_t*>(nonce.data()),
                        reinterpret_cast<const uint8_t*>(key.data()));
  json doc = {
      {"kdf",
       {{"name", "scrypt"},
        {"params", {{"N", kScryptN}, {"r", kScryptR}, {"p", kScryptP}}},
        {"salt", base64_encode(salt)}}},
      {"cipher", {{"name", "nacl/secretbox"}, {"nonce", base64_encode(nonce)}}},
      {"ciphertext", base64_encode(sealed)},
  };
  return pem_wrap(kEncryptedKeyPemType, doc.dump());
}

Result<PrivateKey> PrivateKey::load_encrypted(std::string_view pem, std::string_view passphrase) {
  KISTE_TRY(sodium_ready());
  if (pem.size() > 64 * 1024) return fail(Errc::InvalidArgument, "private key: larger than 64 KiB");
  auto body = pem_body(pem, kEncryptedKeyPemType);
  if (!body) body = pem_body(pem, kLegacyEncryptedKeyPemType);
  if (!body) {
    return failf(Errc::InvalidArgument, "private key: not an `{}` PEM block", kEncryptedKeyPemType);
  }
  json doc = json::parse(*body, nullptr, false);
  auto bad = [](std::string_view why) {
    return failf(Errc::InvalidArgument, "private key: {}", why);
  };
  if (doc.is_discarded() || !doc.is_object()) return bad("the encrypted key is not JSON");
  const json* kdf = doc.contains("kdf") ? &doc["kdf"] : nullptr;
  const json* cipher = doc.contains("cipher") ? &doc["cipher"] : nullptr;
  if (!kdf || !kdf->is_object() || !cipher || !cipher->is_object() ||
      !doc.contains("ciphertext") || !doc["ciphertext"].is_string()) {
    return bad("missing kdf, cipher or ciphertext");
  }
  if (!kdf->contains("name") || (*kdf)["name"] != "scrypt") return bad("KDF is not scrypt");
  if (!cipher->contains("name") || (*cipher)["name"] != "nacl/secretbox") {
    return bad("cipher is not nacl/secretbox");
  }
  if (!kdf->contains("params") || !(*kdf)["params"].is_object() || !kdf->contains("salt") ||
      !(*kdf)["salt"].is_string() || !cipher->contains("nonce") || !(*cipher)["nonce"].is_string()) {
    return bad("missing scrypt parameters, salt or nonce");
  }
  const json& params = (*kdf)["params"];
  for (const char* f : {"N", "r", "p"}) {
    if (!params.contains(f) || !params[f].is_number_unsigned()) {
      return bad("scrypt parameters N, r, p must be positive integers");
    }
  }
  uint64_t n = params["N"].get<uint64_t>();
  uint64_t r = params["r"].get<uint64_t>();
  uint64_t p = params["p"].get<uint64_t>();
  if (n < 2 || (n & (n - 1)) != 0 || n > kMaxScryptN || r != 8 || p < 1 || p > 4) {
    return bad("unsupported scrypt parameters (N a power of two up to 131072, r=8, p 1..4)");
  }
  KISTE_ASSIGN_OR_RETURN(std::string salt, with_context(base64_decode((*kdf)["salt"].get<std::string>()), "private key salt"));
  KISTE_ASSIGN_OR_RETURN(std::string nonce, with_context(base64_decode((*cipher)["nonce"].get<std::string>()), "private key nonce"));
  KISTE_ASSIGN_OR_RETURN(std::string sealed, with_context(base64_decode(doc["ciphertext"].get<std::string>()), "private key ciphertext"));
  if (salt.empty() || salt.size() > 1024) return bad("bad salt length");
  if (nonce.size() != crypto_secretbox_NONCEBYTES) return bad("bad nonce length");
  if (sealed.size() < crypto_secretbox_MACBYTES) return bad("ciphertext too short");
  KISTE_ASSIGN_OR_RETURN(std::string key, derive_key(passphrase, salt, n, static_cast<uint32_t>(r),
                                                     static_cast<uint32_t>(p)));
  Wipe wipe_key{key};
  std::string plain(sealed.size() - crypto_secretbox_MACBYTES, '\0');
  Wipe wipe_plain{plain};
  if (crypto_secretbox_open_easy(reinterpret_cast<uint8_t*>(plain.data()),
                                 reinterpret_cast<const uint8_t*>(sealed.data()), sealed.size(),
                                 reinterpret_cast<const uint8_t*>(nonce.data()),
                                 reinterpret_cast<const uint8_t*>(key.data())) != 0) {
    return fail(Errc::PermissionDenied, "private key: wrong passphrase (or a damaged key file)");
  }
  const auto* q = reinterpret_cast<const unsigned char*>(plain.data());
  std::unique_ptr<PKCS8_PRIV_KEY_INFO, P8Free> p8(
      d2i_PKCS8_PRIV_KEY_INFO(nullptr, &q, static_cast<long>(plain.size())));
  if (!p8) return bad("decrypted key is not PKCS#8");
  PkeyPtr k(EVP_PKCS82PKEY(p8.get()));
  if (!k) return bad("decrypted key is not a usable private key");
  int id = EVP_PKEY_get_base_id(k.get());
  if (id != EVP_PKEY_EC && id != EVP_PKEY_RSA) {
    return fail(Errc::Unsupported, "private key: only ECDSA and RSA keys are supported");
  }
  auto impl = std::make_unique<Impl>();
  impl->key = std::move(k);
  return PrivateKey(std::move(impl));
}

Result<std::string> PrivateKey::public_pem() const {
  KISTE_ASSIGN_OR_RETURN(std::string der, spki_der(impl_->key.get()));
  return pem_wrap("PUBLIC KEY", der);
}

Result<PublicKey> PrivateKey::public_key() const {
  KISTE_ASSIGN_OR_RETURN(std::string pem, public_pem());
  return PublicKey::parse_pem(pem);
}

Result<std::string> PrivateKey::sign(std::string_view data) const {
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, impl_->key.get()) != 1) {
    return fail(Errc::System, "sign: OpenSSL could not start");
  }
  size_t len = 0;
  const auto* in = reinterpret_cast<const unsigned char*>(data.data());
  if (EVP_DigestSign(ctx.get(), nullptr, &len, in, data.size()) != 1) {
    return fail(Errc::System, "sign: OpenSSL failed");
  }
  std::string sig(len, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len, in,
                     data.size()) != 1) {
    return fail(Errc::System, "sign: OpenSSL failed");
  }
  sig.resize(len);
  return sig;
}

}  // namespace kiste::trust
