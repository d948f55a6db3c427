#include <kiste/image/store.hpp>

#include <dirent.h>
#include <fcntl.h>

#include <algorithm>

#include <kiste/base/sys.hpp>
#include <kiste/image/media_type.hpp>
#include <kiste/image/root_layout.hpp>

#include "json_util.hpp"

namespace kiste::image {

namespace fs = std::filesystem;
using detail::json;

namespace {

constexpr std::string_view kOciLayout = R"({"imageLayoutVersion":"1.0.0"})";
constexpr std::string_view kEmptyIndex =
    R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]})";

// The root and its private directories are 0700: made so, or narrowed when an older kiste left
// them world-readable. The root may be a symlink (the user's choice); nothing below it may.
Status make_root_private(const fs::path& root) {
  std::error_code ec;
  if (!fs::exists(root, ec)) KISTE_TRY(sys::mkdir_all(root.parent_path(), 0755));
  fs::path real = fs::exists(root, ec) ? fs::canonical(root, ec) : root;
  if (ec) return std::unexpected(sys_error_code(ec.value(), "resolve", root.native()));
  KISTE_TRY(sys::restrict_dir(real, 0700));
  for (std::string_view d : RootLayout::private_dirs()) KISTE_TRY(sys::restrict_dir(real / d, 0700));
  return {};
}

Result<bool> dir_has_foreign_entries(const fs::path& root) {
  std::error_code ec;
  for (auto it = fs::directory_iterator(root, ec); !ec && it != fs::directory_iterator();
       it.increment(ec)) {
    std::string n = it->path().filename().native();
    if (!RootLayout::is_kiste_entry(n) && !n.starts_with(".index.json.tmp-")) return true;
  }
  if (ec) return std::unexpected(sys_error_code(ec.value(), "read directory", root.native()));
  return false;
}

struct IndexDoc {
  json doc;                      // the whole index.json
  std::vector<StoreEntry> named;  // manifests with a ref.name annotation
  std::vector<Descriptor> referrers;  // artifacts with a kSubjectAnnotation (and no ref.name)
  json others = json::array();   // entries with neither (kept as they are)
};

Result<IndexDoc> read_index(const fs::path& root) {
  fs::path p = root / "index.json";
  KISTE_ASSIGN_OR_RETURN(std::string bytes, sys::read_file(p, 64 << 20));
  std::string what = quote(p.native());
  KISTE_ASSIGN_OR_RETURN(json j, detail::parse_json(bytes, what));
  if (!j.is_object() || !j.contains("manifests") || !j["manifests"].is_array()) {
    return failf(Errc::Corrupt, "parse {}: not an image index", what);
  }
  IndexDoc out;
  for (const auto& m : j["manifests"]) {
    KISTE_ASSIGN_OR_RETURN(Descriptor d, detail::parse_descriptor(m, what));
    auto name = d.annotations.find(std::string(kRefNameAnnotation));
    if (name == d.annotations.end()) {
      auto subject = d.annotations.find(std::string(kSubjectAnnotation));
      if (subject != d.annotations.end() && Digest::parse(subject->second)) {
        out.referrers.push_back(std::move(d));
      } else {
        out.others.push_back(m);
      }
      continue;
    }
    out.named.push_back(StoreEntry{name->second, std::move(d)});
  }
  out.doc = std::move(j);
  return out;
}

class StoreImage final : public ImageSource {
 public:
  StoreImage(const Store& store, ManifestBlob top, std::string name)
      : store_(store), top_(std::move(top)), name_(std::move(name)) {}
  [[nodiscard]] const ManifestBlob& top() const override { return top_; }
  [[nodiscard]] Result<ManifestBlob> fetch_manifest(const Descriptor& d) override {
    return read_manifest(store_, d);
  }
  [[nodiscard]] Result<std::unique_ptr<BlobReader>> open_blob(const Descriptor& d) override {
    return store_.open_blob(d.digest);
  }
  [[nodiscard]] std::string describe() const override {
    return fmt::format("{} in store {}", name_, quote(store_.root().native()));
  }

