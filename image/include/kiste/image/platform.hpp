#pragma once
#include <string>
#include <string_view>
#include <vector>

#include <kiste/base/error.hpp>

namespace kiste::image {

struct Platform {
  std::string os = "linux";
  std::string architecture;
  std::string variant;
  std::string os_version;
  std::vector<std::string> os_features;

  // "linux/arm64/v8", "linux/amd64", "amd64" (os defaults to linux).
  [[nodiscard]] static Result<Platform> parse(std::string_view s);
  // The platform this process runs on (uname), normalised to OCI names.
  [[nodiscard]] static Platform host();
  // Normalised: x86_64 -> amd64, aarch64 -> arm64 (variant v8 implied), armhf -> arm/v7.
  [[nodiscard]] Platform normalized() const;
  [[nodiscard]] std::string str() const;  // os/arch[/variant]

  // Whether an index entry `have` satisfies a request for `*this`.
  [[nodiscard]] bool matches(const Platform& have) const;

  friend bool operator==(const Platform&, const Platform&) = default;
};

}  // namespace kiste::image
