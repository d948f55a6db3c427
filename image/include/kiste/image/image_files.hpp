#pragma once
// Reading an image's files from its layer tars, without unpacking anything: the few files an
// SBOM needs (package databases) and the list of what a layer holds.
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <kiste/base/error.hpp>
#include <kiste/image/digest.hpp>
#include <kiste/image/blob_io.hpp>
#include <kiste/image/manifest.hpp>
#include <kiste/image/media_type.hpp>
#include <kiste/image/store.hpp>

namespace kiste::image {

// The regular files `paths` (relative, cleaned: "var/lib/dpkg/status") as the image's merged
// filesystem has them: upper layers win, a layer's whiteouts and opaque directories hide what
// lower layers had. Files not present are absent from the map; a file larger than `max_bytes`
// is an error naming it.
[[nodiscard]] Result<std::map<std::string, std::string>> read_image_files(
    const Store& store, const Manifest& image, const std::vector<std::string>& paths,
    size_t max_bytes);

// A regular file of a layer and the sha256 of its content.
struct LayerFile {
  std::string path;  // relative, cleaned
  Digest digest;
  int64_t size = 0;
};
// The regular files of one layer, in tar order; at most `max_files`, else an error.
[[nodiscard]] Result<std::vector<LayerFile>> layer_files(const Store& store, const Descriptor& layer,
                                                         size_t max_files);

// The first entry where two layer tars differ, compared in tar order: its path and what
// differs ("content sha256:… vs sha256:…", "mode 0644 vs 0755", "owner 0:0 vs 1000:1000",
// "mtime 0 vs 1700000000", "type", "link target", or an entry only one side has). nullopt when
// every entry is the same (the tars may still differ in padding or header encoding: then
// `first_entry_difference` says so).
struct EntryDifference {
  std::string path;  // "/app/app.txt"; "" when the difference is not in any entry
  std::string what;
};
[[nodiscard]] Result<std::optional<EntryDifference>> first_entry_difference(
    BlobReader& a, media_type::Compression ca, BlobReader& b, media_type::Compression cb);

}  // namespace kiste::image
