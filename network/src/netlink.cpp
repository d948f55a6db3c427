#include <kiste/network/netlink.hpp>

#include <libmnl/libmnl.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>
#include <vector>

#include <kiste/base/dynamic_library.hpp>
#include <kiste/base/unique_fd.hpp>

namespace kiste::network {

namespace {

struct MnlApi {
  decltype(&::mnl_socket_open) socket_open;
  decltype(&::mnl_socket_bind) socket_bind;
  decltype(&::mnl_socket_close) socket_close;
  decltype(&::mnl_socket_get_portid) socket_get_portid;
  decltype(&::mnl_socket_sendto) socket_sendto;
  decltype(&::mnl_socket_recvfrom) socket_recvfrom;
  decltype(&::mnl_nlmsg_put_header) nlmsg_put_header;
  decltype(&::mnl_nlmsg_put_extra_header) nlmsg_put_extra_header;
  decltype(&::mnl_attr_put) attr_put;
  decltype(&::mnl_attr_put_u32) attr_put_u32;
  decltype(&::mnl_attr_put_strz) attr_put_strz;
  decltype(&::mnl_attr_nest_start) attr_nest_start;
  decltype(&::mnl_attr_nest_end) attr_nest_end;
  decltype(&::mnl_cb_run) cb_run;
};

Result<const MnlApi*> load_mnl() {
  static MnlApi api{};
  static Status loaded = []() -> Status {
    KISTE_ASSIGN_OR_RETURN(DynamicLibrary lib, DynamicLibrary::open("libmnl.so.0"));
    KISTE_TRY(lib.bind("mnl_socket_open", api.socket_open));
    KISTE_TRY(lib.bind("mnl_socket_bind", api.socket_bind));
    KISTE_TRY(lib.bind("mnl_socket_close", api.socket_close));
    KISTE_TRY(lib.bind("mnl_socket_get_portid", api.socket_get_portid));
    KISTE_TRY(lib.bind("mnl_socket_sendto", api.socket_sendto));
    KISTE_TRY(lib.bind("mnl_socket_recvfrom", api.socket_recvfrom));
    KISTE_TRY(lib.bind("mnl_nlmsg_put_header", api.nlmsg_put_header));
    KISTE_TRY(lib.bind("mnl_nlmsg_put_extra_header", api.nlmsg_put_extra_header));
    KISTE_TRY(lib.bind("mnl_attr_put", api.attr_put));
    KISTE_TRY(lib.bind("mnl_attr_put_u32", api.attr_put_u32));
    KISTE_TRY(lib.bind("mnl_attr_put_strz", api.attr_put_strz));
    KISTE_TRY(lib.bind("mnl_attr_nest_start", api.attr_nest_start));
    KISTE_TRY(lib.bind("mnl_attr_nest_end", api.attr_nest_end));
    KISTE_TRY(lib.bind("mnl_cb_run", api.cb_run));
    return {};
  }();
  if (!loaded) return std::unexpected(loaded.error());
  return &api;
}

// Runs `fn` on a thread that has joined the namespace of `netns_fd` (namespaces are per thread;
// the caller's own thread never moves).
template <class F>
auto in_netns(int netns_fd, F fn) -> decltype(fn()) {
  decltype(fn()) result = fail(Errc::System, "not run");
  std::thread t([&] {
    if (::setns(netns_fd, CLONE_NEWNET) != 0) {
      result = std::unexpected(sys_error("setns", "network namespace"));
      return;
    }
    result = fn();
  });
  t.join();
  return result;
}

Error netlink_error(int err, std::string_view what) {
  return Error{.code = errc_from_errno(err),
               .message = fmt::format("{}: {}", what, std::strerror(err)),
               .sys_errno = err};
}

}  // namespace

struct Netlink::Impl {
  const MnlApi* api = nullptr;
  struct mnl_socket* sock = nullptr;
  UniqueFd ioctl_sock;  // an AF_INET datagram socket in the same namespace, for name -> index
  unsigned portid = 0;
  unsigned seq = 0;

