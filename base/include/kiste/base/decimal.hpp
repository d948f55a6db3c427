#pragma once
// Decimal numbers as docker writes them in sizes, durations and --cpus: digits with at most one
// point ("12", "1.5", ".5"); no sign, exponent, inf or nan. Used instead of
// std::from_chars<double>, which brings libm (fesetround) into every kiste process.
#include <optional>
#include <string_view>

namespace kiste {

[[nodiscard]] inline std::optional<double> parse_decimal(std::string_view s) {
  double v = 0, scale = 1;
  bool point = false, digit = false;
  for (char c : s) {
    if (c == '.' && !point) {
      point = true;
    } else if (c >= '0' && c <= '9') {
      digit = true;
      if (point) {
        scale /= 10;
        v += (c - '0') * scale;
      } else {
        v = v * 10 + (c - '0');
      }
    } else {
      return std::nullopt;
    }
  }
  if (!digit) return std::nullopt;
  return v;
}

}  // namespace kiste
