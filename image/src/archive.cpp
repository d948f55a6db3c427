#include <kiste/image/archive.hpp>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <map>
#include <set>

#include <kiste/base/log.hpp>
#include <kiste/base/sys.hpp>
#include <kiste/image/compression.hpp>
#include <kiste/image/media_type.hpp>
#include <kiste/image/staged_blobs.hpp>
#include <kiste/image/store_ops.hpp>

#include "archive_ptr.hpp"
#include "json_util.hpp"

namespace kiste::image {

namespace fs = std::filesystem;
using detail::ArchiveEntryPtr;
using detail::ArchiveReadPtr;
using detail::ArchiveWritePtr;
using detail::archive_message;
using detail::la;
using detail::load_libarchive;
using detail::json;

namespace {

constexpr size_t kReadBlock = 1 << 20;
constexpr size_t kMaxJsonFile = 16 << 20;

// Removes a temp file from a destructor, which has no caller to report to: a failure is logged
// with what is left (the store's tmp/ is emptied by fsck and prune; an archive's temp file
// beside the output stays). Already gone is fine.
void remove_temp(const fs::path& p, std::string_view left_for) {
  auto r = sys::unlink(p);
  if (!r && r.error().sys_errno != ENOENT) {
    log::warn("{} (left for {})", r.error().to_string(), left_for);
  }
}

// A file in the store's tmp/ that is unlinked unless released.
class TempFile {
 public:
  static Result<TempFile> create(const Store& store, std::string_view prefix) {
    fs::path p = store.tmp_dir() / (std::string(prefix) + sys::random_hex(12));
    KISTE_ASSIGN_OR_RETURN(UniqueFd fd, sys::open(p, O_RDWR | O_CREAT | O_EXCL, 0600));
    // Locked while owned, as BlobWriter's files: prune removes it once its writer is gone.
    if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
      Error e = sys_error("lock", p.native());
      ::unlink(p.c_str());
      return std::unexpected(std::move(e));
    }
    return TempFile(std::move(p), std::move(fd));
  }
  TempFile(TempFile&& o) noexcept : path_(std::exchange(o.path_, {})), fd_(std::move(o.fd_)) {}
  TempFile& operator=(TempFile&&) = delete;
  ~TempFile() {
    if (!path_.empty()) remove_temp(path_, "`kiste prune`");
  }
  [[nodiscard]] const fs::path& path() const { return path_; }
  [[nodiscard]] int fd() const { return fd_.get(); }

