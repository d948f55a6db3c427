#include <kiste/base/go_duration.hpp>

#include <cctype>
#include <cstdint>

#include <kiste/base/decimal.hpp>

namespace kiste {

Result<int64_t> parse_go_duration(std::string_view s) {
  if (s.empty()) return fail(Errc::InvalidArgument, "empty duration");
  if (s == "0") return 0;
  int64_t total = 0;
  size_t i = 0;
  while (i < s.size()) {
    size_t start = i;
    while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) != 0 || s[i] == '.')) ++i;
    if (start == i) return failf(Errc::InvalidArgument, "invalid duration `{}`", s);
    const auto parsed = parse_decimal(s.substr(start, i - start));
    if (!parsed) return failf(Errc::InvalidArgument, "invalid duration `{}`", s);
    const double v = *parsed;
    size_t ustart = i;
    while (i < s.size() && std::isalpha(static_cast<unsigned char>(s[i])) != 0) ++i;
    std::string_view u = s.substr(ustart, i - ustart);
    double mul = 0;
    if (u == "ns") mul = 1;
    else if (u == "us" || u == "µs") mul = 1e3;
    else if (u == "ms") mul = 1e6;
    else if (u == "s") mul = 1e9;
    else if (u == "m") mul = 60e9;
    else if (u == "h") mul = 3600e9;
    else return failf(Errc::InvalidArgument, "invalid duration `{}`: unknown unit `{}`", s, u);
    // As Go's time.ParseDuration: what does not fit int64 nanoseconds is an error (converting
    // or adding it would be undefined behaviour).
    const double ns = v * mul;
    if (!(ns < 0x1p63) || total > INT64_MAX - static_cast<int64_t>(ns)) {
      return failf(Errc::InvalidArgument, "invalid duration `{}`: out of range", s);
    }
    total += static_cast<int64_t>(ns);
  }
  return total;
}

}  // namespace kiste
