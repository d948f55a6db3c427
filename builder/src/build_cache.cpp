#include <kiste/builder/build_cache.hpp>

#include <algorithm>
#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include <kiste/image/media_type.hpp>

namespace kiste::builder {

namespace mt = image::media_type;
using nlohmann::ordered_json;

std::string serialize_cache_config(const std::vector<CacheRecord>& records) {
  std::map<std::string, const CacheRecord*> by_key;
  for (const auto& r : records) by_key.emplace(r.key.str(), &r);
  ordered_json steps = ordered_json::array();
  for (const auto& [key, r] : by_key) {
    ordered_json j;
    j["key"] = key;
    if (r->layer) {
      j["digest"] = r->layer->digest.str();
      j["size"] = r->layer->size;
      j["mediaType"] = r->layer->media_type;
      j["diffID"] = r->layer->diff_id.str();
    }
    steps.push_back(std::move(j));
  }
  ordered_json doc;
  doc["version"] = 1;
  doc["steps"] = std::move(steps);
  return doc.dump();
}

Result<std::vector<CacheRecord>> parse_cache_config(std::string_view bytes) {
  auto doc = nlohmann::json::parse(bytes, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) {
    return fail(Errc::Corrupt, "build cache config: not a JSON object");
  }
  if (!doc.contains("version") || doc["version"] != 1) {
    return fail(Errc::Unsupported, "build cache config: unknown version (expected 1)");
  }
  if (!doc.contains("steps") || !doc["steps"].is_array()) {
    return fail(Errc::Corrupt, "build cache config: `steps` is not an array");
  }
  std::vector<CacheRecord> out;
  size_t i = 0;
  for (const auto& s : doc["steps"]) {
    auto bad = [&](std::string_view what) {
      return failf(Errc::Corrupt, "build cache config: steps[{}]: {}", i, what);
    };
    if (!s.is_object() || !s.contains("key") || !s["key"].is_string()) return bad("no `key`");
    auto key = image::Digest::parse(s["key"].get<std::string>());
    if (!key) return bad("`key` is not a digest");
    CacheRecord r{.key = *key};
    if (s.contains("digest")) {
      if (!s["digest"].is_string() || !s.contains("diffID") || !s["diffID"].is_string() ||
          !s.contains("size") || !s["size"].is_number_unsigned() || !s.contains("mediaType") ||
          !s["mediaType"].is_string()) {
        return bad("a layer needs `digest`, `size`, `mediaType` and `diffID`");
      }
      auto d = image::Digest::parse(s["digest"].get<std::string>());
      auto diff = image::Digest::parse(s["diffID"].get<std::string>());
      if (!d || !diff) return bad("`digest` or `diffID` is not a digest");
      std::string media = s["mediaType"].get<std::string>();
      if (!mt::is_layer(media)) return bad(fmt::format("{} is not a layer media type", quote(media)));
      r.layer = image::LayerResult{.digest = *d, .size = s["size"].get<uint64_t>(),
                                   .diff_id = *diff, .media_type = media};
    }
    out.push_back(std::move(r));
    ++i;
  }
  return out;
}

Result<image::ManifestBlob> make_cache_manifest(const image::Store& store,
                                                const std::vector<CacheRecord>& records) {
  std::string cfg = serialize_cache_config(records);
  KISTE_ASSIGN_OR_RETURN(auto cfg_desc, store.put_blob(cfg, kCacheConfigType));
  image::Manifest m;
  m.media_type = std::string(mt::kOciManifest);
  m.artifact_type = std::string(kCacheArtifactType);
  m.config = cfg_desc;
  std::set<std::string> seen;
  std::vector<CacheRecord> sorted = records;
  std::sort(sorted.begin(), sorted.end(),
            [](const CacheRecord& a, const CacheRecord& b) { return a.key.str() < b.key.str(); });
  for (const auto& r : sorted) {
    if (!r.layer || !seen.insert(r.layer->digest.str()).second) continue;
    if (!store.has_blob(r.layer->digest)) {
      return failf(Errc::NotFound, "build cache: layer {} is not in the store", r.layer->digest);
    }
    m.layers.push_back({.media_type = r.layer->media_type, .digest = r.layer->digest,
                        .size = static_cast<int64_t>(r.layer->size)});
  }
  return image::parse_manifest(image::serialize_manifest(m), mt::kOciManifest);
}

Status check_cache_manifest(const image::ManifestBlob& m) {
  if (m.is_index()) return fail(Errc::InvalidArgument, "not a kiste build cache: an index");
  const auto& man = m.manifest();
  if (man.artifact_type != kCacheArtifactType || man.config.media_type != kCacheConfigType) {
    return failf(Errc::InvalidArgument, "not a kiste build cache (artifactType {}, config {})",
                 quote(man.artifact_type), quote(man.config.media_type));
  }
  return {};
}

}  // namespace kiste::builder