  ~Impl() {
    if (sock != nullptr) api->socket_close(sock);
  }

  // Sends one request and waits for its ack; `what` names the step in errors.
  Status request(struct nlmsghdr* nlh, std::string_view what) {
    nlh->nlmsg_flags |= NLM_F_REQUEST | NLM_F_ACK;
    nlh->nlmsg_seq = ++seq;
    if (api->socket_sendto(sock, nlh, nlh->nlmsg_len) < 0) {
      return std::unexpected(netlink_error(errno, what));
    }
    std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE);
    for (;;) {
      ssize_t n = api->socket_recvfrom(sock, buf.data(), buf.size());
      if (n < 0) {
        if (errno == EINTR) continue;
        return std::unexpected(netlink_error(errno, what));
      }
      int rc = api->cb_run(buf.data(), static_cast<size_t>(n), seq, portid, nullptr, nullptr);
      if (rc < 0) return std::unexpected(netlink_error(errno, what));
      if (rc == MNL_CB_STOP) return {};
    }
  }
};

Netlink::Netlink(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Netlink::Netlink(Netlink&&) noexcept = default;
Netlink& Netlink::operator=(Netlink&&) noexcept = default;
Netlink::~Netlink() = default;

Result<Netlink> Netlink::open() {
  KISTE_ASSIGN_OR_RETURN(const MnlApi* api, load_mnl());
  auto impl = std::make_unique<Impl>();
  impl->api = api;
  impl->sock = api->socket_open(NETLINK_ROUTE);
  if (impl->sock == nullptr) return std::unexpected(sys_error("socket", "NETLINK_ROUTE"));
  if (api->socket_bind(impl->sock, 0, MNL_SOCKET_AUTOPID) < 0) {
    return std::unexpected(sys_error("bind", "NETLINK_ROUTE"));
  }
  impl->portid = api->socket_get_portid(impl->sock);
  impl->seq = static_cast<unsigned>(::time(nullptr));
  impl->ioctl_sock = UniqueFd(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!impl->ioctl_sock) return std::unexpected(sys_error("socket", "AF_INET"));
  return Netlink(std::move(impl));
}

Result<Netlink> Netlink::open_in(int netns_fd) {
  return in_netns(netns_fd, [] { return open(); });
}

Result<int> Netlink::index_of(std::string_view name) {
  struct ifreq ifr {};
  if (name.size() >= IFNAMSIZ) {
    return failf(Errc::InvalidArgument, "interface name {} is longer than {} bytes", quote(name),
                 IFNAMSIZ - 1);
  }
  std::memcpy(ifr.ifr_name, name.data(), name.size());
  if (::ioctl(impl_->ioctl_sock.get(), SIOCGIFINDEX, &ifr) != 0) {
    return std::unexpected(sys_error("find interface", name));
  }
  return ifr.ifr_ifindex;
}

Result<bool> Netlink::link_exists(std::string_view name) {
  auto idx = index_of(name);
  if (idx) return true;
  if (idx.error().sys_errno == ENODEV) return false;
  return std::unexpected(std::move(idx).error());
}

namespace {

Status check_name(std::string_view name) {
  if (name.empty() || name.size() >= IFNAMSIZ || name.find_first_of("/ \t\n:") != name.npos) {
    return failf(Errc::InvalidArgument,
                 "interface name {}: must be 1-{} bytes without '/', ':' or spaces", quote(name),
                 IFNAMSIZ - 1);
  }
  return {};
}

}  // namespace

Status Netlink::add_bridge(std::string_view name) {
  KISTE_TRY(check_name(name));
  const MnlApi& m = *impl_->api;
  std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE);
  struct nlmsghdr* nlh = m.nlmsg_put_header(buf.data());
  nlh->nlmsg_type = RTM_NEWLINK;
  nlh->nlmsg_flags = NLM_F_CREATE | NLM_F_EXCL;
  auto* ifm = static_cast<struct ifinfomsg*>(m.nlmsg_put_extra_header(nlh, sizeof(ifinfomsg)));
  ifm->ifi_family = AF_UNSPEC;
  std::string n(name);
  m.attr_put_strz(nlh, IFLA_IFNAME, n.c_str());
  struct nlattr* info = m.attr_nest_start(nlh, IFLA_LINKINFO);
  m.attr_put_strz(nlh, IFLA_INFO_KIND, "bridge");
  m.attr_nest_end(nlh, info);
  return impl_->request(nlh, fmt::format("create bridge {}", quote(name)));
}

