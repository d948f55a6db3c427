#pragma once
// What a container's /etc/resolv.conf and /etc/hosts say beyond the defaults: `run --dns`,
// `--dns-search`, `--dns-option` and `--add-host`, checked and applied as pure functions.
#include <string>
#include <string_view>
#include <vector>

#include <kiste/base/error.hpp>
#include <kiste/network/address.hpp>

namespace kiste::network {

struct DnsOverrides {
  std::vector<std::string> servers;  // --dns: each an IPv4 or IPv6 address
  std::vector<std::string> search;   // --dns-search: domains ("." alone: no search line)
  std::vector<std::string> options;  // --dns-option: resolv.conf options, e.g. ndots:2
};

// One-line errors for a value resolv.conf cannot carry (not an address, whitespace or a newline
// that would add lines of its own, more than resolv.conf's 6 search domains).
[[nodiscard]] Status check_dns_overrides(const DnsOverrides& o);

// `base` (a resolv.conf) with each kind given replacing all lines of that kind, as docker does:
// --dns replaces every nameserver, --dns-search the search/domain lines, --dns-option the
// options lines. Kinds not given keep base's lines.
[[nodiscard]] std::string apply_dns_overrides(std::string_view base, const DnsOverrides& o);

// /etc/resolv.conf on a network with container DNS: `nameserver 127.0.0.11` (the responder in
// the container's namespace) instead of `resolv`'s nameservers, which become its upstream.
[[nodiscard]] std::string embedded_dns_resolv_conf(std::string_view resolv);

// A name the container DNS can answer: labels of [A-Za-z0-9_-], at most 63 bytes each.
[[nodiscard]] bool dns_name(std::string_view name);

// `--add-host NAME:IP` (or NAME=IP) as an /etc/hosts line "IP\tNAME"; the IP `host-gateway`
// is `gateway` (the bridge's address: the host as the container reaches it).
[[nodiscard]] Result<std::string> add_host_line(std::string_view spec, const IpAddress& gateway);

}  // namespace kiste::network
