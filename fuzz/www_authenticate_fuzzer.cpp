// WWW-Authenticate challenges (registry-client, RFC 7235), as a registry's 401 carries them.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include <kiste/registry/auth.hpp>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view header(reinterpret_cast<const char*>(data), size);
  auto cs = kiste::registry::parse_www_authenticate(header);
  if (!cs) return 0;
  if (cs->empty()) std::abort();  // "empty" is an error, never an empty list
  for (const auto& c : *cs) {
    if (c.scheme.empty()) std::abort();
    (void)c.param("realm");
    (void)c.param("service");
    (void)c.param("scope");
  }
  return 0;
}
