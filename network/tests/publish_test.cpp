#include <kiste/network/publish.hpp>

#include <gtest/gtest.h>

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
            "-p `1:2:3:4`: expected [IP:][HOSTPORT:]CONTAINERPORT[/tcp]");
  EXPECT_EQ(parse_publish("300.1.1.1:80:80").error().message,
            "-p `300.1.1.1:80:80`: `300.1.1.1` is not an IPv4 or IPv6 address");
  EXPECT_EQ(parse_publish("53/udp").error().message, "-p `53/udp`: only tcp ports can be published yet");
  EXPECT_EQ(parse_publish("::1:80:80").error().message.substr(0, 15), "-p `::1:80:80`:");
}

}  // namespace
}  // namespace kiste::network
