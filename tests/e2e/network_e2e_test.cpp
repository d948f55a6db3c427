// Issue 17, bridge networks, through the kiste binary. This test process first unshares a
// network namespace of its own (main()); every kiste it starts inherits it, so the bridges,
// veths, nft tables and leases live and die there. The "upstream" is a second namespace made
// here, on a veth with documentation addresses (198.51.100.0/24): no packet reaches the host's
// interfaces or any address this test did not make.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <thread>

#include <gtest/gtest.h>

#include <kiste/base/sys.hpp>
#include <kiste/base/unique_fd.hpp>
#include <kiste/network/dns.hpp>
#include <kiste/network/netlink.hpp>
#include <kiste/network/nft.hpp>
#include <kiste/testing/busybox_rootfs.hpp>
#include <kiste/testing/kiste_cli.hpp>
#include <kiste/testing/netns.hpp>
#include <kiste/testing/require_root.hpp>
#include <kiste/testing/temp_root.hpp>

namespace kiste::testing {
namespace {

namespace fs = std::filesystem;
bool g_own_netns = false;

// What is left of kiste in this namespace: links named kiste* or kv*, and nft tables.
std::string leftovers() {
  std::string out;
  for (const auto& e : fs::directory_iterator("/sys/class/net")) {
    std::string n = e.path().filename();
    if (n.starts_with("kiste") || n.starts_with("kv")) out += "link " + n + "\n";
  }
  auto nft = network::Nft::open();
  if (nft) {
    auto tables = nft->query("list tables");
    if (tables && !tables->empty()) out += "nft " + *tables;
  }
  return out;
}

class NetworkE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    KISTE_REQUIRE_ROOT();
    if (!g_own_netns) GTEST_SKIP() << "could not unshare a network namespace";
    auto r = kiste_.run("import -c 'CMD [\"/bin/sh\"]' " + busybox_tar().native() +
                        " busybox 2>/dev/null");
    ASSERT_EQ(r.status, 0) << r.output;
  }
  TempRoot tmp_{"kiste-net-e2e-"};
  KisteCli kiste_{tmp_ / "root"};
};

