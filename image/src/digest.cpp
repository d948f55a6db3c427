#include <kiste/image/digest.hpp>

// The one-shot SHA-2 API (deprecated in OpenSSL 3 in favour of EVP) runs the same assembly as
// EVP but without fetching a provider: EVP's first use initialises OpenSSL (reads openssl.cnf,
// registers every cipher), about 5% of the CPU of a `kiste run` that only verifies two small
// blobs.
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/sha.h>

namespace kiste::image {

namespace {

size_t hex_len(DigestAlgorithm alg) { return alg == DigestAlgorithm::Sha256 ? 64 : 128; }

std::string to_hex(const unsigned char* p, size_t n) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(n * 2);
  for (size_t i = 0; i < n; ++i) {
    out += kHex[p[i] >> 4];
    out += kHex[p[i] & 15];
  }
  return out;
}

}  // namespace

Result<Digest> Digest::parse(std::string_view s) {
  auto bad = [&](std::string_view why) {
    return failf(Errc::InvalidArgument, "invalid digest {}: {}", quote(s.substr(0, 160)), why);
  };
  size_t colon = s.find(':');
  if (colon == std::string_view::npos) return bad("missing algorithm");
  std::string_view alg_name = s.substr(0, colon);
  std::string_view hex = s.substr(colon + 1);
  DigestAlgorithm alg;
  if (alg_name == "sha256") {
    alg = DigestAlgorithm::Sha256;
  } else if (alg_name == "sha512") {
    alg = DigestAlgorithm::Sha512;
  } else {
    return bad("unsupported algorithm");
  }
  if (hex.size() != hex_len(alg)) return bad("wrong length");
  for (char c : hex) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return bad("not lowercase hex");
  }
  return Digest(alg, std::string(s));
}

Digest Digest::of(std::string_view bytes, DigestAlgorithm alg) {
  Hasher h(alg);
  h.update(bytes);
  return h.finish();
}

std::string_view Digest::algorithm_name() const {
  return alg_ == DigestAlgorithm::Sha256 ? "sha256" : "sha512";
}

std::string_view Digest::hex() const {
  return std::string_view(value_).substr(algorithm_name().size() + 1);
}

struct Hasher::Impl {
  SHA256_CTX sha256;
  SHA512_CTX sha512;
};

Hasher::Hasher(DigestAlgorithm alg) : impl_(std::make_unique<Impl>()), alg_(alg) {
  if (alg == DigestAlgorithm::Sha256) {
    KISTE_CHECK(SHA256_Init(&impl_->sha256) == 1);
  } else {
    KISTE_CHECK(SHA512_Init(&impl_->sha512) == 1);
  }
}
Hasher::Hasher(Hasher&&) noexcept = default;
Hasher& Hasher::operator=(Hasher&&) noexcept = default;
Hasher::~Hasher() = default;

void Hasher::update(std::string_view bytes) {
  if (alg_ == DigestAlgorithm::Sha256) {
    KISTE_CHECK(SHA256_Update(&impl_->sha256, bytes.data(), bytes.size()) == 1);
  } else {
    KISTE_CHECK(SHA512_Update(&impl_->sha512, bytes.data(), bytes.size()) == 1);
  }
  bytes_ += bytes.size();
}

Digest Hasher::finish() {
  unsigned char md[SHA512_DIGEST_LENGTH];
  size_t n = SHA256_DIGEST_LENGTH;
  if (alg_ == DigestAlgorithm::Sha256) {
    KISTE_CHECK(SHA256_Final(md, &impl_->sha256) == 1);
  } else {
    KISTE_CHECK(SHA512_Final(md, &impl_->sha512) == 1);
    n = SHA512_DIGEST_LENGTH;
  }
  std::string v = alg_ == DigestAlgorithm::Sha256 ? "sha256:" : "sha512:";
  v += to_hex(md, n);
  return Digest::parse(v).value();
}

}  // namespace kiste::image
