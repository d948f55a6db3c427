// The insecure-registry readers (registry-client/src/registries_conf.cpp): registries.conf (the
// TOML subset) and docker's daemon.json, then lookups in what they produced. There is no
// policy.json reader in kiste yet.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include <kiste/registry/registries_conf.hpp>

using kiste::registry::InsecureRegistries;

namespace {

void lookups(const InsecureRegistries& r, std::string_view input) {
  for (std::string_view host : {"localhost", "localhost:5000", "10.1.2.3:443", "a.example.com",
                                "example.com", "[::1]:5000", "registry"}) {
    (void)r.contains(host);
  }
  // Entries looked up against themselves and against the input.
  for (const auto& e : r.entries()) (void)r.contains(e);
  (void)r.contains(input.substr(0, 300));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  InsecureRegistries all;
  if (auto r = InsecureRegistries::from_registries_conf(text, "registries.conf")) {
    lookups(*r, text);
    all.merge(*r);
  }
  if (auto r = InsecureRegistries::from_daemon_json(text, "daemon.json")) {
    lookups(*r, text);
    all.merge(*r);
  }
  lookups(all, text);
  return 0;
}
