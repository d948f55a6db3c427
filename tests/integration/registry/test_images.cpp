#include "test_images.hpp"

#include <gtest/gtest.h>

#include <kiste/image/media_type.hpp>
#include <random>

namespace kiste::testing {

namespace mt = image::media_type;

TestImage make_test_image(const image::Store& store, const std::string& name,
                          const std::vector<size_t>& layer_sizes, unsigned seed,
                          const image::Platform& platform) {
  TestImage t{.name = image::Reference::parse(name).value()};
  std::mt19937_64 rng(seed);
  std::vector<std::string> diff_ids;
  image::Manifest m;
  m.media_type = std::string(mt::kOciManifest);
  for (size_t size : layer_sizes) {
    auto w = store.blob_writer();
    EXPECT_TRUE(w) << w.error().to_string();
    std::string chunk(1 << 20, '\0');
    size_t left = size;
    while (left > 0) {
      size_t n = std::min(left, chunk.size());
      for (size_t i = 0; i + 8 <= n; i += 8) {
        uint64_t v = rng();
        std::memcpy(chunk.data() + i, &v, 8);
      }
      for (size_t i = n & ~size_t(7); i < n; ++i) chunk[i] = char(rng());
      EXPECT_TRUE(w->write(std::string_view(chunk.data(), n)));
      left -= n;
    }
    auto c = w->commit();
    EXPECT_TRUE(c) << c.error().to_string();
    image::Descriptor d{
        .media_type = std::string(mt::kOciLayerGzip), .digest = c->digest, .size = c->size};
    m.layers.push_back(d);
    diff_ids.push_back("\"" + image::Digest::of(c->digest.str() + "-diff").str() + "\"");
  }
  std::string ids;
  for (const auto& d : diff_ids) ids += (ids.empty() ? "" : ",") + d;
  std::string config =
      "{\"architecture\":\"" + platform.architecture + "\",\"os\":\"" + platform.os + "\"" +
      (platform.variant.empty() ? "" : ",\"variant\":\"" + platform.variant + "\"") +
      ",\"config\":{},\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[" + ids +
      "]},\"created\":\"2024-01-01T00:00:00Z\",\"seed\":" + std::to_string(seed) + "}";
  auto cd = store.put_blob(config, mt::kOciConfig);
  EXPECT_TRUE(cd) << cd.error().to_string();
  m.config = *cd;
  t.blobs.push_back(*cd);
  for (const auto& l : m.layers) t.blobs.push_back(l);
  auto md = store.put_blob(image::serialize_manifest(m), mt::kOciManifest);
  EXPECT_TRUE(md) << md.error().to_string();
  t.manifest = *md;
  EXPECT_TRUE(store.set_name(t.name, t.manifest));
  return t;
}

image::Descriptor make_test_index(
    const image::Store& store, const std::string& name,
    const std::vector<std::pair<image::Descriptor, image::Platform>>& children) {
  image::Index idx;
  idx.media_type = std::string(mt::kOciIndex);
  for (const auto& [d, p] : children) {
    image::Descriptor c = d;
    c.platform = p;
    idx.manifests.push_back(c);
  }
  auto d = store.put_blob(image::serialize_index(idx), mt::kOciIndex);
  EXPECT_TRUE(d) << d.error().to_string();
  EXPECT_TRUE(store.set_name(image::Reference::parse(name).value(), *d));
  return *d;
}

}  // namespace kiste::testing
