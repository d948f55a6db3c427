#pragma once
// Published ports (`-p [IP:][HOSTPORT:]CTRPORT[/tcp|udp]`) through a userland proxy that kiste runs
// for as long as the container does (in the foreground kiste, later in the monitor of a
// detached container). Why a proxy and not DNAT by default: DNAT'ed packets take the forward
// path, so the host's `input` firewall never sees them and every published port is a hole in
// it (moby#22054, podman#15623); a proxy's socket is an ordinary listening socket that the
// host's input rules govern, it serves 127.0.0.1 without route_localnet, and it fails
// "address in use" before the container starts. Bytes move with splice(2) through a pipe, so
// they are not copied through user space. UDP datagrams are relayed per client (a socket
// connected to the container for each client address, at most 256, the oldest dropped first).
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <kiste/base/error.hpp>
#include <kiste/base/unique_fd.hpp>
#include <kiste/network/address.hpp>

namespace kiste::network {

struct PortMapping {
  std::optional<IpAddress> host_ip;  // empty: every address (0.0.0.0)
  uint16_t host_port = 0;            // 0: a free one, chosen when the port is bound
  uint16_t container_port = 0;
  std::string protocol = "tcp";
  [[nodiscard]] std::string to_string() const;  // "127.0.0.1:18080->8080/tcp"
};

// docker's -p grammar; the error names the value and what is wrong.
[[nodiscard]] Result<PortMapping> parse_publish(std::string_view spec);

// Binds (and for TCP listens on) the mapping's host address and port, as a published port is
// bound; host port 0 is filled in with the port the kernel chose. The error names the mapping
// and says when the port is already in use.
[[nodiscard]] Result<UniqueFd> bind_host_port(PortMapping& m);

class PortProxy {
 public:
  // Binds every host port now (an error names the port in use) and forwards connections to
  // `container` at the mapping's port until destroyed. Host port 0 is filled in.
  [[nodiscard]] static Result<PortProxy> start(std::vector<PortMapping> mappings,
                                               const IpAddress& container);
  PortProxy(PortProxy&&) noexcept;
  PortProxy& operator=(PortProxy&&) noexcept;
  ~PortProxy();  // stops listening and closes every forwarded connection

  [[nodiscard]] const std::vector<PortMapping>& mappings() const;

 private:
  struct Impl;
  explicit PortProxy(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// `--publish-bypass-firewall`: the IPv4 mappings also as DNAT in kiste's table, as docker and
// podman publish every port: packets from elsewhere to a local address and the host port are
// sent to the container in prerouting, so they take the forward path and the host's `input`
// firewall never sees them (that is what the flag asks for; a host `forward` drop still
// applies). The proxy stays for the host's own connections (127.0.0.1). Two maps hold the
// elements, keyed by protocol and port (`pub4`) or by host address, protocol and port
// (`pub4_addr`), valued by the container's address and port: adding and removing a container's
// ports is elements in one transaction. An element for the same key left by a SIGKILLed kiste
// is replaced (the proxy could bind the port, so its owner is gone); remove_published_nat_to()
// drops what such a kiste left for an address that is leased again.
class PublishedNat {
 public:
  // `container6`: the container's IPv6 address on an --ipv6 network; then ports published on
  // every address or on an IPv6 one are DNATed for IPv6 too (`pub6`, `pub6_addr`).
  [[nodiscard]] static Result<PublishedNat> add(const std::vector<PortMapping>& mappings,
                                                const IpAddress& container,
                                                const std::optional<IpAddress>& container6 = std::nullopt);
  PublishedNat(PublishedNat&& o) noexcept : elements_(std::move(o.elements_)) { o.elements_.clear(); }
  PublishedNat& operator=(PublishedNat&&) = delete;
  ~PublishedNat();  // removes the elements

  // The elements, in nft's syntax ("pub4 { tcp . 18080 : 203.0.113.2 . 8080 }"), for tests.
  [[nodiscard]] const std::vector<std::string>& elements() const { return elements_; }

 private:
  explicit PublishedNat(std::vector<std::string> elements) : elements_(std::move(elements)) {}
  std::vector<std::string> elements_;
};

// Removes every published-port DNAT element whose target is `container` (nothing when kiste's
// table or its maps do not exist).
[[nodiscard]] Status remove_published_nat_to(const IpAddress& container);

}  // namespace kiste::network
