#include <kiste/network/publish.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <set>
#include <thread>

#include <kiste/base/unique_fd.hpp>

namespace kiste::network {

namespace {

Result<uint16_t> parse_port(std::string_view spec, std::string_view text, bool zero_ok) {
  unsigned v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc{} || end != text.data() + text.size() || v > 65535 ||
      (v == 0 && !zero_ok)) {
    return failf(Errc::InvalidArgument, "-p {}: {} is not a port (1-65535)", quote(spec), quote(text));
  }
  return static_cast<uint16_t>(v);
}

// A socket address for `ip` (any address of the family when empty) and `port`.
struct SockAddr {
  sockaddr_storage ss{};
  socklen_t len = 0;
};
SockAddr sock_addr(const std::optional<IpAddress>& ip, uint16_t port) {
  SockAddr a;
  if (!ip || ip->is_v4()) {
    auto* s = reinterpret_cast<sockaddr_in*>(&a.ss);
    s->sin_family = AF_INET;
    s->sin_port = htons(port);
    if (ip) std::memcpy(&s->sin_addr, ip->data(), 4);
    a.len = sizeof(sockaddr_in);
  } else {
    auto* s = reinterpret_cast<sockaddr_in6*>(&a.ss);
    s->sin6_family = AF_INET6;
    s->sin6_port = htons(port);
    std::memcpy(&s->sin6_addr, ip->data(), 16);
    a.len = sizeof(sockaddr_in6);
  }
  return a;
}

// Moves bytes from `from` to `to` until EOF or error, through a pipe with splice(2); then
// half-closes `to` so the other side sees the end.
void pump(int from, int to) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return;
  // A 1 MiB pipe (the default pipe-max-size) moves a bulk transfer in 16x fewer splice calls
  // than the default 64 KiB one; where refused, the default size serves.
  const int grown = ::fcntl(p[1], F_SETPIPE_SZ, 1 << 20);
  const size_t chunk = grown > 0 ? static_cast<size_t>(grown) : size_t{1} << 16;
  for (;;) {
    ssize_t n = ::splice(from, nullptr, p[1], nullptr, chunk, SPLICE_F_MOVE);
    if (n <= 0) break;
    ssize_t left = n;
    while (left > 0) {
      ssize_t w = ::splice(p[0], nullptr, to, nullptr, static_cast<size_t>(left), SPLICE_F_MOVE);
      if (w <= 0) {
        left = -1;
        break;
      }
      left -= w;
    }
    if (left < 0) break;
  }
  ::close(p[0]);
  ::close(p[1]);
  ::shutdown(to, SHUT_WR);
}

}  // namespace

std::string PortMapping::to_string() const {
  std::string ip = host_ip ? (host_ip->is_v4() ? host_ip->to_string() : "[" + host_ip->to_string() + "]")
                           : std::string("0.0.0.0");
  return fmt::format("{}:{}->{}/{}", ip, host_port, container_port, protocol);
}

Result<PortMapping> parse_publish(std::string_view spec) {
  PortMapping m;
  std::string_view rest = spec;
  if (size_t slash = rest.rfind('/'); slash != std::string_view::npos) {
    m.protocol = std::string(rest.substr(slash + 1));
    rest = rest.substr(0, slash);
    if (m.protocol != "tcp" && m.protocol != "udp") {
      return failf(Errc::InvalidArgument, "-p {}: the protocol is tcp or udp", quote(spec));
    }
  }
  // IP:HOST:CTR, HOST:CTR, CTR, [v6]:HOST:CTR; an empty HOST means a free port.
  std::string_view ip_part;
  if (rest.starts_with("[")) {
    size_t close = rest.find("]:");
    if (close == std::string_view::npos) {
      return failf(Errc::InvalidArgument, "-p {}: an IPv6 address goes in brackets: [::1]:8080:80", quote(spec));
    }
    ip_part = rest.substr(1, close - 1);
    rest = rest.substr(close + 2);
  }
  std::vector<std::string_view> f;
  size_t pos = 0;
  for (;;) {
    size_t c = rest.find(':', pos);
    f.push_back(rest.substr(pos, c == std::string_view::npos ? rest.npos : c - pos));
    if (c == std::string_view::npos) break;
    pos = c + 1;
  }
  if (f.size() > 3 || (f.size() == 3 && !ip_part.empty())) {
    return failf(Errc::InvalidArgument, "-p {}: expected [IP:][HOSTPORT:]CONTAINERPORT[/tcp|udp]", quote(spec));
  }
  if (f.size() == 3) ip_part = f[0];
  if (!ip_part.empty()) {
    auto ip = IpAddress::parse(ip_part);
    if (!ip) return failf(Errc::InvalidArgument, "-p {}: {}", quote(spec), ip.error().message);
    if (!(ip->is_v4() && ip->to_string() == "0.0.0.0")) m.host_ip = *ip;
  }
  KISTE_ASSIGN_OR_RETURN(m.container_port, parse_port(spec, f.back(), false));
  if (f.size() >= 2) {
    std::string_view hp = f[f.size() - 2];
    if (!hp.empty()) {
      KISTE_ASSIGN_OR_RETURN(m.host_port, parse_port(spec, hp, false));
    }
  } else {
    m.host_port = 0;  // docker: `-p 80` publishes on a random host port
  }
  return m;
}

