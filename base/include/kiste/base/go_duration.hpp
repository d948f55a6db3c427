#pragma once
// Go's time.ParseDuration as docker's flags and Containerfile options take it: decimal numbers
// with units, summed ("30s", "1m30s", "1.5h", "500ms", "0"); ns, us/µs, ms, s, m, h. No sign.
// What does not fit int64 nanoseconds is an error (never an overflow).
#include <cstdint>
#include <string_view>

#include <kiste/base/error.hpp>

namespace kiste {

[[nodiscard]] Result<int64_t> parse_go_duration(std::string_view s);  // nanoseconds

}  // namespace kiste
