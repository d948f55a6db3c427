#pragma once
// Diagnostics on stderr, off unless the CLI raises the level. Results still go to callers: a log
// line is never the only report of a failure.
#include <fmt/format.h>

namespace kiste::log {

enum class Level { Debug = 0, Info = 1, Warn = 2, Off = 3 };
void set_level(Level level);
[[nodiscard]] Level level();
void write(Level level, std::string_view line);

template <class... Args>
void debug(fmt::format_string<Args...> f, Args&&... args) {
  if (level() <= Level::Debug) write(Level::Debug, fmt::format(f, std::forward<Args>(args)...));
}
template <class... Args>
void info(fmt::format_string<Args...> f, Args&&... args) {
  if (level() <= Level::Info) write(Level::Info, fmt::format(f, std::forward<Args>(args)...));
}
template <class... Args>
void warn(fmt::format_string<Args...> f, Args&&... args) {
  if (level() <= Level::Warn) write(Level::Warn, fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace kiste::log
