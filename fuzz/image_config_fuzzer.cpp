// Image configs (image/image_config.hpp), as pulled from a registry or read from an archive:
// parse, then what the builder does with a base image's config: serialise (unknown fields kept)
// and read back, platform, chain ids.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include <kiste/image/image_config.hpp>

namespace im = kiste::image;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto c = im::ImageConfig::parse(bytes);
  if (!c) return 0;
  (void)c->platform().str();
  (void)im::chain_ids(c->diff_ids);
  std::string out = c->serialize();
  auto again = im::ImageConfig::parse(out);
  if (!again) std::abort();  // kiste must read back what it writes
  if (again->config != c->config || again->diff_ids != c->diff_ids ||
      again->history != c->history || again->architecture != c->architecture ||
      again->os != c->os) {
    std::abort();
  }
  if (again->serialize() != out) std::abort();  // serialisation is a fixed point
  return 0;
}
