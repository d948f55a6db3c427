#pragma once
// Bridge networks as docker and podman users know them: a network is a Linux bridge with a
// subnet, the gateway address on the bridge, NAT (masquerade) to the outside unless --internal,
// and one veth per container. Configs live in `<root>/networks/<name>.json`; the bridge and the
// nft rules are (re)made on first use after a boot, as podman does, so nothing needs a daemon.
//
// nftables layout (one table, `inet kiste`, never any other): two base chains (nat postrouting,
// filter forward) whose only rules dispatch through verdict maps keyed by subnet and bridge name
// to one chain per network. Adding or removing a network is adding or removing map elements and
// its chains in one transaction: no rule handles to track, nothing half-applied.
#include <sys/types.h>

#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <kiste/base/error.hpp>
#include <kiste/network/address.hpp>
#include <kiste/network/leases.hpp>

namespace kiste::network {

struct NetworkConfig {
  std::string name;
  std::string id;  // 64 hex, as docker's network ids
  std::string driver = "bridge";
  std::string bridge;  // the interface: kiste0 for the default network, kiste1 … for others
  Subnet subnet;
  IpAddress gateway;
  std::optional<Subnet> subnet6;
  std::optional<IpAddress> gateway6;
  bool internal = false;  // no route out: no masquerade, forwarding off the bridge dropped
  int64_t created = 0;    // unix seconds
};

struct CreateOptions {
  std::string name;
  std::optional<std::string> subnet;   // --subnet; default: the first free /24 from 10.88.0.0
  std::optional<std::string> gateway;  // --gateway; default: the subnet's first address
  bool internal = false;
  bool ipv6 = false;                    // --ipv6: also an IPv6 subnet (ULA /64 unless given)
  std::optional<std::string> subnet6;   // --subnet with an IPv6 value
};

// What a container got on one network; detach() undoes it.
struct Attachment {
  std::string network;
  std::string host_veth;
  IpAddress address;
  std::optional<IpAddress> address6;
  std::string mac;  // empty: the kernel's random one
};

// Whether a lease's container (or the kiste starting it) still runs: its lease is kept.
using AliveFn = LeaseAliveFn;

class Networks {
 public:
  static constexpr std::string_view kDefault = "kiste";  // docker's "bridge", podman's "podman"

  explicit Networks(std::filesystem::path dir) : dir_(std::move(dir)) {}

  // Validates and records a network; the bridge is made on first use. Refuses a name in use, a
  // subnet overlapping another network's or a route of this host's.
  [[nodiscard]] Result<NetworkConfig> create(const CreateOptions& opts);
  // The network by name or id prefix; the default network is recorded on first use.
  [[nodiscard]] Result<NetworkConfig> get(std::string_view name_or_id);
  [[nodiscard]] Result<std::vector<NetworkConfig>> list() const;
  // Removes the bridge, the nft chains, the lease file and the record. Refuses while a running
  // container holds an address on it (names it); leases of dead containers do not count.
  [[nodiscard]] Status remove(std::string_view name_or_id, const AliveFn& alive);

  // Makes the bridge, its addresses and its nft rules if they are missing (after a boot, or the
  // first use); cheap when they exist.
  [[nodiscard]] Status realise(const NetworkConfig& net);

  // Connects the network namespace `netns_fd` to `net`: leases an address (`wanted`: --ip), a
  // veth pair with `eth<index>` inside, addresses and (for the first network) the default route.
  // On error nothing it made is left (no veth, no lease); a host veth name taken already is an
  // error (AlreadyExists), and that link is left alone.
  [[nodiscard]] Result<Attachment> attach(const NetworkConfig& net, std::string_view container_id,
                                          int netns_fd, unsigned index,
                                          const std::optional<IpAddress>& wanted,
                                          const AliveFn& alive);
  // Removes the host end of the veth (gone already when the namespace died) and the lease.
  // `index` is attach's.
  [[nodiscard]] Status detach(const NetworkConfig& net, std::string_view container_id, unsigned index = 0);

  [[nodiscard]] LeaseFile leases(const NetworkConfig& net) const;
  [[nodiscard]] const std::filesystem::path& dir() const { return dir_; }

 private:
  [[nodiscard]] Result<NetworkConfig> create_locked(const CreateOptions& opts);
  std::filesystem::path dir_;
};

// The IPv6 address that goes with the IPv4 lease `v4` on an --ipv6 network (the same host
// number, so one lease serves both); none on an IPv4-only network.
[[nodiscard]] std::optional<IpAddress> ipv6_address_of(const NetworkConfig& net, const IpAddress& v4);

// The host end of a container's veth on a network: "kv" + 11 hex of the container id + index.
[[nodiscard]] std::string host_veth_name(std::string_view container_id, unsigned index);

// How many networks one container can be on (eth0 … eth9).
inline constexpr unsigned kMaxVeths = 10;

// The lowest index from `first` whose host veth name is not taken in this namespace: attach
// refuses a taken name (it may be another's) rather than deleting it, so callers probe first.
[[nodiscard]] Result<unsigned> free_veth_index(std::string_view container_id, unsigned first);

// docker's network-name rule: [a-zA-Z0-9][a-zA-Z0-9_.-]*, at most 64 bytes.
[[nodiscard]] Status check_network_name(std::string_view name);

}  // namespace kiste::network

namespace kiste::network {

// /etc/resolv.conf for a container on a bridge: the host's, without nameservers on loopback
// (127.0.0.53 of systemd-resolved is the host's own, unreachable from the container), taking the
// upstream servers from systemd-resolved's file instead when that is what the host uses, as
// docker does. With no usable nameserver left the file has none: kiste never invents a public
// resolver the user did not configure.
[[nodiscard]] std::string container_resolv_conf(std::string_view host_resolv_conf,
                                                std::string_view resolved_upstream);

}  // namespace kiste::network
