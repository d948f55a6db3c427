#include <kiste/network/address.hpp>

#include <gtest/gtest.h>

namespace kiste::network {
namespace {

TEST(Address, ParsesBothFamiliesAndRefusesTheRest) {
  auto a = IpAddress::parse("192.0.2.7");
  ASSERT_TRUE(a) << a.error().to_string();
  EXPECT_TRUE(a->is_v4());
  EXPECT_EQ(a->to_string(), "192.0.2.7");
  auto b = IpAddress::parse("2001:db8::1");
  ASSERT_TRUE(b);
  EXPECT_FALSE(b->is_v4());
  EXPECT_EQ(b->to_string(), "2001:db8::1");
  auto bad = IpAddress::parse("192.0.2.300");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message, "`192.0.2.300` is not an IPv4 or IPv6 address");
}

TEST(Address, PlusCarriesAcrossBytes) {
  EXPECT_EQ(IpAddress::parse("10.0.0.255")->plus(1).to_string(), "10.0.1.0");
  EXPECT_EQ(IpAddress::parse("10.0.255.255")->plus(2).to_string(), "10.1.0.1");
  EXPECT_EQ(IpAddress::parse("fd00::ffff")->plus(1).to_string(), "fd00::1:0");
}

TEST(Subnet, ParsesAndNamesWhatIsWrong) {
  auto s = Subnet::parse("198.51.100.0/24");
  ASSERT_TRUE(s) << s.error().to_string();
  EXPECT_EQ(s->to_string(), "198.51.100.0/24");
  EXPECT_EQ(s->host_count(), 254u);
  EXPECT_EQ(s->host(1).to_string(), "198.51.100.1");
  EXPECT_EQ(s->host(254).to_string(), "198.51.100.254");

  EXPECT_EQ(Subnet::parse("198.51.100.1/24").error().message,
            "subnet `198.51.100.1/24`: 198.51.100.1/24 has host bits set (did you mean "
            "198.51.100.0/24?)");
  EXPECT_EQ(Subnet::parse("198.51.100.0").error().message,
            "subnet `198.51.100.0` has no /prefix (e.g. 10.89.0.0/24)");
  EXPECT_EQ(Subnet::parse("198.51.100.0/33").error().message,
            "subnet `198.51.100.0/33`: prefix /33 is longer than 32 bits");
  EXPECT_EQ(Subnet::parse("198.51.100.0/x").error().message,
            "subnet `198.51.100.0/x`: `x` is not a prefix length");
  EXPECT_FALSE(Subnet::parse("nonsense/24"));
}

TEST(Subnet, ContainsAndOverlaps) {
  auto a = *Subnet::parse("10.88.0.0/16");
  auto b = *Subnet::parse("10.88.3.0/24");
  auto c = *Subnet::parse("10.89.0.0/24");
  auto v6 = *Subnet::parse("fd00:1::/64");
  EXPECT_TRUE(a.overlaps(b));
  EXPECT_TRUE(b.overlaps(a));
  EXPECT_FALSE(a.overlaps(c));
  EXPECT_FALSE(a.overlaps(v6));
  EXPECT_TRUE(a.contains(*IpAddress::parse("10.88.200.1")));
  EXPECT_FALSE(b.contains(*IpAddress::parse("10.88.4.1")));
  EXPECT_TRUE(v6.contains(*IpAddress::parse("fd00:1::abcd")));
  EXPECT_FALSE(v6.contains(*IpAddress::parse("10.88.0.1")));
}

TEST(Subnet, NextStepsByItsOwnSize) {
  EXPECT_EQ(Subnet::parse("10.88.0.0/24")->next(1).to_string(), "10.88.1.0/24");
  EXPECT_EQ(Subnet::parse("10.88.255.0/24")->next(1).to_string(), "10.89.0.0/24");
  EXPECT_EQ(Subnet::parse("10.88.0.0/20")->next(3).to_string(), "10.88.48.0/20");
  EXPECT_EQ(Subnet::parse("fd00:0:0:1::/64")->next(2).to_string(), "fd00:0:0:3::/64");
}

TEST(Subnet, OffsetOfIsTheInverseOfHost) {
  auto s = *Subnet::parse("10.88.0.0/16");
  EXPECT_EQ(s.offset_of(s.host(300)), 300u);
  auto v6 = *Subnet::parse("fd00:1::/64");
  EXPECT_EQ(v6.offset_of(v6.host(70000)), 70000u);
  EXPECT_EQ(v6.host_count(), (uint64_t{1} << 32) - 1);
}

}  // namespace
}  // namespace kiste::network

#include <kiste/network/bridge.hpp>

namespace kiste::network {
namespace {

TEST(ResolvConf, LoopbackResolversAreReplacedByTheUpstreamOnes) {
  std::string host = "nameserver 127.0.0.53\noptions edns0 trust-ad\nsearch example.org\n";
  std::string upstream = "nameserver 192.0.2.53\nnameserver 127.0.0.1\nsearch example.org\n";
  EXPECT_EQ(container_resolv_conf(host, upstream), "nameserver 192.0.2.53\nsearch example.org\n");
  // A host with real servers keeps them (and drops a loopback one among them).
  EXPECT_EQ(container_resolv_conf("nameserver 198.51.100.1\nnameserver ::1\n", upstream),
            "nameserver 198.51.100.1\n");
  // Nothing usable anywhere: no nameserver rather than one nobody configured.
  EXPECT_EQ(container_resolv_conf("nameserver 127.0.0.53\nsearch x\n", ""), "search x\n");
  EXPECT_TRUE(check_network_name("web_1.net-2"));
  EXPECT_FALSE(check_network_name("-x"));
  EXPECT_FALSE(check_network_name("a/b"));
  EXPECT_EQ(host_veth_name("0123456789abcdef", 0), "kv0123456789a0");
}

}  // namespace
}  // namespace kiste::network
