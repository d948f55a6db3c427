// oci:DIR[:NAME] — an OCI image layout as skopeo reads and writes it.
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>

#include <kiste/base/sys.hpp>
#include <kiste/image/blob_writer.hpp>
#include <kiste/image/media_type.hpp>
#include <kiste/image/oci_layout.hpp>
#include <kiste/image/store.hpp>

#include "json_util.hpp"
#include "local_dir.hpp"

namespace kiste::image {

namespace fs = std::filesystem;
using detail::json;

namespace {

constexpr std::string_view kOciLayoutFile = R"({"imageLayoutVersion":"1.0.0"})";
constexpr size_t kMaxIndexBytes = 16 << 20;

std::string blob_rel(const Digest& d) {
  return fmt::format("blobs/{}/{}", d.algorithm_name(), d.hex());
}

std::string layout_what(const LayoutRef& r) {
  return fmt::format("OCI layout {}", quote(r.dir.native()));
}

Status check_layout_file(int rootfd, std::string_view what) {
  KISTE_ASSIGN_OR_RETURN(std::string bytes,
                         detail::read_small_in(rootfd, "oci-layout", 1 << 16, what));
  auto j = detail::parse_json(bytes, "oci-layout");
  if (!j || !j->is_object() || !j->contains("imageLayoutVersion") ||
      !(*j)["imageLayoutVersion"].is_string()) {
    return failf(Errc::Corrupt, "{}: `oci-layout` has no imageLayoutVersion", what);
  }
  return {};
}

// index.json's `manifests`, parsed strictly.
Result<std::pair<json, std::vector<Descriptor>>> read_index_json(int rootfd,
                                                                 std::string_view what) {
  KISTE_ASSIGN_OR_RETURN(std::string bytes,
                         detail::read_small_in(rootfd, "index.json", kMaxIndexBytes, what));
  std::string w = fmt::format("{}: `index.json`", what);
  KISTE_ASSIGN_OR_RETURN(json j, detail::parse_json(bytes, w));
  if (!j.is_object() || !j.contains("manifests") || !j["manifests"].is_array()) {
    return failf(Errc::Corrupt, "{}: not an image index", w);
  }
  std::vector<Descriptor> out;
  for (const auto& m : j["manifests"]) {
    KISTE_ASSIGN_OR_RETURN(Descriptor d, detail::parse_descriptor(m, w));
    out.push_back(std::move(d));
  }
  return std::make_pair(std::move(j), std::move(out));
}

std::string ref_name(const Descriptor& d) {
  auto it = d.annotations.find(std::string(kRefNameAnnotation));
  return it == d.annotations.end() ? std::string() : it->second;
}

}  // namespace

Result<LayoutRef> parse_layout_ref(std::string_view s) {
  LayoutRef r;
  auto colon = s.find(':');
  r.dir = std::string(s.substr(0, colon));
  if (colon != std::string_view::npos) r.name = std::string(s.substr(colon + 1));
  if (r.dir.empty()) return failf(Errc::InvalidArgument, "{}: no directory", quote(s));
  if (r.name.find_first_of("\n\r") != std::string::npos || r.name.size() > 1024) {
    return failf(Errc::InvalidArgument, "{}: invalid image name", quote(s));
  }
  return r;
}

// ---- OciLayoutImage --------------------------------------------------------------------------

Result<std::unique_ptr<OciLayoutImage>> OciLayoutImage::open(const LayoutRef& ref) {
  std::string what = layout_what(ref);
  auto root = detail::open_directory(ref.dir);
  if (!root) {
    return failf(root.error().code, "{}: {}", what, root.error().message);
  }
  KISTE_TRY(check_layout_file(root->get(), what));
  KISTE_ASSIGN_OR_RETURN(auto idx, read_index_json(root->get(), what));
  const std::vector<Descriptor>& entries = idx.second;
  std::vector<const Descriptor*> hits;
  std::string names;
  for (const auto& d : entries) {
    std::string n = ref_name(d);
    if (!n.empty()) names += (names.empty() ? "" : ", ") + n;
    if (ref.name.empty() || n == ref.name) hits.push_back(&d);
  }
  if (hits.empty()) {
    return failf(Errc::NotFound, "{}: no image named {} (names: {})", what, quote(ref.name),
                 names.empty() ? std::string("none") : names);
  }
  if (hits.size() > 1 && ref.name.empty()) {
    // Artifacts listed beside an image (its attestations) are not candidates.
    std::erase_if(hits, [](const Descriptor* d) { return !d->artifact_type.empty(); });
  }
  if (hits.size() > 1) {
    return failf(Errc::InvalidArgument, "{}: {} images match{}; name one with oci:DIR:NAME ({})",
                 what, hits.size(), ref.name.empty() ? "" : " " + quote(ref.name), names);
  }
  const Descriptor& d = *hits.front();
  if (!media_type::is_manifest(d.media_type) && !media_type::is_index(d.media_type)) {
    return failf(Errc::Unsupported, "{}: entry {} has media type {}, not an image", what, d.digest,
                 quote(d.media_type));
  }
  std::unique_ptr<OciLayoutImage> img(new OciLayoutImage(ref, std::move(*root)));
  KISTE_ASSIGN_OR_RETURN(img->top_,
                         detail::read_manifest_in(img->root_.get(), blob_rel(d.digest), d, what));
  return img;
}

Result<ManifestBlob> OciLayoutImage::fetch_manifest(const Descriptor& d) {
  return detail::read_manifest_in(root_.get(), blob_rel(d.digest), d, layout_what(ref_));
}

Result<std::unique_ptr<BlobReader>> OciLayoutImage::open_blob(const Descriptor& d) {
  std::string rel = blob_rel(d.digest);
  KISTE_ASSIGN_OR_RETURN(UniqueFd fd, detail::open_regular_in(root_.get(), rel, layout_what(ref_)));
  return std::unique_ptr<BlobReader>(
      std::make_unique<FdReader>(std::move(fd), (ref_.dir / rel).native()));
}

Result<std::vector<std::pair<Digest, Descriptor>>> OciLayoutImage::referrers() {
  std::string what = layout_what(ref_);
  std::vector<Digest> subjects{top_.digest};
  if (top_.is_index()) {
    for (const auto& c : top_.index().manifests) subjects.push_back(c.digest);
  }
  KISTE_ASSIGN_OR_RETURN(auto idx, read_index_json(root_.get(), what));
  std::vector<std::pair<Digest, Descriptor>> out;
  for (const auto& d : idx.second) {
    if (!ref_name(d).empty() || !media_type::is_manifest(d.media_type) || d.digest == top_.digest) {
      continue;
    }
    KISTE_ASSIGN_OR_RETURN(ManifestBlob m,
                           detail::read_manifest_in(root_.get(), blob_rel(d.digest), d, what));
    if (m.is_index() || !m.manifest().subject) continue;
    const Digest& subject = m.manifest().subject->digest;
    if (std::find(subjects.begin(), subjects.end(), subject) == subjects.end()) continue;
    Descriptor a = d;
    a.annotations.clear();
    a.artifact_type = m.manifest().artifact_type.empty() ? m.manifest().config.media_type
                                                         : m.manifest().artifact_type;
    out.emplace_back(subject, std::move(a));
  }
  return out;
}

Result<std::unique_ptr<OciLayoutImage>> OciLayoutImage::open_artifact(const Descriptor& d) {
  UniqueFd root(::dup(root_.get()));
  if (root.get() < 0) return std::unexpected(sys_error("dup", layout_what(ref_)));
  std::unique_ptr<OciLayoutImage> img(new OciLayoutImage(ref_, std::move(root)));
  KISTE_ASSIGN_OR_RETURN(img->top_, detail::read_manifest_in(img->root_.get(), blob_rel(d.digest),
                                                             d, layout_what(ref_)));
  return img;
}

std::string OciLayoutImage::describe() const {
  return fmt::format("oci:{}{}{}", ref_.dir.native(), ref_.name.empty() ? "" : ":", ref_.name);
}

// ---- OciLayoutSink ---------------------------------------------------------------------------

Result<std::unique_ptr<OciLayoutSink>> OciLayoutSink::create(const LayoutRef& ref) {
  std::string what = layout_what(ref);
  KISTE_ASSIGN_OR_RETURN(bool fresh, with_context(detail::missing_or_empty(ref.dir), what));
  if (fresh) {
    KISTE_TRY(sys::mkdir_all(ref.dir / "blobs" / "sha256"));
    KISTE_TRY(sys::write_file_atomic(
        ref.dir / "index.json",
        R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]})"));
    KISTE_TRY(sys::write_file_atomic(ref.dir / "oci-layout", kOciLayoutFile));
  } else {
    KISTE_ASSIGN_OR_RETURN(UniqueFd root, detail::open_directory(ref.dir));
    auto ok = check_layout_file(root.get(), what);
    if (!ok) {
      return failf(Errc::InvalidArgument, "{}: not empty and not an OCI image layout ({})", what,
                   ok.error().message);
    }
    KISTE_TRY(read_index_json(root.get(), what));
    KISTE_TRY(sys::mkdir_all(ref.dir / "blobs" / "sha256"));
  }
  return std::unique_ptr<OciLayoutSink>(new OciLayoutSink(ref));
}

