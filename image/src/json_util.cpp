#include "json_util.hpp"

namespace kiste::image::detail {

namespace {

// Go's encoding/json (docker, containerd, the registry) refuses documents nested deeper than
// 10000. nlohmann parses any depth, but serialising one recurses per level: a config with 100k
// nested arrays in an unknown field (kept by ImageConfig::serialize) overflowed the stack.
constexpr int kMaxJsonDepth = 10000;

bool nested_too_deep(std::string_view bytes) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < bytes.size(); ++i) {
    char c = bytes[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxJsonDepth) return true;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return false;
}

}  // namespace

Result<json> parse_json(std::string_view bytes, std::string_view what) {
  if (nested_too_deep(bytes)) {
    return failf(Errc::Corrupt, "parse {}: nested deeper than {} levels", what, kMaxJsonDepth);
  }
  json j = json::parse(bytes, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return failf(Errc::Corrupt, "parse {}: not valid JSON", what);
  return j;
}

Result<std::string> get_string(const json& obj, const char* key, std::string_view what) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return std::string();
  if (!it->is_string()) return failf(Errc::Corrupt, "parse {}: `{}` is not a string", what, key);
  return it->get<std::string>();
}

Result<std::vector<std::string>> get_string_list(const json& obj, const char* key,
                                                 std::string_view what) {
  std::vector<std::string> out;
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return out;
  if (!it->is_array()) return failf(Errc::Corrupt, "parse {}: `{}` is not a list", what, key);
  for (const auto& v : *it) {
    if (!v.is_string()) return failf(Errc::Corrupt, "parse {}: `{}` holds a non-string", what, key);
    out.push_back(v.get<std::string>());
  }
  return out;
}

Result<std::map<std::string, std::string>> get_string_map(const json& obj, const char* key,
                                                          std::string_view what) {
  std::map<std::string, std::string> out;
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return out;
  if (!it->is_object()) return failf(Errc::Corrupt, "parse {}: `{}` is not an object", what, key);
  for (const auto& [k, v] : it->items()) {
    if (!v.is_string()) return failf(Errc::Corrupt, "parse {}: `{}.{}` is not a string", what, key, k);
    out.emplace(k, v.get<std::string>());
  }
  return out;
}

Result<Descriptor> parse_descriptor(const json& j, std::string_view what) {
  if (!j.is_object()) return failf(Errc::Corrupt, "parse {}: descriptor is not an object", what);
  Descriptor d;
  KISTE_ASSIGN_OR_RETURN(d.media_type, get_string(j, "mediaType", what));
  if (d.media_type.empty()) return failf(Errc::Corrupt, "parse {}: descriptor without mediaType", what);
  KISTE_ASSIGN_OR_RETURN(std::string digest, get_string(j, "digest", what));
  auto dg = Digest::parse(digest);
  if (!dg) return failf(Errc::Corrupt, "parse {}: {}", what, dg.error().message);
  d.digest = std::move(*dg);
  auto size = j.find("size");
  if (size == j.end() || !size->is_number_integer()) {
    return failf(Errc::Corrupt, "parse {}: descriptor of {} has no integer size", what, d.digest);
  }
  d.size = size->get<int64_t>();
  if (d.size < 0) return failf(Errc::Corrupt, "parse {}: descriptor of {} has a negative size", what, d.digest);
  KISTE_ASSIGN_OR_RETURN(d.urls, get_string_list(j, "urls", what));
  KISTE_ASSIGN_OR_RETURN(d.annotations, get_string_map(j, "annotations", what));
  KISTE_ASSIGN_OR_RETURN(d.artifact_type, get_string(j, "artifactType", what));
  if (auto p = j.find("platform"); p != j.end() && !p->is_null()) {
    if (!p->is_object()) return failf(Errc::Corrupt, "parse {}: `platform` is not an object", what);
    Platform pl;
    KISTE_ASSIGN_OR_RETURN(pl.os, get_string(*p, "os", what));
    KISTE_ASSIGN_OR_RETURN(pl.architecture, get_string(*p, "architecture", what));
    KISTE_ASSIGN_OR_RETURN(pl.variant, get_string(*p, "variant", what));
    KISTE_ASSIGN_OR_RETURN(pl.os_version, get_string(*p, "os.version", what));
    KISTE_ASSIGN_OR_RETURN(pl.os_features, get_string_list(*p, "os.features", what));
    if (pl.os.empty() || pl.architecture.empty()) {
      return failf(Errc::Corrupt, "parse {}: platform needs `os` and `architecture`", what);
    }
    d.platform = std::move(pl);
  }
  return d;
}

json descriptor_to_json(const Descriptor& d) {
  json j = json::object();
  j["mediaType"] = d.media_type;
  j["digest"] = d.digest.str();
  j["size"] = d.size;
  if (!d.urls.empty()) j["urls"] = d.urls;
  if (!d.annotations.empty()) j["annotations"] = d.annotations;
  if (!d.artifact_type.empty()) j["artifactType"] = d.artifact_type;
  if (d.platform) {
    json p = json::object();
    p["architecture"] = d.platform->architecture;
    p["os"] = d.platform->os;
    if (!d.platform->variant.empty()) p["variant"] = d.platform->variant;
    if (!d.platform->os_version.empty()) p["os.version"] = d.platform->os_version;
    if (!d.platform->os_features.empty()) p["os.features"] = d.platform->os_features;
    j["platform"] = std::move(p);
  }
  return j;
}

}  // namespace kiste::image::detail
