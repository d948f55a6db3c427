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

}  // namespace kiste::network