Status Netlink::add_veth(std::string_view name, std::string_view peer, int peer_netns_fd) {
  KISTE_TRY(check_name(name));
  KISTE_TRY(check_name(peer));
  const MnlApi& m = *impl_->api;
  std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE);
  struct nlmsghdr* nlh = m.nlmsg_put_header(buf.data());
  nlh->nlmsg_type = RTM_NEWLINK;
  nlh->nlmsg_flags = NLM_F_CREATE | NLM_F_EXCL;
  auto* ifm = static_cast<struct ifinfomsg*>(m.nlmsg_put_extra_header(nlh, sizeof(ifinfomsg)));
  ifm->ifi_family = AF_UNSPEC;
  std::string n(name);
  std::string p(peer);
  m.attr_put_strz(nlh, IFLA_IFNAME, n.c_str());
  struct nlattr* info = m.attr_nest_start(nlh, IFLA_LINKINFO);
  m.attr_put_strz(nlh, IFLA_INFO_KIND, "veth");
  struct nlattr* data = m.attr_nest_start(nlh, IFLA_INFO_DATA);
  struct nlattr* peer_attr = m.attr_nest_start(nlh, VETH_INFO_PEER);
  auto* peer_ifm = static_cast<struct ifinfomsg*>(m.nlmsg_put_extra_header(nlh, sizeof(ifinfomsg)));
  peer_ifm->ifi_family = AF_UNSPEC;
  m.attr_put_strz(nlh, IFLA_IFNAME, p.c_str());
  if (peer_netns_fd >= 0) m.attr_put_u32(nlh, IFLA_NET_NS_FD, static_cast<uint32_t>(peer_netns_fd));
  m.attr_nest_end(nlh, peer_attr);
  m.attr_nest_end(nlh, data);
  m.attr_nest_end(nlh, info);
  return impl_->request(nlh, fmt::format("create veth {}", quote(name)));
}

namespace {

// An RTM_NEWLINK for an existing link by index, for the set_* calls.
struct nlmsghdr* link_change(const MnlApi& m, std::vector<char>& buf, int index,
                             struct ifinfomsg** ifm_out) {
  struct nlmsghdr* nlh = m.nlmsg_put_header(buf.data());
  nlh->nlmsg_type = RTM_NEWLINK;
  auto* ifm = static_cast<struct ifinfomsg*>(m.nlmsg_put_extra_header(nlh, sizeof(ifinfomsg)));
  ifm->ifi_family = AF_UNSPEC;
  ifm->ifi_index = index;
  *ifm_out = ifm;
  return nlh;
}

}  // namespace

Status Netlink::set_master(std::string_view name, std::string_view master) {
  KISTE_ASSIGN_OR_RETURN(int idx, index_of(name));
  KISTE_ASSIGN_OR_RETURN(int master_idx, index_of(master));
  std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE);
  struct ifinfomsg* ifm = nullptr;
  struct nlmsghdr* nlh = link_change(*impl_->api, buf, idx, &ifm);
  impl_->api->attr_put_u32(nlh, IFLA_MASTER, static_cast<uint32_t>(master_idx));
  return impl_->request(nlh, fmt::format("attach {} to {}", quote(name), quote(master)));
}

Status Netlink::set_up(std::string_view name) {
  KISTE_ASSIGN_OR_RETURN(int idx, index_of(name));
  std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE);
  struct ifinfomsg* ifm = nullptr;
  struct nlmsghdr* nlh = link_change(*impl_->api, buf, idx, &ifm);
  ifm->ifi_flags = IFF_UP;
  ifm->ifi_change = IFF_UP;
  return impl_->request(nlh, fmt::format("set {} up", quote(name)));
}

