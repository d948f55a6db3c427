#include <kiste/network/dns.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <thread>

#include <gtest/gtest.h>

namespace kiste::network {
namespace {

// A query for `name` (type A unless given), id 0x1234, RD set.
std::vector<uint8_t> query(std::string_view name, uint16_t type = kDnsTypeA) {
  std::vector<uint8_t> m = {0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0};
  size_t pos = 0;
  while (pos <= name.size() && !name.empty()) {
    size_t dot = name.find('.', pos);
    if (dot == name.npos) dot = name.size();
    m.push_back(static_cast<uint8_t>(dot - pos));
    m.insert(m.end(), name.begin() + static_cast<std::ptrdiff_t>(pos), name.begin() + static_cast<std::ptrdiff_t>(dot));
    pos = dot + 1;
  }
  m.push_back(0);
  m.insert(m.end(), {static_cast<uint8_t>(type >> 8), static_cast<uint8_t>(type), 0, 1});
  return m;
}

TEST(Dns, ParsesAQueryAndLowerCasesItsName) {
  auto m = query("Db.Example");
  auto q = parse_dns_query(m);
  ASSERT_TRUE(q) << q.error().to_string();
  EXPECT_EQ(q->id, 0x1234);
  EXPECT_EQ(q->name, "db.example");
  EXPECT_EQ(q->type, kDnsTypeA);
  EXPECT_EQ(q->klass, kDnsClassIn);
  EXPECT_EQ(q->end, m.size());
}

TEST(Dns, HostileQueriesAreRefusedNotFollowed) {
  auto m = query("db");
  for (size_t n = 0; n < m.size(); ++n) {  // every truncation
    EXPECT_FALSE(parse_dns_query(std::span(m.data(), n))) << n;
  }
  // A pointer to itself, and two pointing at each other: no loop, an error.
  std::vector<uint8_t> self = {0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1};
  EXPECT_FALSE(parse_dns_query(self));
  std::vector<uint8_t> pair = {0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 14, 0xc0, 12, 0, 1, 0, 1};
  EXPECT_FALSE(parse_dns_query(pair));
  // A label then a pointer back to it: a loop that labels alone would only end at 255 bytes.
  std::vector<uint8_t> loop = {0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 'a', 0xc0, 12, 0, 1, 0, 1};
  auto looped = parse_dns_query(loop);
  ASSERT_FALSE(looped);
  EXPECT_EQ(looped.error().message, "dns name: pointer does not point back");
  // A name longer than 255 bytes.
  std::string long_name;
  for (int i = 0; i < 5; ++i) long_name += std::string(60, 'a') + ".";
  long_name.pop_back();
  EXPECT_FALSE(parse_dns_query(query(long_name)));
  auto response = query("db");
  response[2] |= 0x80;
  EXPECT_FALSE(parse_dns_query(response));
  auto two = query("db");
  two[5] = 2;
  EXPECT_FALSE(parse_dns_query(two));
  auto label = query("db");
  label[12] = 0x40;  // the reserved label type
  EXPECT_FALSE(parse_dns_query(label));
}

TEST(Dns, AnswersCarryTheAddressesOfTheQuestionsFamily) {
  auto m = query("db");
  auto q = *parse_dns_query(m);
  std::vector<IpAddress> addrs = {*IpAddress::parse("10.89.0.5"), *IpAddress::parse("fd00::5")};
  auto r = dns_response(m, q, kDnsNoError, addrs);
  ASSERT_EQ(r.size(), m.size() + 16);
  EXPECT_EQ(r[0], 0x12);
  EXPECT_EQ(r[2] & 0x80, 0x80);  // a response
  EXPECT_EQ(r[3] & 0x0f, 0);     // NOERROR
  EXPECT_EQ(r[7], 1);            // one answer
  EXPECT_EQ(std::vector<uint8_t>(r.end() - 4, r.end()), (std::vector<uint8_t>{10, 89, 0, 5}));
  // AAAA of a name with only a v6 address among them; an empty NOERROR for A-only names.
  auto m6 = query("db", kDnsTypeAaaa);
  auto r6 = dns_response(m6, *parse_dns_query(m6), kDnsNoError, std::span(addrs).first(1));
  EXPECT_EQ(r6.size(), m6.size());
  EXPECT_EQ(r6[7], 0);
  auto fail = dns_response(m, q, kDnsServFail, {});
  EXPECT_EQ(fail[3] & 0x0f, kDnsServFail);
}

TEST(Dns, NameserversOfAResolvConf) {
  auto ns = resolv_conf_nameservers("search x\nnameserver 192.0.2.53\nnameserver\tfd00::53 # c\nnameserver bad\n");
  ASSERT_EQ(ns.size(), 2u);
  EXPECT_EQ(ns[0].to_string(), "192.0.2.53");
  EXPECT_EQ(ns[1].to_string(), "fd00::53");
}

UniqueFd udp_on_loopback(uint16_t& port) {
  UniqueFd s(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof sa;
  if (::bind(s.get(), reinterpret_cast<sockaddr*>(&sa), len) != 0) return {};
  ::getsockname(s.get(), reinterpret_cast<sockaddr*>(&sa), &len);
  port = ntohs(sa.sin_port);
  return s;
}

// Local names from the lookup, the rest through the upstream (a loopback socket here), and
// SERVFAIL when there is no upstream to ask.
TEST(DnsResponder, AnswersLocalNamesAndForwardsTheRest) {
  uint16_t up_port = 0;
  UniqueFd up = udp_on_loopback(up_port);
  ASSERT_TRUE(up);
  std::thread upstream([&] {  // answers one query with NXDOMAIN, bounded by a 10 s poll
    pollfd p{up.get(), POLLIN, 0};
    if (::poll(&p, 1, 10000) != 1) return;
    uint8_t buf[512];
    sockaddr_in from{};
    socklen_t len = sizeof from;
    ssize_t n = ::recvfrom(up.get(), buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &len);
    if (n < 12) return;
    buf[2] |= 0x80;
    buf[3] = (buf[3] & 0xf0) | kDnsNxDomain;
    ::sendto(up.get(), buf, static_cast<size_t>(n), 0, reinterpret_cast<sockaddr*>(&from), len);
  });
  uint16_t port = 0;
  UniqueFd sock = udp_on_loopback(port);
  auto lookup = [](std::string_view name) {
    return name == "db" ? std::vector<IpAddress>{*IpAddress::parse("10.89.0.5")} : std::vector<IpAddress>{};
  };
  auto r = DnsResponder::serve(std::move(sock), lookup, {*IpAddress::parse("127.0.0.1")}, up_port);
  ASSERT_TRUE(r) << r.error().to_string();

  auto local = (*r)->answer(query("DB"));
  ASSERT_GT(local.size(), 4u);
  EXPECT_EQ(std::vector<uint8_t>(local.end() - 4, local.end()), (std::vector<uint8_t>{10, 89, 0, 5}));
  auto forwarded = (*r)->answer(query("elsewhere.test"));
  upstream.join();
  ASSERT_GT(forwarded.size(), 4u);
  EXPECT_EQ(forwarded[3] & 0x0f, kDnsNxDomain) << "the upstream's answer, passed on";
  EXPECT_TRUE((*r)->answer(std::vector<uint8_t>{1, 2, 3}).empty());

  // Over the socket, with no upstream: SERVFAIL.
  UniqueFd sock2 = udp_on_loopback(port);
  auto none = DnsResponder::serve(std::move(sock2), lookup, {});
  ASSERT_TRUE(none);
  UniqueFd c(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(c.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
  auto q = query("elsewhere.test");
  ASSERT_EQ(::send(c.get(), q.data(), q.size(), 0), static_cast<ssize_t>(q.size()));
  pollfd p{c.get(), POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, 10000), 1);
  uint8_t buf[512];
  ssize_t n = ::recv(c.get(), buf, sizeof buf, 0);
  ASSERT_GE(n, 12);
  EXPECT_EQ(buf[3] & 0x0f, kDnsServFail);
}

}  // namespace
}  // namespace kiste::network
