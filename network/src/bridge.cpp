#include <kiste/network/bridge.hpp>

#include <arpa/inet.h>
#include <fcntl.h>

#include <algorithm>
#include <bit>
#include <charconv>
#include <cctype>
#include <ctime>

#include <fmt/ranges.h>

#include <nlohmann/json.hpp>

#include <kiste/base/file_lock.hpp>
#include <kiste/base/sys.hpp>
#include <kiste/network/netlink.hpp>
#include <kiste/network/nft.hpp>

namespace kiste::network {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr std::string_view kTable = kNftTable;

fs::path config_path(const fs::path& dir, std::string_view name) {
  return dir / fmt::format("{}.json", name);
}

std::string to_json(const NetworkConfig& n) {
  json j = {{"name", n.name},
            {"id", n.id},
            {"driver", n.driver},
            {"bridge", n.bridge},
            {"subnet", n.subnet.to_string()},
            {"gateway", n.gateway.to_string()},
            {"internal", n.internal},
            {"created", n.created}};
  if (n.subnet6) j["subnet6"] = n.subnet6->to_string();
  if (n.gateway6) j["gateway6"] = n.gateway6->to_string();
  return j.dump(2) + "\n";
}

Result<NetworkConfig> from_json(const fs::path& path, std::string_view text) {
  auto bad = [&](std::string_view why) {
    return failf(Errc::Corrupt, "network config {}: {}", quote(path.string()), why);
  };
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return bad("not a JSON object");
  try {
    NetworkConfig n;
    n.name = j.at("name").get<std::string>();
    n.id = j.at("id").get<std::string>();
    n.driver = j.value("driver", "bridge");
    n.bridge = j.at("bridge").get<std::string>();
    auto s = Subnet::parse(j.at("subnet").get<std::string>());
    auto g = IpAddress::parse(j.at("gateway").get<std::string>());
    if (!s || !g) return bad(!s ? s.error().message : g.error().message);
    n.subnet = *s;
    n.gateway = *g;
    if (j.contains("subnet6")) {
      auto s6 = Subnet::parse(j.at("subnet6").get<std::string>());
      auto g6 = IpAddress::parse(j.at("gateway6").get<std::string>());
      if (!s6 || !g6) return bad(!s6 ? s6.error().message : g6.error().message);
      n.subnet6 = *s6;
      n.gateway6 = *g6;
    }
    n.internal = j.value("internal", false);
    n.created = j.value("created", int64_t{0});
    return n;
  } catch (const json::exception& e) {
    return bad(e.what());
  }
}

// The IPv4 routes of this network namespace, as subnets (the default route left out): a new
// network must not shadow one of them (docker checks the same).
std::vector<Subnet> host_routes() {
  std::vector<Subnet> out;
  auto text = sys::read_file("/proc/net/route", 1 << 20);
  if (!text) return out;
  size_t pos = text->find('\n');  // header
  while (pos != std::string::npos && pos + 1 < text->size()) {
    size_t end = text->find('\n', pos + 1);
    std::string_view line(text->data() + pos + 1,
                          (end == std::string::npos ? text->size() : end) - pos - 1);
    pos = end;
    std::vector<std::string_view> f;
    size_t i = 0;
    while (i < line.size()) {
      while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
      size_t j = i;
      while (j < line.size() && line[j] != ' ' && line[j] != '\t') ++j;
      if (j > i) f.push_back(line.substr(i, j - i));
      i = j;
    }
    if (f.size() < 8) continue;
    uint32_t dst = 0, mask = 0;
    std::from_chars(f[1].data(), f[1].data() + f[1].size(), dst, 16);
    std::from_chars(f[7].data(), f[7].data() + f[7].size(), mask, 16);
    if (mask == 0) continue;
    auto s = Subnet::make(IpAddress::v4(ntohl(dst)), static_cast<unsigned>(std::popcount(mask)));
    if (s) out.push_back(*s);
  }
  return out;
}

std::string chain(const NetworkConfig& n, std::string_view what) {
  return fmt::format("n-{}-{}", n.name, what);
}

// The table, its two base chains and the maps they dispatch through; made once, in one
// transaction, when the table is missing.
constexpr std::string_view kBaseRuleset =
    "add table inet kiste\n"
    "add map inet kiste post4 { type ipv4_addr : verdict; flags interval; }\n"
    "add map inet kiste post6 { type ipv6_addr : verdict; flags interval; }\n"
    "add map inet kiste fwd_in { type ifname : verdict; }\n"
    "add map inet kiste fwd_out { type ifname : verdict; }\n"
    "add chain inet kiste postrouting { type nat hook postrouting priority srcnat; policy accept; }\n"
    "add chain inet kiste forward { type filter hook forward priority filter; policy accept; }\n"
    "add rule inet kiste postrouting ip saddr vmap @post4\n"
    "add rule inet kiste postrouting ip6 saddr vmap @post6\n"
    "add rule inet kiste forward iifname vmap @fwd_in\n"
    "add rule inet kiste forward oifname vmap @fwd_out\n";

// One network's chains and map elements. Chains are flushed and refilled, so this is idempotent.
std::string network_ruleset(const NetworkConfig& n) {
  std::string post = chain(n, "post"), in = chain(n, "in"), out = chain(n, "out");
  std::string r;
  for (const std::string& c : {post, in, out}) {
    r += fmt::format("add chain {} {}\nflush chain {} {}\n", kTable, c, kTable, c);
  }
  if (!n.internal) {
    r += fmt::format("add rule {} {} ip daddr != {} masquerade\n", kTable, post, n.subnet.to_string());
    if (n.subnet6) {
      r += fmt::format("add rule {} {} ip6 daddr != {} masquerade\n", kTable, post,
                       n.subnet6->to_string());
    }
  } else {
    // Internal: nothing leaves the bridge.
    r += fmt::format("add rule {} {} oifname != \"{}\" drop\n", kTable, in, n.bridge);
  }
  // Towards the containers: replies, published ports (DNAT) and the bridge itself; nothing new.
  r += fmt::format("add rule {} {} ct state established,related accept\n", kTable, out);
  r += fmt::format("add rule {} {} ct status dnat accept\n", kTable, out);
  r += fmt::format("add rule {} {} iifname \"{}\" accept\n", kTable, out, n.bridge);
  r += fmt::format("add rule {} {} drop\n", kTable, out);
  r += fmt::format("add element {} post4 {{ {} : jump {} }}\n", kTable, n.subnet.to_string(), post);
  if (n.subnet6) {
    r += fmt::format("add element {} post6 {{ {} : jump {} }}\n", kTable, n.subnet6->to_string(), post);
  }
  r += fmt::format("add element {} fwd_in {{ \"{}\" : jump {} }}\n", kTable, n.bridge, in);
  r += fmt::format("add element {} fwd_out {{ \"{}\" : jump {} }}\n", kTable, n.bridge, out);
  return r;
}

Status write_sysctl(const char* path, std::string_view value) {
  int raw = ::open(path, O_WRONLY | O_CLOEXEC);
  if (raw < 0) return std::unexpected(sys_error("open", path));
  UniqueFd owned(raw);
  return sys::write_all(owned.get(), value, path);
}

Result<FileLock> lock_dir(const fs::path& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return failf(Errc::System, "create {}: {}", quote(dir.string()), ec.message());
  return FileLock::acquire(dir / ".lock");
}

}  // namespace