 private:
  TempFile(fs::path p, UniqueFd fd) : path_(std::move(p)), fd_(std::move(fd)) {}
  fs::path path_;
  UniqueFd fd_;
};

// Opens `path` ("-" = stdin) for reading with every decompression filter; `raw` reads the
// decompressed bytes as one stream instead of tar entries.
Result<ArchiveReadPtr> open_reader(const fs::path& path, bool raw) {
  KISTE_TRY(load_libarchive());
  ArchiveReadPtr a(la().archive_read_new());
  KISTE_CHECK(a != nullptr);
  la().archive_read_support_filter_all(a.get());
  if (raw) {
    la().archive_read_support_format_raw(a.get());
  } else {
    la().archive_read_support_format_tar(a.get());
  }
  int rc = path == "-" ? la().archive_read_open_fd(a.get(), STDIN_FILENO, kReadBlock)
                       : la().archive_read_open_filename(a.get(), path.c_str(), kReadBlock);
  if (rc != ARCHIVE_OK) {
    return failf(Errc::InvalidArgument, "read {}: {}", quote(path.native()), archive_message(a.get()));
  }
  return a;
}

// Streams the current entry's data into `sink`.
Status copy_entry_data(archive* a, ByteSink& sink, std::string_view what) {
  std::string buf(kReadBlock, '\0');
  for (;;) {
    la_ssize_t n = la().archive_read_data(a, buf.data(), buf.size());
    if (n < 0) return failf(Errc::Corrupt, "read {}: {}", quote(what), archive_message(a));
    if (n == 0) return {};
    KISTE_TRY(sink.write(std::string_view(buf.data(), static_cast<size_t>(n))));
  }
}

class StringSink final : public ByteSink {
 public:
  Status write(std::string_view b) override {
    s.append(b);
    return {};
  }
  std::string s;
};

int64_t default_created() {
  if (const char* e = std::getenv("SOURCE_DATE_EPOCH"); e && *e) {
    char* end = nullptr;
    long long v = std::strtoll(e, &end, 10);
    if (end && *end == '\0' && v >= 0) return v;
  }
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// ---- tar writing -------------------------------------------------------------------------------

class TarWriter {
 public:
  static Result<TarWriter> open(const fs::path& out, int fd) {
    KISTE_TRY(load_libarchive());
    ArchiveWritePtr a(la().archive_write_new());
    KISTE_CHECK(a != nullptr);
    la().archive_write_set_format_pax_restricted(a.get());
    la().archive_write_set_bytes_per_block(a.get(), 10240);
    if (la().archive_write_open_fd(a.get(), fd) != ARCHIVE_OK) {
      return failf(Errc::System, "write {}: {}", quote(out.native()), archive_message(a.get()));
    }
    return TarWriter(std::move(a), out.native());
  }

  Status add_dir(const std::string& name) {
    return header(name, AE_IFDIR, 0755, 0);
  }

  Status add_bytes(const std::string& name, std::string_view bytes) {
    KISTE_TRY(header(name, AE_IFREG, 0644, static_cast<int64_t>(bytes.size())));
    return data(bytes);
  }

  // Streams `size` bytes from `r`.
  Status add_stream(const std::string& name, BlobReader& r, int64_t size) {
    KISTE_TRY(header(name, AE_IFREG, 0644, size));
    std::string buf(kReadBlock, '\0');
    int64_t left = size;
    while (left > 0) {
      KISTE_ASSIGN_OR_RETURN(size_t n, r.read(buf.data(), buf.size()));
      if (n == 0) break;
      if (static_cast<int64_t>(n) > left) n = static_cast<size_t>(left);
      KISTE_TRY(data(std::string_view(buf.data(), n)));
      left -= static_cast<int64_t>(n);
    }
    if (left != 0) return failf(Errc::Corrupt, "write {}: {} ended early", quote(what_), name);
    return {};
  }

  Status close() {
    if (la().archive_write_close(a_.get()) != ARCHIVE_OK) {
      return failf(Errc::System, "write {}: {}", quote(what_), archive_message(a_.get()));
    }
    return {};
  }

 private:
  TarWriter(ArchiveWritePtr a, std::string what) : a_(std::move(a)), what_(std::move(what)) {}

  Status header(const std::string& name, unsigned type, int mode, int64_t size) {
    ArchiveEntryPtr e(la().archive_entry_new());
    la().archive_entry_set_pathname(e.get(), name.c_str());
    la().archive_entry_set_filetype(e.get(), type);
    la().archive_entry_set_perm(e.get(), static_cast<mode_t>(mode));
    la().archive_entry_set_size(e.get(), size);
    la().archive_entry_set_mtime(e.get(), 0, 0);
    la().archive_entry_set_uid(e.get(), 0);
    la().archive_entry_set_gid(e.get(), 0);
    if (la().archive_write_header(a_.get(), e.get()) != ARCHIVE_OK) {
      return failf(Errc::System, "write {}: {}: {}", quote(what_), name, archive_message(a_.get()));
    }
    return {};
  }

  Status data(std::string_view bytes) {
    while (!bytes.empty()) {
      la_ssize_t n = la().archive_write_data(a_.get(), bytes.data(), bytes.size());
      if (n < 0) {
        return failf(Errc::System, "write {}: {}", quote(what_), archive_message(a_.get()));
      }
      bytes.remove_prefix(static_cast<size_t>(n));
    }
    return {};
  }

  ArchiveWritePtr a_;
  std::string what_;
};

// Output file written beside its destination and renamed into place on success.
class AtomicOutput {
 public:
  static Result<AtomicOutput> open(const fs::path& out) {
    if (out == "-") {
      if (::isatty(STDOUT_FILENO)) {
        return fail(Errc::InvalidArgument,
                    "refusing to write an archive to a terminal; use -o FILE or redirect stdout");
      }
      return AtomicOutput(out, {}, UniqueFd(::dup(STDOUT_FILENO)));
    }
    fs::path dir = out.parent_path().empty() ? fs::path(".") : out.parent_path();
    fs::path tmp = dir / ("." + out.filename().native() + ".tmp-" + sys::random_hex(6));
    KISTE_ASSIGN_OR_RETURN(UniqueFd fd, sys::open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0644));
    return AtomicOutput(out, tmp, std::move(fd));
  }
  AtomicOutput(AtomicOutput&& o) noexcept
      : out_(std::move(o.out_)), tmp_(std::exchange(o.tmp_, {})), fd_(std::move(o.fd_)) {}
  ~AtomicOutput() {
    if (!tmp_.empty()) remove_temp(tmp_, "removal by hand");
  }
  [[nodiscard]] int fd() const { return fd_.get(); }
  Status commit() {
    if (tmp_.empty()) return {};
    KISTE_TRY(sys::fsync(fd_.get(), tmp_.native()));
    KISTE_TRY(sys::rename(tmp_, out_));
    tmp_.clear();
    return {};
  }

 private:
  AtomicOutput(fs::path out, fs::path tmp, UniqueFd fd)
      : out_(std::move(out)), tmp_(std::move(tmp)), fd_(std::move(fd)) {}
  fs::path out_, tmp_;
  UniqueFd fd_;
};

std::string archive_blob_path(const Digest& d) {
  return fmt::format("blobs/{}/{}", d.algorithm_name(), d.hex());
}

// Every blob an image needs, manifests first (deduplicated across images).
Status collect_blobs(const Store& store, const Descriptor& d, std::vector<Descriptor>& out,
                     std::set<Digest>& seen, int indexes_above = 0) {
  if (!seen.insert(d.digest).second) return {};
  out.push_back(d);
  if (!media_type::is_manifest(d.media_type) && !media_type::is_index(d.media_type)) return {};
  KISTE_ASSIGN_OR_RETURN(ManifestBlob m, read_manifest(store, d));
  KISTE_TRY(ManifestWalk::check_depth(m, indexes_above));
  if (m.is_index()) {
    for (const auto& c : m.index().manifests) {
      KISTE_TRY(collect_blobs(store, c, out, seen, indexes_above + 1));
    }
  } else {
    KISTE_TRY(collect_blobs(store, m.manifest().config, out, seen));
    for (const auto& l : m.manifest().layers) KISTE_TRY(collect_blobs(store, l, out, seen));
  }
  return {};
}

Result<SaveResult> save_oci(const Store& store, const std::vector<StoreEntry>& images,
                            TarWriter& tar) {
  std::vector<Descriptor> blobs;
  std::set<Digest> seen;
  json manifests = json::array();
  SaveResult res;
  std::vector<Descriptor> referrers;
  for (const auto& e : images) {
    KISTE_TRY(collect_blobs(store, e.manifest, blobs, seen));
    Descriptor d = e.manifest;
    d.annotations[std::string(kRefNameAnnotation)] = e.name;
    manifests.push_back(detail::descriptor_to_json(d));
    KISTE_ASSIGN_OR_RETURN(auto refs, image_referrers(store, e.manifest));
    for (auto& [subject, r] : refs) referrers.push_back(std::move(r));
  }
  // After every image: an image saved twice (two names) has its referrers once.
  for (const auto& r : referrers) {
    if (seen.contains(r.digest)) continue;
    KISTE_TRY(with_context(collect_blobs(store, r, blobs, seen),
                           fmt::format("referrer {}", r.digest)));
    manifests.push_back(detail::descriptor_to_json(r));
    ++res.referrers_saved;
  }
  json index = {{"schemaVersion", 2}, {"mediaType", media_type::kOciIndex}, {"manifests", manifests}};
  KISTE_TRY(tar.add_bytes("oci-layout", R"({"imageLayoutVersion":"1.0.0"})"));
  KISTE_TRY(tar.add_bytes("index.json", index.dump()));
  KISTE_TRY(tar.add_dir("blobs/"));
  KISTE_TRY(tar.add_dir("blobs/sha256/"));
  std::sort(blobs.begin(), blobs.end(),
            [](const Descriptor& a, const Descriptor& b) { return a.digest < b.digest; });
  for (const auto& b : blobs) {
    KISTE_ASSIGN_OR_RETURN(auto r, store.open_blob(b.digest));
    KISTE_TRY(tar.add_stream(archive_blob_path(b.digest), *r, b.size));
  }
  return res;
}

// Decompresses a layer blob into a temp file, checking it against its diff_id.
Result<int64_t> decompress_layer(const Store& store, const Descriptor& layer, const Digest& diff_id,
                                 const TempFile& out) {
  KISTE_ASSIGN_OR_RETURN(auto blob, store.open_blob(layer.digest));
  auto plain = make_decompressor(*blob, media_type::layer_compression(layer.media_type));
  FdSink file(out.fd(), out.path().native());
  HashingSink hs(file);
  KISTE_TRY(with_context(pump(*plain, hs), fmt::format("decompress layer {}", layer.digest)));
  int64_t size = static_cast<int64_t>(hs.bytes());
  Digest got = hs.finish();
  if (got != diff_id) {
    return failf(Errc::Corrupt, "layer {}: uncompressed content has digest {}, config says {}",
                 layer.digest, got, diff_id);
  }
  if (::lseek(out.fd(), 0, SEEK_SET) != 0) return std::unexpected(sys_error("seek", out.path().native()));
  return size;
}

// docker save's layout (docker ≥ 25): an OCI layout whose layers are uncompressed tars, plus the
// legacy manifest.json and repositories that `docker load` reads.
Result<SaveResult> save_docker(const Store& store, const std::vector<StoreEntry>& images,
                               TarWriter& tar) {
  SaveResult res;
  std::set<Digest> left_out;
  for (const auto& e : images) {
    KISTE_ASSIGN_OR_RETURN(auto refs, image_referrers(store, e.manifest));
    for (const auto& [subject, r] : refs) left_out.insert(r.digest);
  }
  res.referrers_left_out = static_cast<int>(left_out.size());
  json legacy = json::array();
  json repositories = json::object();
  json index_list = json::array();
  std::set<Digest> written;
  KISTE_TRY(tar.add_dir("blobs/"));
  KISTE_TRY(tar.add_dir("blobs/sha256/"));
  for (const auto& e : images) {
    KISTE_ASSIGN_OR_RETURN(ManifestBlob m, read_manifest(store, e.manifest));
    if (m.is_index()) {
      KISTE_ASSIGN_OR_RETURN(Descriptor d, select_platform(m.index(), Platform::host()));
      KISTE_ASSIGN_OR_RETURN(m, read_manifest(store, d));
    }
    const Manifest& man = m.manifest();
    KISTE_ASSIGN_OR_RETURN(std::string cfg_bytes, store.read_blob(man.config.digest));
    KISTE_ASSIGN_OR_RETURN(ImageConfig cfg, ImageConfig::parse(cfg_bytes));
    std::vector<const Descriptor*> layers;
    for (const auto& l : man.layers) {
      if (media_type::is_layer(l.media_type)) layers.push_back(&l);
    }
    if (layers.size() != cfg.diff_ids.size()) {
      return failf(Errc::Corrupt, "image {}: {} layers but {} diff_ids", e.name, layers.size(),
                   cfg.diff_ids.size());
    }
    Manifest out;
    out.media_type = media_type::kOciManifest;
    out.config = man.config;
    out.config.media_type = media_type::kOciConfig;
    json layer_paths = json::array();
    for (size_t i = 0; i < layers.size(); ++i) {
      const Digest& diff = cfg.diff_ids[i];
      Descriptor ld{.media_type = std::string(media_type::kOciLayerTar), .digest = diff, .size = 0};
      KISTE_ASSIGN_OR_RETURN(TempFile tmp, TempFile::create(store, "save-"));
      KISTE_ASSIGN_OR_RETURN(ld.size, decompress_layer(store, *layers[i], diff, tmp));
      if (written.insert(diff).second) {
        FdReader r(UniqueFd(::dup(tmp.fd())), tmp.path().native());
        KISTE_TRY(tar.add_stream(archive_blob_path(diff), r, ld.size));
      }
      layer_paths.push_back(archive_blob_path(diff));
      out.layers.push_back(std::move(ld));
    }
    if (written.insert(man.config.digest).second) {
      KISTE_TRY(tar.add_bytes(archive_blob_path(man.config.digest), cfg_bytes));
    }
    std::string mbytes = serialize_manifest(out);
    Digest md = Digest::of(mbytes);
    if (written.insert(md).second) KISTE_TRY(tar.add_bytes(archive_blob_path(md), mbytes));
    json repo_tags = json::array();
    Descriptor idx_desc{.media_type = std::string(media_type::kOciManifest), .digest = md,
                        .size = static_cast<int64_t>(mbytes.size())};
    if (auto ref = Reference::parse(e.name, {.default_tag = false}); ref && ref->tag()) {
      std::string familiar = ref->without_digest().familiar();
      repo_tags.push_back(familiar);
      idx_desc.annotations["io.containerd.image.name"] = ref->without_digest().str();
      idx_desc.annotations[std::string(kRefNameAnnotation)] = *ref->tag();
      std::string repo = familiar.substr(0, familiar.rfind(':'));
      if (!cfg.diff_ids.empty()) {
        repositories[repo][*ref->tag()] = std::string(cfg.diff_ids.back().hex());
      }
    }
    index_list.push_back(detail::descriptor_to_json(idx_desc));
    legacy.push_back(json{{"Config", archive_blob_path(man.config.digest)},
                          {"RepoTags", repo_tags},
                          {"Layers", layer_paths}});
  }
  json index = {{"schemaVersion", 2}, {"mediaType", media_type::kOciIndex}, {"manifests", index_list}};
  KISTE_TRY(tar.add_bytes("index.json", index.dump()));
  KISTE_TRY(tar.add_bytes("manifest.json", legacy.dump()));
  KISTE_TRY(tar.add_bytes("oci-layout", R"({"imageLayoutVersion":"1.0.0"})"));
  if (!repositories.empty()) KISTE_TRY(tar.add_bytes("repositories", repositories.dump()));
  return res;
}

// ---- loading -----------------------------------------------------------------------------------

struct ArchivedFile {
  Digest digest = Digest::of("");
  int64_t size = 0;
  media_type::Compression compression = media_type::Compression::None;
};

media_type::Compression sniff(std::string_view head) {
  if (head.size() >= 2 && static_cast<unsigned char>(head[0]) == 0x1f &&
      static_cast<unsigned char>(head[1]) == 0x8b) {
    return media_type::Compression::Gzip;
  }
  if (head.size() >= 4 && head.substr(0, 4) == std::string_view("\x28\xb5\x2f\xfd", 4)) {
    return media_type::Compression::Zstd;
  }
  return media_type::Compression::None;
}

// Captures the first bytes of a stream for sniffing.
class HeadSink final : public ByteSink {
 public:
  explicit HeadSink(ByteSink& next) : next_(next) {}
  Status write(std::string_view b) override {
    if (head.size() < 8) head.append(b.substr(0, 8 - head.size()));
    return next_.write(b);
  }
  std::string head;

