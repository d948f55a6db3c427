#include <kiste/image/platform.hpp>

#include <sys/utsname.h>

#include <kiste/base/split.hpp>

namespace kiste::image {

Result<Platform> Platform::parse(std::string_view s) {
  const std::vector<std::string_view> parts = split(s, '/');
  for (const auto& p : parts) {
    if (p.empty() || p.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789._-") !=
                         std::string::npos) {
      return failf(Errc::InvalidArgument, "invalid platform {}: expected os/arch[/variant]",
                   quote(s));
    }
  }
  Platform p;
  if (parts.size() == 1) {
    p.architecture = parts[0];
  } else if (parts.size() <= 3) {
    p.os = parts[0];
    p.architecture = parts[1];
    if (parts.size() == 3) p.variant = parts[2];
  } else {
    return failf(Errc::InvalidArgument, "invalid platform {}: expected os/arch[/variant]",
                 quote(s));
  }
  return p.normalized();
}

Platform Platform::normalized() const {
  Platform p = *this;
  if (p.architecture == "x86_64" || p.architecture == "x86-64") p.architecture = "amd64";
  if (p.architecture == "aarch64") p.architecture = "arm64";
  if (p.architecture == "armhf") {
    p.architecture = "arm";
    p.variant = "v7";
  }
  if (p.architecture == "armel") {
    p.architecture = "arm";
    p.variant = "v6";
  }
  if (p.architecture == "arm64" && p.variant == "8") p.variant = "v8";
  if (p.architecture == "arm" && p.variant.size() == 1) p.variant = "v" + p.variant;
  return p;
}

Platform Platform::host() {
  struct utsname u {};
  ::uname(&u);
  Platform p;
  p.os = "linux";
  std::string_view m = u.machine;
  if (m == "armv7l") {
    p.architecture = "arm";
    p.variant = "v7";
  } else if (m == "armv6l") {
    p.architecture = "arm";
    p.variant = "v6";
  } else {
    p.architecture = std::string(m);
  }
  return p.normalized();
}

std::string Platform::str() const {
  std::string out = os + "/" + architecture;
  if (!variant.empty()) out += "/" + variant;
  return out;
}

bool Platform::matches(const Platform& have_raw) const {
  Platform want = normalized();
  Platform have = have_raw.normalized();
  if (want.os != have.os || want.architecture != have.architecture) return false;
  if (want.variant.empty()) return true;
  // arm64 images without a variant are v8.
  std::string hv = have.variant;
  if (hv.empty() && have.architecture == "arm64") hv = "v8";
  return want.variant == hv;
}

}  // namespace kiste::image
