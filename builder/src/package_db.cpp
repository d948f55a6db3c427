#include <kiste/builder/package_db.hpp>

#include <algorithm>
#include <functional>

namespace kiste::builder {

namespace {

// A field value fit for an SBOM: not empty, bounded, printable ASCII without spaces.
bool clean_value(std::string_view v) {
  if (v.empty() || v.size() > kMaxPackageField) return false;
  return std::all_of(v.begin(), v.end(), [](char c) { return c > ' ' && c < 0x7f; });
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

// Calls `line` for each line and `end` after each stanza (a blank line or the end of the text).
Status for_each_stanza(std::string_view text, const std::function<void(std::string_view)>& line,
                       const std::function<Status()>& end) {
  if (text.size() > kMaxPackageDbBytes) {
    return failf(Errc::Corrupt, "package database is {} bytes (at most {})", text.size(),
                 kMaxPackageDbBytes);
  }
  bool open = false;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view l = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    if (trim(l).empty()) {
      if (open) KISTE_TRY(end());
      open = false;
      continue;
    }
    open = true;
    line(l);
  }
  if (open) KISTE_TRY(end());
  return {};
}

Status add(PackageList& out, Package p) {
  if (!clean_value(p.name) || !clean_value(p.version) ||
      (!p.architecture.empty() && !clean_value(p.architecture)) ||
      (!p.source.empty() && !clean_value(p.source)) || p.license.size() > kMaxPackageField) {
    ++out.skipped;
    return {};
  }
  if (out.packages.size() >= kMaxPackages) {
    return failf(Errc::Corrupt, "package database lists more than {} packages", kMaxPackages);
  }
  out.packages.push_back(std::move(p));
  return {};
}

}  // namespace

Result<PackageList> parse_dpkg_status(std::string_view text) {
  PackageList out;
  Package cur{.kind = Package::Kind::Deb};
  bool installed = false;
  auto line = [&](std::string_view l) {
    if (l.front() == ' ' || l.front() == '\t') return;  // continuation of a long field
    size_t colon = l.find(':');
    if (colon == std::string_view::npos) return;
    std::string_view key = l.substr(0, colon);
    std::string_view value = trim(l.substr(colon + 1));
    auto keep = [&](std::string& field) {
      // A repeated field is a malformed stanza: poison it so it is skipped.
      field = field.empty() ? std::string(value.substr(0, kMaxPackageField + 1)) : std::string(" ");
    };
    if (key == "Package") keep(cur.name);
    else if (key == "Version") keep(cur.version);
    else if (key == "Architecture") keep(cur.architecture);
    else if (key == "Source") {
      keep(cur.source);
      // "Source: name (version)" names the source's own version: keep the name.
      if (size_t sp = cur.source.find(' '); sp != std::string::npos && sp > 0) cur.source.resize(sp);
    } else if (key == "Status") {
      installed = value.ends_with(" installed");
    }
  };
  auto end = [&]() -> Status {
    Package p = std::move(cur);
    cur = Package{.kind = Package::Kind::Deb};
    bool was_installed = installed;
    installed = false;
    if (!was_installed) {
      if (p.name.empty() || !clean_value(p.name)) ++out.skipped;  // garbage, not a removed package
      return {};
    }
    return add(out, std::move(p));
  };
  KISTE_TRY(for_each_stanza(text, line, end));
  return out;
}

Result<PackageList> parse_apk_installed(std::string_view text) {
  PackageList out;
  Package cur{.kind = Package::Kind::Apk};
  auto line = [&](std::string_view l) {
    if (l.size() < 2 || l[1] != ':') return;
    std::string value(trim(l.substr(2)).substr(0, kMaxPackageField + 1));
    auto keep = [&](std::string& field) { field = field.empty() ? std::move(value) : " "; };
    switch (l[0]) {
      case 'P': keep(cur.name); break;
      case 'V': keep(cur.version); break;
      case 'A': keep(cur.architecture); break;
      case 'o': keep(cur.source); break;
      case 'L': keep(cur.license); break;
      default: break;  // files (F:, R:, Z:, a:, M:) and the rest are not listed
    }
  };
  auto end = [&]() -> Status {
    Package p = std::move(cur);
    cur = Package{.kind = Package::Kind::Apk};
    return add(out, std::move(p));
  };
  KISTE_TRY(for_each_stanza(text, line, end));
  return out;
}

}  // namespace kiste::builder
