#include <kiste/base/suggest.hpp>

#include <algorithm>

namespace kiste {

size_t edit_distance(std::string_view a, std::string_view b) {
  const size_t n = a.size(), m = b.size();
  // Three rows of the (n+1)x(m+1) table: i-2, i-1, i.
  std::vector<size_t> prev2(m + 1), prev(m + 1), cur(m + 1);
  for (size_t j = 0; j <= m; ++j) prev[j] = j;
  for (size_t i = 1; i <= n; ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= m; ++j) {
      size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        cur[j] = std::min(cur[j], prev2[j - 2] + 1);
      }
    }
    std::swap(prev2, prev);
    std::swap(prev, cur);
  }
  return prev[m];
}

std::optional<std::string> closest_match(std::string_view word,
                                         const std::vector<std::string>& candidates) {
  // Leading dashes are shared by every flag: they are not part of what was mistyped.
  auto bare = [](std::string_view s) {
    while (s.starts_with('-')) s.remove_prefix(1);
    return s;
  };
  const std::string_view w = bare(word);
  if (w.empty()) return std::nullopt;
  const std::string* best = nullptr;
  // Short words are near too much: two edits turn `foo` into `root`.
  size_t best_d = w.size() <= 4 ? 2 : 3;
  for (const auto& c : candidates) {
    size_t d = edit_distance(w, bare(c));
    if (d < best_d && d < w.size()) {
      best = &c;
      best_d = d;
    }
  }
  if (best != nullptr) return *best;
  if (w.size() < 3) return std::nullopt;
  for (const auto& c : candidates) {
    if (!bare(c).starts_with(w)) continue;
    if (best != nullptr) return std::nullopt;  // several: no guess
    best = &c;
  }
  if (best != nullptr) return *best;
  return std::nullopt;
}

}  // namespace kiste
