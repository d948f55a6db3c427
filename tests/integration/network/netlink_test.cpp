// rtnetlink and nftables for real, inside a network namespace of this test process's own
// (main() unshares one first): the bridge, veths, addresses and nft tables made here vanish with
// the process, and no packet reaches the host's interfaces.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <thread>

#include <gtest/gtest.h>
#include <kiste/base/temp_dir.hpp>
#include <kiste/base/unique_fd.hpp>
#include <kiste/network/bridge.hpp>
#include <kiste/network/netlink.hpp>
#include <kiste/network/nft.hpp>
#include <kiste/testing/netns.hpp>
#include <kiste/testing/require_root.hpp>

namespace kiste::network {
namespace {

bool g_own_netns = false;
using kiste::testing::new_netns;

// Connects to addr:port over TCP from inside the namespace `netns`; true when accepted.
bool connect_from(int netns, const char* addr, uint16_t port) {
  bool ok = false;
  std::thread t([&] {
    if (::setns(netns, CLONE_NEWNET) != 0) return;
    UniqueFd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    ::inet_pton(AF_INET, addr, &sa.sin_addr);
    ok = ::connect(s.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0;
  });
  t.join();
  return ok;
}

class NetlinkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    KISTE_REQUIRE_ROOT();
    if (!g_own_netns) GTEST_SKIP() << "could not unshare a network namespace";
  }
};

TEST_F(NetlinkTest, BridgeVethIntoANamespaceAddressesRouteAndTraffic) {
  auto nl = Netlink::open();
  ASSERT_TRUE(nl) << nl.error().to_string();
  ASSERT_TRUE(nl->add_bridge("kt0"));
  ASSERT_TRUE(nl->set_up("kt0"));
  ASSERT_TRUE(nl->add_address("kt0", *IpAddress::parse("192.0.2.1"), 24));

  UniqueFd ctr = new_netns();
  ASSERT_TRUE(ctr);
  auto st = nl->add_veth("vkt0", "eth0", ctr.get());
  ASSERT_TRUE(st) << st.error().to_string();
  ASSERT_TRUE(nl->set_master("vkt0", "kt0"));
  ASSERT_TRUE(nl->set_up("vkt0"));

  auto in = Netlink::open_in(ctr.get());
  ASSERT_TRUE(in) << in.error().to_string();
  EXPECT_TRUE(*in->link_exists("eth0"));
  EXPECT_FALSE(*nl->link_exists("eth0"));  // the peer was made over there, not here
  ASSERT_TRUE(in->set_up("lo"));
  ASSERT_TRUE(in->set_up("eth0"));
  ASSERT_TRUE(in->add_address("eth0", *IpAddress::parse("192.0.2.2"), 24));
  ASSERT_TRUE(in->add_address("eth0", *IpAddress::parse("2001:db8::2"), 64));
  auto rt = in->add_default_route(*IpAddress::parse("192.0.2.1"));
  ASSERT_TRUE(rt) << rt.error().to_string();

  // A server on the bridge address; the container reaches it through the veth.
  UniqueFd srv(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  ::inet_pton(AF_INET, "192.0.2.1", &sa.sin_addr);
  ASSERT_EQ(::bind(srv.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
  ASSERT_EQ(::listen(srv.get(), 4), 0);
  socklen_t len = sizeof sa;
  ASSERT_EQ(::getsockname(srv.get(), reinterpret_cast<sockaddr*>(&sa), &len), 0);
  EXPECT_TRUE(connect_from(ctr.get(), "192.0.2.1", ntohs(sa.sin_port)));

  // Removing the host end removes both ends; removing it again is fine.
  ASSERT_TRUE(nl->delete_link("vkt0"));
  EXPECT_FALSE(*in->link_exists("eth0"));
  ASSERT_TRUE(nl->delete_link("vkt0"));
  ASSERT_TRUE(nl->delete_link("kt0"));
  EXPECT_FALSE(*nl->link_exists("kt0"));
}

TEST_F(NetlinkTest, ErrorsNameTheStepAndTheReason) {
  auto nl = Netlink::open();
  ASSERT_TRUE(nl);
  ASSERT_TRUE(nl->add_bridge("kt1"));
  auto again = nl->add_bridge("kt1");
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().message, "create bridge `kt1`: File exists");
  auto long_name = nl->add_bridge("a-name-far-too-long");
  ASSERT_FALSE(long_name);
  EXPECT_EQ(long_name.error().message,
            "interface name `a-name-far-too-long`: must be 1-15 bytes without '/', ':' or spaces");
  auto missing = nl->set_up("nosuch0");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().message, "find interface `nosuch0`: No such device");
  auto dup = nl->add_address("kt1", *IpAddress::parse("198.51.100.1"), 24);
  ASSERT_TRUE(dup);
  auto dup2 = nl->add_address("kt1", *IpAddress::parse("198.51.100.1"), 24);
  ASSERT_FALSE(dup2);
  EXPECT_EQ(dup2.error().message, "add address 198.51.100.1/24 to `kt1`: File exists");
  ASSERT_TRUE(nl->delete_link("kt1"));
}

TEST_F(NetlinkTest, NftTransactionsAreAllOrNothing) {
  auto nft = Nft::open();
  ASSERT_TRUE(nft) << nft.error().to_string();
  auto setup = nft->run("add table inet kiste_t\n"
                        "add chain inet kiste_t fw { type filter hook forward priority 0; }\n"
                        "add rule inet kiste_t fw iifname \"kt9\" accept comment \"c1\"\n",
                        "set up");
  ASSERT_TRUE(setup) << setup.error().to_string();
  auto listed = nft->query("list table inet kiste_t");
  ASSERT_TRUE(listed) << listed.error().to_string();
  EXPECT_NE(listed->find("comment \"c1\""), std::string::npos) << *listed;

  // One bad line: nothing of the transaction is applied.
  auto bad = nft->run("add rule inet kiste_t fw iifname \"kt8\" accept comment \"c2\"\n"
                      "add rule inet kiste_t fw nonsense\n",
                      "add rules");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message,
            "add rules: nft: syntax error, unexpected newline");
  EXPECT_EQ(bad.error().message.find('\n'), std::string::npos);
  EXPECT_EQ(nft->query("list table inet kiste_t")->find("c2"), std::string::npos);

  auto json = nft->query("list table inet kiste_t", true);
  ASSERT_TRUE(json);
  EXPECT_EQ(json->rfind("{\"nftables\"", 0), 0u) << *json;
  ASSERT_TRUE(nft->run("delete table inet kiste_t\n", "clean up"));
}

// attach never deletes a link it did not make: a host veth name taken already (here by a veth
// pair of someone else's) makes attach fail, the link stays, and no lease is left; the probe
// `network connect` uses skips the taken name.
TEST_F(NetlinkTest, AttachLeavesAHostVethOfSomeoneElsesAlone) {
  auto dir = TempDir::create("/tmp", "kiste-nettest-");
  ASSERT_TRUE(dir);
  Networks nets(dir->path());
  auto n = nets.create(CreateOptions{.name = "squat", .subnet = "198.18.7.0/24"});
  ASSERT_TRUE(n) << n.error().to_string();
  const std::string id = "0123456789abcdef0123456789abcdef";
  const std::string taken = host_veth_name(id, 0);
  auto nl = Netlink::open();
  ASSERT_TRUE(nl);
  ASSERT_TRUE(nl->add_veth(taken, "squatpeer", -1));

  UniqueFd ctr = new_netns();
  ASSERT_TRUE(ctr);
  auto never = [](const Lease&) { return false; };
  auto a = nets.attach(*n, id, ctr.get(), 0, std::nullopt, never);
  ASSERT_FALSE(a);
  EXPECT_EQ(a.error().code, Errc::AlreadyExists) << a.error().to_string();
  EXPECT_TRUE(*nl->link_exists(taken));
  EXPECT_TRUE(*nl->link_exists("squatpeer"));
  EXPECT_TRUE(nets.leases(*n).list()->empty());

  auto free = free_veth_index(id, 0);
  ASSERT_TRUE(free) << free.error().to_string();
  EXPECT_EQ(*free, 1u);
  auto b = nets.attach(*n, id, ctr.get(), *free, std::nullopt, never);
  ASSERT_TRUE(b) << b.error().to_string();
  EXPECT_EQ(b->host_veth, host_veth_name(id, 1));
  ASSERT_TRUE(nets.detach(*n, id, 1));
  EXPECT_FALSE(*nl->link_exists(host_veth_name(id, 1)));
  EXPECT_TRUE(*nl->link_exists(taken));

  ASSERT_TRUE(nl->delete_link(taken));
  ASSERT_TRUE(nets.remove("squat", never));
}

}  // namespace
}  // namespace kiste::network

int main(int argc, char** argv) {
  // Everything this binary makes lives in its own network namespace (the network rule).
  kiste::network::g_own_netns = kiste::testing::enter_own_netns();
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