 private:
  const Store& store_;
  ManifestBlob top_;
  std::string name_;
};

}  // namespace

Result<Store> Store::open(const fs::path& root_in, StoreOptions opts) {
  std::error_code ec;
  fs::path root = fs::absolute(root_in, ec);
  if (ec) root = root_in;
  auto not_layout = [&] {
    return failf(Errc::InvalidArgument,
                 "open store {}: not an OCI image layout (no `oci-layout` file) and not empty",
                 quote(root.native()));
  };
  auto st = sys::lstat(root / "oci-layout");
  if (!st) {
    if (st.error().sys_errno != ENOENT) return std::unexpected(st.error());
    if (!opts.create) {
      return failf(Errc::NotFound, "no kiste store at {}", quote(root.native()));
    }
    if (fs::exists(root, ec)) {
      if (!fs::is_directory(root, ec)) {
        return failf(Errc::InvalidArgument, "open store {}: not a directory", quote(root.native()));
      }
      KISTE_ASSIGN_OR_RETURN(bool foreign, dir_has_foreign_entries(root));
      if (foreign) return not_layout();
    }
    // Initialise: everything else first, oci-layout last, so its presence means complete.
    KISTE_TRY(make_root_private(root));
    KISTE_TRY(sys::mkdir_all(RootLayout(root).blobs() / "sha256"));
    if (!fs::exists(root / "index.json", ec)) {
      KISTE_TRY(sys::write_file_atomic(root / "index.json", kEmptyIndex));
    }
    KISTE_TRY(sys::write_file_atomic(root / "oci-layout", kOciLayout));
  } else {
    KISTE_ASSIGN_OR_RETURN(std::string layout, sys::read_file(root / "oci-layout", 1 << 16));
    auto j = detail::parse_json(layout, quote((root / "oci-layout").native()));
    if (!j || !j->is_object() || !j->contains("imageLayoutVersion")) {
      return failf(Errc::Corrupt, "open store {}: `oci-layout` has no imageLayoutVersion",
                   quote(root.native()));
    }
    if (!fs::exists(root / "index.json", ec)) {
      return failf(Errc::Corrupt, "open store {}: `index.json` is missing", quote(root.native()));
    }
    KISTE_TRY(make_root_private(root));
    KISTE_TRY(sys::mkdir_all(RootLayout(root).blobs() / "sha256"));
  }
  return Store(std::move(root));
}

fs::path Store::blob_path(const Digest& d) const {
  return RootLayout(root_).blobs() / std::string(d.algorithm_name()) / std::string(d.hex());
}

