#include <fstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <kiste/base/sys.hpp>
#include <kiste/base/temp_dir.hpp>
#include <kiste/runtime/cgroup.hpp>

namespace kiste::runtime {
namespace {

using W = CgroupWrite;

TEST(CgroupPlan, V1WritesDockerStyleFiles) {
  Resources r{.memory = 5 << 20, .cpu_quota = 150000, .cpu_period = 100000, .cpu_shares = 512, .pids = 20};
  auto plan = CgroupPlan::from_resources(r, CgroupMode::Hybrid);
  ASSERT_TRUE(plan) << plan.error().to_string();
  EXPECT_EQ(plan->controllers, (std::vector<std::string>{"memory", "pids", "freezer", "cpu", "devices"}));
  std::vector<W> head(plan->writes.begin(), plan->writes.begin() + 7);
  EXPECT_EQ(head, (std::vector<W>{{"memory", "memory.limit_in_bytes", "5242880"},
                                  {"memory", "memory.memsw.limit_in_bytes", "10485760", true},
                                  {"cpu", "cpu.shares", "512"},
                                  {"cpu", "cpu.cfs_period_us", "100000"},
                                  {"cpu", "cpu.cfs_quota_us", "150000"},
                                  {"pids", "pids.max", "20"},
                                  {"devices", "devices.deny", "a"}}));
  EXPECT_THAT(plan->writes, ::testing::Contains(W{"devices", "devices.allow", "c 1:3 rwm"}));
  EXPECT_THAT(plan->writes, ::testing::Not(::testing::Contains(W{"devices", "devices.allow", "b 8:0 rwm"})));
}

TEST(CgroupPlan, V1PrivilegedHasNoDeviceRules) {
  auto plan = CgroupPlan::from_resources({}, CgroupMode::Legacy, true);
  ASSERT_TRUE(plan);
  EXPECT_TRUE(plan->writes.empty());
  EXPECT_EQ(plan->controllers, (std::vector<std::string>{"memory", "pids", "freezer"}));
}

TEST(CgroupPlan, V2WritesUnifiedFilesAndOnlyNeededControllers) {
  Resources r{.memory = 64 << 20, .memory_swap = 96 << 20, .cpu_quota = 50000, .cpu_period = 100000,
              .cpu_shares = 1024, .pids = -1};
  auto plan = CgroupPlan::from_resources(r, CgroupMode::Unified);
  ASSERT_TRUE(plan);
  EXPECT_EQ(plan->controllers, (std::vector<std::string>{"memory", "cpu", "pids"}));
  EXPECT_EQ(plan->writes, (std::vector<W>{{"memory", "memory.max", "67108864"},
                                          {"memory", "memory.swap.max", "33554432"},
                                          {"cpu", "cpu.weight", "39"},
                                          {"cpu", "cpu.max", "50000 100000"},
                                          {"pids", "pids.max", "max"}}));
  auto none = CgroupPlan::from_resources({}, CgroupMode::Unified);
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->controllers.empty());
  EXPECT_TRUE(none->writes.empty());
}

TEST(CgroupPlan, UnlimitedSwap) {
  auto v1 = CgroupPlan::from_resources({.memory = 1 << 20, .memory_swap = -1}, CgroupMode::Legacy);
  ASSERT_TRUE(v1);
  EXPECT_EQ(v1->writes[1], (W{"memory", "memory.memsw.limit_in_bytes", "-1"}));
  auto v2 = CgroupPlan::from_resources({.memory = 1 << 20, .memory_swap = -1}, CgroupMode::Unified);
  ASSERT_TRUE(v2);
  EXPECT_EQ(v2->writes[1], (W{"memory", "memory.swap.max", "max"}));
}

TEST(CgroupPlan, RejectsInconsistentValues) {
  EXPECT_FALSE(CgroupPlan::from_resources({.memory = 10 << 20, .memory_swap = 5 << 20}, CgroupMode::Legacy));
  EXPECT_FALSE(CgroupPlan::from_resources({.memory_swap = 5 << 20}, CgroupMode::Legacy));
  EXPECT_FALSE(CgroupPlan::from_resources({.memory = 0}, CgroupMode::Legacy));
  EXPECT_FALSE(CgroupPlan::from_resources({.cpu_quota = 100}, CgroupMode::Legacy));
  EXPECT_FALSE(CgroupPlan::from_resources({.cpu_quota = 500, .cpu_period = 100000}, CgroupMode::Legacy));
  EXPECT_FALSE(CgroupPlan::from_resources({.cpu_shares = 1}, CgroupMode::Unified));
  EXPECT_FALSE(CgroupPlan::from_resources({.pids = 0}, CgroupMode::Unified));
}

TEST(CgroupPlan, ParsesSizesAndCpus) {
  EXPECT_EQ(parse_memory_size("5m").value(), 5 << 20);
  EXPECT_EQ(parse_memory_size("5M").value(), 5 << 20);
  EXPECT_EQ(parse_memory_size("1.5g").value(), 3LL << 29);
  EXPECT_EQ(parse_memory_size("512k").value(), 512 << 10);
  EXPECT_EQ(parse_memory_size("100mb").value(), 100 << 20);
  EXPECT_EQ(parse_memory_size("4096").value(), 4096);
  EXPECT_EQ(parse_memory_size("4096b").value(), 4096);
  EXPECT_EQ(parse_memory_size(".5k").value(), 512);
  for (const char* bad : {"", "m", "-5m", "5x", "5mm", "1e30g", "nan", "inf", "1.2.3m", ".m", " 5m",
                          "99999999999g"}) {
    EXPECT_FALSE(parse_memory_size(bad)) << bad;
  }
  EXPECT_EQ(parse_cpus("1.5", 100000).value(), 150000);
  EXPECT_EQ(parse_cpus("0.01", 100000).value(), 1000);
  EXPECT_FALSE(parse_cpus("-1", 100000));
  EXPECT_FALSE(parse_cpus("two", 100000));
  EXPECT_EQ(parse_cpus("2", 100000).value(), 200000);
  EXPECT_EQ(parse_cpus("0.333333", 100000).value(), 33333);
  EXPECT_FALSE(parse_cpus("1e2", 100000));
  EXPECT_FALSE(parse_cpus("4097", 100000));
}

TEST(CgroupV1Driver, FindsHierarchiesFromMountinfo) {
  auto dir = TempDir::create(std::filesystem::temp_directory_path(), "kiste-cg-");
  ASSERT_TRUE(dir);
  auto mi = dir->path() / "mountinfo";
  auto cg = dir->path() / "cgroup";
  ASSERT_TRUE(sys::write_file_atomic(
      mi,
      "30 25 0:26 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755\n"
      "31 30 0:27 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n"
      "32 30 0:28 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd\n"
      "33 30 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n"
      "34 30 0:30 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"));
  ASSERT_TRUE(sys::write_file_atomic(cg, "4:memory:/process_api/x\n3:cpu,cpuacct:/\n1:name=systemd:/s\n0::/\n"));
  auto d = make_cgroup_v1_driver(mi, cg);
  ASSERT_TRUE(d) << d.error().to_string();
  auto h = (*d)->v1_hierarchies();
  EXPECT_EQ(h, (std::vector<std::pair<std::string, std::string>>{
                   {"systemd", "name=systemd"}, {"cpu,cpuacct", "cpu,cpuacct"}, {"memory", "memory"}}));
  // A plan needing a controller that is not mounted fails clearly, creating nothing.
  CgroupPlan plan{.controllers = {"pids"}};
  auto r = (*d)->create("kiste-x", plan);
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error().to_string(), ::testing::HasSubstr("controller `pids`: not mounted"));
  EXPECT_TRUE((*d)->paths().empty());
}