 private:
  ByteSink& next_;
};

std::string clean_path(std::string p) {
  while (p.starts_with("./")) p.erase(0, 2);
  while (p.starts_with("/")) p.erase(0, 1);
  return p;
}

bool is_metadata(const std::string& p) {
  return p == "manifest.json" || p == "index.json" || p == "oci-layout" || p == "repositories";
}

class Loader {
 public:
  // What this load added is staged: a failed load removes it again (StagedBlobs).
  explicit Loader(const Store& store) : store_(store), staged_(store) {}

  Result<std::vector<LoadedImage>> run(const fs::path& in) {
    KISTE_ASSIGN_OR_RETURN(FileLock lease, store_.writer_lease());
    KISTE_TRY(read_entries(in));
    std::vector<LoadedImage> loaded;
    if (meta_.contains("index.json") && meta_.contains("oci-layout")) {
      KISTE_ASSIGN_OR_RETURN(loaded, load_oci());
    } else if (meta_.contains("manifest.json")) {
      KISTE_ASSIGN_OR_RETURN(loaded, load_docker_legacy());
    } else {
      return failf(Errc::InvalidArgument,
                   "load {}: neither an OCI archive (index.json, oci-layout) nor a docker archive "
                   "(manifest.json)",
                   quote(in.native()));
    }
    for (const auto& l : loaded) {
      KISTE_TRY(l.name ? store_.set_name(*l.name, l.manifest) : store_.keep_unnamed(l.manifest));
    }
    KISTE_TRY(add_referrers(loaded));
    staged_.commit();
    return loaded;
  }

