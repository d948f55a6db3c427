// dir:DIR — containers/image's directory format (skopeo copy … dir:DIR): `version`,
// manifest.json (the top manifest or index), <hex>.manifest.json (children of an index), and one
// file per blob named by the hex of its digest.
#include <fcntl.h>

#include <kiste/base/sys.hpp>
#include <kiste/image/dir_image.hpp>

#include "local_dir.hpp"

namespace kiste::image {

namespace fs = std::filesystem;

namespace {

constexpr std::string_view kVersion = "Directory Transport Version: 1.1\n";
constexpr std::string_view kVersionPrefix = "Directory Transport Version: 1.";

std::string dir_what(const fs::path& dir) {
  return fmt::format("image directory {}", quote(dir.native()));
}

// containers/image names sha256 blobs by their hex alone; other algorithms "<alg>-<hex>".
std::string dir_blob_name(const Digest& d) {
  if (d.algorithm() == DigestAlgorithm::Sha256) return std::string(d.hex());
  return fmt::format("{}-{}", d.algorithm_name(), d.hex());
}

bool all_hex(std::string_view s, size_t n) {
  return s.size() == n && s.find_first_not_of("0123456789abcdef") == std::string_view::npos;
}

// The names containers/image's dir format uses (version aside).
bool is_image_file(std::string_view n) {
  if (n == "manifest.json") return true;
  if (n.starts_with("signature-")) {
    n.remove_prefix(10);
    return !n.empty() && n.find_first_not_of("0123456789") == std::string_view::npos;
  }
  if (n.ends_with(".manifest.json")) n.remove_suffix(14);
  if (n.starts_with("sha512-")) return all_hex(n.substr(7), 128);
  return all_hex(n, 64);
}

}  // namespace

Result<std::unique_ptr<DirImage>> DirImage::open(const fs::path& dir) {
  std::string what = dir_what(dir);
  auto root = detail::open_directory(dir);
  if (!root) return failf(root.error().code, "{}: {}", what, root.error().message);
  KISTE_ASSIGN_OR_RETURN(std::string version,
                         detail::read_small_in(root->get(), "version", 4096, what));
  if (!version.starts_with(kVersionPrefix)) {
    return failf(Errc::Unsupported, "{}: unknown `version` {}", what, quote(version.substr(0, 64)));
  }
  KISTE_ASSIGN_OR_RETURN(std::string bytes, detail::read_small_in(root->get(), "manifest.json",
                                                                  kMaxManifestBytes, what));
  std::unique_ptr<DirImage> img(new DirImage(dir, std::move(*root)));
  KISTE_ASSIGN_OR_RETURN(
      img->top_, with_context(parse_manifest(std::move(bytes)), what + ": `manifest.json`"));
  return img;
}

Result<ManifestBlob> DirImage::fetch_manifest(const Descriptor& d) {
  return detail::read_manifest_in(root_.get(), std::string(d.digest.hex()) + ".manifest.json", d,
                                  dir_what(dir_));
}

Result<std::unique_ptr<BlobReader>> DirImage::open_blob(const Descriptor& d) {
  std::string rel = dir_blob_name(d.digest);
  KISTE_ASSIGN_OR_RETURN(UniqueFd fd, detail::open_regular_in(root_.get(), rel, dir_what(dir_)));
  return std::unique_ptr<BlobReader>(
      std::make_unique<FdReader>(std::move(fd), (dir_ / rel).native()));
}

std::string DirImage::describe() const { return "dir:" + dir_.native(); }

Result<std::unique_ptr<DirSink>> DirSink::create(const fs::path& dir) {
  std::string what = dir_what(dir);
  KISTE_ASSIGN_OR_RETURN(bool fresh, with_context(detail::missing_or_empty(dir), what));
  if (!fresh) {
    KISTE_ASSIGN_OR_RETURN(UniqueFd dfd, detail::open_directory(dir));
    auto v = detail::read_small_in(dfd.get(), "version", 4096, what);
    if (!v || !v->starts_with(kVersionPrefix)) {
      return failf(Errc::InvalidArgument,
                   "{}: not empty and not an image directory (no `version` file)", what);
    }
    // Like skopeo, the image written before is replaced, not mixed with the new one: its
    // manifests, blobs and signatures go (only regular files with those names).
    KISTE_ASSIGN_OR_RETURN(UniqueFd fd, detail::open_directory(dir));
    KISTE_ASSIGN_OR_RETURN(auto names, sys::list_dir(fd.get(), dir.native()));
    for (const auto& n : names) {
      if (!is_image_file(n)) continue;
      auto st = sys::fstatat(fd.get(), n, AT_SYMLINK_NOFOLLOW);
      if (st && S_ISREG(st->st_mode)) KISTE_TRY(sys::unlinkat(fd.get(), n, 0));
    }
  }
  KISTE_TRY(sys::mkdir_all(dir));
  KISTE_TRY(sys::write_file_atomic(dir / "version", kVersion));
  return std::unique_ptr<DirSink>(new DirSink(dir));
}

Result<bool> DirSink::has_blob(const Descriptor& d) {
  auto st = sys::lstat(dir_ / dir_blob_name(d.digest));
  return st && S_ISREG(st->st_mode) && st->st_size == d.size;
}

Status DirSink::put_blob(const Descriptor& d, BlobReader& r) {
  return detail::write_verified(dir_, dir_blob_name(d.digest), d, r);
}

Status DirSink::put_manifest(const ManifestBlob& m, bool top) {
  std::string name =
      top ? std::string("manifest.json") : std::string(m.digest.hex()) + ".manifest.json";
  return sys::write_file_atomic(dir_ / name, m.bytes);
}

std::string DirSink::describe() const { return "dir:" + dir_.native(); }

}  // namespace kiste::image
