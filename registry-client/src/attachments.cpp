// cosign-layout attachments: read the layers of a `sha256-<hex>.sig` manifest, append one.
#include <kiste/registry/attachments.hpp>

#include <algorithm>

#include <nlohmann/json.hpp>

#include <kiste/image/blob_io.hpp>
#include <kiste/image/manifest.hpp>
#include <kiste/image/media_type.hpp>

namespace kiste::registry {

namespace {
constexpr size_t kMaxAttachedLayers = 256;

Status upload_if_missing(Client& c, std::string_view repo, const image::Descriptor& d,
                         const std::string& bytes) {
  KISTE_ASSIGN_OR_RETURN(bool present, c.has_blob(repo, d));
  if (present) return {};
  image::StringReader r(bytes);
  return c.upload_blob(repo, d, r);
}
}  // namespace

// The layers of media type `media_type` of the manifest `m` (`where` names it), appended to
// `out`: bounded, verified.
Status read_layers(Client& c, std::string_view repo, const std::string& where,
                   const image::ManifestBlob& m, std::string_view media_type, size_t max_bytes,
                   std::vector<AttachedLayer>& out) {
  if (m.is_index()) {
    return failf(Errc::Corrupt, "`{}` is an index, not a signature manifest", where);
  }
  const auto& layers = m.manifest().layers;
  if (layers.size() > kMaxAttachedLayers || out.size() > kMaxAttachedLayers) {
    return failf(Errc::Corrupt, "`{}` lists {} layers (at most {})", where, layers.size(),
                 kMaxAttachedLayers);
  }
  for (const auto& l : layers) {
    if (l.media_type != media_type) continue;
    if (l.size < 0 || static_cast<size_t>(l.size) > max_bytes) {
      return failf(Errc::Corrupt, "`{}`: layer {} is {} bytes (at most {})", where, l.digest,
                   l.size, max_bytes);
    }
    KISTE_ASSIGN_OR_RETURN(auto reader, c.open_blob(repo, l));
    KISTE_ASSIGN_OR_RETURN(std::string bytes, image::read_bounded(*reader, max_bytes, "attachment"));
    if (bytes.size() != static_cast<size_t>(l.size) || image::Digest::of(bytes) != l.digest) {
      return failf(Errc::Corrupt, "`{}`: layer {} does not match its digest", where, l.digest);
    }
    out.push_back({std::move(bytes), l.annotations});
  }
  return {};
}

Result<std::vector<AttachedLayer>> fetch_attached_layers(Client& c, std::string_view repo,
                                                         std::string_view tag,
                                                         std::string_view media_type,
                                                         size_t max_bytes) {
  std::vector<AttachedLayer> out;
  KISTE_ASSIGN_OR_RETURN(auto head, c.try_head_manifest(repo, tag));
  if (!head) return out;
  KISTE_ASSIGN_OR_RETURN(image::ManifestBlob m, c.get_manifest(repo, tag));
  KISTE_TRY(read_layers(c, repo, fmt::format("{}:{}", repo, tag), m, media_type, max_bytes, out));
  return out;
}

Result<std::vector<AttachedLayer>> fetch_referrer_layers(
    Client& c, std::string_view repo, const image::Digest& subject,
    const std::vector<std::string_view>& artifact_types, std::string_view layer_media_type,
    size_t max_bytes) {
  KISTE_ASSIGN_OR_RETURN(auto refs, list_referrers(c, repo, subject, ""));
  std::vector<AttachedLayer> out;
  for (const auto& d : refs) {
    if (std::find(artifact_types.begin(), artifact_types.end(), d.artifact_type) ==
        artifact_types.end()) {
      continue;
    }
    std::string where = fmt::format("{}@{}", repo, d.digest);
    KISTE_ASSIGN_OR_RETURN(image::ManifestBlob m, c.get_manifest(repo, d.digest.str()));
    if (m.digest != d.digest) {
      return failf(Errc::Corrupt, "`{}`: the registry answered {}", where, m.digest);
    }
    // The index that listed it is not signed: the manifest itself must name the subject.
    if (m.is_index() || !m.manifest().subject || m.manifest().subject->digest != subject) {
      return failf(Errc::Corrupt, "`{}` does not refer to {}", where, subject);
    }
    KISTE_TRY(read_layers(c, repo, where, m, layer_media_type, max_bytes, out));
  }
  return out;
}

Result<image::Digest> append_attached_layer(Client& c, std::string_view repo,
                                            std::string_view tag, std::string_view media_type,
                                            const std::string& bytes,
                                            const std::map<std::string, std::string>& annotations) {
  image::Manifest m;
  m.media_type = std::string(image::media_type::kOciManifest);
  KISTE_ASSIGN_OR_RETURN(auto head, c.try_head_manifest(repo, tag));
  if (head) {
    KISTE_ASSIGN_OR_RETURN(image::ManifestBlob old, c.get_manifest(repo, tag));
    if (old.is_index()) {
      return failf(Errc::Corrupt, "`{}:{}` is an index, not a signature manifest", repo, tag);
    }
    m.layers = old.manifest().layers;
    m.annotations = old.manifest().annotations;
    if (m.layers.size() >= kMaxAttachedLayers) {
      return failf(Errc::InvalidArgument, "`{}:{}` already holds {} layers", repo, tag,
                   m.layers.size());
    }
  }
  image::Descriptor layer{.media_type = std::string(media_type),
                          .digest = image::Digest::of(bytes),
                          .size = static_cast<int64_t>(bytes.size()),
                          .annotations = annotations};
  for (const auto& l : m.layers) {
    if (l.digest == layer.digest && l.annotations == layer.annotations && head) {
      return head->digest;  // this very signature is there already
    }
  }
  KISTE_TRY(upload_if_missing(c, repo, layer, bytes));
  m.layers.push_back(layer);
  // The config lists the layers as an image's would (what cosign writes).
  nlohmann::json diff_ids = nlohmann::json::array();
  for (const auto& l : m.layers) diff_ids.push_back(l.digest.str());
  nlohmann::json cfg = {{"architecture", ""},
                        {"config", nlohmann::json::object()},
                        {"os", ""},
                        {"rootfs", {{"type", "layers"}, {"diff_ids", diff_ids}}}};
  std::string cfg_bytes = cfg.dump();
  m.config = image::Descriptor{.media_type = std::string(image::media_type::kOciConfig),
                               .digest = image::Digest::of(cfg_bytes),
                               .size = static_cast<int64_t>(cfg_bytes.size())};
  KISTE_TRY(upload_if_missing(c, repo, m.config, cfg_bytes));
  KISTE_ASSIGN_OR_RETURN(image::ManifestBlob blob, image::parse_manifest(image::serialize_manifest(m)));
  return c.put_manifest(repo, tag, blob);
}

Result<image::Descriptor> push_referrer_layer(Client& c, std::string_view repo,
                                              const image::Descriptor& subject,
                                              std::string_view artifact_type,
                                              std::string_view layer_media_type,
                                              const AttachedLayer& layer) {
  image::Manifest m;
  m.media_type = std::string(image::media_type::kOciManifest);
  m.artifact_type = std::string(artifact_type);
  m.config = image::Descriptor{.media_type = std::string(image::media_type::kOciEmpty),
                               .digest = image::Digest::of("{}"),
                               .size = 2};
  KISTE_TRY(upload_if_missing(c, repo, m.config, "{}"));
  m.layers.push_back(image::Descriptor{.media_type = std::string(layer_media_type),
                                       .digest = image::Digest::of(layer.bytes),
                                       .size = static_cast<int64_t>(layer.bytes.size()),
                                       .annotations = layer.annotations});
  KISTE_TRY(upload_if_missing(c, repo, m.layers[0], layer.bytes));
  m.subject = image::Descriptor{.media_type = subject.media_type, .digest = subject.digest,
                                .size = subject.size};
  KISTE_ASSIGN_OR_RETURN(image::ManifestBlob blob,
                         image::parse_manifest(image::serialize_manifest(m)));
  KISTE_TRY(c.put_manifest(repo, blob.digest.str(), blob));
  image::Descriptor d{.media_type = m.media_type,
                      .digest = blob.digest,
                      .size = static_cast<int64_t>(blob.bytes.size())};
  d.artifact_type = m.artifact_type;
  KISTE_TRY(register_referrer(c, repo, subject.digest, d));
  return d;
}

Result<image::Descriptor> push_artifact(Client& c, std::string_view repo,
                                        const image::Descriptor& subject,
                                        std::string_view media_type, const std::string& document,
                                        const std::map<std::string, std::string>& annotations) {
  auto desc = [](std::string_view type, const std::string& bytes) {
    return image::Descriptor{.media_type = std::string(type),
                             .digest = image::Digest::of(bytes),
                             .size = static_cast<int64_t>(bytes.size())};
  };
  image::Manifest m;
  m.media_type = std::string(image::media_type::kOciManifest);
  m.artifact_type = std::string(media_type);
  m.config = desc(image::media_type::kOciEmpty, "{}");
  KISTE_TRY(upload_if_missing(c, repo, m.config, "{}"));
  m.layers.push_back(desc(media_type, document));
  KISTE_TRY(upload_if_missing(c, repo, m.layers[0], document));
  m.subject = image::Descriptor{.media_type = subject.media_type, .digest = subject.digest,
                                .size = subject.size};
  m.annotations = annotations;
  KISTE_ASSIGN_OR_RETURN(image::ManifestBlob blob,
                         image::parse_manifest(image::serialize_manifest(m)));
  KISTE_TRY(c.put_manifest(repo, blob.digest.str(), blob));
  image::Descriptor d = desc(m.media_type, blob.bytes);
  d.artifact_type = m.artifact_type;
  d.annotations = annotations;
  KISTE_TRY(register_referrer(c, repo, subject.digest, d));
  return d;
}

Result<std::vector<image::Descriptor>> list_referrers(Client& c, std::string_view repo,
                                                      const image::Digest& subject,
                                                      std::string_view artifact_type) {
  KISTE_ASSIGN_OR_RETURN(auto api, c.try_referrers(repo, subject));
  std::optional<image::ManifestBlob> idx = std::move(api);
  if (!idx) {
    std::string tag = fmt::format("{}-{}", subject.algorithm_name(), subject.hex());
    KISTE_ASSIGN_OR_RETURN(auto head, c.try_head_manifest(repo, tag));
    if (head) {
      KISTE_ASSIGN_OR_RETURN(idx, c.get_manifest(repo, tag));
      if (!idx->is_index()) {
        return failf(Errc::Corrupt, "`{}:{}` is not an image index (the referrers tag schema)",
                     repo, tag);
      }
    }
  }
  std::vector<image::Descriptor> out;
  if (!idx) return out;
  for (const auto& d : idx->index().manifests) {
    if (artifact_type.empty() || d.artifact_type == artifact_type) out.push_back(d);
    if (out.size() > kMaxAttachedLayers) {
      return failf(Errc::Corrupt, "`{}`: more than {} referrers of {}", repo, kMaxAttachedLayers,
                   subject);
    }
  }
  return out;
}

Result<std::string> fetch_artifact_document(Client& c, std::string_view repo,
                                            const image::Digest& artifact,
                                            const image::Digest& subject, size_t max_bytes) {
  KISTE_ASSIGN_OR_RETURN(image::ManifestBlob m, c.get_manifest(repo, artifact.str()));
  if (m.digest != artifact || m.is_index()) {
    return failf(Errc::Corrupt, "`{}@{}` is not the artifact manifest asked for", repo, artifact);
  }
  const image::Manifest& man = m.manifest();
  if (!man.subject || man.subject->digest != subject) {
    return failf(Errc::Corrupt, "`{}@{}` does not refer to {}", repo, artifact, subject);
  }
  if (man.layers.size() != 1) {
    return failf(Errc::Corrupt, "`{}@{}` has {} layers, not one document", repo, artifact,
                 man.layers.size());
  }
  const image::Descriptor& l = man.layers[0];
  if (l.size < 0 || static_cast<size_t>(l.size) > max_bytes) {
    return failf(Errc::Corrupt, "`{}@{}`: the document is {} bytes (at most {})", repo, artifact,
                 l.size, max_bytes);
  }
  KISTE_ASSIGN_OR_RETURN(auto reader, c.open_blob(repo, l));
  KISTE_ASSIGN_OR_RETURN(std::string bytes, image::read_bounded(*reader, max_bytes, "attestation"));
  if (bytes.size() != static_cast<size_t>(l.size) || image::Digest::of(bytes) != l.digest) {
    return failf(Errc::Corrupt, "`{}@{}`: the document does not match its digest", repo, artifact);
  }
  return bytes;
}

Result<bool> register_referrer(Client& c, std::string_view repo, const image::Digest& subject,
                               const image::Descriptor& artifact) {
  KISTE_ASSIGN_OR_RETURN(auto api, c.try_referrers(repo, subject));
  if (api) return false;
  std::string tag = fmt::format("{}-{}", subject.algorithm_name(), subject.hex());
  image::Index idx;
  idx.media_type = std::string(image::media_type::kOciIndex);
  KISTE_ASSIGN_OR_RETURN(auto head, c.try_head_manifest(repo, tag));
  if (head) {
    KISTE_ASSIGN_OR_RETURN(image::ManifestBlob old, c.get_manifest(repo, tag));
    if (!old.is_index()) {
      return failf(Errc::Corrupt, "`{}:{}` is not an image index (the referrers tag schema)", repo,
                   tag);
    }
    idx.manifests = old.index().manifests;
    for (const auto& d : idx.manifests) {
      if (d.digest == artifact.digest) return true;  // listed already
    }
    if (idx.manifests.size() >= kMaxAttachedLayers) {
      return failf(Errc::InvalidArgument, "`{}:{}` already lists {} referrers", repo, tag,
                   idx.manifests.size());
    }
  }
  idx.manifests.push_back(artifact);
  KISTE_ASSIGN_OR_RETURN(image::ManifestBlob blob,
                         image::parse_manifest(image::serialize_index(idx)));
  KISTE_TRY(c.put_manifest(repo, tag, blob));
  return true;
}

}  // namespace kiste::registry
