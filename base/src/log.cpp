#include <kiste/base/log.hpp>

#include <unistd.h>

#include <atomic>
#include <string>

namespace kiste::log {
namespace {
std::atomic<Level> g_level{Level::Warn};
}

void set_level(Level l) { g_level.store(l, std::memory_order_relaxed); }
Level level() { return g_level.load(std::memory_order_relaxed); }

void write(Level l, std::string_view line) {
  static constexpr const char* kNames[] = {"debug", "info", "warning"};
  std::string out = fmt::format("kiste: {}: {}\n", kNames[static_cast<int>(l)], line);
  (void)!::write(STDERR_FILENO, out.data(), out.size());
}

}  // namespace kiste::log
