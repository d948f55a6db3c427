#pragma once
// Test images written straight into a store with the image API: random layer bytes (the copy path
// never looks inside layers), a config with one diff_id per layer, an OCI manifest.
#include <kiste/image/platform.hpp>
#include <kiste/image/store.hpp>
#include <string>
#include <vector>

namespace kiste::testing {

struct TestImage {
  image::Reference name;
  image::Descriptor manifest;
  std::vector<image::Descriptor> blobs;  // config first, then layers
};

// Adds an image named `name` with layers of the given sizes (bytes from `seed`).
TestImage make_test_image(const image::Store& store, const std::string& name,
                          const std::vector<size_t>& layer_sizes, unsigned seed,
                          const image::Platform& platform = image::Platform::host());

// Adds an OCI index over `children` (their platforms from the manifests' configs) named `name`.
[[nodiscard]] image::Descriptor make_test_index(
    const image::Store& store, const std::string& name,
    const std::vector<std::pair<image::Descriptor, image::Platform>>& children);

}  // namespace kiste::testing
