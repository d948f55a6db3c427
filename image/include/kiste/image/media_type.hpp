#pragma once
#include <string_view>

namespace kiste::image::media_type {

inline constexpr std::string_view kOciManifest = "application/vnd.oci.image.manifest.v1+json";
inline constexpr std::string_view kOciIndex = "application/vnd.oci.image.index.v1+json";
inline constexpr std::string_view kOciConfig = "application/vnd.oci.image.config.v1+json";
inline constexpr std::string_view kOciLayerTar = "application/vnd.oci.image.layer.v1.tar";
inline constexpr std::string_view kOciLayerGzip = "application/vnd.oci.image.layer.v1.tar+gzip";
inline constexpr std::string_view kOciLayerZstd = "application/vnd.oci.image.layer.v1.tar+zstd";
inline constexpr std::string_view kOciLayerNondistGzip =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
inline constexpr std::string_view kOciEmpty = "application/vnd.oci.empty.v1+json";
inline constexpr std::string_view kDockerManifest =
    "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr std::string_view kDockerManifestList =
    "application/vnd.docker.distribution.manifest.list.v2+json";
inline constexpr std::string_view kDockerConfig = "application/vnd.docker.container.image.v1+json";
inline constexpr std::string_view kDockerLayerGzip =
    "application/vnd.docker.image.rootfs.diff.tar.gzip";
inline constexpr std::string_view kDockerLayerForeignGzip =
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";

enum class Compression { None, Gzip, Zstd };

[[nodiscard]] constexpr bool is_manifest(std::string_view t) {
  return t == kOciManifest || t == kDockerManifest;
}
[[nodiscard]] constexpr bool is_index(std::string_view t) {
  return t == kOciIndex || t == kDockerManifestList;
}
[[nodiscard]] constexpr bool is_config(std::string_view t) {
  return t == kOciConfig || t == kDockerConfig;
}
// Whether `t` is a layer type kiste can unpack, and with which compression.
[[nodiscard]] constexpr bool is_layer(std::string_view t) {
  return t == kOciLayerTar || t == kOciLayerGzip || t == kOciLayerZstd ||
         t == kOciLayerNondistGzip || t == kDockerLayerGzip || t == kDockerLayerForeignGzip ||
         t == "application/vnd.oci.image.layer.nondistributable.v1.tar" ||
         t == "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd";
}
[[nodiscard]] constexpr Compression layer_compression(std::string_view t) {
  if (t.ends_with("+gzip") || t.ends_with(".tar.gzip")) return Compression::Gzip;
  if (t.ends_with("+zstd")) return Compression::Zstd;
  return Compression::None;
}

}  // namespace kiste::image::media_type
