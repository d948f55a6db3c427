#include <kiste/image/store_layers.hpp>

#include <set>

#include <kiste/base/sys.hpp>
#include <kiste/base/temp_dir.hpp>
#include <kiste/image/media_type.hpp>
#include <kiste/image/snapshot.hpp>

namespace kiste::image {

namespace fs = std::filesystem;

namespace {

struct ResolvedImage {
  ManifestBlob manifest;
  ImageConfig config;
  std::vector<Descriptor> layers;  // the layer descriptors, matched 1:1 with config.diff_ids
};

Result<ResolvedImage> resolve_image(const Store& store, const StoreEntry& entry,
                                    const Platform& platform) {
  KISTE_ASSIGN_OR_RETURN(ManifestBlob m, read_manifest(store, entry.manifest));
  if (m.is_index()) {
    KISTE_ASSIGN_OR_RETURN(Descriptor d, select_platform(m.index(), platform));
    KISTE_ASSIGN_OR_RETURN(m, read_manifest(store, d));
    if (m.is_index()) return failf(Errc::Unsupported, "image {}: nested index", entry.name);
  }
  const Manifest& man = m.manifest();
  KISTE_ASSIGN_OR_RETURN(std::string cfg_bytes, store.read_blob(man.config.digest));
  KISTE_ASSIGN_OR_RETURN(ImageConfig cfg, ImageConfig::parse(cfg_bytes));
  std::vector<Descriptor> layers;
  for (const auto& l : man.layers) {
    if (!media_type::is_layer(l.media_type)) {
      return failf(Errc::Unsupported, "image {}: layer {} has unsupported media type {}",
                   entry.name, l.digest, quote(l.media_type));
    }
    layers.push_back(l);
  }
  if (layers.size() != cfg.diff_ids.size()) {
    return failf(Errc::Corrupt, "image {}: {} layers but the config lists {} diff_ids", entry.name,
                 layers.size(), cfg.diff_ids.size());
  }
  return ResolvedImage{std::move(m), std::move(cfg), std::move(layers)};
}

BlobOpener opener(const Store& store, const Digest& d) {
  return [&store, d] { return store.open_blob(d); };
}

}  // namespace

Result<ImageLayers> prepare_layers(const Store& store, const StoreEntry& entry,
                                   const Platform& platform) {
  KISTE_ASSIGN_OR_RETURN(ResolvedImage img, resolve_image(store, entry, platform));
  KISTE_ASSIGN_OR_RETURN(SnapshotStore snaps, SnapshotStore::open(store.root()));
  ImageLayers out;
  for (size_t i = 0; i < img.layers.size(); ++i) {
    const Descriptor& l = img.layers[i];
    KISTE_ASSIGN_OR_RETURN(
        fs::path p, with_context(snaps.ensure(img.config.diff_ids[i],
                                              media_type::layer_compression(l.media_type),
                                              opener(store, l.digest)),
                                 fmt::format("unpack layer {} of {}", l.digest, entry.name)));
    out.lower_dirs.push_back(std::move(p));
  }
  out.manifest = std::move(img.manifest);
  out.config = std::move(img.config);
  return out;
}

Status unpack_image(const Store& store, const StoreEntry& entry, const fs::path& dir_in,
                    const Platform& platform) {
  std::error_code ec;
  fs::path dir = fs::absolute(dir_in, ec);
  if (ec) dir = dir_in;
  auto ctx = fmt::format("unpack {} to {}", entry.name, quote(dir.native()));
  if (fs::exists(dir, ec) && !(fs::is_directory(dir, ec) && fs::is_empty(dir, ec))) {
    return failf(Errc::AlreadyExists, "{}: the directory exists and is not empty", ctx);
  }
  KISTE_ASSIGN_OR_RETURN(ResolvedImage img, with_context(resolve_image(store, entry, platform), ctx));
  fs::path parent = dir.parent_path();
  KISTE_TRY(with_context(sys::mkdir_all(parent), ctx));
  KISTE_ASSIGN_OR_RETURN(TempDir tmp, with_context(TempDir::create(parent, ".kiste-unpack-"), ctx));
  std::vector<LayerSource> sources;
  for (size_t i = 0; i < img.layers.size(); ++i) {
    sources.push_back(LayerSource{opener(store, img.layers[i].digest),
                                  media_type::layer_compression(img.layers[i].media_type),
                                  img.config.diff_ids[i]});
  }
  fs::path rootfs = tmp.path() / "rootfs";
  KISTE_TRY(with_context(unpack_layers(sources, rootfs), ctx));
  if (fs::exists(dir, ec)) KISTE_TRY(with_context(sys::remove_tree(dir), ctx));  // empty dir
  KISTE_TRY(with_context(sys::rename(rootfs, dir), ctx));
  return {};
}

Result<int> prune_snapshots(const Store& store) {
  KISTE_ASSIGN_OR_RETURN(SnapshotStore snaps, SnapshotStore::open(store.root()));
  std::set<Digest> used;
  KISTE_ASSIGN_OR_RETURN(auto entries, store.entries());
  for (const auto& e : entries) {
    auto m = read_manifest(store, e.manifest);
    if (!m) continue;
    std::vector<Descriptor> manifests;
    if (m->is_index()) {
      for (const auto& c : m->index().manifests) manifests.push_back(c);
    } else {
      manifests.push_back(e.manifest);
    }
    for (const auto& md : manifests) {
      auto mm = read_manifest(store, md);
      if (!mm || mm->is_index()) continue;
      auto bytes = store.read_blob(mm->manifest().config.digest);
      if (!bytes) continue;
      auto cfg = ImageConfig::parse(*bytes);
      if (cfg) used.insert(cfg->diff_ids.begin(), cfg->diff_ids.end());
    }
  }
  KISTE_ASSIGN_OR_RETURN(auto all, snaps.list());
  int removed = 0;
  for (const auto& d : all) {
    if (used.contains(d)) continue;
    KISTE_TRY(snaps.remove(d));
    ++removed;
  }
  return removed;
}

}  // namespace kiste::image
