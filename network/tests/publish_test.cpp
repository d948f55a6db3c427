#include <kiste/network/publish.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <thread>

#include <gtest/gtest.h>

#include <kiste/base/unique_fd.hpp>

namespace kiste::network {
namespace {

TEST(Publish, DockersGrammar) {
  auto m = parse_publish("127.0.0.1:18080:8080/tcp");
  ASSERT_TRUE(m) << m.error().to_string();
  EXPECT_EQ(m->to_string(), "127.0.0.1:18080->8080/tcp");
  EXPECT_EQ(parse_publish("8080:80")->to_string(), "0.0.0.0:8080->80/tcp");
  EXPECT_EQ(parse_publish("80")->to_string(), "0.0.0.0:0->80/tcp");  // a free host port
  EXPECT_EQ(parse_publish("127.0.0.1::80")->to_string(), "127.0.0.1:0->80/tcp");
  EXPECT_EQ(parse_publish("[::1]:8080:80")->to_string(), "[::1]:8080->80/tcp");
  EXPECT_EQ(parse_publish("0.0.0.0:8080:80")->to_string(), "0.0.0.0:8080->80/tcp");
}

TEST(Publish, BadValuesSayWhatIsWrong) {
  EXPECT_EQ(parse_publish("abc").error().message, "-p `abc`: `abc` is not a port (1-65535)");
  EXPECT_EQ(parse_publish("70000:80").error().message, "-p `70000:80`: `70000` is not a port (1-65535)");
  EXPECT_EQ(parse_publish("8080:0").error().message, "-p `8080:0`: `0` is not a port (1-65535)");
  EXPECT_EQ(parse_publish("1:2:3:4").error().message,
            "-p `1:2:3:4`: expected [IP:][HOSTPORT:]CONTAINERPORT[/tcp|udp]");
  EXPECT_EQ(parse_publish("300.1.1.1:80:80").error().message,
            "-p `300.1.1.1:80:80`: `300.1.1.1` is not an IPv4 or IPv6 address");
  EXPECT_EQ(parse_publish("53/sctp").error().message, "-p `53/sctp`: the protocol is tcp or udp");
  EXPECT_EQ(parse_publish("5353:53/udp")->to_string(), "0.0.0.0:5353->53/udp");
  EXPECT_EQ(parse_publish("::1:80:80").error().message.substr(0, 15), "-p `::1:80:80`:");
}

// UDP through the proxy: each client's datagrams reach the "container" (a loopback echo server
// here) and its replies come back to that client from the published port.
TEST(Publish, UdpDatagramsAreRelayedPerClient) {
  UniqueFd echo(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof sa;
  ASSERT_EQ(::bind(echo.get(), reinterpret_cast<sockaddr*>(&sa), len), 0);
  ::getsockname(echo.get(), reinterpret_cast<sockaddr*>(&sa), &len);
  uint16_t echo_port = ntohs(sa.sin_port);
  std::thread server([&] {  // echoes two datagrams, bounded by a 10 s poll each
    for (int i = 0; i < 2; ++i) {
      pollfd p{echo.get(), POLLIN, 0};
      if (::poll(&p, 1, 10000) != 1) return;
      char buf[64];
      sockaddr_in from{};
      socklen_t fl = sizeof from;
      ssize_t n = ::recvfrom(echo.get(), buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &fl);
      if (n > 0) ::sendto(echo.get(), buf, static_cast<size_t>(n), 0, reinterpret_cast<sockaddr*>(&from), fl);
    }
  });
  auto m = parse_publish(fmt::format("127.0.0.1::{}/udp", echo_port));
  ASSERT_TRUE(m);
  auto proxy = PortProxy::start({*m}, *IpAddress::parse("127.0.0.1"));
  ASSERT_TRUE(proxy) << proxy.error().to_string();
  uint16_t published = proxy->mappings()[0].host_port;
  ASSERT_NE(published, 0);
  for (const char* msg : {"one", "two"}) {  // two clients
    UniqueFd c(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(published);
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::connect(c.get(), reinterpret_cast<sockaddr*>(&to), sizeof to), 0);
    ASSERT_EQ(::send(c.get(), msg, 3, 0), 3);
    pollfd p{c.get(), POLLIN, 0};
    ASSERT_EQ(::poll(&p, 1, 10000), 1) << msg;
    char buf[16] = {};
    EXPECT_EQ(::recv(c.get(), buf, sizeof buf, 0), 3);
    EXPECT_STREQ(buf, msg);
  }
  server.join();
}

}  // namespace
}  // namespace kiste::network
