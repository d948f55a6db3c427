// DNS queries as a container sends them to its network's responder (network/dns.hpp): parse,
// and what parses answers within bounds (the response is the echoed question plus records).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

#include <kiste/network/dns.hpp>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::span<const uint8_t> m(data, size);
  auto q = kiste::network::parse_dns_query(m);
  if (!q) return 0;
  if (q->end > size || q->name.size() > 255) std::abort();
  static const kiste::network::IpAddress addrs[] = {*kiste::network::IpAddress::parse("10.89.0.5"),
                                                    *kiste::network::IpAddress::parse("fd00::5")};
  auto r = kiste::network::dns_response(m, *q, kiste::network::kDnsNoError, addrs);
  if (r.size() < q->end || r.size() > q->end + 28) std::abort();
  return 0;
}
