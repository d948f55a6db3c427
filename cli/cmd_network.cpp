// kiste network create|ls|inspect|rm|prune, and the bridge attach of `kiste run --network`.
// Wiring and output only: the networks themselves are network/ (bridge.hpp).
#include <fcntl.h>
#include <signal.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstdio>

#include <nlohmann/json.hpp>

#include <kiste/base/sys.hpp>
#include <kiste/image/image_config.hpp>
#include <kiste/image/root_layout.hpp>
#include <kiste/network/bridge.hpp>
#include <kiste/network/publish.hpp>
#include <kiste/network/dns_config.hpp>
#include <kiste/network/pasta.hpp>
#include <kiste/runtime/container_store.hpp>
#include <kiste/runtime/rootless.hpp>
#include <kiste/runtime/live_marker.hpp>

#include "globals.hpp"
#include "run_network.hpp"

namespace kiste::cli {

namespace {

network::Networks networks(const Globals& g) { return network::Networks(image::RootLayout(g.root).networks()); }

// A lease is in use while its container runs (its kiste holds the live marker) or while the
// kiste that took it, before the marker exists, is alive.
network::AliveFn alive_in(const Globals& g) {
  return [running = image::RootLayout(g.root).running()](const network::Lease& l) {
    return runtime::container_running(running, l.owner) ||
           sys::process_alive(l.pid);
  };
}

nlohmann::json inspect_json(network::Networks& nets, const network::NetworkConfig& n) {
  nlohmann::json ipam = nlohmann::json::array();
  ipam.push_back({{"Subnet", n.subnet.to_string()}, {"Gateway", n.gateway.to_string()}});
  if (n.subnet6) {
    ipam.push_back({{"Subnet", n.subnet6->to_string()}, {"Gateway", n.gateway6->to_string()}});
  }
  nlohmann::json containers = nlohmann::json::object();
  if (auto leases = nets.leases(n).list(); leases) {
    for (const network::Lease& l : *leases) {
      containers[l.owner] = {{"IPv4Address", fmt::format("{}/{}", l.address.to_string(),
                                                         n.subnet.prefix())}};
    }
  }
  return {{"Name", n.name},
          {"Id", n.id},
          {"Created", image::rfc3339(n.created)},
          {"Scope", "local"},
          {"Driver", n.driver},
          {"EnableIPv6", n.subnet6.has_value()},
          {"IPAM", {{"Driver", "default"}, {"Config", ipam}}},
          {"Internal", n.internal},
          {"Containers", containers},
          {"Options", {{"com.docker.network.bridge.name", n.bridge}}}};
}

}  // namespace

fs::path published_nat_marker(const Globals& g) {
  return image::RootLayout(g.root).networks() / "published-nat";
}

Result<RunNetwork> RunNetwork::prepare(const Globals& g, std::string_view name,
                                       std::string_view container_id, const std::string& ip,
                                       const std::string& hostname,
                                       const std::vector<std::string>& names) {
  RunNetwork r(image::RootLayout(g.root).networks(), std::string(container_id));
  KISTE_ASSIGN_OR_RETURN(r.net_, r.nets_.get(name));
  std::optional<network::IpAddress> wanted;
  if (!ip.empty()) {
    KISTE_ASSIGN_OR_RETURN(wanted, network::IpAddress::parse(ip));
  }
  KISTE_TRY(r.nets_.realise(r.net_));
  KISTE_ASSIGN_OR_RETURN(r.address_, r.nets_.leases(r.net_).acquire(container_id, wanted, alive_in(g), names));
  r.leased_ = true;
  // A SIGKILLed kiste's --publish-bypass-firewall DNAT to this address must not reach the new
  // container (the marker: bypass was used in this root once, so plain runs skip the query).
  if (fs::exists(published_nat_marker(g))) {
    KISTE_TRY(with_context(network::remove_published_nat_to(r.address_), "--publish-bypass-firewall"));
    if (auto v6 = r.address6()) {
      KISTE_TRY(with_context(network::remove_published_nat_to(*v6), "--publish-bypass-firewall"));
    }
  }
  r.alive_ = alive_in(g);
  r.extra_hosts_.push_back(fmt::format("{}\t{}", r.address_.to_string(), hostname));
  return r;
}

RunNetwork::~RunNetwork() { disconnect(); }

void RunNetwork::disconnect() {
  if (!std::exchange(leased_, false)) return;
  // Without a successful attach the veth name is not ours (attach removed what it made): only
  // the lease goes.
  if (auto st = attached_ ? nets_.detach(net_, id_) : nets_.leases(net_).release(id_); !st) {
    std::fprintf(stderr, "kiste: warning: %s\n", st.error().to_string().c_str());
  }
}

Status RunNetwork::connect(int netns_fd) {
  auto a = nets_.attach(net_, id_, netns_fd, 0, address_, alive_);
  if (!a) return std::unexpected(std::move(a).error());
  attached_ = true;
  return {};
}

std::vector<network::IpAddress> RunNetwork::lookup(std::string_view name) const {
  std::vector<network::IpAddress> out;
  auto leases = nets_.leases(net_).list();
  if (!leases) return out;
  auto lower = [](std::string s) {
    std::ranges::transform(s, s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return s;
  };
  for (const network::Lease& l : *leases) {
    bool named = name.size() == 12 && l.owner.starts_with(name);
    for (const std::string& n : l.names) named = named || lower(n) == name;
    if (named) out.push_back(l.address);
  }
  return out;
}

std::string RunNetwork::resolv_conf() {
  return network::container_resolv_conf(
      sys::read_file("/etc/resolv.conf", 1 << 16).value_or(""),
      sys::read_file("/run/systemd/resolve/resolv.conf", 1 << 16).value_or(""));
}

namespace {

class BuildStepNetworks final : public builder::StepNetworks {
 public:
  explicit BuildStepNetworks(const Globals& g) : g_(g) {}

  Result<builder::StepAttachment> attach(std::string_view container_id, std::string_view hostname) override {
    KISTE_ASSIGN_OR_RETURN(auto n, RunNetwork::prepare(g_, network::Networks::kDefault, container_id, "",
                                                       std::string(hostname), {}));
    auto held = std::make_shared<RunNetwork>(std::move(n));
    RunNetwork* net = held.get();  // alive as long as `held`
    return builder::StepAttachment{.hosts = net->extra_hosts(),
                                   .resolv_conf = RunNetwork::resolv_conf(),
                                   .connect = [net](int netns_fd) { return net->connect(netns_fd); },
                                   .disconnect = [net] { net->disconnect(); },
                                   .held = std::move(held)};
  }

 private:
  const Globals& g_;
};

// A rootless build's RUN steps: pasta on each step's namespace (network/pasta.hpp), as
// `run --network pasta`, since bridges need root. Where pasta cannot start (no routable
// interface on an offline machine) a step gets loopback only, as it would on a bridge without
// an upstream, and the build says so once.
class PastaStepNetworks final : public builder::StepNetworks {
 public:
  Result<builder::StepAttachment> attach(std::string_view, std::string_view) override {
    auto held = std::make_shared<std::optional<network::Pasta>>();
    std::optional<network::Pasta>* pasta = held.get();  // alive as long as `held`
    return builder::StepAttachment{.hosts = {},
                                   .resolv_conf = RunNetwork::resolv_conf(),
                                   .connect = [this, pasta](int netns_fd) -> Status {
                                     auto p = network::Pasta::start(netns_fd, {});
                                     if (p) {
                                       pasta->emplace(std::move(*p));
                                     } else if (!noted_) {
                                       noted_ = true;
                                       std::fprintf(stderr, "note: rootless: RUN steps have no network: %s\n",
                                                    p.error().to_string().c_str());
                                     }
                                     return {};
                                   },
                                   .disconnect = [pasta] { pasta->reset(); },
                                   .held = std::move(held)};
  }

 private:
  bool noted_ = false;
};

}  // namespace

std::unique_ptr<builder::StepNetworks> build_step_networks(const Globals& g) {
  if (runtime::running_rootless()) return std::make_unique<PastaStepNetworks>();
  return std::make_unique<BuildStepNetworks>(g);
}

namespace {

// The running detached container `ref` (id and pid), or exits with a one-line error.
std::pair<std::string, pid_t> running_container(const Globals& g, const std::string& ref) {
  const runtime::ContainerStore store(g.root);
  std::string id = value_or_exit(store.resolve(ref));
  runtime::ContainerState st = value_or_exit(store.load(id));
  if (!st.running() || st.pid <= 0) {
    exit_on_error(failf(Errc::InvalidArgument, "container {}: not running", quote(ref)));
  }
  return {id, st.pid};
}

// Whether container `id` holds a lease on `n`.
bool has_lease(const network::Networks& nets, const network::NetworkConfig& n, std::string_view id) {
  auto leases = nets.leases(n).list();
  return leases && std::ranges::any_of(*leases, [&](const network::Lease& l) { return l.owner == id; });
}

// Where `network connect` notes the veth index of a network it connected (for disconnect; the
// network of `run --network` is index 0).
std::filesystem::path connected_note(const Globals& g, std::string_view id, std::string_view net) {
  return runtime::ContainerStore(g.root).dir(id) / fmt::format("connected-{}", net);
}

// `network connect`: a running detached container gets one more veth (eth1 …) and a lease on
// NET. Nothing needs releasing when the container ends: the veth dies with its namespace and
// the lease is reclaimed once its owner no longer runs (alive_in); `disconnect` undoes it early.
Status connect_container(const Globals& g, const std::string& name, const std::string& ref,
                         const std::string& ip, const std::vector<std::string>& aliases) {
  auto [id, pid] = running_container(g, ref);
  network::Networks nets = networks(g);
  KISTE_ASSIGN_OR_RETURN(network::NetworkConfig n, nets.get(name));
  if (has_lease(nets, n, id)) {
    return failf(Errc::AlreadyExists, "container {} is on network {} already", quote(ref), quote(n.name));
  }
  for (const std::string& a : aliases) {
    if (!network::dns_name(a)) return failf(Errc::InvalidArgument, "--alias {}: not a DNS name", quote(a));
  }
  KISTE_ASSIGN_OR_RETURN(unsigned index, network::free_veth_index(id, 1));
  std::optional<network::IpAddress> wanted;
  if (!ip.empty()) {
    KISTE_ASSIGN_OR_RETURN(wanted, network::IpAddress::parse(ip));
  }
  KISTE_TRY(nets.realise(n));
  const runtime::ContainerState st = *runtime::ContainerStore(g.root).load(id);
  std::vector<std::string> names = aliases;
  if (!st.name.empty()) names.insert(names.begin(), st.name);
  // The lease with the names first; attach's own acquire keeps them.
  KISTE_ASSIGN_OR_RETURN(auto addr, nets.leases(n).acquire(id, wanted, alive_in(g), names));
  UniqueFd ns(::open(fmt::format("/proc/{}/ns/net", pid).c_str(), O_RDONLY | O_CLOEXEC));
  if (!ns) {
    Error e = sys_error("open", fmt::format("the network namespace of container {}", quote(ref)));
    (void)nets.leases(n).release(id);
    return std::unexpected(e);
  }
  auto a = nets.attach(n, id, ns.get(), index, addr, alive_in(g));
  if (!a) return std::unexpected(std::move(a).error());
  return sys::write_file_atomic(connected_note(g, id, n.name), fmt::format("{}\n", index), 0644);
}

Status disconnect_container(const Globals& g, const std::string& name, const std::string& ref) {
  const runtime::ContainerStore store(g.root);
  KISTE_ASSIGN_OR_RETURN(std::string id, store.resolve(ref));
  network::Networks nets = networks(g);
  KISTE_ASSIGN_OR_RETURN(network::NetworkConfig n, nets.get(name));
  if (!has_lease(nets, n, id)) {
    return failf(Errc::NotFound, "container {} is not on network {}", quote(ref), quote(n.name));
  }
  unsigned index = 0;
  std::filesystem::path note = connected_note(g, id, n.name);
  if (auto text = sys::read_file(note, 64)) index = static_cast<unsigned>(std::atoi(text->c_str()));
  KISTE_TRY(nets.detach(n, id, index));
  ::unlink(note.c_str());
  return {};
}

}  // namespace

void register_network_commands(CLI::App& app, Globals& g) {
  auto* net = app.add_subcommand("network", "Manage bridge networks (run --network NAME)");
  net->require_subcommand(1);

  struct Create {
    std::string name;
    std::vector<std::string> subnets;
    std::string gateway;
    bool internal = false, ipv6 = false;
  };
  auto c = std::make_shared<Create>();
  auto* create = net->add_subcommand("create", "Create a bridge network");
  create->add_option("--subnet", c->subnets, "CIDR (an IPv4 one, and with --ipv6 an IPv6 one)")
      ->allow_extra_args(false);
  create->add_option("--gateway", c->gateway, "the bridge's IPv4 address (default: the first)");
  create->add_flag("--internal", c->internal, "no route out: no NAT, nothing forwarded off the bridge");
  create->add_flag("--ipv6", c->ipv6, "also an IPv6 subnet (a random ULA /64 unless --subnet gives one)");
  create->add_option("NAME", c->name, "the network's name")->required();
  create->callback([&g, c] {
    exit_on_error(network::check_network_name(c->name));
    network::CreateOptions o{.name = c->name, .internal = c->internal, .ipv6 = c->ipv6};
    for (const std::string& s : c->subnets) {
      bool v6 = s.find(':') != std::string::npos;
      auto& slot = v6 ? o.subnet6 : o.subnet;
      if (slot) {
        exit_on_error(failf(Errc::InvalidArgument, "--subnet {}: one IPv4 and one IPv6 subnet at most",
                            quote(s)));
      }
      slot = s;
    }
    if (!c->gateway.empty()) o.gateway = c->gateway;
    auto n = value_or_exit(with_context(networks(g).create(o), fmt::format("network create {}", quote(c->name))));
    std::printf("%s\n", n.id.c_str());
  });

  auto quiet = std::make_shared<bool>(false);
  auto* ls = net->add_subcommand("ls", "List networks");
  ls->alias("list");
  ls->add_flag("-q,--quiet", *quiet, "only the ids");
  ls->callback([&g, quiet] {
    auto nets = networks(g);
    (void)value_or_exit(nets.get(network::Networks::kDefault));  // docker always lists its bridge
    auto all = value_or_exit(nets.list());
    if (!*quiet) std::printf("%-14s %-20s %-8s %s\n", "NETWORK ID", "NAME", "DRIVER", "SUBNET");
    for (const auto& n : all) {
      if (*quiet) {
        std::printf("%s\n", n.id.substr(0, 12).c_str());
      } else {
        std::printf("%-14s %-20s %-8s %s\n", n.id.substr(0, 12).c_str(), n.name.c_str(),
                    n.driver.c_str(), n.subnet.to_string().c_str());
      }
    }
  });

  auto names = std::make_shared<std::vector<std::string>>();
  auto* inspect = net->add_subcommand("inspect", "Show networks as JSON (docker's shape)");
  inspect->add_option("NETWORK", *names, "names or id prefixes")->required();
  inspect->callback([&g, names] {
    auto nets = networks(g);
    nlohmann::json out = nlohmann::json::array();
    for (const auto& name : *names) out.push_back(inspect_json(nets, value_or_exit(nets.get(name))));
    std::printf("%s\n", out.dump(4).c_str());
  });

  auto rm_names = std::make_shared<std::vector<std::string>>();
  struct Connect {
    std::string net, container, ip;
    std::vector<std::string> aliases;
  };
  auto cn = std::make_shared<Connect>();
  auto* connect = net->add_subcommand("connect", "Connect a running detached container to a network");
  connect->add_option("--ip", cn->ip, "its IPv4 address on the network");
  connect->add_option("--alias", cn->aliases, "another name it has in the network's DNS")->allow_extra_args(false);
  connect->add_option("NETWORK", cn->net)->required();
  connect->add_option("CONTAINER", cn->container)->required();
  connect->callback([&g, cn] {
    exit_on_error(with_context(connect_container(g, cn->net, cn->container, cn->ip, cn->aliases),
                               fmt::format("network connect {}", quote(cn->net))));
  });
  auto* disconnect = net->add_subcommand("disconnect", "Disconnect a container from a network");
  disconnect->add_option("NETWORK", cn->net)->required();
  disconnect->add_option("CONTAINER", cn->container)->required();
  disconnect->callback([&g, cn] {
    exit_on_error(with_context(disconnect_container(g, cn->net, cn->container),
                               fmt::format("network disconnect {}", quote(cn->net))));
  });

  auto* rm = net->add_subcommand("rm", "Remove networks (their bridge, rules and leases)");
  rm->alias("remove");
  rm->add_option("NETWORK", *rm_names, "names or id prefixes")->required();
  rm->callback([&g, rm_names] {
    auto nets = networks(g);
    int failed = 0;
    for (const auto& name : *rm_names) {
      if (auto st = nets.remove(name, alive_in(g)); !st) {
        report(st.error());
        ++failed;
      } else {
        std::printf("%s\n", name.c_str());
      }
    }
    if (failed) throw CLI::RuntimeError(kExitFailure);
  });

  net->add_subcommand("prune", "Remove networks no running container uses (not the default)")
      ->callback([&g] {
        auto nets = networks(g);
        for (const auto& n : value_or_exit(nets.list())) {
          if (n.name == network::Networks::kDefault) continue;
          auto leases = value_or_exit(nets.leases(n).list());
          auto alive = alive_in(g);
          if (std::any_of(leases.begin(), leases.end(), [&](const auto& l) { return alive(l); })) {
            continue;
          }
          exit_on_error(nets.remove(n.name, alive));
          std::printf("%s\n", n.name.c_str());
        }
      });
}

}  // namespace kiste::cli