 private:
  Status read_entries(const fs::path& in) {
    KISTE_ASSIGN_OR_RETURN(ArchiveReadPtr a, open_reader(in, false));
    archive_entry* e = nullptr;
    size_t count = 0;
    for (;;) {
      int rc = la().archive_read_next_header(a.get(), &e);
      if (rc == ARCHIVE_EOF) break;
      if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN) {
        return failf(Errc::InvalidArgument, "load {}: {}", quote(in.native()), archive_message(a.get()));
      }
      ++count;
      if (la().archive_entry_filetype(e) != AE_IFREG) continue;
      std::string path = clean_path(la().archive_entry_pathname(e) ? la().archive_entry_pathname(e) : "");
      if (is_metadata(path)) {
        StringSink s;
        if (la().archive_entry_size(e) > static_cast<int64_t>(kMaxJsonFile)) {
          return failf(Errc::InvalidArgument, "load: {} is too large", path);
        }
        KISTE_TRY(copy_entry_data(a.get(), s, path));
        meta_[path] = std::move(s.s);
        continue;
      }
      KISTE_ASSIGN_OR_RETURN(BlobWriter w, store_.blob_writer());
      HeadSink head(w);
      KISTE_TRY(copy_entry_data(a.get(), head, path));
      KISTE_ASSIGN_OR_RETURN(auto c, w.commit());
      if (!c.existed) staged_.add(c.digest);
      // A blobs/<alg>/<hex> name must be what the content hashes to.
      if (path.starts_with("blobs/")) {
        auto named = Digest::parse(path.substr(6, path.find('/', 6) - 6) + ":" +
                                   path.substr(path.rfind('/') + 1));
        if (named && *named != c.digest) {
          return failf(Errc::Corrupt, "load: {} holds content with digest {}", path, c.digest);
        }
      }
      files_[path] = ArchivedFile{c.digest, c.size, sniff(head.head)};
    }
    if (count == 0) return failf(Errc::InvalidArgument, "load {}: empty archive", quote(in.native()));
    return {};
  }

