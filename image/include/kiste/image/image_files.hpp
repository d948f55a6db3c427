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

}  // namespace kiste::image