TEST(CgroupMode, DetectsThisMachine) {
  auto m = detect_cgroup_mode();
  ASSERT_TRUE(m) << m.error().to_string();
  auto bad = detect_cgroup_mode("/proc");
  EXPECT_FALSE(bad);
}

}  // namespace
}  // namespace kiste::runtime

namespace kiste::runtime {
namespace {

TEST(CgroupPlacement, SlicePathsNestAsSystemdDoes) {
  EXPECT_EQ(slice_path("kiste.slice").value(), "kiste.slice");
  EXPECT_EQ(slice_path("a-b-c.slice").value(), "a.slice/a-b.slice/a-b-c.slice");
  EXPECT_EQ(slice_path("-.slice").value(), "");
  for (const char* bad : {"kiste", "kiste.scope", "-a.slice", "a-.slice", "a--b.slice", ".slice",
                          "a/b.slice", "../x.slice"}) {
    auto r = slice_path(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_THAT(r.error().to_string(), ::testing::HasSubstr(fmt::format("cgroup parent `{}`", bad)));
  }
  EXPECT_THAT(slice_path("ci").error().to_string(), ::testing::HasSubstr("not a systemd slice"));
}

TEST(CgroupPlacement, CgroupfsParentsStayBelowTheRoot) {
  EXPECT_EQ(cgroupfs_parent("kiste").value(), "kiste");
  EXPECT_EQ(cgroupfs_parent("/ci//jobs/").value(), "ci/jobs");
  EXPECT_EQ(cgroupfs_parent("").value(), "");
  EXPECT_FALSE(cgroupfs_parent("a/../../b"));
  EXPECT_FALSE(cgroupfs_parent("./a"));
}

TEST(CgroupPlacement, ManagerNamesAndDefaults) {
  EXPECT_EQ(parse_cgroup_manager("systemd").value(), CgroupManager::Systemd);
  EXPECT_EQ(parse_cgroup_manager("cgroupfs").value(), CgroupManager::Cgroupfs);
  auto bad = parse_cgroup_manager("system");
  ASSERT_FALSE(bad);
  EXPECT_THAT(bad.error().to_string(), ::testing::HasSubstr("expected systemd or cgroupfs"));
  // v1 and hybrid hosts: always cgroupfs, whatever runs as PID 1.
  EXPECT_EQ(default_cgroup_manager(CgroupMode::Hybrid), CgroupManager::Cgroupfs);
  EXPECT_EQ(default_cgroup_manager(CgroupMode::Legacy), CgroupManager::Cgroupfs);
}

TEST(CgroupPlacement, SystemdManagerIsRefusedOnV1WithOneLine) {
  auto d = make_cgroup_driver(CgroupMode::Hybrid, {.manager = CgroupManager::Systemd});
  ASSERT_FALSE(d);
  EXPECT_THAT(d.error().to_string(), ::testing::HasSubstr("--cgroup-manager=cgroupfs"));
  auto not_slice = make_cgroup_driver(CgroupMode::Unified,
                                      {.manager = CgroupManager::Systemd, .parent = "mygroup"});
  ASSERT_FALSE(not_slice);
  EXPECT_THAT(not_slice.error().to_string(), ::testing::HasSubstr("not a systemd slice"));
}

TEST(CgroupPlacement, LimitsBecomeSystemdUnitProperties) {
  auto plan = CgroupPlan::from_resources(
      {.memory = 5 << 20, .cpu_quota = 50000, .cpu_period = 100000, .cpu_shares = 1024, .pids = 20},
      CgroupMode::Unified);
  ASSERT_TRUE(plan);
  auto props = systemd_unit_properties(*plan);
  using P = std::pair<std::string, uint64_t>;
  EXPECT_THAT(props, ::testing::UnorderedElementsAre(
                         P{"MemoryMax", 5u << 20}, P{"MemorySwapMax", 5u << 20},
                         P{"CPUWeight", 39}, P{"CPUQuotaPeriodUSec", 100000},
                         P{"CPUQuotaPerSecUSec", 500000}, P{"TasksMax", 20}));
  auto unlimited = CgroupPlan::from_resources({.memory = 8 << 20, .memory_swap = -1, .pids = -1},
                                              CgroupMode::Unified);
  ASSERT_TRUE(unlimited);
  EXPECT_THAT(systemd_unit_properties(*unlimited),
              ::testing::UnorderedElementsAre(P{"MemoryMax", 8u << 20}, P{"MemorySwapMax", UINT64_MAX},
                                              P{"TasksMax", UINT64_MAX}));
}

// Hybrid hosts: the cgroup2 mount is a hierarchy the container needs a cgroup in too, but it is
// not one of the v1 hierarchies shown inside the container.
TEST(CgroupV1Driver, TakesTheHybridCgroup2MountAsAHierarchy) {
  auto dir = TempDir::create(std::filesystem::temp_directory_path(), "kiste-cg-");
  ASSERT_TRUE(dir);
  auto mi = dir->path() / "mountinfo";
  auto cg = dir->path() / "cgroup";
  ASSERT_TRUE(sys::write_file_atomic(
      mi,
      "30 25 0:26 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755\n"
      "31 30 0:27 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n"
      "34 30 0:30 / /sys/fs/cgroup/cpuset rw - cgroup cgroup rw,cpuset,noprefix\n"));
  ASSERT_TRUE(sys::write_file_atomic(cg, "2:cpuset:/\n0::/user.slice\n"));
  auto d = make_cgroup_v1_driver(mi, cg);
  ASSERT_TRUE(d) << d.error().to_string();
  EXPECT_EQ((*d)->v1_hierarchies(),
            (std::vector<std::pair<std::string, std::string>>{{"cpuset", "cpuset"}}));
  // Only a cgroup2 mount: not a v1 host.
  ASSERT_TRUE(sys::write_file_atomic(mi, "31 30 0:27 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n"));
  EXPECT_FALSE(make_cgroup_v1_driver(mi, cg));
}

}  // namespace
}  // namespace kiste::runtime
