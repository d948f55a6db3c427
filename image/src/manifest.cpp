#include <kiste/image/manifest.hpp>

#include <kiste/image/media_type.hpp>

#include "json_util.hpp"

namespace kiste::image {

using detail::json;

namespace {

constexpr std::string_view kManifestWhat = "manifest";

Result<std::vector<Descriptor>> parse_descriptor_list(const json& j, const char* key) {
  std::vector<Descriptor> out;
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return out;
  if (!it->is_array()) return failf(Errc::Corrupt, "parse manifest: `{}` is not a list", key);
  out.reserve(it->size());
  for (const auto& d : *it) {
    KISTE_ASSIGN_OR_RETURN(Descriptor desc, detail::parse_descriptor(d, kManifestWhat));
    out.push_back(std::move(desc));
  }
  return out;
}

Result<std::optional<Descriptor>> parse_subject(const json& j) {
  auto it = j.find("subject");
  if (it == j.end() || it->is_null()) return std::optional<Descriptor>();
  KISTE_ASSIGN_OR_RETURN(Descriptor d, detail::parse_descriptor(*it, kManifestWhat));
  return std::optional<Descriptor>(std::move(d));
}

}  // namespace

Descriptor ManifestBlob::descriptor() const {
  Descriptor d;
  d.media_type = media_type;
  d.digest = digest;
  d.size = static_cast<int64_t>(bytes.size());
  return d;
}

Result<ManifestBlob> parse_manifest(std::string bytes, std::string_view declared_type) {
  if (bytes.size() > kMaxManifestBytes) {
    return failf(Errc::InvalidArgument, "parse manifest: {} bytes is over the {} byte limit",
                 bytes.size(), kMaxManifestBytes);
  }
  KISTE_ASSIGN_OR_RETURN(json j, detail::parse_json(bytes, kManifestWhat));
  if (!j.is_object()) return fail(Errc::Corrupt, "parse manifest: not a JSON object");
  auto sv = j.find("schemaVersion");
  if (sv == j.end() || !sv->is_number_integer()) {
    return fail(Errc::Corrupt, "parse manifest: missing schemaVersion");
  }
  if (sv->get<int64_t>() != 2) {
    return failf(Errc::Unsupported, "parse manifest: schemaVersion {} is not supported (only 2)",
                 sv->dump());
  }
  KISTE_ASSIGN_OR_RETURN(std::string doc_type, detail::get_string(j, "mediaType", kManifestWhat));
  bool has_manifests = j.contains("manifests");
  bool has_image_parts = j.contains("layers") || j.contains("config");
  if (has_manifests && has_image_parts) {
    // CVE-2021-41190: one document must not be readable as two types.
    return fail(Errc::Corrupt, "parse manifest: document is both an index and a manifest");
  }
  if (!doc_type.empty() && !declared_type.empty() && doc_type != declared_type) {
    return failf(Errc::Corrupt, "parse manifest: mediaType {} contradicts the declared {}",
                 quote(doc_type), quote(declared_type));
  }
  std::string type = !doc_type.empty()        ? doc_type
                     : !declared_type.empty() ? std::string(declared_type)
                     : has_manifests          ? std::string(media_type::kOciIndex)
                                              : std::string(media_type::kOciManifest);
  ManifestBlob blob;
  if (media_type::is_index(type)) {
    if (has_image_parts) return fail(Errc::Corrupt, "parse manifest: index with layers or config");
    if (!has_manifests) return fail(Errc::Corrupt, "parse manifest: index without `manifests`");
    Index idx;
    idx.media_type = doc_type;
    KISTE_ASSIGN_OR_RETURN(idx.manifests, parse_descriptor_list(j, "manifests"));
    KISTE_ASSIGN_OR_RETURN(idx.annotations, detail::get_string_map(j, "annotations", kManifestWhat));
    KISTE_ASSIGN_OR_RETURN(idx.artifact_type, detail::get_string(j, "artifactType", kManifestWhat));
    KISTE_ASSIGN_OR_RETURN(idx.subject, parse_subject(j));
    blob.parsed = std::move(idx);
  } else if (media_type::is_manifest(type)) {
    if (has_manifests) return fail(Errc::Corrupt, "parse manifest: manifest with `manifests`");
    Manifest m;
    m.media_type = doc_type;
    auto cfg = j.find("config");
    if (cfg == j.end()) return fail(Errc::Corrupt, "parse manifest: missing `config`");
    KISTE_ASSIGN_OR_RETURN(m.config, detail::parse_descriptor(*cfg, kManifestWhat));
    KISTE_ASSIGN_OR_RETURN(m.layers, parse_descriptor_list(j, "layers"));
    KISTE_ASSIGN_OR_RETURN(m.annotations, detail::get_string_map(j, "annotations", kManifestWhat));
    KISTE_ASSIGN_OR_RETURN(m.artifact_type, detail::get_string(j, "artifactType", kManifestWhat));
    KISTE_ASSIGN_OR_RETURN(m.subject, parse_subject(j));
    blob.parsed = std::move(m);
  } else {
    return failf(Errc::Unsupported, "parse manifest: unknown media type {}", quote(type));
  }
  blob.media_type = std::move(type);
  blob.digest = Digest::of(bytes);
  blob.bytes = std::move(bytes);
  return blob;
}

std::string serialize_manifest(const Manifest& m) {
  json j = json::object();
  j["schemaVersion"] = 2;
  if (!m.media_type.empty()) j["mediaType"] = m.media_type;
  if (!m.artifact_type.empty()) j["artifactType"] = m.artifact_type;
  j["config"] = detail::descriptor_to_json(m.config);
  json layers = json::array();
  for (const auto& l : m.layers) layers.push_back(detail::descriptor_to_json(l));
  j["layers"] = std::move(layers);
  if (m.subject) j["subject"] = detail::descriptor_to_json(*m.subject);
  if (!m.annotations.empty()) j["annotations"] = m.annotations;
  return j.dump();
}

std::string serialize_index(const Index& i) {
  json j = json::object();
  j["schemaVersion"] = 2;
  if (!i.media_type.empty()) j["mediaType"] = i.media_type;
  if (!i.artifact_type.empty()) j["artifactType"] = i.artifact_type;
  json list = json::array();
  for (const auto& d : i.manifests) list.push_back(detail::descriptor_to_json(d));
  j["manifests"] = std::move(list);
  if (i.subject) j["subject"] = detail::descriptor_to_json(*i.subject);
  if (!i.annotations.empty()) j["annotations"] = i.annotations;
  return j.dump();
}

Result<Descriptor> select_platform(const Index& index, const Platform& want) {
  // A hostile index may list thousands of platforms: the error names the first few.
  constexpr size_t kListed = 8;
  std::string seen;
  size_t others = 0, listed = 0;
  for (const auto& d : index.manifests) {
    if (!media_type::is_manifest(d.media_type)) continue;  // attestations, nested indexes
    if (!d.platform) continue;
    if (want.matches(*d.platform)) return d;
    if (listed == kListed) {
      ++others;
      continue;
    }
    if (!seen.empty()) seen += ", ";
    seen += d.platform->str();
    ++listed;
  }
  if (others > 0) seen += fmt::format(" … and {} more", others);
  return failf(Errc::NotFound, "no manifest for platform {} in the index (it has: {})", want.str(),
               seen.empty() ? "none" : seen);
}

Status check_platform(const Platform& have, const Platform& want) {
  if (want.matches(have)) return {};
  return failf(Errc::NotFound, "no manifest for platform {} (it has: {})", want.normalized().str(),
               have.normalized().str());
}

Result<bool> ManifestWalk::enter(const Descriptor& d) {
  if (seen_.contains(d.digest)) return false;
  if (seen_.size() >= kMaxManifestsPerWalk) {
    return failf(Errc::InvalidArgument, "manifest {}: the image names more than {} manifests",
                 d.digest, kMaxManifestsPerWalk);
  }
  seen_.insert(d.digest);
  return true;
}

Status ManifestWalk::check_depth(const ManifestBlob& m, int indexes_above) {
  if (m.is_index() && indexes_above >= kMaxIndexDepth) {
    return failf(Errc::InvalidArgument, "image index {}: indexes nested more than {} deep",
                 m.digest, kMaxIndexDepth);
  }
  return {};
}

}  // namespace kiste::image