TEST_F(NetworkE2E, CreateListInspectRemoveAndBadInput) {
  auto r = kiste_.run("network create --subnet 192.0.2.0/24 n1");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(std::regex_match(trim(r.output), std::regex("[0-9a-f]{64}"))) << r.output;
  r = kiste_.run("network ls");
  EXPECT_NE(r.output.find("n1"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("192.0.2.0/24"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find(" kiste "), std::string::npos) << r.output;  // the default network
  r = kiste_.run("network inspect n1");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("\"Subnet\": \"192.0.2.0/24\""), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("\"Gateway\": \"192.0.2.1\""), std::string::npos) << r.output;

  struct Bad {
    const char* args;
    const char* message;
  } bad[] = {
      {"network create --subnet 192.0.2.128/25 n2",
       "kiste: error: network create `n2`: subnet 192.0.2.128/25 overlaps network `n1` (192.0.2.0/24)\n"},
      {"network create n1", "kiste: error: network create `n1`: network `n1` already exists\n"},
      {"network create --subnet 192.0.2.1/24 n3",
       "kiste: error: network create `n3`: subnet `192.0.2.1/24`: 192.0.2.1/24 has host bits set (did "
       "you mean 192.0.2.0/24?)\n"},
      {"network create 'bad/name'",
       "kiste: error: network name `bad/name`: must match [a-zA-Z0-9][a-zA-Z0-9_.-]* (at most 64 "
       "bytes)\n"},
      {"network rm nosuch", "kiste: error: no network `nosuch` (see `kiste network ls`)\n"},
      {"run --rm --network nosuch busybox true", "kiste: error: no network `nosuch` (see `kiste network ls`)\n"},
      {"run --rm --ip 192.0.2.9 busybox true", "kiste: error: --ip needs --network NAME (a bridge network)\n"},
      {"run --rm --network n1 --ip 198.51.100.9 busybox true",
       "kiste: error: address 198.51.100.9 is not in the network's subnet 192.0.2.0/24\n"},
  };
  for (const Bad& b : bad) {
    r = kiste_.run(b.args);
    EXPECT_EQ(r.status, 125) << b.args;
    EXPECT_EQ(r.output, b.message) << b.args;
  }
  r = kiste_.run("network rm n1 kiste");
  EXPECT_EQ(r.status, 0) << r.output;
  r = kiste_.run("network ls -q");
  EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;  // the default
  EXPECT_EQ(leftovers(), "") << "after network rm";
  r = kiste_.run("network rm kiste");
  EXPECT_EQ(leftovers(), "");
}

// A container on a bridge gets its leased address, a default route through the gateway and
// /etc/hosts naming it; it reaches an upstream server in another namespace through NAT (the
// server sees the host's address); afterwards no veth, lease or rule is left.
// An "upstream" TCP server at 198.51.100.1 in a namespace of its own, on a veth to this one
// (up0, 198.51.100.2): it answers one connection with "pong" and records the peer's address.
struct UpstreamServer {
  UniqueFd ns = new_peer_netns("up0", "198.51.100.2", "198.51.100.1");
  OneShotServer server{ns.get(), "198.51.100.1"};
  [[nodiscard]] int port() const { return server.port(); }
  std::string peer() { return server.peer(); }
};

TEST_F(NetworkE2E, RunOnABridgeReachesUpstreamThroughNat) {
  UpstreamServer upstream;
  ASSERT_GT(upstream.port(), 0);

  auto r = kiste_.run("network create --subnet 203.0.113.0/24 n1");
  ASSERT_EQ(r.status, 0) << r.output;
  r = kiste_.run(fmt::format(
      "run --rm --network n1 --hostname web busybox sh -c "
      "'cat /etc/hosts; ip -4 addr show eth0; ip route; nc 198.51.100.1 {} </dev/null'",
      upstream.port()));
  std::string peer = upstream.peer();
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(std::regex_search(r.output, std::regex("203\\.0\\.113\\.[0-9]+\tweb"))) << r.output;
  EXPECT_TRUE(std::regex_search(r.output, std::regex("inet 203\\.0\\.113\\.[0-9]+/24"))) << r.output;
  EXPECT_NE(r.output.find("default via 203.0.113.1"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("pong"), std::string::npos) << r.output;
  EXPECT_EQ(peer, "198.51.100.2") << "the upstream sees the host's address (masquerade)";

  auto leases = kiste_.run("network inspect n1");
  EXPECT_NE(leases.output.find("\"Containers\": {}"), std::string::npos) << leases.output;
  std::string left = leftovers();
  EXPECT_EQ(left.find("link kv"), std::string::npos) << left;
  r = kiste_.run("network rm n1");
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(leftovers(), "");
}

// `kiste build`'s RUN steps get the default bridge, as docker's: each step a namespace of its own
// on kiste0, out through NAT (the upstream sees this namespace's address), but neither this
// namespace's 127.0.0.1 nor its abstract unix sockets; `--network host` reaches both and
// `--network none` has only loopback. A step's lease and veth go when it ends, also when it fails.
TEST_F(NetworkE2E, BuildRunStepsGetTheDefaultBridge) {
  UpstreamServer upstream;
  ASSERT_GT(upstream.port(), 0);
  int port = 0;
  UniqueFd tcp(listen_on_loopback(&port));
  ASSERT_TRUE(tcp);
  UniqueFd ux(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ASSERT_TRUE(ux);
  const std::string name = "kiste-test-" + sys::random_hex(6);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::memcpy(a.sun_path + 1, name.data(), name.size());
  ASSERT_EQ(::bind(ux.get(), reinterpret_cast<sockaddr*>(&a),
                   static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size())),
            0);
  ASSERT_EQ(::listen(ux.get(), 8), 0);
  const fs::path ctx = tmp_ / "ctx";
  fs::create_directories(ctx);
  fs::copy_file(kiste_test_init_binary(), ctx / "probe");
  // Each probe records its answer and never fails the step, so the files tell what happened.
  std::ofstream(ctx / "Containerfile") << fmt::format(
      "FROM busybox\nCOPY probe /probe\n"
      "RUN nc 198.51.100.1 {} </dev/null > /upstream || true\n"
      "RUN /probe connect tcp:{} > /tcp || true\n"
      "RUN /probe connect unix:@{} > /unix || true\n"
      "RUN ls /sys/class/net > /links && ip -4 addr show eth0 > /addr || true\n",
      upstream.port(), port, name);
  const std::string show = "run --rm {} cat /upstream /tcp /unix /links";
  const std::string refused = fmt::format("errno={}\n", ECONNREFUSED);

  auto r = kiste_.run("build -q -t bridged " + ctx.native());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(upstream.peer(), "198.51.100.2") << "the upstream sees the host's address (masquerade)";
  r = kiste_.run(fmt::format(fmt::runtime(show), "bridged"));
  EXPECT_EQ(r.output, "pong\n" + refused + refused + "eth0\nlo\n");
  // Nothing of the steps is left: no veth, no lease, no nft element naming a step's address.
  std::smatch addr;
  std::string step_addr = kiste_.run("run --rm bridged cat /addr").output;
  ASSERT_TRUE(std::regex_search(step_addr, addr, std::regex("inet ([0-9.]+)/"))) << step_addr;
  EXPECT_NE(kiste_.run("network inspect kiste").output.find("\"Containers\": {}"), std::string::npos);
  EXPECT_EQ(leftovers().find("link kv"), std::string::npos) << leftovers();
  auto nft = network::Nft::open();
  ASSERT_TRUE(nft);
  auto ruleset = nft->query("list ruleset");
  ASSERT_TRUE(ruleset);
  EXPECT_EQ(ruleset->find(addr[1].str()), std::string::npos) << *ruleset;

  r = kiste_.run("build -q --network host -t hosted " + ctx.native());
  ASSERT_EQ(r.status, 0) << r.output;
  r = kiste_.run(fmt::format(fmt::runtime(show), "hosted"));
  EXPECT_NE(r.output.find("connected\nconnected\n"), std::string::npos) << r.output;
  r = kiste_.run("build -q --network none -t private " + ctx.native());
  ASSERT_EQ(r.status, 0) << r.output;
  r = kiste_.run(fmt::format(fmt::runtime(show), "private"));
  EXPECT_EQ(r.output, refused + refused + "lo\n");

  // A failing step gives its lease and veth back too.
  std::ofstream(ctx / "Containerfile") << "FROM busybox\nRUN false\n";
  r = kiste_.run("build -q " + ctx.native());
  EXPECT_NE(r.status, 0) << r.output;
  EXPECT_NE(kiste_.run("network inspect kiste").output.find("\"Containers\": {}"), std::string::npos);
  EXPECT_EQ(leftovers().find("link kv"), std::string::npos) << leftovers();
  EXPECT_EQ(kiste_.run("network rm kiste").status, 0);
  EXPECT_EQ(leftovers(), "");
}

TEST_F(NetworkE2E, InternalNetworkHasNoWayOut) {
  auto r = kiste_.run("network create --internal --subnet 203.0.113.0/24 inner");
  ASSERT_EQ(r.status, 0) << r.output;
  // The gateway answers; nothing beyond the bridge does (no masquerade, forward dropped).
  r = kiste_.run("run --rm --network inner busybox sh -c 'ping -c1 -W2 203.0.113.1 >/dev/null && echo gw-ok; "
                 "ping -c1 -W1 198.51.100.1 >/dev/null || echo out-blocked'");
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("gw-ok"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("out-blocked"), std::string::npos) << r.output;
  EXPECT_EQ(kiste_.run("network rm inner").status, 0);
  EXPECT_EQ(leftovers(), "");
}

// 20 containers started at once on one network get 20 distinct addresses (the lease lock), and
// give them all back.
TEST_F(NetworkE2E, TwentyParallelRunsGetTwentyAddresses) {
  ASSERT_EQ(kiste_.run("network create --subnet 192.0.2.0/24 par").status, 0);
  std::string script;
  for (int i = 0; i < 20; ++i) {
    script += fmt::format("kiste --root {} run --rm --network par busybox ip -4 -o addr show eth0 "
                          "> {}/out{} 2>&1 &\n",
                          kiste_.root().native(), tmp_.path().native(), i);
  }
  script += "wait\n";
  fs::path sh = tmp_ / "par.sh";
  {
    std::ofstream f(sh);
    f << "PATH=" << fs::path(kiste_binary()).parent_path().native() << ":$PATH\n" << script;
  }
  ASSERT_EQ(run_shell("sh " + sh.native()), 0);
  std::set<std::string> addrs;
  std::regex inet("inet (192\\.0\\.2\\.[0-9]+)/24");
  for (int i = 0; i < 20; ++i) {
    std::ifstream f(tmp_ / fmt::format("out{}", i));
    std::string text((std::istreambuf_iterator<char>(f)), {});
    std::smatch m;
    ASSERT_TRUE(std::regex_search(text, m, inet)) << i << ": " << text;
    addrs.insert(m[1]);
  }
  EXPECT_EQ(addrs.size(), 20u);
  auto r = kiste_.run("network inspect par");
  EXPECT_NE(r.output.find("\"Containers\": {}"), std::string::npos) << r.output;
  EXPECT_EQ(kiste_.run("network rm par").status, 0);
  EXPECT_EQ(leftovers(), "");
}

// Connects to addr:port from the namespace `netns` (-1: this one) with a 1.5 s bound, sends an
// HTTP request and returns what came back ("" when the connection failed). IPv4 or IPv6.
std::string http_get(int netns, const char* addr, int port) {
  std::string got;
  std::thread t([&] {
    if (netns >= 0 && ::setns(netns, CLONE_NEWNET) != 0) return;
    const bool v6 = std::strchr(addr, ':') != nullptr;
    UniqueFd s(::socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    sockaddr_in sa{};
    sockaddr_in6 sa6{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(static_cast<uint16_t>(port));
    sa6.sin6_family = AF_INET6;
    sa6.sin6_port = sa.sin_port;
    ::inet_pton(AF_INET, addr, &sa.sin_addr);
    ::inet_pton(AF_INET6, addr, &sa6.sin6_addr);
    const int rc = v6 ? ::connect(s.get(), reinterpret_cast<sockaddr*>(&sa6), sizeof sa6)
                      : ::connect(s.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa);
    if (rc != 0 && errno != EINPROGRESS) return;
    pollfd p{s.get(), POLLOUT, 0};
    if (::poll(&p, 1, 1500) != 1) return;
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(s.get(), SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) return;
    const char req[] = "GET / HTTP/1.0\r\n\r\n";
    (void)!::write(s.get(), req, sizeof req - 1);
    for (int i = 0; i < 50; ++i) {  // at most 5 s
      pollfd r{s.get(), POLLIN, 0};
      if (::poll(&r, 1, 100) != 1) continue;
      char buf[4096];
      ssize_t n = ::read(s.get(), buf, sizeof buf);
      if (n <= 0) break;
      got.append(buf, static_cast<size_t>(n));
    }
  });
  t.join();
  return got;
}

// http_get until the answer holds `want` (a detached service is starting; at most ~10 s): the
// last answer.
std::string http_get_until(int netns, const char* addr, int port, std::string_view want) {
  std::string page;
  for (int i = 0; i < 100 && page.find(want) == std::string::npos; ++i) {
    page = http_get(netns, addr, port);
    if (page.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return page;
}

int free_port() {
  int port = 0;
  int fd = listen_on_loopback(&port);
  ::close(fd);
  return port;
}

// -p through the proxy: the host reaches the published port on 127.0.0.1; a client in an
// "outside" namespace reaches it on the host's address only once the host's own input firewall
// A detached service on a bridge network: the monitor holds the address and the published port
// for as long as the container runs, and `stop` + `rm` give both back.
TEST_F(NetworkE2E, DetachedServiceServesItsPublishedPortUntilStopped) {
  ASSERT_EQ(kiste_.run("network create --subnet 203.0.113.0/24 svc").status, 0);
  int port = free_port();
  auto r = kiste_.run(fmt::format(
      "run -d --name web --network svc --ip 203.0.113.7 -p 127.0.0.1:{}:8080 busybox sh -c "
      "'mkdir /www; hostname -i > /www/index.html; exec httpd -f -p 8080 -h /www'",
      port));
  ASSERT_EQ(r.status, 0) << r.output;
  std::string page = http_get_until(-1, "127.0.0.1", port, "203.0.113.7");
  EXPECT_NE(page.find("203.0.113.7"), std::string::npos) << "127.0.0.1:" << port << " -> " << page;
  r = kiste_.run("network inspect svc");
  EXPECT_NE(r.output.find("203.0.113.7"), std::string::npos) << "the lease is held: " << r.output;
  // A second container may not take the address the service holds.
  r = kiste_.run("run --rm --network svc --ip 203.0.113.7 busybox true");
  EXPECT_NE(r.status, 0) << r.output;
  EXPECT_EQ(kiste_.run("stop -t 2 web").status, 0);
  EXPECT_EQ(http_get(-1, "127.0.0.1", port), "") << "the port closes with the container";
  EXPECT_EQ(kiste_.run("rm web").status, 0);
  r = kiste_.run("network inspect svc");
  EXPECT_NE(r.output.find("\"Containers\": {}"), std::string::npos) << r.output;
  EXPECT_EQ(kiste_.run("network rm svc").status, 0);
  EXPECT_EQ(leftovers(), "");
}

// -P publishes the image's EXPOSEd tcp ports to free host ports; `kiste port` names them while
// the container runs, and nothing once it stopped.
TEST_F(NetworkE2E, PublishAllAndPortNameTheFreeHostPorts) {
  auto r = kiste_.run("import -c 'EXPOSE 8080/tcp' -c 'CMD [\"/bin/sh\"]' " + busybox_tar().native() +
                      " web 2>/dev/null");
  ASSERT_EQ(r.status, 0) << r.output;
  ASSERT_EQ(kiste_.run("network create --subnet 203.0.113.0/24 pa").status, 0);
  r = kiste_.run("run -d --name srv --network pa -P web sh -c "
                 "'mkdir /www; echo hello-P > /www/index.html; exec httpd -f -p 8080 -h /www'");
  ASSERT_EQ(r.status, 0) << r.output;
  r = kiste_.run("port srv");
  EXPECT_EQ(r.status, 0) << r.output;
  std::smatch m;
  ASSERT_TRUE(std::regex_match(r.output, m, std::regex("8080/tcp -> 0\\.0\\.0\\.0:([0-9]+)\n"))) << r.output;
  int port = std::stoi(m[1]);
  EXPECT_EQ(trim(kiste_.run("port srv 8080").output), fmt::format("0.0.0.0:{}", port));
  r = kiste_.run("port srv 9090");
  EXPECT_EQ(r.status, 125);
  EXPECT_EQ(r.output, "kiste: error: container `srv`: no published port 9090/tcp\n");
  std::string page = http_get_until(-1, "127.0.0.1", port, "hello-P");
  EXPECT_NE(page.find("hello-P"), std::string::npos) << "127.0.0.1:" << port;
  EXPECT_EQ(kiste_.run("stop -t 1 srv").status, 0);
  r = kiste_.run("port srv");
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(r.output, "");
  EXPECT_EQ(kiste_.run("rm srv").status, 0);
  r = kiste_.run("run --rm -P web true");
  EXPECT_EQ(r.output, "kiste: error: -P needs --network NAME (a bridge network)\n");
  EXPECT_EQ(kiste_.run("network rm pa").status, 0);
  EXPECT_EQ(leftovers(), "");
}

// -p …/udp: a datagram to the published host port reaches a server in the container's network
// namespace (the test's own thread, entered with setns: busybox has no UDP server) through the
// proxy, and the server's answer comes back to the sender's address.
TEST_F(NetworkE2E, UdpPublishRelaysDatagramsBothWays) {
  ASSERT_EQ(kiste_.run("network create --subnet 203.0.113.0/24 u").status, 0);
  const int port = free_port();
  auto r = kiste_.run(fmt::format("run -d --name udp --network u -p 127.0.0.1:{}:5353/udp busybox sleep 600", port));
  ASSERT_EQ(r.status, 0) << r.output;
  std::smatch m;
  std::string inspect = kiste_.run("container inspect udp").output;
  ASSERT_TRUE(std::regex_search(inspect, m, std::regex("\"Pid\": *([0-9]+)"))) << inspect;
  UniqueFd ns(::open(fmt::format("/proc/{}/ns/net", m[1].str()).c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(ns);
  std::atomic<int> ready{0};
  std::string got;
  std::thread server([&] {
    UniqueFd s;
    if (::setns(ns.get(), CLONE_NEWNET) == 0) s = UniqueFd(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(5353);
    if (!s || ::bind(s.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
      ready = -1;
      return;
    }
    ready = 1;
    pollfd p{s.get(), POLLIN, 0};
    if (::poll(&p, 1, 10000) != 1) return;  // bounded: the test fails below, it does not hang
    char buf[256];
    sockaddr_in from{};
    socklen_t len = sizeof from;
    ssize_t n = ::recvfrom(s.get(), buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &len);
    if (n <= 0) return;
    got.assign(buf, static_cast<size_t>(n));
    std::string reply = "echo:" + got;
    ::sendto(s.get(), reply.data(), reply.size(), 0, reinterpret_cast<sockaddr*>(&from), len);
  });
  while (ready == 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ASSERT_EQ(ready, 1);
  UniqueFd c(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(static_cast<uint16_t>(port));
  ::inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
  const std::string ping = "ping-udp";
  ASSERT_EQ(::sendto(c.get(), ping.data(), ping.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to),
            static_cast<ssize_t>(ping.size()));
  pollfd p{c.get(), POLLIN, 0};
  std::string answer;
  if (::poll(&p, 1, 10000) == 1) {
    char buf[256];
    ssize_t n = ::recv(c.get(), buf, sizeof buf, 0);
    if (n > 0) answer.assign(buf, static_cast<size_t>(n));
  }
  server.join();
  EXPECT_EQ(got, ping) << "the datagram reached the container's namespace";
  EXPECT_EQ(answer, "echo:ping-udp") << "the answer came back through the proxy";
  EXPECT_EQ(kiste_.run("port udp").output, fmt::format("5353/udp -> 127.0.0.1:{}\n", port));
  EXPECT_EQ(kiste_.run("rm -f udp").status, 0);
  EXPECT_EQ(kiste_.run("network rm u").status, 0);
  EXPECT_EQ(leftovers(), "");
}

// --ipv6: a network with an IPv6 subnet too; a container's IPv6 address follows its IPv4 one
// (the same host offset), and another container on the bridge reaches its server over IPv6.
TEST_F(NetworkE2E, Ipv6NetworkCarriesContainerToContainerTraffic) {
  auto r = kiste_.run("network create --ipv6 --subnet 203.0.113.0/24 --subnet fd00:0:0:17::/64 n6");
  ASSERT_EQ(r.status, 0) << r.output;
  r = kiste_.run("network inspect n6");
  EXPECT_NE(r.output.find("\"EnableIPv6\": true"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("fd00:0:0:17::/64"), std::string::npos) << r.output;
  r = kiste_.run(
      "run -d --name v6srv --network n6 --ip 203.0.113.9 busybox sh -c "
      "'mkdir /www; echo over-ipv6 > /www/index.html; exec httpd -f -p 8080 -h /www'");
  ASSERT_EQ(r.status, 0) << r.output;
  std::string page;
  for (int i = 0; i < 50 && page.find("over-ipv6") == std::string::npos; ++i) {
    page = kiste_.run("run --rm --network n6 busybox wget -qO- http://[fd00:0:0:17::9]:8080/").output;
    if (page.find("over-ipv6") == std::string::npos) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(page, "over-ipv6\n");
  r = kiste_.run("exec v6srv ip -6 addr show dev eth0");
  EXPECT_NE(r.output.find("fd00:0:0:17::9/64"), std::string::npos) << r.output;
  EXPECT_EQ(kiste_.run("rm -f v6srv").status, 0);
  EXPECT_EQ(kiste_.run("network rm n6").status, 0);
  EXPECT_EQ(leftovers(), "");
}

// An "outside" namespace (198.51.100.1) on a veth to this one (198.51.100.2): a client that is
// not the host, whose packets to a published port take the host's input path.
void make_outside(UniqueFd& outside) {
  outside = new_peer_netns("out0", "198.51.100.2", "198.51.100.1");
  ASSERT_TRUE(outside);
}

// The host's firewall of the firewall tests: input policy drop, loopback and replies accepted.
constexpr const char* kHostFirewall =
    "add table inet hostfw\n"
    "add chain inet hostfw input { type filter hook input priority 0; policy drop; }\n"
    "add rule inet hostfw input iifname lo accept\n"
    "add rule inet hostfw input ct state established,related accept\n";

// A published port under the host's input policy drop is unreachable from outside until the
// host's firewall accepts the port: publishing opens no hole in it.
TEST_F(NetworkE2E, PublishedPortRespectsTheHostFirewall) {
  UniqueFd outside;
  ASSERT_NO_FATAL_FAILURE(make_outside(outside));
  ASSERT_EQ(kiste_.run("network create --subnet 203.0.113.0/24 web").status, 0);
  fs::create_directories(tmp_ / "ctl");
  int port = free_port();
  // The container serves until the test drops /ctl/stop (bounded: 600 x 0.1 s).
  std::string cmd = fmt::format(
      "kiste --root {} run --rm --network web -p {}:8080 -v {}:/ctl busybox sh -c "
      "'mkdir /www; echo hello-from-kiste > /www/index.html; httpd -p 8080 -h /www; "
      "i=0; while [ ! -f /ctl/stop ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done' "
      "> {} 2>&1 & echo $! > {}",
      kiste_.root().native(), port, (tmp_ / "ctl").native(), (tmp_ / "run.log").native(),
      (tmp_ / "run.pid").native());
  ASSERT_EQ(run_shell("PATH=" + kiste_binary().parent_path().native() + ":$PATH " + cmd), 0);
  std::string page = http_get_until(-1, "127.0.0.1", port, "hello-from-kiste");
  EXPECT_NE(page.find("hello-from-kiste"), std::string::npos) << "host -> 127.0.0.1:" << port;
  EXPECT_NE(http_get(outside.get(), "198.51.100.2", port).find("hello-from-kiste"), std::string::npos)
      << "no firewall yet: reachable from outside";

  auto fw = network::Nft::open();
  ASSERT_TRUE(fw);
  ASSERT_TRUE(fw->run(kHostFirewall, "host firewall"));
  EXPECT_EQ(http_get(outside.get(), "198.51.100.2", port), "") << "published port must not bypass input drop";
  EXPECT_NE(http_get(-1, "127.0.0.1", port).find("hello-from-kiste"), std::string::npos);
  ASSERT_TRUE(fw->run(fmt::format("add rule inet hostfw input tcp dport {} accept\n", port), "open port"));
  EXPECT_NE(http_get(outside.get(), "198.51.100.2", port).find("hello-from-kiste"), std::string::npos)
      << "reachable once the host's firewall accepts the port";
  ASSERT_TRUE(fw->run("delete table inet hostfw\n", "drop host firewall"));

  { std::ofstream(tmp_ / "ctl" / "stop") << ""; }
  std::string alive = fmt::format("kill -0 $(cat {}) 2>/dev/null", (tmp_ / "run.pid").native());
  for (int i = 0; i < 300 && run_shell(alive) == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_NE(run_shell(alive), 0) << "the run ended";
  EXPECT_EQ(http_get(-1, "127.0.0.1", port), "") << "the port closes with the container";
  EXPECT_EQ(kiste_.run("network rm web").status, 0);
  EXPECT_EQ(leftovers(), "");
}

// --publish-bypass-firewall: the port is also DNAT'ed (kiste's `pub4` map), so under the same
// input policy drop it is reachable from outside; the host reaches it on 127.0.0.1 through the
// proxy. rm removes the element. A SIGKILLed monitor leaves its element; the next container
// leased that address removes it, so a dead service's port never leads into another container.
TEST_F(NetworkE2E, BypassFirewallPublishesPastTheInputDropAndLeavesNoStaleDnat) {
  UniqueFd outside;
  ASSERT_NO_FATAL_FAILURE(make_outside(outside));
  auto fw = network::Nft::open();
  ASSERT_TRUE(fw);
  ASSERT_TRUE(fw->run(kHostFirewall, "host firewall"));
  auto pub4 = [&fw] { return fw->query("list map inet kiste pub4").value_or("(no map)"); };
  ASSERT_EQ(kiste_.run("network create --subnet 203.0.113.0/24 byp").status, 0);
  const int port = free_port();
  const std::string serve =
      "busybox sh -c 'mkdir /www; echo past-the-firewall > /www/index.html; exec httpd -f -p 8080 -h /www'";
  auto r = kiste_.run(fmt::format("run -d --name bp --network byp --ip 203.0.113.5 -p {}:8080 "
                                  "--publish-bypass-firewall {}", port, serve));
  ASSERT_EQ(r.status, 0) << r.output;
  std::string page = http_get_until(outside.get(), "198.51.100.2", port, "past-the-firewall");
  EXPECT_NE(page.find("past-the-firewall"), std::string::npos) << "outside -> DNAT past the input drop";
  EXPECT_NE(http_get(-1, "127.0.0.1", port).find("past-the-firewall"), std::string::npos) << "host -> proxy";
  EXPECT_NE(pub4().find(fmt::format("tcp . {} : 203.0.113.5 . 8080", port)), std::string::npos) << pub4();
  EXPECT_EQ(kiste_.run("rm -f bp").status, 0);
  EXPECT_EQ(pub4().find("203.0.113.5"), std::string::npos) << pub4();
  EXPECT_EQ(http_get(outside.get(), "198.51.100.2", port), "");

  // Bad input: the flag without a published port, or off a bridge network.
  r = kiste_.run("run --rm --network byp --publish-bypass-firewall busybox true");
  EXPECT_EQ(r.status, 125);
  EXPECT_EQ(r.output, "kiste: error: --publish-bypass-firewall: no port is published (-p or -P)\n");
  r = kiste_.run("run --rm --network none --publish-bypass-firewall busybox true");
  EXPECT_EQ(r.status, 125);
  EXPECT_EQ(count_lines(r.output), 1u) << r.output;

  // The monitor SIGKILLed: its element stays until the address is leased again.
  r = kiste_.run(fmt::format("run -d --name bp2 --network byp --ip 203.0.113.6 -p {}:8080 "
                             "--publish-bypass-firewall {}", port, serve));
  ASSERT_EQ(r.status, 0) << r.output;
  const std::string id = trim(r.output);
  auto state = sys::read_file(kiste_.root() / "containers" / id / "state.json");
  ASSERT_TRUE(state);
  std::smatch m;
  ASSERT_TRUE(std::regex_search(*state, m, std::regex("\"monitor_pid\": *([0-9]+)"))) << *state;
  ASSERT_EQ(::kill(std::stoi(m[1]), SIGKILL), 0);
  for (int i = 0; i < 100 && kiste_.run("ps -q").output != ""; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_NE(pub4().find("203.0.113.6 . 8080"), std::string::npos) << "what the killed monitor left: " << pub4();
  r = kiste_.run("run --rm --network byp --ip 203.0.113.6 busybox true");
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(pub4().find("203.0.113.6"), std::string::npos) << pub4();
  EXPECT_EQ(kiste_.run("container prune").status, 0);
  ASSERT_TRUE(fw->run("delete table inet hostfw\n", "drop host firewall"));
  EXPECT_EQ(kiste_.run("network rm byp").status, 0);
  EXPECT_EQ(leftovers(), "");
}

// --publish-bypass-firewall for an IPv6 host address on an --ipv6 network: DNAT (pub6_addr)
// past the host's input drop, from an outside namespace over IPv6; nothing left after rm.
TEST_F(NetworkE2E, BypassFirewallPublishesIpv6HostAddresses) {
  UniqueFd outside;
  ASSERT_NO_FATAL_FAILURE(make_outside(outside));
  {
    auto nl = network::Netlink::open();
    ASSERT_TRUE(nl);
    ASSERT_TRUE(nl->add_address("out0", *network::IpAddress::parse("2001:db8:2::2"), 64));
    auto in = network::Netlink::open_in(outside.get());
    ASSERT_TRUE(in);
    ASSERT_TRUE(in->add_address("eth0", *network::IpAddress::parse("2001:db8:2::1"), 64));
  }
  auto fw = network::Nft::open();
  ASSERT_TRUE(fw);
  ASSERT_TRUE(fw->run(kHostFirewall, "host firewall"));
  ASSERT_TRUE(fw->run("add rule inet hostfw input meta l4proto ipv6-icmp accept\n", "neighbour discovery"));
  auto pub6 = [&fw] { return fw->query("list map inet kiste pub6_addr").value_or("(no map)"); };
  auto r = kiste_.run("network create --ipv6 --subnet 203.0.113.0/24 --subnet 2001:db8:1::/64 byp6");
  ASSERT_EQ(r.status, 0) << r.output;
  const int port = free_port();
  r = kiste_.run(fmt::format(
      "run -d --name bp6 --network byp6 --ip 203.0.113.5 -p [2001:db8:2::2]:{}:8080 "
      "--publish-bypass-firewall busybox sh -c "
      "'mkdir /www; echo past-the-firewall-v6 > /www/index.html; exec httpd -f -p 8080 -h /www'",
      port));
  ASSERT_EQ(r.status, 0) << r.output;
  std::string page = http_get_until(outside.get(), "2001:db8:2::2", port, "past-the-firewall-v6");
  EXPECT_NE(page.find("past-the-firewall-v6"), std::string::npos) << "outside -> IPv6 DNAT past the input drop";
  EXPECT_NE(pub6().find(fmt::format("2001:db8:2::2 . tcp . {} : 2001:db8:1::5 . 8080", port)), std::string::npos)
      << pub6();
  EXPECT_EQ(kiste_.run("rm -f bp6").status, 0);
  EXPECT_EQ(pub6().find("2001:db8:1::5"), std::string::npos) << pub6();
  EXPECT_EQ(http_get(outside.get(), "2001:db8:2::2", port), "");
  ASSERT_TRUE(fw->run("delete table inet hostfw\n", "drop host firewall"));
  EXPECT_EQ(kiste_.run("network rm byp6").status, 0);
  EXPECT_EQ(leftovers(), "");
}

// A tiny DNS server on 198.51.100.1:53 in its own namespace (the containers' upstream):
// `up.test` is 198.51.100.77, every other name NXDOMAIN. Serves until destroyed.
class UpstreamDns {
 public:
  UpstreamDns() {
    ns_ = new_peer_netns("dns0", "198.51.100.2", "198.51.100.1");
    if (!ns_) return;
    std::atomic<int> ready{0};
    thread_ = std::thread([this, &ready] {
      UniqueFd s;
      sockaddr_in sa{};
      sa.sin_family = AF_INET;
      sa.sin_port = htons(53);
      ::inet_pton(AF_INET, "198.51.100.1", &sa.sin_addr);
      if (::setns(ns_.get(), CLONE_NEWNET) == 0) s = UniqueFd(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
      if (!s || ::bind(s.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
        ready = -1;
        return;
      }
      ready = 1;
      while (!stop_) {
        pollfd p{s.get(), POLLIN, 0};
        if (::poll(&p, 1, 100) != 1) continue;
        uint8_t buf[512];
        sockaddr_in from{};
        socklen_t len = sizeof from;
        ssize_t n = ::recvfrom(s.get(), buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &len);
        if (n <= 0) continue;
        std::span<const uint8_t> m(buf, static_cast<size_t>(n));
        auto q = network::parse_dns_query(m);
        if (!q) continue;
        std::vector<network::IpAddress> a;
        if (q->name == "up.test") a.push_back(*network::IpAddress::parse("198.51.100.77"));
        auto reply = network::dns_response(m, *q, a.empty() ? network::kDnsNxDomain : network::kDnsNoError, a);
        ::sendto(s.get(), reply.data(), reply.size(), 0, reinterpret_cast<sockaddr*>(&from), len);
      }
    });
    while (ready == 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    ok_ = ready == 1;
  }
  ~UpstreamDns() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    if (auto nl = network::Netlink::open()) (void)nl->delete_link("dns0");
  }
  [[nodiscard]] bool ok() const { return ok_; }

 private:
  UniqueFd ns_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  bool ok_ = false;
};

// On a user network containers find each other by name and --network-alias through the DNS at
// 127.0.0.11 (served by each container's own kiste: here the monitors); other names go to the
// upstream; a stopped container's name goes away with it. (--dns-search . keeps the host's
// search domains out of the lookups, --dns makes the test's server the only upstream.)
TEST_F(NetworkE2E, ContainersOnAUserNetworkResolveEachOtherByNameAndAlias) {
  UpstreamDns upstream;
  ASSERT_TRUE(upstream.ok());
  ASSERT_EQ(kiste_.run("network create --subnet 203.0.113.0/24 n1").status, 0);
  const std::string dns = "--network n1 --dns 198.51.100.1 --dns-search .";
  auto r = kiste_.run("run -d --name aa " + dns + " busybox sleep 300");
  ASSERT_EQ(r.status, 0) << r.output;
  r = kiste_.run("run -d --name bb --network-alias db " + dns + " busybox sleep 300");
  ASSERT_EQ(r.status, 0) << r.output;
  r = kiste_.run("exec aa cat /etc/resolv.conf");
  EXPECT_EQ(r.output, "nameserver 127.0.0.11\n") << r.output;
  r = kiste_.run("exec aa sh -c 'nslookup db; ping -c1 -W2 bb'");
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(std::regex_search(r.output, std::regex("Address[ 0-9]*: 203\\.0\\.113\\.[0-9]+"))) << r.output;
  EXPECT_NE(r.output.find("1 packets received"), std::string::npos) << r.output;
  r = kiste_.run("exec bb nslookup aa");
  EXPECT_EQ(r.status, 0) << r.output;
  r = kiste_.run("exec bb nslookup up.test");
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("198.51.100.77"), std::string::npos) << "forwarded upstream: " << r.output;
  r = kiste_.run("exec bb nslookup nowhere.test");
  EXPECT_NE(r.status, 0) << r.output;
  // The default network has no container DNS (as docker's bridge).
  r = kiste_.run("run --rm --network kiste --network-alias x busybox true");
  EXPECT_EQ(r.status, 125) << r.output;

  EXPECT_EQ(kiste_.run("stop -t 1 aa").status, 0);
  r = kiste_.run("exec bb nslookup aa");
  EXPECT_NE(r.status, 0) << "a stopped container's name is gone: " << r.output;
  EXPECT_EQ(kiste_.run("rm -f aa bb").status, 0);
  r = kiste_.run("network inspect n1");
  EXPECT_NE(r.output.find("\"Containers\": {}"), std::string::npos) << r.output;
  EXPECT_EQ(kiste_.run("network rm n1").status, 0);
  EXPECT_EQ(leftovers(), "");
}

// `network connect` gives a running detached container one more veth and a lease (with its
// name and --alias in that network's DNS); `disconnect` takes both back; a container removed
// while connected leaves nothing that keeps `network rm` from working.
TEST_F(NetworkE2E, ConnectAndDisconnectARunningContainer) {
  ASSERT_EQ(kiste_.run("network create --subnet 203.0.113.0/24 n1").status, 0);
  ASSERT_EQ(kiste_.run("network create --subnet 192.0.2.0/24 n2").status, 0);
  const std::string quiet = " --dns-search . busybox sleep 300";  // no upstream is asked
  ASSERT_EQ(kiste_.run("run -d --name aa --network n1" + quiet).status, 0);
  ASSERT_EQ(kiste_.run("run -d --name bb --network n2" + quiet).status, 0);
  auto r = kiste_.run("network connect --ip 192.0.2.50 --alias cc n2 aa");
  ASSERT_EQ(r.status, 0) << r.output;
  r = kiste_.run("exec aa ip -4 addr show eth1");
  EXPECT_NE(r.output.find("inet 192.0.2.50/24"), std::string::npos) << r.output;
  r = kiste_.run("exec bb nslookup cc");
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("192.0.2.50"), std::string::npos) << r.output;
  r = kiste_.run("network connect n2 aa");
  EXPECT_EQ(r.status, 125);
  EXPECT_EQ(r.output, "kiste: error: network connect `n2`: container `aa` is on network `n2` already\n");
  ASSERT_EQ(kiste_.run("network disconnect n2 aa").status, 0);
  r = kiste_.run("exec aa ip link show eth1");
  EXPECT_NE(r.status, 0) << r.output;
  r = kiste_.run("network inspect n2");
  EXPECT_EQ(r.output.find("192.0.2.50"), std::string::npos) << r.output;
  r = kiste_.run("network disconnect n2 aa");
  EXPECT_EQ(r.output, "kiste: error: network disconnect `n2`: container `aa` is not on network `n2`\n");
  // Connected again, then removed: the veth died with the namespace, the lease does not count.
  ASSERT_EQ(kiste_.run("network connect n2 aa").status, 0);
  EXPECT_EQ(kiste_.run("rm -f aa bb").status, 0);
  r = kiste_.run("network rm n1 n2");
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(leftovers(), "");
}

// --dns/--dns-search/--dns-option replace their kind of resolv.conf line, --add-host adds to
// /etc/hosts (host-gateway: the bridge's address), --hostname names the container; bad values are
// one line and leave no lease.
TEST_F(NetworkE2E, DnsFlagsAddHostAndHostnameShapeTheContainersFiles) {
  ASSERT_EQ(kiste_.run("network create --subnet 203.0.113.0/24 n1").status, 0);
  auto r = kiste_.run(
      "run --rm --network n1 --hostname web --dns 198.51.100.53 --dns 2001:db8::53 "
      "--dns-search a.test --dns-option ndots:2 --add-host db:192.0.2.7 --add-host gw:host-gateway "
      "busybox sh -c 'cat /etc/resolv.conf /etc/hosts; hostname'");
  ASSERT_EQ(r.status, 0) << r.output;
  // A user network: the container DNS is the nameserver, --dns its upstream.
  EXPECT_TRUE(r.output.starts_with("nameserver 127.0.0.11\nsearch a.test\noptions ndots:2\n")) << r.output;
  EXPECT_NE(r.output.find("192.0.2.7\tdb\n"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("203.0.113.1\tgw\n"), std::string::npos) << r.output;
  EXPECT_TRUE(std::regex_search(r.output, std::regex("203\\.0\\.113\\.[0-9]+\tweb\n"))) << r.output;
  EXPECT_TRUE(r.output.ends_with("\nweb\n")) << r.output;
  // The default network has no container DNS: --dns is the container's nameserver.
  r = kiste_.run("run --rm --network kiste --dns 198.51.100.53 --dns 2001:db8::53 busybox cat /etc/resolv.conf");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(r.output.starts_with("nameserver 198.51.100.53\nnameserver 2001:db8::53\n") ||
              r.output.find("\nnameserver 198.51.100.53\nnameserver 2001:db8::53\n") != std::string::npos)
      << r.output;
  EXPECT_EQ(r.output.find("nameserver "), r.output.find("nameserver 198.51.100.53"))
      << "the host's nameservers are replaced: " << r.output;
  EXPECT_EQ(kiste_.run("network rm kiste").status, 0);

  const char* bad[][2] = {
      {"--dns dns.example", "kiste: error: --dns: `dns.example` is not an IPv4 or IPv6 address\n"},
      {"--dns-search 'a.test b.test'", "kiste: error: --dns-search `a.test b.test`: not a domain\n"},
      {"--add-host db", "kiste: error: --add-host `db`: give NAME:IP\n"},
      {"--add-host db:999.1.1.1", "kiste: error: --add-host `db:999.1.1.1`: `999.1.1.1` is not an IPv4 or IPv6 address\n"},
  };
  for (const auto& [flags, want] : bad) {
    r = kiste_.run(fmt::format("run --rm --network n1 {} busybox true", flags));
    EXPECT_EQ(r.status, 125) << flags;
    EXPECT_EQ(r.output, want) << flags;
  }
  r = kiste_.run("run --rm --dns 192.0.2.53 busybox true");
  EXPECT_EQ(r.output, "kiste: error: --dns needs --network NAME (a bridge network)\n");
  r = kiste_.run("network inspect n1");
  EXPECT_NE(r.output.find("\"Containers\": {}"), std::string::npos) << r.output;
  EXPECT_EQ(kiste_.run("network rm n1").status, 0);
  EXPECT_EQ(leftovers(), "");
}

TEST_F(NetworkE2E, BadPublishAndPortInUseLeaveNothing) {
  ASSERT_EQ(kiste_.run("network create --subnet 192.0.2.0/24 n1").status, 0);
  int port = 0;
  UniqueFd busy(listen_on_loopback(&port));
  auto r = kiste_.run(fmt::format("run --rm --network n1 -p 127.0.0.1:{}:80 busybox true", port));
  EXPECT_EQ(r.status, 125);
  EXPECT_EQ(r.output, fmt::format("kiste: error: publish 127.0.0.1:{}->80/tcp: port {} on 127.0.0.1: "
                                  "already in use\n", port, port));
  r = kiste_.run("run --rm --network n1 -p abc busybox true");
  EXPECT_EQ(r.output, "kiste: error: -p `abc`: `abc` is not a port (1-65535)\n");
  r = kiste_.run("run --rm --network n1 -p 80/sctp busybox true");
  EXPECT_EQ(r.output, "kiste: error: -p `80/sctp`: the protocol is tcp or udp\n");
  r = kiste_.run("run --rm -p 80 busybox true");
  EXPECT_EQ(r.output, "kiste: error: -p needs --network NAME (a bridge network)\n");
  r = kiste_.run("network inspect n1");
  EXPECT_NE(r.output.find("\"Containers\": {}"), std::string::npos) << r.output;
  std::string left = leftovers();
  EXPECT_EQ(left.find("link kv"), std::string::npos) << left;
  EXPECT_EQ(kiste_.run("network rm n1").status, 0);
  EXPECT_EQ(leftovers(), "");
}

}  // namespace
}  // namespace kiste::testing

int main(int argc, char** argv) {
  // Everything this binary (and every kiste it starts) makes lives in its own network namespace.
  kiste::testing::g_own_netns = kiste::testing::enter_own_netns();
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
