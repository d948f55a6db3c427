#pragma once
// How `kiste images` shows and selects images: docker's humanised ages, reproducible dates said
// as such, and docker's NAME / --filter selection. Unit-tested (cli/tests/listing_test.cpp).
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kiste::cli {

// Docker's (go-units) HumanDuration: "Less than a second", "About a minute", "2 minutes", …
[[nodiscard]] std::string human_duration(int64_t seconds);

// The CREATED column for an RFC 3339 time: "2 minutes ago", or for the epoch (a reproducible
// build's default SOURCE_DATE_EPOCH=0) "1970-01-01 (reproducible)"; "N/A" when unknown.
[[nodiscard]] std::string created_column(std::string_view rfc3339, int64_t now);

// One `images` row as the selection sees it.
struct ListedImage {
  std::string repository;  // familiar ("busybox", "localhost:5000/app"), "<none>" if unnamed
  std::string tag;         // "<none>" if untagged
};

struct ImageSelection {
  std::optional<std::string> name;       // `images NAME[:TAG]`
  std::optional<bool> dangling;          // --filter dangling=true|false
  std::vector<std::string> references;   // --filter reference=PATTERN (globs, any may match)
};

// Parses one --filter KEY=VALUE into `sel`; an unknown key or value is an error message.
[[nodiscard]] std::optional<std::string> add_filter(ImageSelection& sel, std::string_view filter);

[[nodiscard]] bool selected(const ImageSelection& sel, const ListedImage& img);

}  // namespace kiste::cli