// One forwarded connection: its two sockets live until both directions have ended.
struct Conn {
  UniqueFd client, upstream;
};

struct PortProxy::Impl {
  std::vector<PortMapping> mappings;
  std::vector<UniqueFd> listeners;
  IpAddress container;
  UniqueFd stop;  // eventfd: the acceptor ends
  std::thread acceptor;
  // Pump threads are detached; they count themselves out here, and the destructor shuts the
  // live connections down and waits for the count to reach zero.
  std::mutex mu;
  std::condition_variable idle;
  std::set<std::shared_ptr<Conn>> live;
  int pumps = 0;

  void run_pump(std::shared_ptr<Conn> conn, bool to_upstream) {
    if (to_upstream) {
      pump(conn->client.get(), conn->upstream.get());
    } else {
      pump(conn->upstream.get(), conn->client.get());
    }
    std::lock_guard lock(mu);
    if (conn.use_count() == 2) live.erase(conn);  // the other direction is done too
    conn.reset();
    if (--pumps == 0) idle.notify_all();
  }

  // A udp client of a published port: its address and a socket connected to the container,
  // whose replies go back to the client from the published port.
  struct UdpFlow {
    size_t listener;
    sockaddr_storage client;
    socklen_t len;
    UniqueFd upstream;
  };
  static constexpr size_t kMaxUdpFlows = 256;  // the oldest goes when a new client comes

