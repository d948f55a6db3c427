#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <string>

#include <kiste/base/sys.hpp>
#include <kiste/base/temp_dir.hpp>
#include <kiste/runtime/cgroup.hpp>
#include <kiste/runtime/rootless.hpp>

namespace kiste::runtime {
namespace {

using ::testing::HasSubstr;

EnvLookup env_of(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](const char* name) -> const char* {
    auto it = vars.find(name);
    return it == vars.end() ? nullptr : it->second.c_str();
  };
}

TEST(Rootless, UserPathsFollowXdg) {
  auto p = user_paths(env_of({{"HOME", "/home/ann"}, {"XDG_RUNTIME_DIR", "/run/user/1000"}}));
  ASSERT_TRUE(p) << p.error().to_string();
  EXPECT_EQ(p->store, "/home/ann/.local/share/kiste");
  EXPECT_EQ(p->state, "/run/user/1000/kiste");
  p = user_paths(env_of({{"HOME", "/home/ann"}, {"XDG_DATA_HOME", "/data"}, {"XDG_RUNTIME_DIR", "/r"}}));
  ASSERT_TRUE(p);
  EXPECT_EQ(p->store, "/data/kiste");
  // A relative XDG_DATA_HOME is ignored, as the XDG spec says.
  p = user_paths(env_of({{"HOME", "/home/ann"}, {"XDG_DATA_HOME", "data"}, {"XDG_RUNTIME_DIR", "/r"}}));
  ASSERT_TRUE(p);
  EXPECT_EQ(p->store, "/home/ann/.local/share/kiste");
}

TEST(Rootless, MissingRuntimeDirOrHomeIsOneLineNamingTheFix) {
  auto p = user_paths(env_of({{"HOME", "/home/ann"}}));
  ASSERT_FALSE(p);
  EXPECT_THAT(p.error().to_string(), HasSubstr("XDG_RUNTIME_DIR is not set"));
  EXPECT_EQ(p.error().to_string().find('\n'), std::string::npos);
  p = user_paths(env_of({{"HOME", "/home/ann"}, {"XDG_RUNTIME_DIR", "run/user/1"}}));
  EXPECT_FALSE(p);
  p = user_paths(env_of({{"XDG_RUNTIME_DIR", "/run/user/1"}}));
  ASSERT_FALSE(p);
  EXPECT_THAT(p.error().to_string(), HasSubstr("HOME is not set"));
}

TEST(Rootless, FindsSubordinateIdsByNameOrUid) {
  auto ids = find_subordinate_ids("ann", 1000, "bob:100000:65536\nann:165536:65536\n",
                                  "1000:300000:70000\n");
  ASSERT_TRUE(ids) << ids.error().to_string();
  EXPECT_EQ(ids->uids.start, 165536u);
  EXPECT_EQ(ids->uids.count, 65536u);
  EXPECT_EQ(ids->gids.start, 300000u);
  EXPECT_EQ(ids->gids.count, 70000u);
  EXPECT_EQ(rootless_uid_map(1000, ids->uids),
            (std::vector<IdMapping>{{0, 1000, 1}, {1, 165536, 65536}}));
}

TEST(Rootless, NoSubordinateRangePrintsTheUsermodLineWithAFreeRange) {
  auto ids = find_subordinate_ids("ann", 1000, "bob:100000:65536\n", "bob:100000:65536\nann:1:2\n");
  ASSERT_FALSE(ids);
  const std::string m = ids.error().to_string();
  EXPECT_THAT(m, HasSubstr("user `ann` has no subordinate uids in /etc/subuid"));
  EXPECT_THAT(m, HasSubstr("usermod --add-subuids 165536-231071 --add-subgids 165536-231071 ann"));
  ids = find_subordinate_ids("ann", 1000, "ann:100000:65536\n", "");
  ASSERT_FALSE(ids);
  EXPECT_THAT(ids.error().to_string(), HasSubstr("no subordinate gids in /etc/subgid"));
}

TEST(Rootless, MissingNewuidmapNamesTheUidmapPackage) {
  TempDir dir = TempDir::create(std::filesystem::temp_directory_path(), "kiste-rootless-").value();
  auto p = plan_rootless(1000, 1000, "ann", env_of({{"PATH", dir.path().native()}}),
                         dir.path() / "subuid", dir.path() / "subgid");
  ASSERT_FALSE(p);
  EXPECT_THAT(p.error().to_string(), HasSubstr("newuidmap not found on PATH"));
  EXPECT_THAT(p.error().to_string(), HasSubstr("`uidmap`"));
}

TEST(Rootless, WithoutACgroupEveryLimitIsNamedForRefusal) {
  EXPECT_EQ(first_limit_flag(Resources{}), "");
  EXPECT_EQ(first_limit_flag(Resources{.memory = 64 << 20}), "--memory");
  EXPECT_EQ(first_limit_flag(Resources{.memory_swap = -1}), "--memory-swap");
  EXPECT_EQ(first_limit_flag(Resources{.cpu_quota = 50000}), "--cpus");
  EXPECT_EQ(first_limit_flag(Resources{.cpu_shares = 512}), "--cpu-shares");
  EXPECT_EQ(first_limit_flag(Resources{.pids = 10}), "--pids-limit");
  auto d = make_cgroup_driver(CgroupMode::Hybrid, CgroupPlacement{.manager = CgroupManager::None});
  ASSERT_TRUE(d) << d.error().to_string();
  EXPECT_TRUE((*d)->create("x", CgroupPlan{}));
  EXPECT_TRUE((*d)->paths().empty());
  EXPECT_EQ(to_string(CgroupManager::None), "none");
}

// Rootless containers get a scope of the user's own systemd only where it can delegate one; else
// no cgroup, and the reason names what is missing.
TEST(Rootless, CgroupPlacementNeedsV2SystemdAndTheUsersManager) {
  auto tmp = TempDir::create("/tmp", "kiste-rootless-cg-");
  ASSERT_TRUE(tmp);
  const std::string run = tmp->path().native();
  auto p = rootless_cgroup_placement(CgroupMode::Hybrid, true, env_of({{"XDG_RUNTIME_DIR", run}}));
  EXPECT_EQ(p.manager, CgroupManager::None);
  EXPECT_THAT(p.no_cgroup_reason, HasSubstr("cgroup v1 hierarchies are not delegated"));
  p = rootless_cgroup_placement(CgroupMode::Unified, false, env_of({{"XDG_RUNTIME_DIR", run}}));
  EXPECT_EQ(p.manager, CgroupManager::None);
  EXPECT_THAT(p.no_cgroup_reason, HasSubstr("no systemd runs here"));
  p = rootless_cgroup_placement(CgroupMode::Unified, true, env_of({{"XDG_RUNTIME_DIR", run}}));
  EXPECT_EQ(p.manager, CgroupManager::None);
  EXPECT_THAT(p.no_cgroup_reason, HasSubstr("user manager, which delegates cgroups to you, has no bus at `" + run + "/bus`"));
  // The session bus address wins over XDG_RUNTIME_DIR, its options ignored.
  p = rootless_cgroup_placement(
      CgroupMode::Unified, true,
      env_of({{"XDG_RUNTIME_DIR", run}, {"DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/b,guid=1"}}));
  EXPECT_THAT(p.no_cgroup_reason, HasSubstr("no bus at `/nonexistent/b`"));
  ASSERT_TRUE(sys::write_file_atomic(tmp->path() / "bus", ""));
  p = rootless_cgroup_placement(CgroupMode::Unified, true, env_of({{"XDG_RUNTIME_DIR", run}}));
  EXPECT_EQ(p.manager, CgroupManager::Systemd);
  EXPECT_EQ(p.systemd, SystemdInstance::User);
  EXPECT_EQ(p.no_cgroup_reason, "");
}

// keep-id: the user's id is itself inside, the range around it.
TEST(Rootless, KeepIdMapsKeepTheUsersIdAndTheRangeAroundIt) {
  auto k = keep_id_maps("         0       1000          1\n         1     100000      65536\n",
                        "0 1001 1\n1 200000 65536\n");
  ASSERT_TRUE(k) << k.error().to_string();
  EXPECT_EQ(k->uid, 1000u);
  EXPECT_EQ(k->gid, 1001u);
  EXPECT_EQ(k->uid_map, (std::vector<IdMapping>{{0, 1, 1000}, {1000, 0, 1}, {1001, 1001, 64536}}));
  EXPECT_EQ(k->gid_map, (std::vector<IdMapping>{{0, 1, 1001}, {1001, 0, 1}, {1002, 1002, 64535}}));
  EXPECT_TRUE(validate_id_map(k->uid_map, "uidmap"));
  // An id beyond the range cannot be itself; a map that is not kiste's rootless one is refused.
  auto far = keep_id_maps("0 70000 1\n1 100000 65536\n", "0 1000 1\n1 100000 65536\n");
  ASSERT_FALSE(far);
  EXPECT_THAT(far.error().message, HasSubstr("uid 70000 is beyond your subordinate range of 65536 ids"));
  auto initial = keep_id_maps("0 0 4294967295\n", "0 0 4294967295\n");
  ASSERT_FALSE(initial);
  EXPECT_THAT(initial.error().message, HasSubstr("not the rootless one"));
}

}  // namespace
}  // namespace kiste::runtime
