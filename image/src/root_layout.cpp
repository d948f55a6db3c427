#include <kiste/image/root_layout.hpp>

#include <algorithm>
#include <array>

namespace kiste::image {

namespace {
constexpr std::array<std::string_view, 9> kPrivate = {
    RootLayout::kSnapshots, RootLayout::kContainers,     RootLayout::kVolumes,
    RootLayout::kTmp,       RootLayout::kCache,          RootLayout::kRunning,
    RootLayout::kUserns,    RootLayout::kContainerNames, RootLayout::kNetworks};
}  // namespace

std::span<const std::string_view> RootLayout::private_dirs() { return kPrivate; }

bool RootLayout::is_kiste_entry(std::string_view n) {
  return n == kBlobs || n == "index.json" || n == "index.json.lock" ||
         n == "gc.lock" || std::ranges::find(kPrivate, n) != kPrivate.end();
}

}  // namespace kiste::image