  void udp_in(size_t i, std::vector<UdpFlow>& flows) {
    uint8_t buf[65536];
    sockaddr_storage from{};
    socklen_t len = sizeof from;
    ssize_t n = ::recvfrom(listeners[i].get(), buf, sizeof buf, MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&from), &len);
    if (n < 0) return;
    auto same = [&](const UdpFlow& f) {
      return f.listener == i && f.len == len && std::memcmp(&f.client, &from, len) == 0;
    };
    auto it = std::ranges::find_if(flows, same);
    if (it == flows.end()) {
      SockAddr to = sock_addr(container, mappings[i].container_port);
      UniqueFd up(::socket(to.ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
      if (!up || ::connect(up.get(), reinterpret_cast<sockaddr*>(&to.ss), to.len) != 0) return;
      if (flows.size() >= kMaxUdpFlows) flows.erase(flows.begin());
      flows.push_back({i, from, len, std::move(up)});
      it = flows.end() - 1;
    }
    (void)!::send(it->upstream.get(), buf, static_cast<size_t>(n), MSG_DONTWAIT);
  }

  void udp_out(const UdpFlow& f) {
    uint8_t buf[65536];
    ssize_t n = ::recv(f.upstream.get(), buf, sizeof buf, MSG_DONTWAIT);
    if (n < 0) return;
    (void)!::sendto(listeners[f.listener].get(), buf, static_cast<size_t>(n), MSG_DONTWAIT,
                    reinterpret_cast<const sockaddr*>(&f.client), f.len);
  }

  void accept_loop() {
    std::vector<UdpFlow> flows;
    std::vector<pollfd> fds;
    for (;;) {
      fds.clear();
      fds.push_back({stop.get(), POLLIN, 0});
      for (const UniqueFd& l : listeners) fds.push_back({l.get(), POLLIN, 0});
      for (const UdpFlow& f : flows) fds.push_back({f.upstream.get(), POLLIN, 0});
      if (::poll(fds.data(), fds.size(), -1) < 0) {
        if (errno == EINTR) continue;
        return;
      }
      if (fds[0].revents != 0) return;
      for (size_t k = 0; k < flows.size() && 1 + listeners.size() + k < fds.size(); ++k) {
        if ((fds[1 + listeners.size() + k].revents & POLLIN) != 0) udp_out(flows[k]);
      }
      for (size_t i = 1; i <= listeners.size(); ++i) {
        if ((fds[i].revents & POLLIN) == 0) continue;
        if (mappings[i - 1].protocol == "udp") {
          udp_in(i - 1, flows);
          continue;
        }
        auto conn = std::make_shared<Conn>();
        conn->client = UniqueFd(::accept4(fds[i].fd, nullptr, nullptr, SOCK_CLOEXEC));
        if (!conn->client) continue;
        SockAddr to = sock_addr(container, mappings[i - 1].container_port);
        conn->upstream = UniqueFd(::socket(to.ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0));
        // A refused or unreachable container closes the client: what a dead server looks like.
        if (!conn->upstream ||
            ::connect(conn->upstream.get(), reinterpret_cast<sockaddr*>(&to.ss), to.len) != 0) {
          continue;
        }
        std::lock_guard lock(mu);
        live.insert(conn);
        pumps += 2;
        // Exactly one reference per pump thread and one in `live` (run_pump counts on it).
        std::thread([this, c = conn]() mutable { run_pump(std::move(c), true); }).detach();
        std::thread([this, c = std::move(conn)]() mutable { run_pump(std::move(c), false); }).detach();
      }
    }
  }

  ~Impl() {
    if (acceptor.joinable()) {
      uint64_t one = 1;
      (void)!::write(stop.get(), &one, sizeof one);
      acceptor.join();
    }
    std::unique_lock lock(mu);
    for (const auto& c : live) {
      ::shutdown(c->client.get(), SHUT_RDWR);
      ::shutdown(c->upstream.get(), SHUT_RDWR);
    }
    idle.wait(lock, [this] { return pumps == 0; });
  }
};

PortProxy::PortProxy(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
PortProxy::PortProxy(PortProxy&&) noexcept = default;
PortProxy& PortProxy::operator=(PortProxy&&) noexcept = default;
PortProxy::~PortProxy() = default;

const std::vector<PortMapping>& PortProxy::mappings() const { return impl_->mappings; }

Result<UniqueFd> bind_host_port(PortMapping& m) {
  SockAddr at = sock_addr(m.host_ip, m.host_port);
  bool udp = m.protocol == "udp";
  UniqueFd s(::socket(at.ss.ss_family, (udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC, 0));
  if (!s) return std::unexpected(sys_error("socket", m.to_string()));
  int one = 1;
  ::setsockopt(s.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(s.get(), reinterpret_cast<sockaddr*>(&at.ss), at.len) != 0) {
    int err = errno;
    return failf(errc_from_errno(err), "publish {}: port {} on {}: {}", m.to_string(), m.host_port,
                 m.host_ip ? m.host_ip->to_string() : "0.0.0.0",
                 err == EADDRINUSE ? "already in use" : std::strerror(err));
  }
  if (!udp && ::listen(s.get(), 128) != 0) return std::unexpected(sys_error("listen", m.to_string()));
  sockaddr_storage bound{};
  socklen_t len = sizeof bound;
  ::getsockname(s.get(), reinterpret_cast<sockaddr*>(&bound), &len);
  m.host_port = ntohs(bound.ss_family == AF_INET ? reinterpret_cast<sockaddr_in*>(&bound)->sin_port
                                                 : reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port);
  return s;
}

Result<PortProxy> PortProxy::start(std::vector<PortMapping> mappings, const IpAddress& container) {
  auto impl = std::make_unique<Impl>();
  impl->container = container;
  for (PortMapping& m : mappings) {
    KISTE_ASSIGN_OR_RETURN(UniqueFd s, bind_host_port(m));
    impl->listeners.push_back(std::move(s));
  }
  impl->mappings = std::move(mappings);
  impl->stop = UniqueFd(::eventfd(0, EFD_CLOEXEC));
  if (!impl->stop) return std::unexpected(sys_error("eventfd", "port proxy"));
  Impl* raw = impl.get();
  impl->acceptor = std::thread([raw] { raw->accept_loop(); });
  return PortProxy(std::move(impl));
}

}  // namespace kiste::network
