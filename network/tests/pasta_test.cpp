// pasta's command line: only what was published is forwarded, nothing reaches the host's
// loopback, and the ports kiste chooses are free. (The pasta process itself is exercised by
// tests/e2e/rootless_e2e_test.cpp: Rootless.PastaNetworkReachesOutAndPublishes.)
#include <kiste/network/pasta.hpp>

#include <gtest/gtest.h>

#include <fmt/format.h>

namespace kiste::network {
namespace {

std::string joined(const std::vector<std::string>& args) { return fmt::format("{}", fmt::join(args, " ")); }

TEST(Pasta, NothingIsForwardedUnlessPublished) {
  EXPECT_EQ(joined(pasta_arguments({}, "/proc/self/fd/7", "/proc/self/fd/9")),
            "--foreground --quiet --config-net --ns-ifname eth0 --no-map-gw --no-netns-quit -T none -U none "
            "-t none -u none --netns /proc/self/fd/7 --pid /proc/self/fd/9");
}

TEST(Pasta, PublishedPortsBecomeItsSpecs) {
  std::vector<PortMapping> ports = {*parse_publish("127.0.0.1:18080:8080"), *parse_publish("5353:53/udp"),
                                    *parse_publish("[::1]:8443:443")};
  EXPECT_EQ(joined(pasta_arguments(ports, "N", "P")),
            "--foreground --quiet --config-net --ns-ifname eth0 --no-map-gw --no-netns-quit -T none -U none "
            "-t 127.0.0.1/18080:8080 -u 5353:53 -t ::1/8443:443 --netns N --pid P");
}

TEST(Pasta, HostPortZeroBecomesAFreePort) {
  std::vector<PortMapping> ports = {*parse_publish("127.0.0.1::80"), *parse_publish("127.0.0.1::53/udp")};
  ASSERT_TRUE(choose_free_ports(ports));
  for (const PortMapping& m : ports) {
    EXPECT_NE(m.host_port, 0) << m.to_string();
    // Free again: it can be bound now.
    PortMapping again = m;
    EXPECT_TRUE(bind_host_port(again)) << m.to_string();
  }
}

TEST(Pasta, APortInUseIsNamed) {
  std::vector<PortMapping> ports = {*parse_publish("127.0.0.1::80")};
  auto held = bind_host_port(ports[0]);
  ASSERT_TRUE(held);
  auto st = choose_free_ports(ports);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().message, fmt::format("publish 127.0.0.1:{0}->80/tcp: port {0} on 127.0.0.1: already in use",
                                            ports[0].host_port));
}

}  // namespace
}  // namespace kiste::network
