#include <kiste/network/dns_config.hpp>

#include <algorithm>

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace kiste::network {

namespace {

// A word resolv.conf can carry: printable, no blank, no comment sign (which would end the line
// early) and no newline (which would start a line of its own).
bool resolv_word(std::string_view w) {
  return !w.empty() && w.size() <= 253 && std::ranges::all_of(w, [](char c) {
    return c > ' ' && c < 0x7f && c != '#' && c != ';';
  });
}

bool host_name(std::string_view n) {
  return !n.empty() && n.size() <= 253 && std::ranges::all_of(n, [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '.' || c == '_';
  });
}

// resolv.conf's keyword of `line` ("" for blank lines and comments).
std::string_view keyword(std::string_view line) {
  size_t end = line.find_first_of(" \t");
  return line.substr(0, end);
}

}  // namespace

Status check_dns_overrides(const DnsOverrides& o) {
  for (const std::string& s : o.servers) {
    if (auto a = IpAddress::parse(s); !a) return failf(Errc::InvalidArgument, "--dns: {}", a.error().message);
  }
  for (const std::string& s : o.search) {
    if (!resolv_word(s)) return failf(Errc::InvalidArgument, "--dns-search {}: not a domain", quote(s));
  }
  if (o.search.size() > 6) {
    return fail(Errc::InvalidArgument, "--dns-search: at most 6 domains (resolv.conf's limit)");
  }
  for (const std::string& s : o.options) {
    if (!resolv_word(s)) {
      return failf(Errc::InvalidArgument, "--dns-option {}: not a resolv.conf option", quote(s));
    }
  }
  return {};
}

std::string apply_dns_overrides(std::string_view base, const DnsOverrides& o) {
  std::string out;
  size_t pos = 0;
  while (pos < base.size()) {
    size_t nl = base.find('\n', pos);
    std::string_view line = base.substr(pos, (nl == base.npos ? base.size() : nl) - pos);
    pos = nl == base.npos ? base.size() : nl + 1;
    std::string_view k = keyword(line);
    if (!o.servers.empty() && k == "nameserver") continue;
    if (!o.search.empty() && (k == "search" || k == "domain")) continue;
    if (!o.options.empty() && k == "options") continue;
    out += line;
    out += '\n';
  }
  for (const std::string& s : o.servers) out += fmt::format("nameserver {}\n", s);
  // A lone "." (docker's way to say "no search domains") drops base's lines and adds none.
  if (!o.search.empty() && !(o.search.size() == 1 && o.search.front() == ".")) {
    out += fmt::format("search {}\n", fmt::join(o.search, " "));
  }
  if (!o.options.empty()) out += fmt::format("options {}\n", fmt::join(o.options, " "));
  return out;
}

std::string embedded_dns_resolv_conf(std::string_view resolv) {
  std::string out = "nameserver 127.0.0.11\n";
  size_t pos = 0;
  while (pos < resolv.size()) {
    size_t nl = resolv.find('\n', pos);
    std::string_view line = resolv.substr(pos, (nl == resolv.npos ? resolv.size() : nl) - pos);
    pos = nl == resolv.npos ? resolv.size() : nl + 1;
    if (keyword(line) == "nameserver") continue;
    out += line;
    out += '\n';
  }
  return out;
}

bool dns_name(std::string_view name) {
  if (!host_name(name) || name.front() == '.' || name.back() == '.') return false;
  size_t label = 0;
  for (char c : name) {
    label = c == '.' ? 0 : label + 1;
    if (label > 63) return false;
  }
  return name.find("..") == name.npos;
}

Result<std::string> add_host_line(std::string_view spec, const IpAddress& gateway) {
  // The name never holds ':' or '=', an IPv6 address does: split at the first one.
  size_t sep = spec.find_first_of(":=");
  if (sep == spec.npos) {
    return failf(Errc::InvalidArgument, "--add-host {}: give NAME:IP", quote(spec));
  }
  std::string_view name = spec.substr(0, sep);
  std::string_view ip = spec.substr(sep + 1);
  if (!host_name(name)) {
    return failf(Errc::InvalidArgument, "--add-host {}: {} is not a host name", quote(spec), quote(name));
  }
  if (ip == "host-gateway") return fmt::format("{}\t{}", gateway.to_string(), name);
  // docker accepts "[2001:db8::1]" too.
  if (ip.size() > 2 && ip.front() == '[' && ip.back() == ']') ip = ip.substr(1, ip.size() - 2);
  auto a = IpAddress::parse(ip);
  if (!a) return failf(Errc::InvalidArgument, "--add-host {}: {}", quote(spec), a.error().message);
  return fmt::format("{}\t{}", a->to_string(), name);
}

}  // namespace kiste::network
