// --publish-bypass-firewall: published ports as DNAT map elements in kiste's table (publish.hpp).
#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include <kiste/base/log.hpp>
#include <kiste/network/nft.hpp>
#include <kiste/network/publish.hpp>

namespace kiste::network {

namespace {

using json = nlohmann::json;

// The maps and the prerouting chain that looks them up. Idempotent (maps and chain are `add`ed,
// the chain flushed and refilled in the same transaction), so parallel runs and tables made
// before this existed end up with exactly these two rules; elements live in the maps and survive.
std::string nat_ruleset() {
  const std::string_view t = kNftTable;
  return fmt::format(
      "add map {0} pub4 {{ type inet_proto . inet_service : ipv4_addr . inet_service; }}\n"
      "add map {0} pub4_addr {{ type ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service; }}\n"
      "add map {0} pub6 {{ type inet_proto . inet_service : ipv6_addr . inet_service; }}\n"
      "add map {0} pub6_addr {{ type ipv6_addr . inet_proto . inet_service : ipv6_addr . inet_service; }}\n"
      "add chain {0} prerouting {{ type nat hook prerouting priority dstnat; policy accept; }}\n"
      "flush chain {0} prerouting\n"
      "add rule {0} prerouting meta nfproto ipv4 fib daddr type local "
      "dnat ip to ip daddr . meta l4proto . th dport map @pub4_addr\n"
      "add rule {0} prerouting meta nfproto ipv4 fib daddr type local "
      "dnat ip to meta l4proto . th dport map @pub4\n"
      "add rule {0} prerouting meta nfproto ipv6 fib daddr type local "
      "dnat ip6 to ip6 daddr . meta l4proto . th dport map @pub6_addr\n"
      "add rule {0} prerouting meta nfproto ipv6 fib daddr type local "
      "dnat ip6 to meta l4proto . th dport map @pub6\n",
      t);
}

// One element of a JSON listing as nft's text: a concatenation's parts joined by " . ".
std::string element_text(const json& j) {
  if (j.is_object() && j.contains("concat")) {
    std::string out;
    for (const json& part : j["concat"]) {
      if (!out.empty()) out += " . ";
      out += element_text(part);
    }
    return out;
  }
  if (j.is_string()) return j.get<std::string>();
  return j.dump();
}

struct Element {
  std::string map, key, value;
};

// The elements of both maps; empty when the table or the maps are not there.
std::vector<Element> list_elements(Nft& nft) {
  std::vector<Element> out;
  for (const char* map : {"pub4", "pub4_addr", "pub6", "pub6_addr"}) {
    auto text = nft.query(fmt::format("list map {} {}", kNftTable, map), true);
    if (!text) continue;
    json doc = json::parse(*text, nullptr, false);
    if (doc.is_discarded() || !doc.contains("nftables")) continue;
    for (const json& item : doc["nftables"]) {
      if (!item.contains("map") || !item["map"].contains("elem")) continue;
      for (const json& e : item["map"]["elem"]) {
        if (e.is_array() && e.size() == 2) out.push_back({map, element_text(e[0]), element_text(e[1])});
      }
    }
  }
  return out;
}

std::string delete_command(const Element& e) {
  return fmt::format("delete element {} {} {{ {} }}\n", kNftTable, e.map, e.key);
}

}  // namespace

Result<PublishedNat> PublishedNat::add(const std::vector<PortMapping>& mappings, const IpAddress& container,
                                       const std::optional<IpAddress>& container6) {
  if (container.family() != Family::V4) {
    return fail(Errc::Unsupported, "--publish-bypass-firewall: the container has no IPv4 address");
  }
  std::vector<Element> wanted;
  for (const PortMapping& m : mappings) {
    const std::string key = fmt::format("{} . {}", m.protocol, m.host_port);
    // As the proxy binds: no host address is every IPv4 one; `::` every IPv6 one.
    const std::string host = m.host_ip ? m.host_ip->to_string() : "";
    const bool any = host.empty() || host == "::";
    const bool v6 = m.host_ip && m.host_ip->family() == Family::V6;
    const bool v4 = !v6;
    if (v4) {
      const std::string value = fmt::format("{} . {}", container.to_string(), m.container_port);
      wanted.push_back(any ? Element{"pub4", key, value} : Element{"pub4_addr", host + " . " + key, value});
    }
    if (v6 && container6) {  // an IPv4-only network: its IPv6 host addresses get the proxy only
      const std::string value = fmt::format("{} . {}", container6->to_string(), m.container_port);
      wanted.push_back(any ? Element{"pub6", key, value} : Element{"pub6_addr", host + " . " + key, value});
    }
  }
  if (wanted.empty()) return PublishedNat({});
  KISTE_ASSIGN_OR_RETURN(Nft nft, Nft::open());
  KISTE_TRY(nft.run(nat_ruleset(), "set up published-port DNAT"));
  std::string tx;
  for (const Element& old : list_elements(nft)) {
    for (const Element& w : wanted) {
      if (old.map == w.map && old.key == w.key) tx += delete_command(old);  // a dead owner's
    }
  }
  std::vector<std::string> elements;
  for (const Element& w : wanted) {
    elements.push_back(fmt::format("{} {{ {} : {} }}", w.map, w.key, w.value));
    tx += fmt::format("add element {} {}\n", kNftTable, elements.back());
  }
  KISTE_TRY(nft.run(tx, "publish ports past the host's firewall (DNAT)"));
  return PublishedNat(std::move(elements));
}

PublishedNat::~PublishedNat() {
  if (elements_.empty()) return;
  auto nft = Nft::open();
  if (!nft) return;
  std::string tx;
  for (const std::string& e : elements_) {
    const size_t colon = e.find(" : ");
    tx += fmt::format("delete element {} {} }}\n", kNftTable, e.substr(0, colon));
  }
  if (auto r = nft->run(tx, "remove published-port DNAT"); !r) log::warn("{}", r.error().to_string());
}

Status remove_published_nat_to(const IpAddress& container) {
  KISTE_ASSIGN_OR_RETURN(Nft nft, Nft::open());
  const std::string prefix = container.to_string() + " . ";
  std::string tx;
  for (const Element& e : list_elements(nft)) {
    if (e.value.starts_with(prefix)) tx += delete_command(e);
  }
  if (tx.empty()) return {};
  return nft.run(tx, fmt::format("remove stale published-port DNAT to {}", container.to_string()));
}

}  // namespace kiste::network
