#include <kiste/network/dns.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

namespace kiste::network {

namespace {

constexpr size_t kHeader = 12;
constexpr int kUpstreamTimeoutMs = 2000;

uint16_t get16(std::span<const uint8_t> m, size_t at) { return static_cast<uint16_t>(m[at] << 8 | m[at + 1]); }

void put16(std::vector<uint8_t>& out, uint16_t v) {
  out.push_back(static_cast<uint8_t>(v >> 8));
  out.push_back(static_cast<uint8_t>(v & 0xff));
}

// The name at `at`: labels joined by '.', lower-cased; `end` is the offset after the name's
// bytes where it started (after the first pointer, when there is one).
Result<std::string> read_name(std::span<const uint8_t> m, size_t at, size_t& end) {
  std::string name;
  size_t wire_len = 1;  // the final zero byte
  bool jumped = false;
  size_t pos = at;
  size_t limit = at;  // a pointer must point before this (the name's start, then each target)
  for (;;) {
    if (pos >= m.size()) return fail(Errc::InvalidArgument, "dns name: runs past the message");
    uint8_t len = m[pos];
    if ((len & 0xc0) == 0xc0) {
      if (pos + 1 >= m.size()) return fail(Errc::InvalidArgument, "dns name: truncated pointer");
      size_t target = static_cast<size_t>((len & 0x3f) << 8 | m[pos + 1]);
      // Strictly backwards, and before the previous pointer's target: the targets decrease, so
      // a chain of pointers cannot loop and ends within the message.
      if (target >= pos || target >= limit) {
        return fail(Errc::InvalidArgument, "dns name: pointer does not point back");
      }
      if (!jumped) end = pos + 2;
      jumped = true;
      limit = target;
      pos = target;
      continue;
    }
    if ((len & 0xc0) != 0) return fail(Errc::InvalidArgument, "dns name: unknown label type");
    if (len == 0) {
      if (!jumped) end = pos + 1;
      return name;
    }
    if (pos + 1 + len > m.size()) return fail(Errc::InvalidArgument, "dns name: label runs past the message");
    wire_len += 1 + len;
    if (wire_len > 255) return fail(Errc::InvalidArgument, "dns name: longer than 255 bytes");
    if (!name.empty()) name += '.';
    for (size_t i = 0; i < len; ++i) {
      char c = static_cast<char>(m[pos + 1 + i]);
      name += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    }
    pos += 1 + len;
  }
}

}  // namespace

Result<DnsQuestion> parse_dns_query(std::span<const uint8_t> m) {
  if (m.size() < kHeader) return fail(Errc::InvalidArgument, "dns query: shorter than a header");
  uint16_t flags = get16(m, 2);
  if ((flags & 0x8000) != 0) return fail(Errc::InvalidArgument, "dns query: is a response");
  if (((flags >> 11) & 0xf) != 0) return fail(Errc::InvalidArgument, "dns query: not a standard query");
  if (get16(m, 4) != 1) return fail(Errc::InvalidArgument, "dns query: not exactly one question");
  DnsQuestion q;
  q.id = get16(m, 0);
  size_t end = 0;
  KISTE_ASSIGN_OR_RETURN(q.name, read_name(m, kHeader, end));
  if (end + 4 > m.size()) return fail(Errc::InvalidArgument, "dns query: truncated question");
  q.type = get16(m, end);
  q.klass = get16(m, end + 2);
  q.end = end + 4;
  return q;
}

std::vector<uint8_t> dns_response(std::span<const uint8_t> query, const DnsQuestion& q, uint8_t rcode,
                                  std::span<const IpAddress> addresses) {
  std::vector<uint8_t> out(query.begin(), query.begin() + static_cast<std::ptrdiff_t>(q.end));
  uint16_t flags = get16(query, 2);
  flags = static_cast<uint16_t>(0x8000 | 0x0400 | (flags & 0x0100) | 0x0080 | (rcode & 0xf));  // QR AA RD RA
  out[2] = static_cast<uint8_t>(flags >> 8);
  out[3] = static_cast<uint8_t>(flags & 0xff);
  uint16_t answers = 0;
  std::vector<uint8_t> records;
  bool in = q.klass == kDnsClassIn;
  for (const IpAddress& a : addresses) {
    bool want = in && ((a.is_v4() && q.type == kDnsTypeA) || (!a.is_v4() && q.type == kDnsTypeAaaa));
    if (!want || rcode != kDnsNoError) continue;
    put16(records, 0xc000 | kHeader);  // the question's name
    put16(records, q.type);
    put16(records, kDnsClassIn);
    put16(records, 0);
    put16(records, 600);  // TTL
    put16(records, static_cast<uint16_t>(a.size()));
    records.insert(records.end(), a.data(), a.data() + a.size());
    ++answers;
  }
  // ANCOUNT, NSCOUNT, ARCOUNT: only our answers (the query's EDNS record is not echoed).
  out[6] = static_cast<uint8_t>(answers >> 8);
  out[7] = static_cast<uint8_t>(answers & 0xff);
  std::fill(out.begin() + 8, out.begin() + 12, 0);
  out.insert(out.end(), records.begin(), records.end());
  return out;
}

std::vector<IpAddress> resolv_conf_nameservers(std::string_view text) {
  std::vector<IpAddress> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    std::string_view line = text.substr(pos, (nl == text.npos ? text.size() : nl) - pos);
    pos = nl == text.npos ? text.size() : nl + 1;
    if (!line.starts_with("nameserver")) continue;
    line.remove_prefix(10);
    while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
    line = line.substr(0, line.find_first_of(" \t#;%"));
    if (auto a = IpAddress::parse(line)) out.push_back(*a);
  }
  return out;
}