Status check_network_name(std::string_view name) {
  bool ok = !name.empty() && name.size() <= 64 && std::isalnum(static_cast<unsigned char>(name[0]));
  for (char c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '.' && c != '-') ok = false;
  }
  if (!ok) {
    return failf(Errc::InvalidArgument,
                 "network name {}: must match [a-zA-Z0-9][a-zA-Z0-9_.-]* (at most 64 bytes)",
                 quote(name));
  }
  return {};
}

std::string host_veth_name(std::string_view container_id, unsigned index) {
  return fmt::format("kv{}{}", container_id.substr(0, 11), index);
}

Result<unsigned> free_veth_index(std::string_view container_id, unsigned first) {
  KISTE_ASSIGN_OR_RETURN(Netlink nl, Netlink::open());
  for (unsigned index = first; index < kMaxVeths; ++index) {
    KISTE_ASSIGN_OR_RETURN(bool taken, nl.link_exists(host_veth_name(container_id, index)));
    if (!taken) return index;
  }
  return failf(Errc::Unavailable, "container {}: on {} networks already",
               quote(container_id.substr(0, 12)), kMaxVeths);
}

Result<std::vector<NetworkConfig>> Networks::list() const {
  std::vector<NetworkConfig> out;
  std::error_code ec;
  if (!fs::exists(dir_, ec)) return out;
  for (const auto& e : fs::directory_iterator(dir_, ec)) {
    if (e.path().extension() != ".json") continue;
    KISTE_ASSIGN_OR_RETURN(std::string text, sys::read_file(e.path(), 1 << 20));
    KISTE_ASSIGN_OR_RETURN(NetworkConfig n, from_json(e.path(), text));
    out.push_back(std::move(n));
  }
  if (ec) return failf(Errc::System, "list {}: {}", quote(dir_.string()), ec.message());
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  return out;
}

