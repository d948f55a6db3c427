#pragma once
// The container DNS of user networks (docker's embedded DNS idea): a UDP socket bound to
// 127.0.0.11:53 inside the container's network namespace, served by a thread of the process
// that holds the container's start (`kiste run`, or a detached container's monitor), so it lives
// exactly as long as the container and needs no daemon. Names of containers on the same network
// (and their aliases) are answered from the network's lease file; everything else is forwarded
// to the upstream servers, and with none usable the answer is SERVFAIL.
//
// The message parser faces whatever a container sends: every read is bounds-checked, names are
// at most 255 bytes of labels of at most 63, and compression pointers must point strictly
// backwards (so a pointer chain ends after at most as many jumps as the message has bytes).
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include <kiste/base/error.hpp>
#include <kiste/base/unique_fd.hpp>
#include <kiste/network/address.hpp>

namespace kiste::network {

inline constexpr uint16_t kDnsTypeA = 1;
inline constexpr uint16_t kDnsTypeAaaa = 28;
inline constexpr uint16_t kDnsClassIn = 1;
inline constexpr uint8_t kDnsNoError = 0;
inline constexpr uint8_t kDnsServFail = 2;
inline constexpr uint8_t kDnsNxDomain = 3;

struct DnsQuestion {
  uint16_t id = 0;
  std::string name;  // lower case, no trailing dot ("" is the root)
  uint16_t type = 0;
  uint16_t klass = 0;
  size_t end = 0;  // the offset just past the question: header + question are echoed back
};

// The one question of a standard query; an error for anything else (a response, another
// opcode, no or several questions, a malformed or truncated name).
[[nodiscard]] Result<DnsQuestion> parse_dns_query(std::span<const uint8_t> msg);

// The response to `query` (whose question `q` is): its header and question echoed with QR, RA
// and `rcode` set, and one A/AAAA record per address of the question's family (TTL 600).
[[nodiscard]] std::vector<uint8_t> dns_response(std::span<const uint8_t> query, const DnsQuestion& q,
                                                uint8_t rcode, std::span<const IpAddress> addresses);

// The addresses a local name has (empty: not a local name).
using DnsLookupFn = std::function<std::vector<IpAddress>(std::string_view name)>;

// The nameserver addresses of a resolv.conf text, in order.
[[nodiscard]] std::vector<IpAddress> resolv_conf_nameservers(std::string_view text);

class DnsResponder {
 public:
  // Binds 127.0.0.11:53 (UDP) inside the network namespace `netns_fd` (from a short-lived
  // thread that enters it; the socket stays there) and serves it until destroyed.
  [[nodiscard]] static Result<std::unique_ptr<DnsResponder>> start(int netns_fd, DnsLookupFn lookup,
                                                                   std::vector<IpAddress> upstream);
  // Serves an already bound socket (tests bind one on loopback, and their upstream on
  // `upstream_port`).
  [[nodiscard]] static Result<std::unique_ptr<DnsResponder>> serve(UniqueFd socket, DnsLookupFn lookup,
                                                                   std::vector<IpAddress> upstream,
                                                                   uint16_t upstream_port = 53);
  ~DnsResponder();
  DnsResponder(const DnsResponder&) = delete;
  DnsResponder& operator=(const DnsResponder&) = delete;

  // The answer to one query message (empty: drop it). Forwards synchronously.
  [[nodiscard]] std::vector<uint8_t> answer(std::span<const uint8_t> query) const;

 private:
  DnsResponder(UniqueFd socket, UniqueFd stop, DnsLookupFn lookup, std::vector<IpAddress> upstream,
               uint16_t upstream_port)
      : socket_(std::move(socket)), stop_(std::move(stop)), lookup_(std::move(lookup)),
        upstream_(std::move(upstream)), upstream_port_(upstream_port) {}
  void loop();
  [[nodiscard]] std::vector<uint8_t> forward(std::span<const uint8_t> query, uint16_t id) const;

  UniqueFd socket_;
  UniqueFd stop_;  // an eventfd: written by the destructor
  DnsLookupFn lookup_;
  std::vector<IpAddress> upstream_;
  uint16_t upstream_port_;
  std::thread thread_;
};

}  // namespace kiste::network
