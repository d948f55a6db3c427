#include <kiste/image/image_index.hpp>

#include <algorithm>

#include <kiste/image/image_config.hpp>
#include <kiste/image/media_type.hpp>

namespace kiste::image {

Result<Descriptor> index_entry(const Store& store, const Descriptor& manifest) {
  KISTE_ASSIGN_OR_RETURN(ManifestBlob m, read_manifest(store, manifest));
  if (m.is_index()) {
    return failf(Errc::InvalidArgument, "{} is an image index, not an image", m.digest.str());
  }
  KISTE_ASSIGN_OR_RETURN(std::string cfg_bytes, store.read_blob(m.manifest().config.digest));
  KISTE_ASSIGN_OR_RETURN(ImageConfig cfg, with_context(ImageConfig::parse(cfg_bytes),
                                                       fmt::format("config of {}", m.digest.str())));
  if (cfg.architecture.empty() || cfg.os.empty()) {
    return failf(Errc::InvalidArgument, "image {}: its config names no os/architecture",
                 m.digest.str());
  }
  Descriptor d = m.descriptor();
  d.platform = Platform{.os = cfg.os, .architecture = cfg.architecture, .variant = cfg.variant};
  return d;
}

Result<std::vector<Descriptor>> index_entries_of(const Store& store, const StoreEntry& entry) {
  KISTE_ASSIGN_OR_RETURN(ManifestBlob m, read_manifest(store, entry.manifest));
  std::vector<Descriptor> out;
  if (!m.is_index()) {
    KISTE_ASSIGN_OR_RETURN(auto d, index_entry(store, entry.manifest));
    out.push_back(std::move(d));
    return out;
  }
  for (const Descriptor& child : m.index().manifests) {
    // Attestations and nested indexes have no platform; a child not pulled is not here.
    if (!child.platform || !media_type::is_manifest(child.media_type) || !store.has_blob(child.digest)) {
      continue;
    }
    KISTE_ASSIGN_OR_RETURN(auto d, index_entry(store, child));
    out.push_back(std::move(d));
  }
  return out;
}

Index with_entry(Index index, const Descriptor& entry) {
  auto it = std::ranges::find_if(index.manifests,
                                 [&](const Descriptor& d) { return d.digest == entry.digest; });
  if (it != index.manifests.end()) {
    *it = entry;
  } else {
    index.manifests.push_back(entry);
  }
  return index;
}

Result<Index> without_entry(Index index, const Digest& digest) {
  auto n = std::erase_if(index.manifests, [&](const Descriptor& d) { return d.digest == digest; });
  if (n == 0) return failf(Errc::NotFound, "the index has no entry {}", digest.str());
  return index;
}

Result<Descriptor> put_index(const Store& store, Index index) {
  index.schema_version = 2;
  index.media_type = std::string(media_type::kOciIndex);
  return store.put_blob(serialize_index(index), media_type::kOciIndex);
}

Result<ManifestBlob> read_index(const Store& store, const StoreEntry& entry) {
  KISTE_ASSIGN_OR_RETURN(ManifestBlob m, read_manifest(store, entry.manifest));
  if (!m.is_index()) {
    return failf(Errc::InvalidArgument, "{} is an image, not a manifest list (image index)",
                 quote(entry.name));
  }
  return m;
}

}  // namespace kiste::image