Result<NetworkConfig> Networks::create(const CreateOptions& opts) {
  KISTE_TRY(check_network_name(opts.name));
  KISTE_ASSIGN_OR_RETURN(FileLock lock, lock_dir(dir_));
  return create_locked(opts);
}

Result<NetworkConfig> Networks::create_locked(const CreateOptions& opts) {
  KISTE_ASSIGN_OR_RETURN(std::vector<NetworkConfig> existing, list());
  for (const NetworkConfig& n : existing) {
    if (n.name == opts.name) {
      return failf(Errc::AlreadyExists, "network {} already exists", quote(opts.name));
    }
  }
  NetworkConfig n;
  n.name = opts.name;
  n.id = sys::random_hex(32);
  n.internal = opts.internal;
  n.created = static_cast<int64_t>(::time(nullptr));

  std::vector<Subnet> routes = host_routes();
  auto clash = [&](const Subnet& s) -> std::string {
    for (const NetworkConfig& o : existing) {
      if (o.subnet.overlaps(s) || (o.subnet6 && o.subnet6->overlaps(s))) {
        return fmt::format("overlaps network {} ({})", quote(o.name),
                           o.subnet.overlaps(s) ? o.subnet.to_string() : o.subnet6->to_string());
      }
    }
    for (const Subnet& r : routes) {
      if (r.overlaps(s)) return fmt::format("overlaps the host route {}", r.to_string());
    }
    return {};
  };
  if (opts.subnet) {
    KISTE_ASSIGN_OR_RETURN(n.subnet, Subnet::parse(*opts.subnet));
    if (n.subnet.family() != Family::V4) {
      return failf(Errc::InvalidArgument, "subnet {}: the first --subnet must be IPv4",
                   quote(*opts.subnet));
    }
    if (n.subnet.host_count() < 2) {
      return failf(Errc::InvalidArgument, "subnet {} is too small for a gateway and a container",
                   quote(*opts.subnet));
    }
    if (std::string why = clash(n.subnet); !why.empty()) {
      return failf(Errc::AlreadyExists, "subnet {} {}", n.subnet.to_string(), why);
    }
  } else {
    std::optional<Subnet> free;
    Subnet cand = *Subnet::parse("10.88.0.0/24");
    for (int i = 0; i < 4096 && !free; ++i, cand = cand.next(1)) {
      if (clash(cand).empty()) free = cand;
    }
    if (!free) return fail(Errc::Unavailable, "no free /24 left in 10.88.0.0/12 for a network");
    n.subnet = *free;
  }
  if (opts.gateway) {
    KISTE_ASSIGN_OR_RETURN(n.gateway, IpAddress::parse(*opts.gateway));
    if (!n.subnet.contains(n.gateway) || n.gateway == n.subnet.base() ||
        n.gateway == n.subnet.host(n.subnet.host_count() + 1)) {
      return failf(Errc::InvalidArgument, "gateway {} is not a host address of {}",
                   n.gateway.to_string(), n.subnet.to_string());
    }
  } else {
    n.gateway = n.subnet.host(1);
  }
  if (opts.ipv6 || opts.subnet6) {
    if (opts.subnet6) {
      KISTE_ASSIGN_OR_RETURN(Subnet s6, Subnet::parse(*opts.subnet6));
      if (s6.family() != Family::V6) {
        return failf(Errc::InvalidArgument, "subnet {} is not IPv6", quote(*opts.subnet6));
      }
      if (std::string why = clash(s6); !why.empty()) {
        return failf(Errc::AlreadyExists, "subnet {} {}", s6.to_string(), why);
      }
      n.subnet6 = s6;
    } else {
      // A unique local /64 with 40 random global-id bits (RFC 4193), as docker and podman do.
      std::string hex = sys::random_hex(5);
      KISTE_ASSIGN_OR_RETURN(n.subnet6, Subnet::parse(fmt::format("fd{}:{}:{}::/64", hex.substr(0, 2),
                                                                  hex.substr(2, 4), hex.substr(6, 4))));
    }
    n.gateway6 = n.subnet6->host(1);
  }
  // The bridge: kiste0 for the default network, else the lowest free kiste<N>.
  if (n.name == kDefault) {
    n.bridge = "kiste0";
  } else {
    for (int i = 1;; ++i) {
      std::string b = fmt::format("kiste{}", i);
      if (std::none_of(existing.begin(), existing.end(), [&](const auto& o) { return o.bridge == b; })) {
        n.bridge = b;
        break;
      }
    }
  }
  KISTE_TRY(sys::write_file_atomic(config_path(dir_, n.name), to_json(n), 0600));
  return n;
}

