#pragma once
// An overlayfs upper directory → an OCI layer, with the determinism of layer_writer.hpp.
// Overlay whiteouts (0:0 char devices) become `.wh.NAME`, opaque directories
// (trusted.overlay.opaque=y, or user.overlay.opaque with userxattr) get `.wh..wh..opq`, overlay's
// own xattrs are never copied into the layer, and metadata-only copy-ups (metacopy=on) take their
// data from the lower layers.

#include <filesystem>
#include <vector>

#include <kiste/base/error.hpp>
#include <kiste/image/blob_io.hpp>
#include <kiste/image/layer_writer.hpp>

namespace kiste::image {

struct DiffOptions {
  PackOptions pack;
  // The mount's lowerdirs, topmost first: only needed for metacopy copy-ups.
  std::vector<std::filesystem::path> lowerdirs;
};

[[nodiscard]] Result<LayerResult> diff_overlay_upper(const std::filesystem::path& upper_dir,
                                                     ByteSink& out, const DiffOptions& options);

}  // namespace kiste::image
