// Image references (image/reference.hpp): parse with and without the defaults, and check that
// what parses prints back to something that parses to the same reference.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include <kiste/image/reference.hpp>

using kiste::image::Reference;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view s(reinterpret_cast<const char*>(data), size);
  (void)kiste::image::is_valid_tag(s);
  (void)kiste::image::is_valid_repository(s);
  for (bool default_tag : {true, false}) {
    auto r = Reference::parse(s, {.default_tag = default_tag});
    if (!r) continue;
    (void)r->familiar();
    (void)r->identifier();
    (void)r->without_digest();
    // The normalised form is a fixed point.
    auto again = Reference::parse(r->str(), {.default_tag = default_tag});
    if (!again || *again != *r) std::abort();
  }
  auto local = Reference::parse(s, {.default_registry = "localhost:5000"});
  (void)local;
  return 0;
}