Result<NetworkConfig> Networks::get(std::string_view name_or_id) {
  KISTE_ASSIGN_OR_RETURN(std::vector<NetworkConfig> all, list());
  for (const NetworkConfig& n : all) {
    if (n.name == name_or_id) return n;
  }
  const NetworkConfig* by_id = nullptr;
  if (name_or_id.size() >= 3 && name_or_id.find_first_not_of("0123456789abcdef") == name_or_id.npos) {
    for (const NetworkConfig& n : all) {
      if (n.id.starts_with(name_or_id)) {
        if (by_id != nullptr) {
          return failf(Errc::InvalidArgument, "network id prefix {} is ambiguous", quote(name_or_id));
        }
        by_id = &n;
      }
    }
  }
  if (by_id != nullptr) return *by_id;
  if (name_or_id == kDefault) {
    KISTE_ASSIGN_OR_RETURN(FileLock lock, lock_dir(dir_));
    auto again = sys::read_file(config_path(dir_, kDefault), 1 << 20);  // made meanwhile?
    if (again) return from_json(config_path(dir_, kDefault), *again);
    return create_locked(CreateOptions{.name = std::string(kDefault)});
  }
  return failf(Errc::NotFound, "no network {} (see `kiste network ls`)", quote(name_or_id));
}

LeaseFile Networks::leases(const NetworkConfig& n) const {
  return LeaseFile(dir_ / fmt::format("{}.leases", n.name), n.subnet, {n.gateway});
}