Result<bool> OciLayoutSink::has_blob(const Descriptor& d) {
  auto st = sys::lstat(ref_.dir / blob_rel(d.digest));
  return st && S_ISREG(st->st_mode) && st->st_size == d.size;
}

Status OciLayoutSink::put_blob(const Descriptor& d, BlobReader& r) {
  KISTE_TRY(sys::mkdir_all(ref_.dir / "blobs" / std::string(d.digest.algorithm_name())));
  // Temp files in the layout's root, as skopeo does: same filesystem, never under blobs/.
  KISTE_ASSIGN_OR_RETURN(BlobWriter w, BlobWriter::create(ref_.dir, ref_.dir / "blobs"));
  KISTE_TRY(pump(r, w));
  KISTE_TRY(w.commit(d.digest, d.size));
  return {};
}

Status OciLayoutSink::put_manifest(const ManifestBlob& m, bool top) {
  std::string what = layout_what(ref_);
  Descriptor d = m.descriptor();
  if (!has_blob(d).value_or(false)) {
    StringReader r(m.bytes);
    KISTE_TRY(put_blob(d, r));
  }
  if (!top) return {};
  KISTE_ASSIGN_OR_RETURN(UniqueFd root, detail::open_directory(ref_.dir));
  // Two writers adding names at once must not lose one: index.json is read, edited and replaced
  // under a lock on the layout directory itself (no lock file is left in the layout).
  if (::flock(root.get(), LOCK_EX) != 0) return std::unexpected(sys_error("lock", what));
  KISTE_ASSIGN_OR_RETURN(auto idx, read_index_json(root.get(), what));
  json list = json::array();
  for (const auto& e : idx.first["manifests"]) {
    // Keep everything else as written; the name moves to the new image (like skopeo).
    const std::string key(kRefNameAnnotation);
    auto a = e.find("annotations");
    bool named = a != e.end() && a->is_object() && a->contains(key);
    bool same_name = !ref_.name.empty() && named && (*a)[key] == ref_.name;
    bool same_unnamed = ref_.name.empty() && !named && e.is_object() &&
                        e.value("digest", std::string()) == d.digest.str();
    if (!same_name && !same_unnamed) list.push_back(e);
  }
  if (!ref_.name.empty()) d.annotations[std::string(kRefNameAnnotation)] = ref_.name;
  if (!m.is_index() && !m.manifest().artifact_type.empty()) {
    d.artifact_type = m.manifest().artifact_type;  // as oras lists an artifact
  }
  list.push_back(detail::descriptor_to_json(d));
  json doc = std::move(idx.first);
  doc["manifests"] = std::move(list);
  if (!doc.contains("schemaVersion")) doc["schemaVersion"] = 2;
  return sys::write_file_atomic(ref_.dir / "index.json", doc.dump());
}

std::string OciLayoutSink::describe() const {
  return fmt::format("oci:{}{}{}", ref_.dir.native(), ref_.name.empty() ? "" : ":", ref_.name);
}

}  // namespace kiste::image