bool Store::has_blob(const Digest& d) const {
  struct stat st {};
  return ::stat(blob_path(d).c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

Result<std::unique_ptr<BlobReader>> Store::open_blob(const Digest& d) const {
  fs::path p = blob_path(d);
  auto fd = sys::open(p, O_RDONLY | O_NOFOLLOW);
  if (!fd) {
    if (fd.error().code == Errc::NotFound) {
      return failf(Errc::NotFound, "blob {} is not in the store", d);
    }
    return std::unexpected(fd.error());
  }
  return std::unique_ptr<BlobReader>(std::make_unique<FdReader>(std::move(*fd), p.native()));
}

Result<std::string> Store::read_blob(const Digest& d, size_t max_bytes) const {
  KISTE_ASSIGN_OR_RETURN(auto r, open_blob(d));
  KISTE_ASSIGN_OR_RETURN(std::string bytes, read_bounded(*r, max_bytes, d.str()));
  if (Digest::of(bytes, d.algorithm()) != d) {
    return failf(Errc::Corrupt, "blob {} in the store is corrupt (run `kiste fsck`)", d);
  }
  return bytes;
}

Result<BlobWriter> Store::blob_writer() const {
  return BlobWriter::create(tmp_dir(), blobs_dir());
}

Result<Descriptor> Store::put_blob(std::string_view bytes, std::string_view media_type) const {
  Digest d = Digest::of(bytes);
  if (!has_blob(d)) {
    KISTE_ASSIGN_OR_RETURN(BlobWriter w, blob_writer());
    KISTE_TRY(w.write(bytes));
    KISTE_TRY(w.commit(d));
  }
  Descriptor desc;
  desc.media_type = std::string(media_type);
  desc.digest = std::move(d);
  desc.size = static_cast<int64_t>(bytes.size());
  return desc;
}

Result<std::vector<Digest>> Store::list_blobs() const {
  std::vector<Digest> out;
  for (std::string alg : {"sha256", "sha512"}) {
    fs::path dir = blobs_dir() / alg;
    std::error_code ec;
    if (!fs::exists(dir, ec)) continue;
    for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::directory_iterator();
         it.increment(ec)) {
      auto d = Digest::parse(alg + ":" + it->path().filename().native());
      if (d) out.push_back(std::move(*d));  // stray files are fsck's business
    }
    if (ec) return std::unexpected(sys_error_code(ec.value(), "read directory", dir.native()));
  }
  std::sort(out.begin(), out.end());
  return out;
}

Result<std::vector<StoreEntry>> Store::entries() const {
  KISTE_ASSIGN_OR_RETURN(IndexDoc idx, read_index(root_));
  return std::move(idx.named);
}

Status Store::update_index(const std::function<Status(std::vector<StoreEntry>&)>& edit) const {
  return update_index_doc([&](std::vector<StoreEntry>& named, std::vector<Descriptor>&) {
    return edit(named);
  });
}

Status Store::update_index_doc(
    const std::function<Status(std::vector<StoreEntry>&, std::vector<Descriptor>&)>& edit) const {
  KISTE_ASSIGN_OR_RETURN(FileLock lock, FileLock::acquire(root_ / "index.json.lock"));
  KISTE_ASSIGN_OR_RETURN(IndexDoc idx, read_index(root_));
  KISTE_TRY(edit(idx.named, idx.referrers));
  std::sort(idx.named.begin(), idx.named.end(),
            [](const StoreEntry& a, const StoreEntry& b) { return a.name < b.name; });
  json list = idx.others;
  for (auto& e : idx.named) {
    e.manifest.annotations[std::string(kRefNameAnnotation)] = e.name;
    list.push_back(detail::descriptor_to_json(e.manifest));
  }
  for (const auto& r : idx.referrers) list.push_back(detail::descriptor_to_json(r));
  idx.doc["manifests"] = std::move(list);
  if (!idx.doc.contains("schemaVersion")) idx.doc["schemaVersion"] = 2;
  if (!idx.doc.contains("mediaType")) idx.doc["mediaType"] = media_type::kOciIndex;
  return sys::write_file_atomic(root_ / "index.json", idx.doc.dump());
}

Status Store::set_entry(std::string name, const Descriptor& manifest) const {
  if (!has_blob(manifest.digest)) {
    return failf(Errc::NotFound, "name {}: manifest {} is not in the store", name,
                 manifest.digest);
  }
  Descriptor d = manifest;
  d.annotations.clear();
  return update_index([&](std::vector<StoreEntry>& named) -> Status {
    std::erase_if(named, [&](const StoreEntry& e) { return e.name == name; });
    named.push_back(StoreEntry{std::move(name), std::move(d)});
    return {};
  });
}

Status Store::set_name(const Reference& name, const Descriptor& manifest) const {
  return set_entry(name.str(), manifest);
}

Status Store::keep_unnamed(const Descriptor& manifest) const {
  return set_entry(manifest.digest.str(), manifest);
}

Status Store::remove_name(const Reference& name) const { return remove_entry(name.str()); }

Status Store::remove_entry(const std::string& name) const {
  return update_index([&](std::vector<StoreEntry>& named) -> Status {
    if (std::erase_if(named, [&](const StoreEntry& e) { return e.name == name; }) == 0) {
      return failf(Errc::NotFound, "no image named {}", quote(name));
    }
    return {};
  });
}

Status Store::add_referrer(const Descriptor& artifact, const Digest& subject) const {
  if (!has_blob(artifact.digest)) {
    return failf(Errc::NotFound, "referrer {}: manifest is not in the store", artifact.digest);
  }
  Descriptor d = artifact;
  d.annotations.erase(std::string(kRefNameAnnotation));
  d.annotations[std::string(kSubjectAnnotation)] = subject.str();
  return update_index_doc([&](std::vector<StoreEntry>&, std::vector<Descriptor>& refs) -> Status {
    std::erase_if(refs, [&](const Descriptor& r) { return r.digest == d.digest; });
    refs.push_back(d);
    std::sort(refs.begin(), refs.end(),
              [](const Descriptor& a, const Descriptor& b) { return a.digest < b.digest; });
    return {};
  });
}

Result<std::vector<Descriptor>> Store::referrers(const Digest& subject) const {
  KISTE_ASSIGN_OR_RETURN(IndexDoc idx, read_index(root_));
  std::vector<Descriptor> out;
  for (auto& r : idx.referrers) {
    if (r.annotations.at(std::string(kSubjectAnnotation)) != subject.str()) continue;
    r.annotations.erase(std::string(kSubjectAnnotation));
    out.push_back(std::move(r));
  }
  return out;
}

Result<std::vector<std::pair<Digest, Descriptor>>> Store::all_referrers() const {
  KISTE_ASSIGN_OR_RETURN(IndexDoc idx, read_index(root_));
  std::vector<std::pair<Digest, Descriptor>> out;
  for (auto& r : idx.referrers) {
    auto subject = Digest::parse(r.annotations.at(std::string(kSubjectAnnotation)));
    out.emplace_back(std::move(*subject), std::move(r));
  }
  return out;
}

Result<int> Store::remove_referrers_unless(const std::function<bool(const Digest&)>& keep) const {
  int removed = 0;
  KISTE_TRY(update_index_doc([&](std::vector<StoreEntry>&, std::vector<Descriptor>& refs) -> Status {
    removed = static_cast<int>(std::erase_if(refs, [&](const Descriptor& r) {
      auto subject = Digest::parse(r.annotations.at(std::string(kSubjectAnnotation)));
      return !keep(*subject);
    }));
    return {};
  }));
  return removed;
}

Result<StoreEntry> Store::resolve(std::string_view q) const {
  KISTE_ASSIGN_OR_RETURN(std::vector<StoreEntry> all, entries());
  std::string_view hexq = q;
  if (hexq.starts_with("sha256:")) hexq.remove_prefix(7);
  bool hexish = hexq.size() >= 4 && hexq.size() <= 64 &&
                hexq.find_first_not_of("0123456789abcdef") == std::string_view::npos;
  // Docker's order: a whole 64-hex id is an id; anything else is a name first (`cafe`, `bad4`
  // are names when an image has them), then a digest, then an id prefix.
  const bool whole_id = hexish && hexq.size() == 64 && hexq.size() == q.size();
  if (auto ref = Reference::parse(q); ref && !whole_id) {
    for (const auto& e : all) {
      if (e.name == ref->str()) return e;
    }
    if (ref->digest()) {
      for (const auto& e : all) {
        if (e.manifest.digest == *ref->digest()) return e;
      }
    }
  }
  if (hexish) {
    std::vector<const StoreEntry*> hits;
    for (const auto& e : all) {
      bool hit = e.manifest.digest.hex().starts_with(hexq);
      if (!hit && media_type::is_manifest(e.manifest.media_type)) {
        auto m = read_manifest(*this, e.manifest);
        hit = m && m->manifest().config.digest.hex().starts_with(hexq);
      }
      if (hit) hits.push_back(&e);
    }
    // Several names for one image are fine; several images are ambiguous.
    auto same = [&](const StoreEntry* a) { return a->manifest.digest == hits[0]->manifest.digest; };
    if (!hits.empty() && std::all_of(hits.begin(), hits.end(), same)) return *hits[0];
    if (!hits.empty()) {
      return failf(Errc::InvalidArgument, "image id {} is ambiguous ({} images match)", quote(q),
                   hits.size());
    }
  }
  return failf(Errc::NotFound, "no image {} in the store", quote(q));
}

Result<FileLock> Store::writer_lease() const {
  return FileLock::acquire(root_ / "gc.lock", FileLock::Mode::Shared);
}

Result<FileLock> Store::gc_lock() const {
  return FileLock::acquire(root_ / "gc.lock", FileLock::Mode::Exclusive);
}

Result<std::unique_ptr<ImageSource>> Store::open_image(const StoreEntry& e) const {
  KISTE_ASSIGN_OR_RETURN(ManifestBlob top, read_manifest(*this, e.manifest));
  if (!top.is_index()) {
    const Descriptor& cfg = top.manifest().config;
    if (!has_blob(cfg.digest)) {
      return failf(Errc::Corrupt, "image {}: config blob {} is missing", e.name, cfg.digest);
    }
  }
  return std::unique_ptr<ImageSource>(std::make_unique<StoreImage>(*this, std::move(top), e.name));
}

std::unique_ptr<ImageSource> Store::open_unstored(ManifestBlob top, std::string name) const {
  return std::make_unique<StoreImage>(*this, std::move(top), std::move(name));
}

Result<ManifestBlob> read_manifest(const Store& store, const Descriptor& d) {
  if (d.size > static_cast<int64_t>(kMaxManifestBytes)) {
    return failf(Errc::InvalidArgument, "manifest {}: {} bytes is over the limit", d.digest, d.size);
  }
  KISTE_ASSIGN_OR_RETURN(std::string bytes, store.read_blob(d.digest));
  if (static_cast<int64_t>(bytes.size()) != d.size) {
    return failf(Errc::Corrupt, "manifest {}: size is {}, descriptor says {}", d.digest,
                 bytes.size(), d.size);
  }
  return with_context(parse_manifest(std::move(bytes), d.media_type),
                      fmt::format("manifest {}", d.digest));
}

Result<uint64_t> pump(BlobReader& r, ByteSink& sink) {
  // 256 KiB: large enough for few syscalls, small enough that parallel transfers stay lean.
  std::string buf(256 << 10, '\0');
  uint64_t total = 0;
  for (;;) {
    KISTE_ASSIGN_OR_RETURN(size_t n, r.read(buf.data(), buf.size()));
    if (n == 0) return total;
    KISTE_TRY(sink.write(std::string_view(buf.data(), n)));
    total += n;
  }
}

// ---- StoreSink ---------------------------------------------------------------------------------

Result<bool> StoreSink::has_blob(const Descriptor& d) { return store_.has_blob(d.digest); }

Result<uint64_t> StoreSink::resume_offset(const Descriptor& d) {
  return BlobWriter::partial_size(store_.tmp_dir(), d.digest);
}

Status StoreSink::put_blob(const Descriptor& d, BlobReader& r) {
  // A download is kept as tmp/partial-<alg>-<hex> when it is interrupted, and resumed from there.
  KISTE_ASSIGN_OR_RETURN(BlobWriter w, BlobWriter::resume(store_.tmp_dir(), store_.blobs_dir(),
                                                          d.digest, r.start_offset()));
  KISTE_TRY(pump(r, w));
  KISTE_TRY(w.commit(d.digest, d.size));
  return {};
}

Status StoreSink::put_manifest(const ManifestBlob& m, bool top) {
  KISTE_ASSIGN_OR_RETURN(Descriptor d, store_.put_blob(m.bytes, m.media_type));
  if (top && name_) KISTE_TRY(store_.set_name(*name_, d));
  return {};
}

std::string StoreSink::describe() const {
  return fmt::format("store {}", quote(store_.root().native()));
}

}  // namespace kiste::image