Status Networks::realise(const NetworkConfig& n) {
  KISTE_ASSIGN_OR_RETURN(Netlink nl, Netlink::open());
  KISTE_ASSIGN_OR_RETURN(bool exists, nl.link_exists(n.bridge));
  // One nfnetlink request, not a libnftables context (which loads nft's cache of the table):
  // this runs on every container start. The network's last chain is made last.
  KISTE_ASSIGN_OR_RETURN(bool chains, kiste_chain_exists(chain(n, "out")));
  if (exists && chains) return {};
  KISTE_ASSIGN_OR_RETURN(Nft nft, Nft::open());
  KISTE_ASSIGN_OR_RETURN(FileLock lock, lock_dir(dir_));
  KISTE_ASSIGN_OR_RETURN(exists, nl.link_exists(n.bridge));  // made meanwhile?
  std::string what = fmt::format("network {}", quote(n.name));
  if (!exists) {
    KISTE_TRY(with_context(nl.add_bridge(n.bridge), what));
    auto made = [&]() -> Status {
      KISTE_TRY(nl.add_address(n.bridge, n.gateway, n.subnet.prefix()));
      if (n.subnet6) KISTE_TRY(nl.add_address(n.bridge, *n.gateway6, n.subnet6->prefix()));
      return nl.set_up(n.bridge);
    }();
    if (!made) {
      (void)nl.delete_link(n.bridge);  // best effort: the error below is the one to report
      return std::unexpected(std::move(made).error().with_context(what));
    }
  }
  if (!n.internal) {
    // Routing between the bridge and the outside (docker and podman set the same).
    KISTE_TRY(with_context(write_sysctl("/proc/sys/net/ipv4/ip_forward", "1"), what));
    if (n.subnet6) {
      KISTE_TRY(with_context(write_sysctl("/proc/sys/net/ipv6/conf/all/forwarding", "1"), what));
    }
  }
  // Two transactions: nft refuses (ENOENT) a verdict-map element whose map was made in the same
  // batch. The base is the same for every network, so a crash between the two leaves nothing
  // wrong, and the second is idempotent.
  if (!nft.query(fmt::format("list table {}", kTable))) {
    KISTE_TRY(nft.run(kBaseRuleset, "set up kiste's nft table"));
  }
  return nft.run(network_ruleset(n), fmt::format("set up the firewall rules of network {}", quote(n.name)));
}

Status Networks::remove(std::string_view name_or_id, const AliveFn& alive) {
  KISTE_ASSIGN_OR_RETURN(NetworkConfig n, get(name_or_id));
  KISTE_ASSIGN_OR_RETURN(FileLock lock, lock_dir(dir_));
  KISTE_ASSIGN_OR_RETURN(std::vector<Lease> held, leases(n).list());
  std::vector<std::string> users;
  for (const Lease& l : held) {
    if (alive(l)) users.push_back(l.owner.substr(0, 12));
  }
  if (!users.empty()) {
    return failf(Errc::AlreadyExists, "network {} is in use by container{} {}", quote(n.name),
                 users.size() > 1 ? "s" : "", fmt::join(users, ", "));
  }
  KISTE_ASSIGN_OR_RETURN(Netlink nl, Netlink::open());
  KISTE_TRY(nl.delete_link(n.bridge));
  KISTE_ASSIGN_OR_RETURN(Nft nft, Nft::open());
  if (nft.query(fmt::format("list chain {} {}", kTable, chain(n, "out")))) {
    std::string r;
    r += fmt::format("delete element {} post4 {{ {} }}\n", kTable, n.subnet.to_string());
    if (n.subnet6) r += fmt::format("delete element {} post6 {{ {} }}\n", kTable, n.subnet6->to_string());
    r += fmt::format("delete element {} fwd_in {{ \"{}\" }}\n", kTable, n.bridge);
    r += fmt::format("delete element {} fwd_out {{ \"{}\" }}\n", kTable, n.bridge);
    for (std::string_view c : {"post", "in", "out"}) {
      r += fmt::format("delete chain {} {}\n", kTable, chain(n, c));
    }
    KISTE_TRY(nft.run(r, fmt::format("remove the firewall rules of network {}", quote(n.name))));
  }
  // The last network gone: the table goes too, so `nft list ruleset` shows nothing of kiste.
  KISTE_ASSIGN_OR_RETURN(std::vector<NetworkConfig> all, list());
  if (all.size() == 1 && nft.query(fmt::format("list table {}", kTable))) {
    KISTE_TRY(nft.run(fmt::format("delete table {}\n", kTable), "remove kiste's nft table"));
  }
  std::error_code ec;
  fs::remove(dir_ / fmt::format("{}.leases", n.name), ec);
  fs::remove(dir_ / fmt::format("{}.leases.lock", n.name), ec);
  if (!fs::remove(config_path(dir_, n.name), ec) || ec) {
    return failf(Errc::System, "remove {}: {}", quote(config_path(dir_, n.name).string()),
                 ec ? ec.message() : "gone already");
  }
  return {};
}

