#pragma once
// A container's place on a bridge network for one `kiste run`: the address is leased before the
// container is made (so /etc/hosts can name it), the veth is connected by the runtime's
// network_ready hook, and the destructor gives both back.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <kiste/builder/builder.hpp>
#include <kiste/network/bridge.hpp>

#include "globals.hpp"

namespace kiste::cli {

class RunNetwork {
 public:
  [[nodiscard]] static Result<RunNetwork> prepare(const Globals& g, std::string_view name,
                                                  std::string_view container_id,
                                                  const std::string& ip,
                                                  const std::string& hostname,
                                                  const std::vector<std::string>& names);
  RunNetwork(RunNetwork&& o) noexcept
      : nets_(std::move(o.nets_)), net_(std::move(o.net_)), id_(std::move(o.id_)),
        address_(o.address_), extra_hosts_(std::move(o.extra_hosts_)), alive_(std::move(o.alive_)),
        leased_(std::exchange(o.leased_, false)) {}
  RunNetwork& operator=(RunNetwork&&) = delete;
  ~RunNetwork();

  [[nodiscard]] Status connect(int netns_fd);
  // Gives the veth and the lease back now (the destructor then has nothing left to do); a
  // failure is a warning, as in the destructor.
  void disconnect();
  [[nodiscard]] const network::IpAddress& address() const { return address_; }
  // Its IPv6 address on an --ipv6 network.
  [[nodiscard]] std::optional<network::IpAddress> address6() const {
    return network::ipv6_address_of(net_, address_);
  }
  // The bridge's address: the host as the container reaches it (`--add-host NAME:host-gateway`).
  [[nodiscard]] const network::IpAddress& gateway() const { return net_.gateway; }
  [[nodiscard]] const std::vector<std::string>& extra_hosts() const { return extra_hosts_; }
  [[nodiscard]] static std::string resolv_conf();
  // User networks have container DNS (docker's rule: the default network has not).
  [[nodiscard]] bool has_dns() const { return net_.name != network::Networks::kDefault; }
  // The addresses of the network's containers named (or aliased) `name`, or with that short id.
  [[nodiscard]] std::vector<network::IpAddress> lookup(std::string_view name) const;

 private:
  RunNetwork(std::filesystem::path dir, std::string id) : nets_(std::move(dir)), id_(std::move(id)) {}
  network::Networks nets_;
  network::NetworkConfig net_;
  std::string id_;
  network::IpAddress address_;
  std::vector<std::string> extra_hosts_;
  network::AliveFn alive_;
  bool leased_ = false;
  bool attached_ = false;  // connect() made the veth: detach removes it
};

// Present once --publish-bypass-firewall was used with this root: leasing an address then also
// removes a dead kiste's DNAT to it.
[[nodiscard]] std::filesystem::path published_nat_marker(const Globals& g);

// `kiste build`'s RUN steps on the default network: each step a RunNetwork of its own, as a
// `kiste run --network kiste` container gets (leased, connected, given back when the step ends).
[[nodiscard]] std::unique_ptr<builder::StepNetworks> build_step_networks(const Globals& g);

void register_network_commands(CLI::App& app, Globals& g);

}  // namespace kiste::cli