  Result<ArchivedFile> file(const std::string& path) const {
    auto it = files_.find(clean_path(path));
    if (it == files_.end()) return failf(Errc::Corrupt, "load: archive lacks {}", quote(path));
    return it->second;
  }

  // RepoTags of docker's manifest.json, by config digest (docker ≥ 25 archives carry both).
  std::map<Digest, std::vector<std::string>> repo_tags_by_config() const {
    std::map<Digest, std::vector<std::string>> out;
    auto it = meta_.find("manifest.json");
    if (it == meta_.end()) return out;
    json j = json::parse(it->second, nullptr, false);
    if (!j.is_array()) return out;
    for (const auto& m : j) {
      if (!m.is_object() || !m.contains("Config") || !m["Config"].is_string()) continue;
      auto f = file(m["Config"].get<std::string>());
      if (!f) continue;
      auto tags = detail::get_string_list(m, "RepoTags", "manifest.json");
      if (tags) out[f->digest] = *tags;
    }
    return out;
  }

  // Every blob the tree below `d` names is in the archive (each manifest checked once).
  Status check_tree(const Descriptor& d, ManifestWalk& walk, int indexes_above = 0) {
    if (!store_.has_blob(d.digest)) {
      return failf(Errc::Corrupt, "load: blob {} is missing from the archive", d.digest);
    }
    if (!media_type::is_manifest(d.media_type) && !media_type::is_index(d.media_type)) return {};
    KISTE_ASSIGN_OR_RETURN(bool fresh, walk.enter(d));
    if (!fresh) return {};
    KISTE_ASSIGN_OR_RETURN(ManifestBlob m, read_manifest(store_, d));
    KISTE_TRY(ManifestWalk::check_depth(m, indexes_above));
    if (m.is_index()) {
      for (const auto& c : m.index().manifests) KISTE_TRY(check_tree(c, walk, indexes_above + 1));
    } else {
      KISTE_TRY(check_tree(m.manifest().config, walk));
      for (const auto& l : m.manifest().layers) KISTE_TRY(check_tree(l, walk));
    }
    return {};
  }

  static Status add_names(const std::vector<std::string>& names, const Descriptor& md,
                          std::vector<LoadedImage>& out) {
    if (names.empty()) out.push_back(LoadedImage{std::nullopt, md});
    for (const auto& n : names) {
      KISTE_ASSIGN_OR_RETURN(Reference ref, with_context(Reference::parse(n), "load: image name"));
      out.push_back(LoadedImage{std::move(ref), md});
    }
    return {};
  }