Result<Attachment> Networks::attach(const NetworkConfig& n, std::string_view container_id,
                                    int netns_fd, unsigned index,
                                    const std::optional<IpAddress>& wanted, const AliveFn& alive) {
  KISTE_TRY(realise(n));
  LeaseFile lf = leases(n);
  KISTE_ASSIGN_OR_RETURN(IpAddress addr, lf.acquire(container_id, wanted, alive));
  Attachment a{.network = n.name, .host_veth = host_veth_name(container_id, index), .address = addr};
  std::string inside = fmt::format("eth{}", index);
  // Only a veth this call made is removed on error: an EEXIST from add_veth means the name is
  // someone else's (another container's, or a stale one's), and theirs stays.
  bool created = false;
  auto done = [&]() -> Status {
    KISTE_ASSIGN_OR_RETURN(Netlink nl, Netlink::open());
    KISTE_TRY(nl.add_veth(a.host_veth, inside, netns_fd));
    created = true;
    KISTE_TRY(nl.set_master(a.host_veth, n.bridge));
    KISTE_TRY(nl.set_up(a.host_veth));
    KISTE_ASSIGN_OR_RETURN(Netlink in, Netlink::open_in(netns_fd));
    KISTE_TRY(in.set_up("lo"));
    KISTE_TRY(in.add_address(inside, addr, n.subnet.prefix()));
    if (n.subnet6) {
      a.address6 = ipv6_address_of(n, addr);
      KISTE_TRY(in.add_address(inside, *a.address6, n.subnet6->prefix()));
    }
    KISTE_TRY(in.set_up(inside));
    if (index == 0) {
      KISTE_TRY(in.add_default_route(n.gateway));
      if (n.gateway6) KISTE_TRY(in.add_default_route(*n.gateway6));
    }
    return {};
  }();
  if (!done) {
    if (created) {
      KISTE_ASSIGN_OR_RETURN(Netlink nl, Netlink::open());
      (void)nl.delete_link(a.host_veth);  // best effort; the error below is the one to report
    }
    (void)lf.release(container_id);
    return std::unexpected(std::move(done).error().with_context(
        fmt::format("attach to network {}", quote(n.name))));
  }
  return a;
}

std::optional<IpAddress> ipv6_address_of(const NetworkConfig& n, const IpAddress& v4) {
  if (!n.subnet6) return std::nullopt;
  return n.subnet6->host(n.subnet.offset_of(v4));
}

Status Networks::detach(const NetworkConfig& n, std::string_view container_id, unsigned index) {
  KISTE_ASSIGN_OR_RETURN(Netlink nl, Netlink::open());
  Status veth = nl.delete_link(host_veth_name(container_id, index));
  Status lease = leases(n).release(container_id);
  if (!veth) return veth;
  return lease;
}

}  // namespace kiste::network

namespace kiste::network {

namespace {

bool loopback_nameserver(std::string_view line) {
  if (!line.starts_with("nameserver")) return false;
  std::string_view v = line.substr(10);
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  return v.starts_with("127.") || v == "::1" || v.starts_with("::1 ");
}

// The lines of `text` minus loopback nameservers; `servers` counts the nameservers kept.
std::string without_loopback(std::string_view text, int& servers) {
  std::string out;
  servers = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    std::string_view line = text.substr(pos, (nl == text.npos ? text.size() : nl) - pos);
    pos = nl == text.npos ? text.size() : nl + 1;
    if (loopback_nameserver(line)) continue;
    if (line.starts_with("nameserver")) ++servers;
    out += line;
    out += '\n';
  }
  return out;
}

}  // namespace

std::string container_resolv_conf(std::string_view host, std::string_view resolved_upstream) {
  int servers = 0;
  std::string kept = without_loopback(host, servers);
  if (servers > 0 || resolved_upstream.empty()) return kept;
  int upstream = 0;
  std::string from_resolved = without_loopback(resolved_upstream, upstream);
  return upstream > 0 ? from_resolved : kept;
}

}  // namespace kiste::network
