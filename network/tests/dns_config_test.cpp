#include <kiste/network/dns_config.hpp>

#include <gtest/gtest.h>

namespace kiste::network {
namespace {

const std::string kBase = "nameserver 192.0.2.53\nsearch example.org\noptions edns0\n# kept\n";

TEST(DnsOverrides, EachKindGivenReplacesThatKindOnly) {
  EXPECT_EQ(apply_dns_overrides(kBase, {}), kBase);
  EXPECT_EQ(apply_dns_overrides(kBase, {.servers = {"198.51.100.9", "2001:db8::53"}}),
            "search example.org\noptions edns0\n# kept\nnameserver 198.51.100.9\nnameserver 2001:db8::53\n");
  EXPECT_EQ(apply_dns_overrides(kBase, {.search = {"a.test", "b.test"}, .options = {"ndots:2"}}),
            "nameserver 192.0.2.53\n# kept\nsearch a.test b.test\noptions ndots:2\n");
  // "." alone: no search domains at all (docker's spelling).
  EXPECT_EQ(apply_dns_overrides("domain x.test\nnameserver 192.0.2.1\n", {.search = {"."}}),
            "nameserver 192.0.2.1\n");
}

TEST(DnsOverrides, ValuesThatWouldAddLinesOrAreNoAddressAreRefused) {
  EXPECT_TRUE(check_dns_overrides({.servers = {"192.0.2.1", "::1"}, .search = {"a.test"}, .options = {"ndots:1"}}));
  auto bad = check_dns_overrides({.servers = {"dns.example"}});
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message, "--dns: `dns.example` is not an IPv4 or IPv6 address");
  EXPECT_FALSE(check_dns_overrides({.search = {"a.test\nnameserver 192.0.2.66"}}));
  EXPECT_FALSE(check_dns_overrides({.options = {"ndots:1 rotate"}}));
  EXPECT_FALSE(check_dns_overrides({.options = {""}}));
  EXPECT_FALSE(check_dns_overrides({.search = {"1", "2", "3", "4", "5", "6", "7"}}));
}

TEST(EmbeddedDns, ResolvConfPointsAtTheResponderAndKeepsSearchAndOptions) {
  EXPECT_EQ(embedded_dns_resolv_conf(kBase), "nameserver 127.0.0.11\nsearch example.org\noptions edns0\n# kept\n");
  EXPECT_TRUE(dns_name("db"));
  EXPECT_TRUE(dns_name("db.internal"));
  EXPECT_FALSE(dns_name(""));
  EXPECT_FALSE(dns_name("db..x"));
  EXPECT_FALSE(dns_name(".db"));
  EXPECT_FALSE(dns_name("a b"));
  EXPECT_FALSE(dns_name(std::string(64, 'a')));
}

TEST(AddHost, NameAndAddressBecomeAHostsLine) {
  IpAddress gw = *IpAddress::parse("10.88.0.1");
  EXPECT_EQ(*add_host_line("db:192.0.2.7", gw), "192.0.2.7\tdb");
  EXPECT_EQ(*add_host_line("db=192.0.2.7", gw), "192.0.2.7\tdb");
  EXPECT_EQ(*add_host_line("v6.test:2001:db8::7", gw), "2001:db8::7\tv6.test");
  EXPECT_EQ(*add_host_line("v6:[2001:db8::7]", gw), "2001:db8::7\tv6");
  EXPECT_EQ(*add_host_line("host.docker.internal:host-gateway", gw), "10.88.0.1\thost.docker.internal");
  auto bad = add_host_line("db", gw);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message, "--add-host `db`: give NAME:IP");
  EXPECT_FALSE(add_host_line("db:nonsense", gw));
  EXPECT_FALSE(add_host_line(":192.0.2.7", gw));
  EXPECT_FALSE(add_host_line("a b:192.0.2.7", gw));
}

}  // namespace
}  // namespace kiste::network