  // The unnamed entries that refer to a loaded image (or one of its platform images) become its
  // store-side referrers; the count goes to the first LoadedImage of that image.
  Status add_referrers(std::vector<LoadedImage>& loaded) {
    for (const auto& [artifact, subject] : referrers_) {
      LoadedImage* owner = nullptr;
      for (auto& l : loaded) {
        if (l.manifest.digest == subject) owner = &l;
        if (owner == nullptr && media_type::is_index(l.manifest.media_type)) {
          KISTE_ASSIGN_OR_RETURN(ManifestBlob m, read_manifest(store_, l.manifest));
          for (const auto& c : m.index().manifests) {
            if (c.digest == subject) owner = &l;
          }
        }
        if (owner != nullptr) break;
      }
      if (owner == nullptr) {
        return failf(Errc::Corrupt, "load: referrer {} names subject {}, not an image of the archive",
                     artifact.digest, subject);
      }
      KISTE_TRY(store_.add_referrer(artifact, subject));
      ++owner->referrers;
    }
    return {};
  }

  Result<std::vector<LoadedImage>> load_oci() {
    KISTE_ASSIGN_OR_RETURN(ManifestBlob idx, parse_manifest(meta_["index.json"]));
    if (!idx.is_index()) return fail(Errc::Corrupt, "load: index.json is not an image index");
    auto tags = repo_tags_by_config();
    std::vector<LoadedImage> out;
    for (const auto& d : idx.index().manifests) {
      if (!media_type::is_manifest(d.media_type) && !media_type::is_index(d.media_type)) {
        return failf(Errc::Unsupported, "index.json entry {} has unsupported media type {}",
                     d.digest, quote(d.media_type));
      }
      ManifestWalk walk;
      KISTE_TRY(check_tree(d, walk));
      std::vector<std::string> names;
      if (auto it = d.annotations.find("io.containerd.image.name"); it != d.annotations.end()) {
        names.push_back(it->second);
      } else if (auto rn = d.annotations.find(std::string(kRefNameAnnotation));
                 rn != d.annotations.end() &&
                 rn->second.find_first_of(":/") != std::string::npos) {
        names.push_back(rn->second);
      }
      if (names.empty() && media_type::is_manifest(d.media_type)) {
        KISTE_ASSIGN_OR_RETURN(ManifestBlob m, read_manifest(store_, d));
        if (m.manifest().subject) {  // an artifact about an image: a referrer, not an image
          Descriptor ad = d;
          ad.annotations.clear();
          ad.artifact_type = m.manifest().artifact_type.empty() ? m.manifest().config.media_type
                                                                : m.manifest().artifact_type;
          referrers_.emplace_back(std::move(ad), m.manifest().subject->digest);
          continue;
        }
        if (auto t = tags.find(m.manifest().config.digest); t != tags.end()) names = t->second;
      }
      Descriptor md = d;
      md.annotations.clear();
      KISTE_TRY(add_names(names, md, out));
    }
    return out;
  }

  Result<std::vector<LoadedImage>> load_docker_legacy() {
    KISTE_ASSIGN_OR_RETURN(json j, detail::parse_json(meta_["manifest.json"], "manifest.json"));
    if (!j.is_array()) return fail(Errc::Corrupt, "load: manifest.json is not a list");
    std::vector<LoadedImage> out;
    for (const auto& entry : j) {
      if (!entry.is_object()) return fail(Errc::Corrupt, "load: manifest.json entry is not an object");
      KISTE_ASSIGN_OR_RETURN(std::string cfg_path, detail::get_string(entry, "Config", "manifest.json"));
      KISTE_ASSIGN_OR_RETURN(auto layer_paths, detail::get_string_list(entry, "Layers", "manifest.json"));
      KISTE_ASSIGN_OR_RETURN(auto repo_tags, detail::get_string_list(entry, "RepoTags", "manifest.json"));
      KISTE_ASSIGN_OR_RETURN(ArchivedFile cfg_file, file(cfg_path));
      KISTE_ASSIGN_OR_RETURN(std::string cfg_bytes, store_.read_blob(cfg_file.digest, kMaxJsonFile));
      KISTE_ASSIGN_OR_RETURN(ImageConfig cfg, with_context(ImageConfig::parse(cfg_bytes), "load"));
      if (cfg.diff_ids.size() != layer_paths.size()) {
        return failf(Errc::Corrupt, "load: image config lists {} diff_ids for {} layers",
                     cfg.diff_ids.size(), layer_paths.size());
      }
      Manifest m;
      m.media_type = media_type::kOciManifest;
      m.config = Descriptor{.media_type = std::string(media_type::kOciConfig),
                            .digest = cfg_file.digest, .size = cfg_file.size};
      for (size_t i = 0; i < layer_paths.size(); ++i) {
        KISTE_ASSIGN_OR_RETURN(ArchivedFile lf, file(layer_paths[i]));
        std::string_view type = media_type::kOciLayerTar;
        if (lf.compression == media_type::Compression::Gzip) type = media_type::kOciLayerGzip;
        if (lf.compression == media_type::Compression::Zstd) type = media_type::kOciLayerZstd;
        if (lf.compression == media_type::Compression::None && lf.digest != cfg.diff_ids[i]) {
          return failf(Errc::Corrupt, "load: layer {} has digest {}, config says {}", layer_paths[i],
                       lf.digest, cfg.diff_ids[i]);
        }
        m.layers.push_back(Descriptor{.media_type = std::string(type), .digest = lf.digest,
                                      .size = lf.size});
      }
      std::string bytes = serialize_manifest(m);
      if (!store_.has_blob(Digest::of(bytes))) staged_.add(Digest::of(bytes));
      KISTE_ASSIGN_OR_RETURN(Descriptor md, store_.put_blob(bytes, media_type::kOciManifest));
      KISTE_TRY(add_names(repo_tags, md, out));
    }
    return out;
  }

