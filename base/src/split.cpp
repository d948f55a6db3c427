#include <kiste/base/split.hpp>

namespace kiste {

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  while (true) {
    const size_t p = s.find(sep);
    out.push_back(s.substr(0, p));
    if (p == std::string_view::npos) break;
    s.remove_prefix(p + 1);
  }
  return out;
}

std::vector<KeyValue> split_kv(std::string_view s, char sep) {
  std::vector<KeyValue> out;
  for (std::string_view field : split(s, sep)) {
    const size_t eq = field.find('=');
    if (eq == std::string_view::npos) {
      out.push_back({.key = field});
    } else {
      out.push_back({.key = field.substr(0, eq), .value = field.substr(eq + 1), .has_value = true});
    }
  }
  return out;
}

}  // namespace kiste
