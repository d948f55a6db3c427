#include <kiste/network/leases.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <set>

#include <gtest/gtest.h>
#include <kiste/base/sys.hpp>
#include <kiste/testing/temp_root.hpp>

namespace kiste::network {
namespace {

bool all_alive(const Lease&) { return true; }

class LeasesTest : public ::testing::Test {
 protected:
  testing::TempRoot dir_;
  Subnet subnet_ = *Subnet::parse("192.0.2.0/29");  // hosts .1 .. .6; .1 is the gateway
  LeaseFile leases() { return LeaseFile(dir_ / "n1.leases", subnet_, {subnet_.host(1)}); }
};

TEST_F(LeasesTest, HandsOutDistinctAddressesAndSaysWhenFull) {
  LeaseFile f = leases();
  std::set<std::string> got;
  for (int i = 0; i < 5; ++i) {
    auto a = f.acquire(fmt::format("c{}", i), std::nullopt, all_alive);
    ASSERT_TRUE(a) << a.error().to_string();
    EXPECT_NE(a->to_string(), "192.0.2.1");  // the gateway
    got.insert(a->to_string());
  }
  EXPECT_EQ(got.size(), 5u);
  auto full = f.acquire("c5", std::nullopt, all_alive);
  ASSERT_FALSE(full);
  EXPECT_EQ(full.error().message, "no free address left in 192.0.2.0/29 (5 in use)");
}

TEST_F(LeasesTest, SameOwnerGetsItsAddressAgainAndReleaseFreesIt) {
  LeaseFile f = leases();
  auto a = f.acquire("c1", std::nullopt, all_alive);
  ASSERT_TRUE(a);
  EXPECT_EQ(*f.acquire("c1", std::nullopt, all_alive), *a);
  ASSERT_TRUE(f.release("c1"));
  ASSERT_TRUE(f.release("c1"));  // twice is fine
  EXPECT_TRUE(f.list()->empty());
}

// The names the network's DNS answers with: a fourth field, which older lines lack.
TEST_F(LeasesTest, NamesAreKeptAndOldLinesStillRead) {
  ASSERT_TRUE(sys::write_file_atomic(dir_ / "n1.leases", "192.0.2.2 old 77\n", 0600));
  LeaseFile f = leases();
  auto a = f.acquire("c1", std::nullopt, all_alive, {"web", "db"});
  ASSERT_TRUE(a) << a.error().to_string();
  ASSERT_TRUE(f.acquire("c1", a.value(), all_alive));  // the attach's re-acquire keeps the names
  auto l = f.list();
  ASSERT_TRUE(l);
  ASSERT_EQ(l->size(), 2u);
  EXPECT_EQ((*l)[0].owner, "old");
  EXPECT_EQ((*l)[0].pid, 77);
  EXPECT_TRUE((*l)[0].names.empty());
  EXPECT_EQ((*l)[1].names, (std::vector<std::string>{"web", "db"}));
  EXPECT_NE(sys::read_file(dir_ / "n1.leases", 1 << 16)->find(" c1 "), std::string::npos);
  EXPECT_NE(sys::read_file(dir_ / "n1.leases", 1 << 16)->find(" web,db\n"), std::string::npos);
}

TEST_F(LeasesTest, RoundRobinDoesNotReuseAJustReleasedAddress) {
  LeaseFile f = leases();
  auto a = *f.acquire("c1", std::nullopt, all_alive);
  ASSERT_TRUE(f.release("c1"));
  auto b = *f.acquire("c2", std::nullopt, all_alive);
  EXPECT_NE(a, b);
}

TEST_F(LeasesTest, WantedAddressIsCheckedAndKept) {
  LeaseFile f = leases();
  auto want = *IpAddress::parse("192.0.2.5");
  EXPECT_EQ(*f.acquire("c1", want, all_alive), want);
  auto dup = f.acquire("c2", want, all_alive);
  ASSERT_FALSE(dup);
  EXPECT_EQ(dup.error().message, "address 192.0.2.5 is already in use in 192.0.2.0/29");
  auto gw = f.acquire("c2", subnet_.host(1), all_alive);
  ASSERT_FALSE(gw);
  auto outside = f.acquire("c2", *IpAddress::parse("198.51.100.5"), all_alive);
  ASSERT_FALSE(outside);
  EXPECT_EQ(outside.error().message,
            "address 198.51.100.5 is not in the network's subnet 192.0.2.0/29");
  auto bcast = f.acquire("c2", *IpAddress::parse("192.0.2.7"), all_alive);
  ASSERT_FALSE(bcast);
}

TEST_F(LeasesTest, LeasesOfDeadOwnersAreReclaimed) {
  LeaseFile f = leases();
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(f.acquire(fmt::format("c{}", i), std::nullopt, all_alive));
  auto a = f.acquire("new", std::nullopt, [](const Lease& l) { return l.owner != "c3"; });
  ASSERT_TRUE(a) << a.error().to_string();
  auto l = *f.list();
  EXPECT_EQ(l.size(), 5u);
  for (const Lease& x : l) EXPECT_NE(x.owner, "c3");
}

TEST_F(LeasesTest, ACorruptFileIsAnErrorNotAnEmptyPool) {
  ASSERT_TRUE(sys::write_file_atomic(dir_ / "n1.leases", "192.0.2.2\n"));
  auto a = leases().acquire("c1", std::nullopt, all_alive);
  ASSERT_FALSE(a);
  EXPECT_EQ(a.error().code, Errc::Corrupt);
}

// 20 processes lease at once: 20 distinct addresses (the lock, not luck).
TEST(LeasesParallel, TwentyProcessesGetTwentyAddresses) {
  testing::TempRoot dir;
  Subnet subnet = *Subnet::parse("198.51.100.0/24");
  std::vector<pid_t> kids;
  for (int i = 0; i < 20; ++i) {
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      LeaseFile f(dir / "n.leases", subnet, {subnet.host(1)});
      auto a = f.acquire(fmt::format("c{}", i), std::nullopt, all_alive);
      ::_exit(a ? 0 : 1);
    }
    kids.push_back(pid);
  }
  for (pid_t k : kids) {
    int st = 0;
    ASSERT_EQ(::waitpid(k, &st, 0), k);
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  }
  auto l = *LeaseFile(dir / "n.leases", subnet, {subnet.host(1)}).list();
  std::set<IpAddress> distinct;
  for (const Lease& x : l) distinct.insert(x.address);
  EXPECT_EQ(l.size(), 20u);
  EXPECT_EQ(distinct.size(), 20u);
}

}  // namespace
}  // namespace kiste::network
