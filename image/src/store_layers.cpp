#include <kiste/image/store_layers.hpp>

#include <set>

#include <kiste/base/disk_usage.hpp>
#include <kiste/base/sys.hpp>
#include <kiste/base/temp_dir.hpp>
#include <kiste/image/media_type.hpp>
#include <kiste/image/layer_extract.hpp>
#include <kiste/image/snapshot.hpp>

namespace kiste::image {

namespace fs = std::filesystem;

namespace {

// The platform manifest, its config, and its layers as LayerSources reading from the store.
struct ResolvedImage {
  ManifestBlob manifest;
  ImageConfig config;
  std::unique_ptr<ImageSource> source;  // the LayerSources read through it
  std::vector<LayerSource> layers;
};

Result<ResolvedImage> resolve_image(const Store& store, const StoreEntry& entry,
                                    const Platform& platform) {
  ResolvedImage img;
  KISTE_ASSIGN_OR_RETURN(img.manifest, read_manifest(store, entry.manifest));
  if (img.manifest.is_index()) {
    KISTE_ASSIGN_OR_RETURN(Descriptor d, select_platform(img.manifest.index(), platform));
    KISTE_ASSIGN_OR_RETURN(img.manifest, read_manifest(store, d));
    if (img.manifest.is_index()) return failf(Errc::Unsupported, "image {}: nested index", entry.name);
  }
  KISTE_ASSIGN_OR_RETURN(std::string cfg_bytes, store.read_blob(img.manifest.manifest().config.digest));
  KISTE_ASSIGN_OR_RETURN(img.config, ImageConfig::parse(cfg_bytes));
  KISTE_ASSIGN_OR_RETURN(img.source, store.open_image(entry));
  KISTE_ASSIGN_OR_RETURN(img.layers, with_context(image_layers(*img.source, img.manifest.manifest(), img.config),
                                                  fmt::format("image {}", entry.name)));
  return img;
}

// Tells `progress` how much of a layer blob has been read (its start, bytes, and its end).
class ProgressReader final : public BlobReader {
 public:
  ProgressReader(std::unique_ptr<BlobReader> in, Descriptor d, CopyProgress& p, size_t index,
                 size_t count)
      : in_(std::move(in)), d_(std::move(d)), p_(p) {
    p_.layer_started(d_, index, count);
  }
  Result<size_t> read(void* buf, size_t len) override {
    auto n = in_->read(buf, len);
    if (n && *n > 0) p_.blob_bytes(d_, *n);
    if (n && *n == 0 && !done_) {
      done_ = true;
      p_.blob_done(d_, CopyProgress::Outcome::Copied);
    }
    return n;
  }

 private:
  std::unique_ptr<BlobReader> in_;
  Descriptor d_;
  CopyProgress& p_;
  bool done_ = false;
};

}  // namespace

Result<ImageLayers> prepare_layers(const Store& store, const StoreEntry& entry,
                                   const Platform& platform, CopyProgress* progress) {
  KISTE_ASSIGN_OR_RETURN(ResolvedImage img, resolve_image(store, entry, platform));
  KISTE_ASSIGN_OR_RETURN(SnapshotStore snaps, SnapshotStore::open(store.root()));
  ImageLayers out;
  for (size_t i = 0; i < img.layers.size(); ++i) {
    const LayerSource& l = img.layers[i];
    BlobOpener open = l.open_blob;
    if (progress != nullptr) {  // the opener only runs for a layer that is unpacked now
      Descriptor d = img.manifest.manifest().layers[i];
      const size_t count = img.layers.size();
      open = [inner = l.open_blob, d, progress, i, count]() -> Result<std::unique_ptr<BlobReader>> {
        KISTE_ASSIGN_OR_RETURN(auto r, inner());
        return std::unique_ptr<BlobReader>(
            std::make_unique<ProgressReader>(std::move(r), d, *progress, i + 1, count));
      };
    }
    KISTE_ASSIGN_OR_RETURN(
        fs::path p, with_context(snaps.ensure(*l.diff_id, l.compression, open),
                                 fmt::format("unpack layer {} of {}", i + 1, entry.name)));
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
  fs::path rootfs = tmp.path() / "rootfs";
  KISTE_TRY(with_context(unpack_layers(img.layers, rootfs), ctx));
  if (fs::exists(dir, ec)) KISTE_TRY(with_context(sys::remove_tree(dir), ctx));  // empty dir
  KISTE_TRY(with_context(sys::rename(rootfs, dir), ctx));
  return {};
}

Result<int> prune_snapshots(const Store& store, const std::vector<fs::path>& in_use) {
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
  // Snapshots a running container uses: <root>/snapshots/<hex>[/…].
  const fs::path snap_root = store.layout().snapshots();
  for (const fs::path& p : in_use) {
    auto rel = p.lexically_normal().lexically_relative(snap_root);
    if (rel.empty() || *rel.begin() == "..") continue;
    if (auto d = Digest::parse("sha256:" + rel.begin()->native())) used.insert(*d);
  }
  KISTE_ASSIGN_OR_RETURN(auto all, snaps.list());
  int removed = 0;
  for (const auto& d : all) {
    if (used.contains(d)) continue;
    KISTE_TRY(snaps.remove(d));
    ++removed;
  }
  // Size records of layers no image has any more (measured, never unpacked).
  std::error_code ec;
  for (auto it = fs::directory_iterator(snap_root, ec); !ec && it != fs::directory_iterator();
       it.increment(ec)) {
    const std::string n = it->path().filename().native();
    if (!n.starts_with('.') || !n.ends_with(".size")) continue;
    auto d = Digest::parse("sha256:" + n.substr(1, n.size() - 6));
    if (d && !used.contains(*d)) ::unlink(it->path().c_str());
  }
  return removed;
}

Result<int64_t> unpacked_size(const Store& store, const Descriptor& layer, const Digest& diff_id) {
  KISTE_ASSIGN_OR_RETURN(SnapshotStore snaps, SnapshotStore::open(store.root()));
  KISTE_ASSIGN_OR_RETURN(auto recorded, snaps.recorded_size(diff_id));
  if (recorded) return *recorded;
  KISTE_ASSIGN_OR_RETURN(auto existing, snaps.try_get(diff_id));
  int64_t bytes = 0;
  if (existing) {  // unpacked by an older kiste: measure the snapshot itself
    KISTE_ASSIGN_OR_RETURN(TreeUsage u, tree_usage(*existing));
    bytes = u.bytes;
  } else {
    KISTE_ASSIGN_OR_RETURN(auto blob, store.open_blob(layer.digest));
    const media_type::Compression c = media_type::layer_compression(layer.media_type);
    KISTE_ASSIGN_OR_RETURN(bytes, with_context(measure_layer(*blob, c),
                                               fmt::format("layer {}", layer.digest)));
  }
  (void)snaps.record_size(diff_id, bytes);  // a cache: a read-only root just measures again
  return bytes;
}

}  // namespace kiste::image
