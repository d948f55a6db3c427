#pragma once
// Test-only: writes a minimal OCI image layout by hand (oci-layout, index.json, manifest, config,
// layer blobs) so peers (umoci) can read images whose layers kiste made, and reads one back.

#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <kiste/base/sys.hpp>
#include <kiste/image/digest.hpp>
#include <kiste/image/layer_writer.hpp>

namespace kiste::image::testing {

struct LayoutLayer {
  std::string blob;        // compressed bytes
  std::string media_type;
  Digest diff_id;
};

inline Digest put_blob(const std::filesystem::path& layout, std::string_view bytes) {
  Digest d = Digest::of(bytes);
  std::filesystem::create_directories(layout / "blobs/sha256");
  (void)sys::write_file_atomic(layout / "blobs/sha256" / std::string(d.hex()), bytes);
  return d;
}

// Writes (or extends) an OCI layout with one image tagged `tag`.
inline void write_layout(const std::filesystem::path& layout, const std::string& tag,
                         const std::vector<LayoutLayer>& layers) {
  using nlohmann::json;
  std::filesystem::create_directories(layout / "blobs/sha256");
  (void)sys::write_file_atomic(layout / "oci-layout", R"({"imageLayoutVersion":"1.0.0"})");
  json diff_ids = json::array();
  json descs = json::array();
  for (const auto& l : layers) {
    Digest d = put_blob(layout, l.blob);
    diff_ids.push_back(l.diff_id.str());
    descs.push_back({{"mediaType", l.media_type}, {"digest", d.str()}, {"size", l.blob.size()}});
  }
  json config = {{"architecture", "amd64"},
                 {"os", "linux"},
                 {"config", json::object()},
                 {"rootfs", {{"type", "layers"}, {"diff_ids", diff_ids}}}};
  std::string cfg = config.dump();
  Digest cd = put_blob(layout, cfg);
  json manifest = {{"schemaVersion", 2},
                   {"mediaType", "application/vnd.oci.image.manifest.v1+json"},
                   {"config",
                    {{"mediaType", "application/vnd.oci.image.config.v1+json"},
                     {"digest", cd.str()},
                     {"size", cfg.size()}}},
                   {"layers", descs}};
  std::string man = manifest.dump();
  Digest md = put_blob(layout, man);
  json index = {{"schemaVersion", 2}, {"manifests", json::array()}};
  if (auto old = sys::read_file(layout / "index.json")) {
    json parsed = json::parse(*old, nullptr, false);
    if (!parsed.is_discarded()) index = parsed;
  }
  index["manifests"].push_back({{"mediaType", "application/vnd.oci.image.manifest.v1+json"},
                                {"digest", md.str()},
                                {"size", man.size()},
                                {"annotations", {{"org.opencontainers.image.ref.name", tag}}}});
  (void)sys::write_file_atomic(layout / "index.json", index.dump());
}

struct ReadLayer {
  std::filesystem::path blob_path;
  std::string media_type;
  std::string diff_id;
};

// Reads the layers (in order) of the image tagged `tag` in `layout`.
inline std::vector<ReadLayer> read_layout(const std::filesystem::path& layout,
                                          const std::string& tag) {
  using nlohmann::json;
  auto blob = [&](const std::string& digest) {
    return layout / "blobs/sha256" / digest.substr(7);
  };
  json index = json::parse(*sys::read_file(layout / "index.json"));
  std::string mdigest;
  for (auto& m : index["manifests"]) {
    if (m["annotations"]["org.opencontainers.image.ref.name"] == tag) mdigest = m["digest"];
  }
  json manifest = json::parse(*sys::read_file(blob(mdigest)));
  json config = json::parse(*sys::read_file(blob(manifest["config"]["digest"])));
  std::vector<ReadLayer> out;
  for (size_t i = 0; i < manifest["layers"].size(); ++i) {
    out.push_back({blob(manifest["layers"][i]["digest"]), manifest["layers"][i]["mediaType"],
                   config["rootfs"]["diff_ids"][i]});
  }
  return out;
}

}  // namespace kiste::image::testing