  const Store& store_;
  std::map<std::string, std::string> meta_;
  std::map<std::string, ArchivedFile> files_;
  std::vector<std::pair<Descriptor, Digest>> referrers_;  // {artifact, subject}
  StagedBlobs staged_;
};

}  // namespace

// ---- import ------------------------------------------------------------------------------------

Status apply_change(ContainerDefaults& cfg, std::string_view change) {
  std::string_view s = change;
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  size_t sp = s.find_first_of(" \t");
  std::string instr(s.substr(0, sp));
  std::string_view arg = sp == std::string_view::npos ? std::string_view() : s.substr(sp + 1);
  while (!arg.empty() && (arg.front() == ' ' || arg.front() == '\t')) arg.remove_prefix(1);
  for (char& c : instr) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  auto bad = [&](std::string_view why) {
    return failf(Errc::InvalidArgument, "--change {}: {}", quote(change), why);
  };
  if (arg.empty()) return bad("missing argument");
  // JSON exec form ["a","b"] or shell form (wrapped in /bin/sh -c).
  auto command = [&]() -> Result<std::vector<std::string>> {
    if (arg.front() == '[') {
      json j = json::parse(arg, nullptr, false);
      if (j.is_array()) {
        std::vector<std::string> v;
        for (const auto& x : j) {
          if (!x.is_string()) return bad("exec form must be a list of strings");
          v.push_back(x.get<std::string>());
        }
        return v;
      }
    }
    return std::vector<std::string>{"/bin/sh", "-c", std::string(arg)};
  };
  if (instr == "CMD") {
    KISTE_ASSIGN_OR_RETURN(cfg.cmd, command());
  } else if (instr == "ENTRYPOINT") {
    KISTE_ASSIGN_OR_RETURN(cfg.entrypoint, command());
    cfg.cmd.reset();  // like docker: a new ENTRYPOINT resets CMD
  } else if (instr == "ENV") {
    std::string a(arg);
    size_t eq = a.find('=');
    size_t ws = a.find_first_of(" \t");
    std::string key, value;
    if (eq != std::string::npos && (ws == std::string::npos || eq < ws)) {
      key = a.substr(0, eq);
      value = a.substr(eq + 1);
    } else if (ws != std::string::npos) {
      key = a.substr(0, ws);
      value = a.substr(a.find_first_not_of(" \t", ws));
    } else {
      return bad("expected KEY=VALUE");
    }
    if (key.empty()) return bad("empty variable name");
    std::erase_if(cfg.env, [&](const std::string& e) { return e.starts_with(key + "="); });
    cfg.env.push_back(key + "=" + value);
  } else if (instr == "WORKDIR") {
    if (arg.front() != '/') return bad("WORKDIR must be absolute");
    cfg.working_dir = std::string(arg);
  } else if (instr == "USER") {
    cfg.user = std::string(arg);
  } else if (instr == "EXPOSE") {
    std::string p(arg);
    if (p.find('/') == std::string::npos) p += "/tcp";
    cfg.exposed_ports.push_back(p);
  } else if (instr == "LABEL") {
    size_t eq = arg.find('=');
    if (eq == std::string_view::npos || eq == 0) return bad("expected KEY=VALUE");
    cfg.labels[std::string(arg.substr(0, eq))] = std::string(arg.substr(eq + 1));
  } else if (instr == "STOPSIGNAL") {
    cfg.stop_signal = std::string(arg);
  } else {
    return bad("unsupported instruction (CMD, ENTRYPOINT, ENV, WORKDIR, USER, EXPOSE, LABEL, STOPSIGNAL)");
  }
  return {};
}

