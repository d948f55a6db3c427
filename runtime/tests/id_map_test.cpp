#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <kiste/base/sys.hpp>
#include <kiste/base/temp_dir.hpp>
#include <kiste/runtime/id_map.hpp>
#include <kiste/runtime/run_options.hpp>

namespace kiste::runtime {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

TEST(IdMap, ParsesPodmanStyleMappings) {
  auto m = parse_id_mapping("0:100000:65536");
  ASSERT_TRUE(m) << m.error().to_string();
  EXPECT_EQ(*m, (IdMapping{0, 100000, 65536}));
  for (const char* bad : {"", "0:1", "0:1:2:3", "a:1:2", "0:1:0", "-1:0:5", "0:4294967290:100", "1: 2:3"}) {
    auto r = parse_id_mapping(bad);
    EXPECT_FALSE(r) << bad;
  }
}

TEST(IdMap, ValidatesOverlapsAndFormatsForTheKernel) {
  std::vector<IdMapping> ok = {{0, 100000, 1000}, {1000, 300000, 10}};
  EXPECT_TRUE(validate_id_map(ok, "uidmap"));
  EXPECT_EQ(format_id_map(ok), "0 100000 1000\n1000 300000 10\n");
  EXPECT_EQ(map_to_host(ok, 0), 100000u);
  EXPECT_EQ(map_to_host(ok, 1005), 300005u);
  EXPECT_EQ(map_to_host(ok, 1010), std::nullopt);
  auto ctr = validate_id_map({{0, 100000, 10}, {5, 200000, 10}}, "uidmap");
  ASSERT_FALSE(ctr);
  EXPECT_THAT(ctr.error().message, HasSubstr("container ids"));
  auto host = validate_id_map({{0, 100000, 10}, {20, 100005, 10}}, "uidmap");
  ASSERT_FALSE(host);
  EXPECT_THAT(host.error().message, HasSubstr("host ids"));
  EXPECT_FALSE(validate_id_map({}, "uidmap"));
  EXPECT_FALSE(validate_id_map(std::vector<IdMapping>(341, IdMapping{0, 0, 1}), "uidmap"));
}

TEST(IdMap, ParsesSubidFilesSkippingJunk) {
  auto r = parse_subid("# c\ncontainers:200000:131072\nbad line\nalice:100000:65536\nbob:x:1\nz:1:0\n");
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0].owner, "containers");
  EXPECT_EQ(r[0].start, 200000u);
  EXPECT_EQ(r[0].count, 131072u);
  EXPECT_EQ(r[1].owner, "alice");
}

class LeaseTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_.emplace(std::move(TempDir::create(fs::temp_directory_path(), "kiste-idmap-").value()));
    src_.subuid = dir_->path() / "subuid";
    src_.subgid = dir_->path() / "subgid";
  }
  fs::path locks() const { return dir_->path() / "locks"; }
  std::optional<TempDir> dir_;
  IdRangeSource src_;
};

TEST_F(LeaseTest, FallbackRangesSkipOtherUsersAndAreNeverSharedWhileHeld) {
  // alice owns 100000..165535: kiste starts above it.
  ASSERT_TRUE(sys::write_file_atomic(src_.subuid, "alice:100000:65536\n"));
  auto first = IdRangeLease::acquire(locks(), src_);
  ASSERT_TRUE(first) << first.error().to_string();
  std::optional<IdRangeLease> a(std::move(*first));
  EXPECT_EQ(a->uid_base(), 165536u);
  EXPECT_EQ(a->gid_base(), 165536u);
  auto b = IdRangeLease::acquire(locks(), src_);
  ASSERT_TRUE(b) << b.error().to_string();
  EXPECT_EQ(b->uid_base(), 165536u + 65536u);
  EXPECT_EQ(b->uid_map(), (std::vector<IdMapping>{{0, 165536u + 65536u, 65536}}));
  // A released range is free again.
  a.reset();
  auto c = IdRangeLease::acquire(locks(), src_);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->uid_base(), 165536u);
}

TEST_F(LeaseTest, RangesOfTheContainersUserComeFromTheFiles) {
  ASSERT_TRUE(sys::write_file_atomic(src_.subuid, "containers:1000000:131072\n"));
  ASSERT_TRUE(sys::write_file_atomic(src_.subgid, "containers:2000000:65536\n"));
  auto a = IdRangeLease::acquire(locks(), src_);
  ASSERT_TRUE(a) << a.error().to_string();
  EXPECT_EQ(a->uid_base(), 1000000u);
  EXPECT_EQ(a->gid_base(), 2000000u);
  // subgid has room for one range only.
  auto b = IdRangeLease::acquire(locks(), src_);
  ASSERT_FALSE(b);
  EXPECT_THAT(b.error().message, HasSubstr("in use"));
}

TEST(UsernsOptions, MakeSpecModes) {
  auto dir = TempDir::create(fs::temp_directory_path(), "kiste-uo-").value();
  ASSERT_TRUE(sys::mkdir_all(dir.path() / "l0/etc"));
  MakeSpecInput in{.id = "0123456789abcdef", .lower_dirs = {dir.path() / "l0"},
                   .container_dir = dir.path() / "c"};
  RunOptions o;
  o.command = {"true"};
  auto host = make_spec(o, in);
  ASSERT_TRUE(host);
  EXPECT_EQ(host->userns.mode, UsernsMode::Host);
  o.userns = "auto";
  auto autos = make_spec(o, in);
  ASSERT_TRUE(autos);
  EXPECT_EQ(autos->userns.mode, UsernsMode::Auto);
  o.userns.clear();
  o.uidmap = {"0:100000:65536"};
  auto priv = make_spec(o, in);
  ASSERT_TRUE(priv) << priv.error().to_string();
  EXPECT_EQ(priv->userns.mode, UsernsMode::Private);
  EXPECT_EQ(priv->userns.gid_map, priv->userns.uid_map);  // --gidmap defaults to --uidmap
  o.userns = "host";
  EXPECT_FALSE(make_spec(o, in));
  o.userns = "auto";
  EXPECT_FALSE(make_spec(o, in));
  o.uidmap.clear();
  o.userns = "keep-id";
  EXPECT_FALSE(make_spec(o, in));
}

}  // namespace
}  // namespace kiste::runtime
