#pragma once
// The package databases an SBOM lists: dpkg's status file (/var/lib/dpkg/status) and apk's
// installed database (/lib/apk/db/installed). Both come from the image, so both are hostile:
// the parsers are bounded (input size, package count, field length), never fail on garbage
// (a stanza that is not a well-formed package is skipped and counted), and never throw.
#include <string>
#include <string_view>
#include <vector>

#include <kiste/base/error.hpp>

namespace kiste::builder {

inline constexpr size_t kMaxPackageDbBytes = 64 << 20;
inline constexpr size_t kMaxPackages = 100'000;
inline constexpr size_t kMaxPackageField = 256;  // name, version, architecture, origin

struct Package {
  enum class Kind { Deb, Apk };
  Kind kind = Kind::Deb;
  std::string name;
  std::string version;
  std::string architecture;
  std::string source;  // dpkg Source: / apk origin (o:), without a version; may be empty
  std::string license;  // apk L: (dpkg has none in its status file)
};

struct PackageList {
  std::vector<Package> packages;  // in file order
  int skipped = 0;                // stanzas that were not a well-formed installed package
};

// Only packages whose Status is "… installed" are listed (removed-but-configured ones are not).
// More than kMaxPackageDbBytes or kMaxPackages is an error (Corrupt), naming the limit.
[[nodiscard]] Result<PackageList> parse_dpkg_status(std::string_view text);
[[nodiscard]] Result<PackageList> parse_apk_installed(std::string_view text);

}  // namespace kiste::builder