Status Netlink::set_mtu(std::string_view name, unsigned mtu) {
  KISTE_ASSIGN_OR_RETURN(int idx, index_of(name));
  std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE);
  struct ifinfomsg* ifm = nullptr;
  struct nlmsghdr* nlh = link_change(*impl_->api, buf, idx, &ifm);
  impl_->api->attr_put_u32(nlh, IFLA_MTU, mtu);
  return impl_->request(nlh, fmt::format("set mtu of {}", quote(name)));
}

Status Netlink::delete_link(std::string_view name) {
  auto idx = index_of(name);
  if (!idx) return idx.error().sys_errno == ENODEV ? Status{} : std::unexpected(idx.error());
  const MnlApi& m = *impl_->api;
  std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE);
  struct nlmsghdr* nlh = m.nlmsg_put_header(buf.data());
  nlh->nlmsg_type = RTM_DELLINK;
  auto* ifm = static_cast<struct ifinfomsg*>(m.nlmsg_put_extra_header(nlh, sizeof(ifinfomsg)));
  ifm->ifi_family = AF_UNSPEC;
  ifm->ifi_index = *idx;
  Status st = impl_->request(nlh, fmt::format("delete link {}", quote(name)));
  if (!st && st.error().sys_errno == ENODEV) return {};  // gone meanwhile (its peer's removal)
  return st;
}

Status Netlink::add_address(std::string_view name, const IpAddress& address, unsigned prefix) {
  KISTE_ASSIGN_OR_RETURN(int idx, index_of(name));
  const MnlApi& m = *impl_->api;
  std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE);
  struct nlmsghdr* nlh = m.nlmsg_put_header(buf.data());
  nlh->nlmsg_type = RTM_NEWADDR;
  nlh->nlmsg_flags = NLM_F_CREATE | NLM_F_EXCL;
  auto* ifa = static_cast<struct ifaddrmsg*>(m.nlmsg_put_extra_header(nlh, sizeof(ifaddrmsg)));
  ifa->ifa_family = address.is_v4() ? AF_INET : AF_INET6;
  ifa->ifa_prefixlen = static_cast<unsigned char>(prefix);
  ifa->ifa_scope = RT_SCOPE_UNIVERSE;
  ifa->ifa_index = static_cast<unsigned>(idx);
  // IPv6: no duplicate address detection; the allocator already guarantees uniqueness and DAD
  // would hold the address "tentative" for a second after the container starts.
  if (!address.is_v4()) ifa->ifa_flags = IFA_F_NODAD;
  m.attr_put(nlh, IFA_LOCAL, address.size(), address.data());
  m.attr_put(nlh, IFA_ADDRESS, address.size(), address.data());
  return impl_->request(nlh, fmt::format("add address {}/{} to {}", address.to_string(), prefix,
                                         quote(name)));
}

Status Netlink::add_default_route(const IpAddress& gateway) {
  const MnlApi& m = *impl_->api;
  std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE);
  struct nlmsghdr* nlh = m.nlmsg_put_header(buf.data());
  nlh->nlmsg_type = RTM_NEWROUTE;
  nlh->nlmsg_flags = NLM_F_CREATE | NLM_F_EXCL;
  auto* rtm = static_cast<struct rtmsg*>(m.nlmsg_put_extra_header(nlh, sizeof(rtmsg)));
  rtm->rtm_family = gateway.is_v4() ? AF_INET : AF_INET6;
  rtm->rtm_dst_len = 0;
  rtm->rtm_table = RT_TABLE_MAIN;
  rtm->rtm_protocol = RTPROT_BOOT;
  rtm->rtm_scope = RT_SCOPE_UNIVERSE;
  rtm->rtm_type = RTN_UNICAST;
  m.attr_put(nlh, RTA_GATEWAY, gateway.size(), gateway.data());
  return impl_->request(nlh, fmt::format("add default route via {}", gateway.to_string()));
}

}  // namespace kiste::network
