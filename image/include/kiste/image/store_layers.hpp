#pragma once
// An image's layers as directories: snapshots for overlay lowerdirs (kiste run, kiste build),
// and the flattened root filesystem of `kiste unpack`.
#include <filesystem>
#include <vector>

#include <kiste/image/copy.hpp>
#include <kiste/image/image_config.hpp>
#include <kiste/image/manifest.hpp>
#include <kiste/image/platform.hpp>
#include <kiste/image/store.hpp>

namespace kiste::image {

struct ImageLayers {
  ManifestBlob manifest;  // the platform manifest (an index is resolved for the platform)
  ImageConfig config;
  // One snapshot per layer, bottom (base) layer first.
  std::vector<std::filesystem::path> lower_dirs;
};

// Resolves an index for `platform`, reads the config, and makes sure every layer has a snapshot
// (unpacking missing ones, each checked against its diff_id).
// `progress` hears of each layer that is unpacked now (started, compressed bytes read, done).
[[nodiscard]] Result<ImageLayers> prepare_layers(const Store& store, const StoreEntry& entry,
                                                 const Platform& platform = Platform::host(),
                                                 CopyProgress* progress = nullptr);

// Writes the image's flattened root filesystem to `dir` (which must not exist or be empty). The
// tree is built beside `dir` and renamed into place, so `dir` appears only complete.
[[nodiscard]] Status unpack_image(const Store& store, const StoreEntry& entry,
                                  const std::filesystem::path& dir,
                                  const Platform& platform = Platform::host());

// Removes snapshots whose diff_id no named image uses and that no path in `in_use` lies in.
// Returns how many were removed.
[[nodiscard]] Result<int> prune_snapshots(const Store& store,
                                          const std::vector<std::filesystem::path>& in_use = {});

// What a layer takes unpacked, as `du -sb` counts its snapshot: measured when the snapshot is
// made, else read once from the layer's tar headers; recorded beside the snapshots either way
// (`kiste images` SIZE).
[[nodiscard]] Result<int64_t> unpacked_size(const Store& store, const Descriptor& layer,
                                            const Digest& diff_id);

}  // namespace kiste::image