Result<std::unique_ptr<DnsResponder>> DnsResponder::start(int netns_fd, DnsLookupFn lookup,
                                                          std::vector<IpAddress> upstream) {
  UniqueFd sock;
  int err = 0;
  const char* call = "setns";
  // The socket is made by a thread inside the container's namespace; it stays bound there.
  std::thread t([&] {
    if (::setns(netns_fd, CLONE_NEWNET) != 0) {
      err = errno;
      return;
    }
    call = "socket";
    sock = UniqueFd(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!sock) {
      err = errno;
      return;
    }
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(53);
    sa.sin_addr.s_addr = htonl(0x7f00000b);  // 127.0.0.11
    call = "bind";
    if (::bind(sock.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) err = errno;
  });
  t.join();
  if (err != 0) return std::unexpected(sys_error_code(err, call, "the container's DNS on 127.0.0.11:53"));
  return serve(std::move(sock), std::move(lookup), std::move(upstream));
}

Result<std::unique_ptr<DnsResponder>> DnsResponder::serve(UniqueFd socket, DnsLookupFn lookup,
                                                          std::vector<IpAddress> upstream,
                                                          uint16_t upstream_port) {
  UniqueFd stop(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!stop) return std::unexpected(sys_error("eventfd", "the container's DNS"));
  std::unique_ptr<DnsResponder> r(
      new DnsResponder(std::move(socket), std::move(stop), std::move(lookup), std::move(upstream), upstream_port));
  r->thread_ = std::thread([p = r.get()] { p->loop(); });
  return r;
}

DnsResponder::~DnsResponder() {
  uint64_t one = 1;
  (void)!::write(stop_.get(), &one, sizeof one);
  if (thread_.joinable()) thread_.join();
}

void DnsResponder::loop() {
  std::vector<uint8_t> buf(4096);
  for (;;) {
    pollfd p[2] = {{socket_.get(), POLLIN, 0}, {stop_.get(), POLLIN, 0}};
    if (::poll(p, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (p[1].revents != 0) return;
    sockaddr_storage from{};
    socklen_t len = sizeof from;
    ssize_t n = ::recvfrom(socket_.get(), buf.data(), buf.size(), 0, reinterpret_cast<sockaddr*>(&from), &len);
    if (n <= 0) continue;
    std::vector<uint8_t> reply = answer(std::span(buf.data(), static_cast<size_t>(n)));
    if (reply.empty()) continue;
    (void)!::sendto(socket_.get(), reply.data(), reply.size(), 0, reinterpret_cast<sockaddr*>(&from), len);
  }
}

std::vector<uint8_t> DnsResponder::answer(std::span<const uint8_t> query) const {
  auto q = parse_dns_query(query);
  if (!q) return {};  // garbage gets no answer, as from any resolver
  // Single-label names and names of the network's containers are ours.
  std::vector<IpAddress> local = lookup_ ? lookup_(q->name) : std::vector<IpAddress>{};
  if (!local.empty()) return dns_response(query, *q, kDnsNoError, local);
  std::vector<uint8_t> up = forward(query, q->id);
  if (!up.empty()) return up;
  return dns_response(query, *q, kDnsServFail, {});
}

std::vector<uint8_t> DnsResponder::forward(std::span<const uint8_t> query, uint16_t id) const {
  for (const IpAddress& server : upstream_) {
    sockaddr_storage ss{};
    socklen_t len = 0;
    if (server.is_v4()) {
      auto* sa = reinterpret_cast<sockaddr_in*>(&ss);
      sa->sin_family = AF_INET;
      sa->sin_port = htons(upstream_port_);
      std::memcpy(&sa->sin_addr, server.data(), 4);
      len = sizeof *sa;
    } else {
      auto* sa = reinterpret_cast<sockaddr_in6*>(&ss);
      sa->sin6_family = AF_INET6;
      sa->sin6_port = htons(upstream_port_);
      std::memcpy(&sa->sin6_addr, server.data(), 16);
      len = sizeof *sa;
    }
    UniqueFd s(::socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!s || ::connect(s.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0) continue;
    if (::send(s.get(), query.data(), query.size(), 0) != static_cast<ssize_t>(query.size())) continue;
    std::vector<uint8_t> buf(65535);
    pollfd p{s.get(), POLLIN, 0};
    while (::poll(&p, 1, kUpstreamTimeoutMs) == 1) {
      ssize_t n = ::recv(s.get(), buf.data(), buf.size(), 0);
      if (n < static_cast<ssize_t>(kHeader)) break;  // refused (ICMP) or garbage: next server
      if (get16(buf, 0) != id) continue;
      buf.resize(static_cast<size_t>(n));
      return buf;
    }
  }
  return {};
}

}  // namespace kiste::network
