#pragma once
// Links, addresses and routes through rtnetlink, with libmnl (Debian's libmnl0, loaded on first
// use) doing the message framing and attribute alignment. Why libmnl and not libnl-route: kiste
// sends a handful of fixed requests and reads only acks, which is libmnl's size; libnl's caches
// and object model would be most of the code loaded for none of the use. Why not iproute2's `ip`:
// a fork+exec per step costs more than the whole attach, and its errors are text to parse.
//
// A Netlink talks to one network namespace: the caller's, or one given by an fd (the socket is
// made inside it, and a netlink socket stays in the namespace it was made in).
#include <memory>
#include <string>
#include <string_view>

#include <kiste/base/error.hpp>
#include <kiste/network/address.hpp>

namespace kiste::network {

class Netlink {
 public:
  [[nodiscard]] static Result<Netlink> open();                  // the caller's namespace
  [[nodiscard]] static Result<Netlink> open_in(int netns_fd);   // the namespace of the fd
  Netlink(Netlink&&) noexcept;
  Netlink& operator=(Netlink&&) noexcept;
  ~Netlink();

  [[nodiscard]] Status add_bridge(std::string_view name);
  // A veth pair `name` (here) <-> `peer`; the peer is created straight inside the namespace of
  // `peer_netns_fd` (-1: here), so its name may be `eth0` without clashing with the host's.
  [[nodiscard]] Status add_veth(std::string_view name, std::string_view peer, int peer_netns_fd);
  [[nodiscard]] Status set_master(std::string_view name, std::string_view master);
  [[nodiscard]] Status set_up(std::string_view name);
  [[nodiscard]] Status set_mtu(std::string_view name, unsigned mtu);
  // Removes the link; a link that does not exist is not an error (cleanup runs again after a
  // crash). Removing one end of a veth removes both.
  [[nodiscard]] Status delete_link(std::string_view name);
  [[nodiscard]] Result<bool> link_exists(std::string_view name);
  [[nodiscard]] Status add_address(std::string_view name, const IpAddress& address, unsigned prefix);
  [[nodiscard]] Status add_default_route(const IpAddress& gateway);

 private:
  struct Impl;
  explicit Netlink(std::unique_ptr<Impl> impl);
  [[nodiscard]] Result<int> index_of(std::string_view name);
  std::unique_ptr<Impl> impl_;
};

}  // namespace kiste::network
