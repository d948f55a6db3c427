#pragma once
// Splitting the small comma/colon grammars kiste reads (`--mount k=v,…`, `-v SRC:DST:OPTS`,
// `--cache-to type=registry,ref=…`, /proc/self/mountinfo super options, /etc/passwd lines,
// ignore files). One helper, so every caller agrees on empty fields and on what `=` means.
// No quoting: none of these grammars has it as kiste reads them (docker's CSV quoting of a
// `--mount` field is not supported; a value holding the separator cannot be written).
#include <string_view>
#include <vector>

namespace kiste {

// Every field, empty ones included: split("a,,b", ',') is {"a", "", "b"}, split("", ',') is
// {""}. The views point into `s`.
[[nodiscard]] std::vector<std::string_view> split(std::string_view s, char sep);

// One `key[=value]` field. `value` is everything after the first `=` (it may hold more `=`);
// `has_value` tells `k` from `k=`.
struct KeyValue {
  std::string_view key;
  std::string_view value;
  bool has_value = false;
  [[nodiscard]] bool empty() const { return key.empty() && !has_value; }  // an empty field
};

// `k=v,flag,k2=` → {k, v}, {flag}, {k2, "", has_value}. Every field, empty ones included, so a
// caller decides whether `a,,b` is an error (`--mount`) or tolerated (Containerfile flags).
[[nodiscard]] std::vector<KeyValue> split_kv(std::string_view s, char sep = ',');

}  // namespace kiste