Result<Descriptor> import_rootfs(const Store& store, const fs::path& tar_in, const Reference& name,
                                 const ImportOptions& opts) {
  auto ctx = fmt::format("import {}", quote(tar_in.native()));
  ImageConfig cfg;
  for (const auto& c : opts.changes) KISTE_TRY(with_context(apply_change(cfg.config, c), ctx));
  KISTE_ASSIGN_OR_RETURN(FileLock lease, store.writer_lease());

  // stdin is read twice (validate, then pack): spool it first.
  std::optional<TempFile> spool;
  fs::path tar = tar_in;
  if (tar_in == "-") {
    KISTE_ASSIGN_OR_RETURN(TempFile t, TempFile::create(store, "import-"));
    FdSink s(t.fd(), t.path().native());
    FdReader in(UniqueFd(::dup(STDIN_FILENO)), "stdin");
    KISTE_TRY(pump(in, s));
    tar = t.path();
    spool.emplace(std::move(t));
  }
  std::error_code size_ec;
  const uint64_t total = fs::file_size(tar, size_ec);
  auto progress = [&](std::string_view phase, archive* a) {
    if (!opts.on_progress || size_ec) return;
    int64_t n = a == nullptr ? static_cast<int64_t>(total) : la().archive_filter_bytes(a, -1);
    opts.on_progress(phase, static_cast<uint64_t>(std::clamp<int64_t>(n, 0, static_cast<int64_t>(total))), total);
  };
  // Pass 1: it must be a readable tar archive.
  {
    KISTE_ASSIGN_OR_RETURN(ArchiveReadPtr a, with_context(open_reader(tar, false), ctx));
    archive_entry* e = nullptr;
    for (;;) {
      int rc = la().archive_read_next_header(a.get(), &e);
      progress("checking", a.get());
      if (rc == ARCHIVE_EOF) break;
      if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN) {
        return failf(Errc::InvalidArgument, "{}: not a valid tar archive: {}", ctx,
                     archive_message(a.get()));
      }
      if (la().archive_read_data_skip(a.get()) != ARCHIVE_OK) {
        return failf(Errc::InvalidArgument, "{}: truncated tar archive: {}", ctx,
                     archive_message(a.get()));
      }
    }
  }
  // Pass 2: the decompressed tar bytes, hashed (diff_id) and gzip-compressed into a blob.
  KISTE_ASSIGN_OR_RETURN(BlobWriter w, store.blob_writer());
  Digest diff_id = Digest::of("");
  {
    KISTE_ASSIGN_OR_RETURN(ArchiveReadPtr a, with_context(open_reader(tar, true), ctx));
    archive_entry* e = nullptr;
    progress("checking", nullptr);
    KISTE_ASSIGN_OR_RETURN(auto gz, CompressingSink::create(w, {}));
    HashingSink hs(*gz);
    // Reports how far into the file the reader is, about every MiB written.
    struct ProgressSink final : ByteSink {
      ByteSink& out;
      std::function<void()> tick;
      uint64_t since = 0;
      ProgressSink(ByteSink& o, std::function<void()> t) : out(o), tick(std::move(t)) {}
      Status write(std::string_view b) override {
        since += b.size();
        if (since >= (1u << 20)) {
          since = 0;
          tick();
        }
        return out.write(b);
      }
    } ps(hs, [&] { progress("packing", a.get()); });
    int rc = la().archive_read_next_header(a.get(), &e);
    if (rc == ARCHIVE_OK) {
      KISTE_TRY(with_context(copy_entry_data(a.get(), ps, tar.native()), ctx));
    } else if (rc != ARCHIVE_EOF) {
      return failf(Errc::InvalidArgument, "{}: {}", ctx, archive_message(a.get()));
    }
    KISTE_TRY(gz->finish());
    diff_id = hs.finish();
    progress("packing", nullptr);
  }
  KISTE_ASSIGN_OR_RETURN(auto layer, w.commit());

  Platform p = opts.platform.value_or(Platform::host());
  cfg.architecture = p.architecture;
  cfg.os = p.os;
  cfg.variant = p.variant;
  cfg.created = rfc3339(opts.created.value_or(default_created()));
  cfg.diff_ids = {diff_id};
  cfg.history.push_back(HistoryEntry{.created = cfg.created,
                                     .created_by = "kiste import",
                                     .comment = opts.message.empty() ? "imported from tarball"
                                                                     : opts.message});
  std::string cfg_bytes = cfg.serialize();
  KISTE_ASSIGN_OR_RETURN(Descriptor cfg_desc, store.put_blob(cfg_bytes, media_type::kOciConfig));
  Manifest m;
  m.media_type = media_type::kOciManifest;
  m.config = cfg_desc;
  m.layers.push_back(Descriptor{.media_type = std::string(media_type::kOciLayerGzip),
                                .digest = layer.digest, .size = layer.size});
  KISTE_ASSIGN_OR_RETURN(Descriptor md, store.put_blob(serialize_manifest(m), media_type::kOciManifest));
  KISTE_TRY(store.set_name(name, md));
  return md;
}

Result<SaveResult> save_archive(const Store& store, const std::vector<StoreEntry>& images,
                                const fs::path& out, ArchiveFormat format) {
  auto ctx = fmt::format("save {}", quote(out.native()));
  if (images.empty()) return failf(Errc::InvalidArgument, "{}: no images given", ctx);
  KISTE_ASSIGN_OR_RETURN(AtomicOutput file, with_context(AtomicOutput::open(out), ctx));
  KISTE_ASSIGN_OR_RETURN(TarWriter tar, TarWriter::open(out, file.fd()));
  Result<SaveResult> s = format == ArchiveFormat::OciArchive ? save_oci(store, images, tar)
                                                             : save_docker(store, images, tar);
  KISTE_ASSIGN_OR_RETURN(SaveResult res, with_context(std::move(s), ctx));
  KISTE_TRY(tar.close());
  KISTE_TRY(file.commit());
  return res;
}

Result<std::vector<LoadedImage>> load_archive(const Store& store, const fs::path& in) {
  Loader loader(store);
  return with_context(loader.run(in), fmt::format("load {}", quote(in.native())));
}

}  // namespace kiste::image
