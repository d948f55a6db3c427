#include "listing.hpp"

#include <fnmatch.h>

#include <cmath>
#include <ctime>

#include <fmt/format.h>

namespace kiste::cli {

std::string human_duration(int64_t s) {
  if (s < 1) return "Less than a second";
  if (s == 1) return "1 second";
  if (s < 60) return fmt::format("{} seconds", s);
  const int64_t minutes = s / 60;
  if (minutes == 1) return "About a minute";
  if (minutes < 60) return fmt::format("{} minutes", minutes);
  const auto hours = static_cast<int64_t>(std::lround(static_cast<double>(s) / 3600.0));
  if (hours == 1) return "About an hour";
  if (hours < 48) return fmt::format("{} hours", hours);
  if (hours < 24 * 7 * 2) return fmt::format("{} days", hours / 24);
  if (hours < 24 * 30 * 2) return fmt::format("{} weeks", hours / 24 / 7);
  if (hours < 24 * 365 * 2) return fmt::format("{} months", hours / 24 / 30);
  return fmt::format("{} years", s / 3600 / 24 / 365);
}

std::string created_column(std::string_view rfc, int64_t now) {
  if (rfc.empty()) return "N/A";
  std::tm tm{};
  const std::string text(rfc);
  if (::strptime(text.c_str(), "%Y-%m-%dT%H:%M:%S", &tm) == nullptr) return text;
  const int64_t t = ::timegm(&tm);
  if (t == 0) return "1970-01-01 (reproducible)";
  if (t > now) return "In the future";
  return human_duration(now - t) + " ago";
}

std::optional<std::string> add_filter(ImageSelection& sel, std::string_view f) {
  const size_t eq = f.find('=');
  if (eq == std::string_view::npos) {
    return fmt::format("--filter {}: expected KEY=VALUE (dangling=true|false, reference=PATTERN)", f);
  }
  const std::string_view key = f.substr(0, eq), value = f.substr(eq + 1);
  if (key == "dangling") {
    if (value != "true" && value != "false") {
      return fmt::format("--filter {}: dangling takes true or false", f);
    }
    sel.dangling = value == "true";
    return std::nullopt;
  }
  if (key == "reference") {
    sel.references.emplace_back(value);
    return std::nullopt;
  }
  return fmt::format("--filter {}: kiste filters by dangling= and reference= only", f);
}

namespace {

// NAME, NAME:TAG, or a glob of them, against one image (docker: familiar names, and the tag
// must match when the pattern has one).
bool name_matches(const std::string& pattern, const ListedImage& img, bool glob) {
  if (img.repository == "<none>") return false;
  std::string repo = pattern, tag;
  if (size_t colon = pattern.rfind(':');
      colon != std::string::npos && pattern.find('/', colon) == std::string::npos) {
    repo = pattern.substr(0, colon);
    tag = pattern.substr(colon + 1);
  }
  for (std::string_view prefix : {"docker.io/library/", "docker.io/"}) {
    if (repo.starts_with(prefix)) repo = repo.substr(prefix.size());
  }
  auto match = [glob](const std::string& p, const std::string& s) {
    return glob ? ::fnmatch(p.c_str(), s.c_str(), FNM_PATHNAME) == 0 : p == s;
  };
  return match(repo, img.repository) && (tag.empty() || match(tag, img.tag));
}

}  // namespace

bool selected(const ImageSelection& sel, const ListedImage& img) {
  if (sel.name && !name_matches(*sel.name, img, false)) return false;
  if (sel.dangling && (img.tag == "<none>") != *sel.dangling) return false;
  if (!sel.references.empty()) {
    bool any = false;
    for (const auto& r : sel.references) any = any || name_matches(r, img, true);
    if (!any) return false;
  }
  return true;
}

}  // namespace kiste::cli
