// The stats parser on fake cgroup trees (v1 hybrid and pure v2) made in a temp dir.
#include <gtest/gtest.h>

#include <kiste/base/sys.hpp>
#include <kiste/base/temp_dir.hpp>
#include <kiste/runtime/cgroup_stats.hpp>

namespace kiste::runtime {
namespace {

namespace fs = std::filesystem;

class CgroupStatsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_.emplace(std::move(TempDir::create(fs::temp_directory_path(), "kiste-cs-").value()));
    root_ = dir_->path();
  }
  void put(const fs::path& rel, std::string_view text) {
    ASSERT_TRUE(sys::mkdir_all((root_ / rel).parent_path()));
    ASSERT_TRUE(sys::write_file_atomic(root_ / rel, text));
  }
  std::optional<TempDir> dir_;
  fs::path root_;
};

constexpr std::string_view kHybrid =
    "9:name=systemd:/\n8:pids:/kiste/c1\n7:blkio:/kiste/c1\n4:memory:/kiste/c1\n2:cpu,cpuacct:/kiste/c1\n0::/kiste/c1\n";

TEST_F(CgroupStatsTest, V1HybridReadsTheV1Controllers) {
  put("memory/kiste/c1/memory.usage_in_bytes", "10485760\n");
  put("memory/kiste/c1/memory.limit_in_bytes", "67108864\n");
  put("memory/kiste/c1/memory.stat", "cache 0\ntotal_inactive_file 1048576\ntotal_rss 5\n");
  put("cpu,cpuacct/kiste/c1/cpuacct.usage", "123456789\n");
  put("pids/kiste/c1/pids.current", "3\n");
  put("blkio/kiste/c1/blkio.throttle.io_service_bytes_recursive",
      "8:0 Read 4096\n8:0 Write 512\n8:0 Total 4608\n8:16 Read 1\n8:16 Write 2\nTotal 4611\n");
  put("unified/kiste/c1/cgroup.procs", "");  // the hybrid's v2 dir, no controllers
  auto dirs = stats_cgroups(kHybrid, root_);
  ASSERT_TRUE(dirs) << dirs.error().message;
  EXPECT_EQ(dirs->memory, root_ / "memory/kiste/c1");
  EXPECT_EQ(dirs->cpuacct, root_ / "cpu,cpuacct/kiste/c1");
  EXPECT_EQ(dirs->unified, root_ / "unified/kiste/c1");
  auto s = read_stats(*dirs);
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_EQ(s->memory_usage, 10485760u - 1048576u);
  EXPECT_EQ(s->memory_limit, 67108864u);
  EXPECT_EQ(s->cpu_usage_ns, 123456789u);
  EXPECT_EQ(s->pids, 3u);
  EXPECT_EQ(s->block_read, 4097u);
  EXPECT_EQ(s->block_write, 514u);
}

TEST_F(CgroupStatsTest, V1UnlimitedMemoryIsNoLimit) {
  put("memory/kiste/c1/memory.usage_in_bytes", "4096\n");
  put("memory/kiste/c1/memory.limit_in_bytes", "9223372036854771712\n");
  auto s = read_stats(stats_cgroups(kHybrid, root_).value());
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_EQ(s->memory_usage, 4096u);
  EXPECT_FALSE(s->memory_limit);
  EXPECT_FALSE(s->cpu_usage_ns);
  EXPECT_FALSE(s->pids);
  EXPECT_FALSE(s->block_read);
}

TEST_F(CgroupStatsTest, V2ReadsTheUnifiedFiles) {
  put("kiste/c2/memory.current", "2097152\n");
  put("kiste/c2/memory.max", "max\n");
  put("kiste/c2/memory.stat", "anon 1\ninactive_file 4096\n");
  put("kiste/c2/cpu.stat", "usage_usec 2500\nuser_usec 2000\nsystem_usec 500\n");
  put("kiste/c2/pids.current", "1\n");
  put("kiste/c2/io.stat", "8:0 rbytes=100 wbytes=20 rios=1 wios=1 dbytes=0 dios=0\n8:16 rbytes=1 wbytes=2 rios=1\n");
  auto dirs = stats_cgroups("0::/kiste/c2\n", root_);
  ASSERT_TRUE(dirs) << dirs.error().message;
  EXPECT_EQ(dirs->unified, root_ / "kiste/c2");
  EXPECT_TRUE(dirs->memory.empty());
  auto s = read_stats(*dirs);
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_EQ(s->memory_usage, 2097152u - 4096u);
  EXPECT_FALSE(s->memory_limit);
  EXPECT_EQ(s->cpu_usage_ns, 2500000u);
  EXPECT_EQ(s->pids, 1u);
  EXPECT_EQ(s->block_read, 101u);
  EXPECT_EQ(s->block_write, 22u);
  put("kiste/c2/memory.max", "67108864\n");
  EXPECT_EQ(read_stats(*dirs)->memory_limit, 67108864u);
}

TEST_F(CgroupStatsTest, NoFilesOrNoLinesAreOneLineErrors) {
  auto s = read_stats(stats_cgroups("0::/gone\n", root_).value());
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().message.find('\n'), std::string::npos);
  EXPECT_FALSE(stats_cgroups("garbage", root_));
  put("kiste/c3/memory.current", "not a number\n");
  EXPECT_FALSE(read_stats(stats_cgroups("0::/kiste/c3\n", root_).value()));
}

TEST(NetDev, SumsEveryInterfaceButLo) {
  constexpr std::string_view kText =
      "Inter-|   Receive                                                |  Transmit\n"
      " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n"
      "    lo:     840      10    0    0    0     0          0         0      840      10    0    0    0     0       0          0\n"
      "  eth0:    1500       5    0    0    0     0          0         0      648       4    0    0    0     0       0          0\n"
      "  eth1:     500       1    0    0    0     0          0         0        2       1    0    0    0     0       0          0\n";
  auto t = parse_net_dev(kText);
  ASSERT_TRUE(t) << t.error().message;
  EXPECT_EQ(t->rx, 2000u);
  EXPECT_EQ(t->tx, 650u);
  EXPECT_FALSE(parse_net_dev("  eth0: 12 x\n"));
  EXPECT_FALSE(parse_net_dev(""));
}

}  // namespace
}  // namespace kiste::runtime
