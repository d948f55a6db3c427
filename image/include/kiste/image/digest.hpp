#pragma once
// Content digests: `sha256:<64 lowercase hex>` (and sha512). A Digest only exists validated, so its
// string is safe to use as a path component.

#include <compare>
#include <memory>
#include <string>
#include <string_view>

#include <kiste/base/error.hpp>

namespace kiste::image {

enum class DigestAlgorithm { Sha256, Sha512 };

class Digest {
 public:
  // Strict: "sha256:" + 64 lowercase hex, or "sha512:" + 128. Anything else is InvalidArgument.
  [[nodiscard]] static Result<Digest> parse(std::string_view s);
  [[nodiscard]] static Digest of(std::string_view bytes,
                                 DigestAlgorithm alg = DigestAlgorithm::Sha256);

  [[nodiscard]] const std::string& str() const { return value_; }
  [[nodiscard]] DigestAlgorithm algorithm() const { return alg_; }
  [[nodiscard]] std::string_view algorithm_name() const;
  [[nodiscard]] std::string_view hex() const;
  // First 12 hex characters, as `docker images` shows IMAGE ID.
  [[nodiscard]] std::string_view short_hex() const { return hex().substr(0, 12); }

  friend bool operator==(const Digest&, const Digest&) = default;
  friend auto operator<=>(const Digest& a, const Digest& b) { return a.value_ <=> b.value_; }

 private:
  Digest(DigestAlgorithm alg, std::string v) : alg_(alg), value_(std::move(v)) {}
  DigestAlgorithm alg_ = DigestAlgorithm::Sha256;
  std::string value_;
};

// Streaming hasher (OpenSSL EVP).
class Hasher {
 public:
  explicit Hasher(DigestAlgorithm alg = DigestAlgorithm::Sha256);
  Hasher(Hasher&&) noexcept;
  Hasher& operator=(Hasher&&) noexcept;
  ~Hasher();
  void update(std::string_view bytes);
  void update(const void* data, size_t len) {
    update(std::string_view(static_cast<const char*>(data), len));
  }
  // Finishes the hash; the hasher must not be updated afterwards.
  [[nodiscard]] Digest finish();
  [[nodiscard]] uint64_t bytes() const { return bytes_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  DigestAlgorithm alg_;
  uint64_t bytes_ = 0;
};

}  // namespace kiste::image

template <>
struct std::hash<kiste::image::Digest> {
  size_t operator()(const kiste::image::Digest& d) const noexcept {
    return std::hash<std::string>{}(d.str());
  }
};

template <>
struct fmt::formatter<kiste::image::Digest> : fmt::formatter<std::string_view> {
  auto format(const kiste::image::Digest& d, fmt::format_context& ctx) const {
    return fmt::formatter<std::string_view>::format(d.str(), ctx);
  }
};
