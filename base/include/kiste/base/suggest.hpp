#pragma once
// "did you mean …?" for typed names (commands, flags, Containerfile keywords): the candidate a
// user most likely meant, as git and cobra suggest them.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kiste {

// Edit distance counting an adjacent swap as one edit (optimal string alignment), so the
// typical typos (`biuld`, `--tga`) are one edit away.
[[nodiscard]] size_t edit_distance(std::string_view a, std::string_view b);

// The candidate closest to `word`: the nearest within 2 edits (1 for words of up to 4 letters,
// and always fewer edits than `word` has letters, so `-x` suggests nothing), else the only candidate that starts with `word` (of at
// least 3 characters). The first of equally near candidates wins. Nothing when nothing is close.
[[nodiscard]] std::optional<std::string> closest_match(std::string_view word,
                                                       const std::vector<std::string>& candidates);

}  // namespace kiste
