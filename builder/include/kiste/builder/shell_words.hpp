#pragma once
// Docker's word processing for instruction arguments: quote removal, escapes and variable
// substitution ($VAR, ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:+alt}, ${VAR+alt},
// ${VAR:?msg}, ${VAR?msg}). Applied at plan time with the ARG/ENV values in scope.
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <kiste/base/error.hpp>

namespace kiste::builder {

using VarMap = std::map<std::string, std::string, std::less<>>;

// One word: quotes removed, variables substituted, never split.
[[nodiscard]] Result<std::string> expand_word(std::string_view word, const VarMap& vars,
                                              char escape = '\\');

// A text of several words: split on unquoted whitespace (also inside unquoted expansions).
[[nodiscard]] Result<std::vector<std::string>> expand_words(std::string_view text,
                                                            const VarMap& vars,
                                                            char escape = '\\');

// Only variables substituted (no quote handling): exec-form elements and heredoc bodies.
[[nodiscard]] Result<std::string> expand_vars_only(std::string_view text, const VarMap& vars);

// Splits on unquoted whitespace keeping quotes and escapes in the words (Docker's
// parseWords): `a "b c" d\ e` → [a, "b c", d\ e].
[[nodiscard]] std::vector<std::string> split_raw_words(std::string_view text, char escape = '\\');

}  // namespace kiste::builder
