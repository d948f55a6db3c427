// What an SBOM and a rebuild read from hostile images and registries: dpkg's status file, apk's
// installed database and a kiste provenance statement. The first byte picks the parser.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include <kiste/builder/attestation.hpp>
#include <kiste/builder/package_db.hpp>

namespace b = kiste::builder;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 3) {
    case 0:
    case 1: {
      auto l = data[0] % 3 == 0 ? b::parse_dpkg_status(text) : b::parse_apk_installed(text);
      if (!l) return 0;
      if (l->packages.size() > b::kMaxPackages) std::abort();
      for (const auto& p : l->packages) {
        if (p.name.empty() || p.name.size() > b::kMaxPackageField || p.version.empty() ||
            p.version.size() > b::kMaxPackageField) {
          std::abort();  // only well-formed packages are listed
        }
      }
      return 0;
    }
    default: {
      auto p = b::parse_provenance(text);
      if (!p) return 0;
      // What parses must round-trip through the writer.
      auto again = b::parse_provenance(b::provenance_json("x", kiste::image::Digest::of(""), *p));
      if (!again || again->build_args != p->build_args || again->base_images != p->base_images ||
          again->containerfile != p->containerfile) {
        std::abort();
      }
      return 0;
    }
  }
}
