#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <kiste/image/digest.hpp>
#include <kiste/image/platform.hpp>

namespace kiste::image {

inline constexpr std::string_view kRefNameAnnotation = "org.opencontainers.image.ref.name";
// The subject of a store-side referrer in index.json (see Store::add_referrer): not an OCI key.
inline constexpr std::string_view kSubjectAnnotation = "dev.kiste.referrer.subject";

struct Descriptor {
  std::string media_type;
  Digest digest = Digest::of("");
  int64_t size = 0;
  std::vector<std::string> urls;
  std::map<std::string, std::string> annotations;
  std::optional<Platform> platform;
  std::string artifact_type;

  friend bool operator==(const Descriptor&, const Descriptor&) = default;
};

}  // namespace kiste::image
