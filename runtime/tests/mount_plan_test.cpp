#include <sys/mount.h>
#include <sys/sysmacros.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <kiste/runtime/mount_plan.hpp>

namespace kiste::runtime {
namespace {

using ::testing::HasSubstr;

ContainerSpec base_spec(size_t layers = 1) {
  ContainerSpec s;
  s.id = "abc";
  for (size_t i = 0; i < layers; ++i) {
    s.root.lower_dirs.push_back("/var/lib/kiste/snapshots/" + std::string(64, 'a') + std::to_string(i));
  }
  s.root.container_dir = "/var/lib/kiste/containers/abc";
  s.masked_paths = docker_masked_paths();
  s.readonly_paths = docker_readonly_paths();
  return s;
}

const MountOp* find(const MountPlan& p, std::string_view target) {
  for (const auto& op : p.ops) {
    if (op.target == target) return &op;
  }
  return nullptr;
}

TEST(MountPlan, DockerFilesystemsInOrderWithDockerOptions) {
  MountPlanContext ctx;
  ctx.cgroup_v1 = {{"memory", "memory"}, {"cpu", "cpu,cpuacct"}};
  auto plan = MountPlan::from_spec(base_spec(), ctx);
  ASSERT_TRUE(plan) << plan.error().to_string();
  std::vector<std::string> targets;
  for (const auto& op : plan->ops) targets.push_back(op.target);
  std::vector<std::string> head(targets.begin(), targets.begin() + 17);
  EXPECT_EQ(head, (std::vector<std::string>{
                      "/proc", "/dev", "/dev/null", "/dev/zero", "/dev/full", "/dev/random",
                      "/dev/urandom", "/dev/tty", "/dev/pts", "/dev/ptmx", "/dev/fd", "/dev/stdin",
                      "/dev/stdout", "/dev/stderr", "/dev/shm", "/dev/mqueue", "/sys"}));
  std::vector<std::string> tail(targets.end() - 5, targets.end());
  EXPECT_EQ(tail, (std::vector<std::string>{"", "/sys/fs/cgroup", "/sys/fs/cgroup/memory",
                                            "/sys/fs/cgroup/cpu", "/sys/fs/cgroup"}));
  EXPECT_EQ(*find(*plan, "/proc"),
            (MountOp{.kind = MountOpKind::Mount, .source = "proc", .target = "/proc", .fstype = "proc",
                     .flags = MS_NOSUID | MS_NOEXEC | MS_NODEV, .create = CreateKind::Dir}));
  EXPECT_EQ(plan->ops[plan->ops.size() - 5].kind, MountOpKind::JoinCgroup);
  EXPECT_EQ(find(*plan, "/dev")->data, "mode=755,size=65536k");
  EXPECT_EQ(find(*plan, "/dev/pts")->data, "newinstance,ptmxmode=0666,mode=0620,gid=5");
  EXPECT_EQ(find(*plan, "/dev/null")->dev, makedev(1, 3));
  EXPECT_EQ(find(*plan, "/dev/ptmx")->source, "pts/ptmx");
  EXPECT_TRUE(find(*plan, "/sys")->flags & MS_RDONLY);
  EXPECT_EQ(find(*plan, "/sys/fs/cgroup/cpu")->data, "cpu,cpuacct");
  EXPECT_TRUE(find(*plan, "/sys/fs/cgroup/cpu")->flags & MS_RDONLY);
  EXPECT_EQ(find(*plan, "/proc/kcore")->kind, MountOpKind::Mask);
  EXPECT_EQ(find(*plan, "/proc/kcore")->source, "/dev/null");
  EXPECT_EQ(find(*plan, "/proc/sys")->kind, MountOpKind::ReadonlyPath);
  EXPECT_EQ(find(*plan, "/proc/sysrq-trigger")->kind, MountOpKind::ReadonlyPath);
  EXPECT_EQ(plan->merged_dir, "/var/lib/kiste/containers/abc/merged");
}

TEST(MountPlan, CgroupMountsStayBeforeUserMountsBelowThem) {
  ContainerSpec s = base_spec();
  s.mounts.push_back({.kind = MountKind::Tmpfs, .destination = "/sys/fs/cgroup/x"});
  MountPlanContext ctx;
  ctx.cgroup_v2 = true;
  auto plan = MountPlan::from_spec(s, ctx);
  ASSERT_TRUE(plan);
  EXPECT_LT(find(*plan, "/sys/fs/cgroup"), find(*plan, "/sys/fs/cgroup/x"));
}

TEST(MountPlan, CgroupV2IsOneReadOnlyMount) {
  MountPlanContext ctx;
  ctx.cgroup_v2 = true;
  auto plan = MountPlan::from_spec(base_spec(), ctx);
  ASSERT_TRUE(plan);
  const MountOp* cg = find(*plan, "/sys/fs/cgroup");
  ASSERT_NE(cg, nullptr);
  EXPECT_EQ(cg->fstype, "cgroup2");
  EXPECT_TRUE(cg->flags & MS_RDONLY);
}

TEST(MountPlan, FewOverlayLowersAreTheLayerPathsTopFirst) {
  ContainerSpec s = base_spec(3);
  auto plan = MountPlan::from_spec(s, {});
  ASSERT_TRUE(plan);
  EXPECT_EQ(plan->overlay_data,
            "lowerdir=" + s.root.lower_dirs[2].native() + ":" + s.root.lower_dirs[1].native() +
                ":" + s.root.lower_dirs[0].native() +
                ",upperdir=/var/lib/kiste/containers/abc/upper,"
                "workdir=/var/lib/kiste/containers/abc/work");
  EXPECT_TRUE(plan->lower_links.empty());
  EXPECT_TRUE(plan->lower_link_dir.empty());
}

TEST(MountPlan, LayerPathsTheOptionSyntaxCannotCarryGoThroughShortLinks) {
  ContainerSpec s = base_spec(2);
  s.root.lower_dirs[1] = "/var/lib/kiste,odd/snapshots/x:y";
  auto plan = MountPlan::from_spec(s, {});
  ASSERT_TRUE(plan);
  EXPECT_EQ(plan->overlay_data,
            "lowerdir=1:0,upperdir=/var/lib/kiste/containers/abc/upper,"
            "workdir=/var/lib/kiste/containers/abc/work");
  ASSERT_EQ(plan->lower_links.size(), 2u);
  EXPECT_EQ(plan->lower_links[0].first, "0");
  EXPECT_EQ(plan->lower_links[1].second, s.root.lower_dirs[1]);
  EXPECT_EQ(plan->lower_link_dir, "/var/lib/kiste/containers/abc/lower");
}

TEST(MountPlan, RuntimeFilesAreWrittenInTheContainerNotOnTheHost) {
  MountPlanContext ctx;
  ctx.runtime_files = {{"/etc/hosts", "127.0.0.1\tlocalhost\n"}, {"/etc/hostname", "abc\n"}};
  auto plan = MountPlan::from_spec(base_spec(), ctx);
  ASSERT_TRUE(plan);
  const MountOp* hosts = find(*plan, "/etc/hosts");
  ASSERT_NE(hosts, nullptr);
  EXPECT_EQ(hosts->kind, MountOpKind::RuntimeFile);
  EXPECT_EQ(hosts->data, "127.0.0.1\tlocalhost\n");
  EXPECT_EQ(hosts->create, CreateKind::File);
  ctx.runtime_files = {{"/etc/../x", "no"}};
  EXPECT_FALSE(MountPlan::from_spec(base_spec(), ctx));
}

TEST(MountPlan, RuntimeFilesGoOnATopLayerWhenTheImagesEtcAllowsIt) {
  MountPlanContext ctx;
  ctx.runtime_files = {{"/etc/hosts", "127.0.0.1\tlocalhost\n"}, {"/etc/hostname", "abc\n"}};
  ctx.image_etc = {.kind = ImageEtc::Kind::Directory, .mode = 02750, .uid = 7, .gid = 8};
  auto plan = MountPlan::from_spec(base_spec(), ctx);
  ASSERT_TRUE(plan);
  ASSERT_TRUE(plan->runtime_layer);
  EXPECT_EQ(plan->runtime_layer->etc_mode, 02750u);
  EXPECT_EQ(plan->runtime_layer->etc_uid, 7u);
  EXPECT_EQ(plan->runtime_layer->etc_gid, 8u);
  ASSERT_EQ(plan->runtime_layer->files.size(), 2u);
  EXPECT_EQ(plan->runtime_layer->files[0], (std::pair<std::string, std::string>{"hosts", "127.0.0.1\tlocalhost\n"}));
  EXPECT_EQ(find(*plan, "/etc/hosts"), nullptr);  // nothing bound
  // The merged dir (the layer's tmpfs) is the top lowerdir.
  EXPECT_THAT(plan->overlay_data, ::testing::StartsWith("lowerdir=" + plan->merged_dir.native() + ":" + base_spec().root.lower_dirs[0].native() + ","));
  // Many layers: the links stay relative, the runtime layer stays absolute on top.
  auto many = MountPlan::from_spec(base_spec(120), ctx);
  ASSERT_TRUE(many);
  EXPECT_THAT(many->overlay_data, ::testing::StartsWith("lowerdir=" + many->merged_dir.native() + ":119:118:"));

  ctx.image_etc = {.kind = ImageEtc::Kind::Absent};
  plan = MountPlan::from_spec(base_spec(), ctx);
  ASSERT_TRUE(plan && plan->runtime_layer);
  EXPECT_EQ(plan->runtime_layer->etc_mode, 0755u);
}

TEST(MountPlan, RuntimeFilesAreBoundWhereATopLayerWouldNotDo) {
  MountPlanContext ctx;
  ctx.runtime_files = {{"/etc/hosts", "h\n"}};
  auto bound = [&](const ContainerSpec& s) {
    auto plan = MountPlan::from_spec(s, ctx);
    EXPECT_TRUE(plan);
    return plan && !plan->runtime_layer && find(*plan, "/etc/hosts") != nullptr;
  };
  EXPECT_TRUE(bound(base_spec()));  // /etc not looked at
  ctx.image_etc = {.kind = ImageEtc::Kind::Other};  // a symlink: a directory would hide it
  EXPECT_TRUE(bound(base_spec()));
  ctx.image_etc = {.kind = ImageEtc::Kind::Directory};
  ContainerSpec ro = base_spec();
  ro.root.readonly = true;  // docker keeps the files writable under --read-only
  EXPECT_TRUE(bound(ro));
  ctx.userns = true;
  EXPECT_TRUE(bound(base_spec()));
  ctx.userns = false;
  ctx.runtime_files.push_back({"/run/x/y", "deeper than /etc"});
  EXPECT_TRUE(bound(base_spec()));
}

TEST(MountPlan, UpperAndWorkByFdMountTheRootOnTheContainerDir) {
  MountPlanContext ctx;
  ctx.upper_fd = 11;
  ctx.work_fd = 12;
  auto plan = MountPlan::from_spec(base_spec(), ctx);
  ASSERT_TRUE(plan);
  EXPECT_EQ(plan->merged_dir, base_spec().root.container_dir);  // no merged dir
  EXPECT_THAT(plan->overlay_data, ::testing::EndsWith(",upperdir=/proc/self/fd/11,workdir=/proc/self/fd/12"));
  EXPECT_EQ(plan->upper_fd, 11);
  EXPECT_EQ(plan->work_fd, 12);
  auto paths = MountPlan::from_spec(base_spec(), {});
  ASSERT_TRUE(paths);
  EXPECT_EQ(paths->merged_dir, base_spec().root.container_dir / "merged");
  EXPECT_THAT(paths->overlay_data, HasSubstr(",upperdir=/var/lib/kiste/containers/abc/upper,"));
}

TEST(MountPlan, AVolatileUpperKeepsAPlainFallback) {
  ContainerSpec s = base_spec();
  auto plain = MountPlan::from_spec(s, {});
  ASSERT_TRUE(plain);
  EXPECT_EQ(plain->overlay_data_plain, "");
  s.root.volatile_upper = true;
  auto vol = MountPlan::from_spec(s, {});
  ASSERT_TRUE(vol);
  EXPECT_EQ(vol->overlay_data, plain->overlay_data + ",volatile");
  EXPECT_EQ(vol->overlay_data_plain, plain->overlay_data);
}

TEST(MountPlan, HundredTwentyLayersFitAPage) {
  auto plan = MountPlan::from_spec(base_spec(120), {});
  ASSERT_TRUE(plan) << plan.error().to_string();
  EXPECT_LT(plan->overlay_data.size(), 4096u);
  EXPECT_THAT(plan->overlay_data, ::testing::StartsWith("lowerdir=119:118:"));
}

TEST(MountPlan, TooManyLayersForThePageAreRefused) {
  auto plan = MountPlan::from_spec(base_spec(1200), {});
  ASSERT_FALSE(plan);
  EXPECT_THAT(plan.error().to_string(), HasSubstr("overlay options for 1200 layers"));
}

TEST(MountPlan, RejectsBadTargetsAndSources) {
  for (const char* bad : {"relative/x", "/../etc", "/a/../../b", "/", "//"}) {
    ContainerSpec s = base_spec();
    s.mounts.push_back({.kind = MountKind::Tmpfs, .destination = bad});
    auto plan = MountPlan::from_spec(s, {});
    EXPECT_FALSE(plan) << bad;
  }
  ContainerSpec s = base_spec();
  s.mounts.push_back({.kind = MountKind::Tmpfs, .destination = std::string("/a\0b", 4)});
  auto p1 = MountPlan::from_spec(s, {});
  ASSERT_FALSE(p1);
  EXPECT_THAT(p1.error().to_string(), HasSubstr("NUL"));
  s = base_spec();
  s.mounts.push_back({.kind = MountKind::Bind, .source = "rel", .destination = "/x"});
  auto p2 = MountPlan::from_spec(s, {});
  ASSERT_FALSE(p2);
  EXPECT_THAT(p2.error().to_string(), HasSubstr("must be absolute"));
  s = base_spec();
  s.root.lower_dirs = {"relative/layer"};
  EXPECT_FALSE(MountPlan::from_spec(s, {}));
  s = base_spec();
  s.root.lower_dirs.clear();
  EXPECT_FALSE(MountPlan::from_spec(s, {}));
  s = base_spec();
  s.root.container_dir = "/var/lib/kiste/containers/a,b";
  EXPECT_FALSE(MountPlan::from_spec(s, {}));
}

TEST(MountPlan, NormalizesContainerPaths) {
  EXPECT_EQ(normalize_container_path("/a//b/./c/").value(), "/a/b/c");
  EXPECT_FALSE(normalize_container_path("a/b"));
  EXPECT_FALSE(normalize_container_path("/a/.."));
}

TEST(MountPlan, BindsKeepTheirOrderAndReadOnlyFlag) {
  ContainerSpec s = base_spec();
  s.mounts.push_back({.kind = MountKind::Bind, .source = "/tmp", .destination = "/b", .readonly = true});
  s.mounts.push_back({.kind = MountKind::Tmpfs, .destination = "/a", .tmpfs_options = "size=1m"});
  auto plan = MountPlan::from_spec(s, {});
  ASSERT_TRUE(plan) << plan.error().to_string();
  const MountOp* b = find(*plan, "/b");
  const MountOp* a = find(*plan, "/a");
  ASSERT_TRUE(a && b);
  EXPECT_LT(b, a);
  EXPECT_EQ(b->kind, MountOpKind::Bind);
  EXPECT_TRUE(b->flags & MS_RDONLY);
  EXPECT_EQ(b->create, CreateKind::Dir);
  EXPECT_EQ(a->data, "size=1m");
  // User mounts come before the masks, so a volume cannot unmask /proc/kcore.
  EXPECT_LT(a, find(*plan, "/proc/kcore"));
}

TEST(MountPlan, PrivilegedHasNoMasksAndWritableSys) {
  ContainerSpec s = base_spec();
  s.privileged = true;
  auto plan = MountPlan::from_spec(s, {});
  ASSERT_TRUE(plan);
  EXPECT_EQ(find(*plan, "/proc/kcore"), nullptr);
  EXPECT_FALSE(find(*plan, "/sys")->flags & MS_RDONLY);
}

TEST(MountPlan, BindPropagationAndTheRootsPropagation) {
  ContainerSpec s = base_spec();
  s.mounts.push_back({.kind = MountKind::Bind, .source = "/tmp", .destination = "/a"});
  auto plan = MountPlan::from_spec(s, {});
  ASSERT_TRUE(plan);
  EXPECT_EQ(find(*plan, "/a")->propagation, static_cast<unsigned long>(MS_PRIVATE | MS_REC));
  EXPECT_EQ(plan->root_propagation, static_cast<unsigned long>(MS_PRIVATE));
  s.mounts.push_back({.kind = MountKind::Bind, .source = "/tmp", .destination = "/b",
                      .propagation = Propagation::Slave});
  plan = MountPlan::from_spec(s, {});
  ASSERT_TRUE(plan);
  EXPECT_EQ(find(*plan, "/b")->propagation, static_cast<unsigned long>(MS_SLAVE));
  EXPECT_EQ(plan->root_propagation, static_cast<unsigned long>(MS_SLAVE));
}

TEST(MountPlan, UserNamespaceWithHostNetworkBindsSys) {
  ContainerSpec s = base_spec();
  s.namespaces.network = false;
  MountPlanContext ctx;
  ctx.userns = true;
  auto plan = MountPlan::from_spec(s, ctx);
  ASSERT_TRUE(plan);
  const MountOp* sys = find(*plan, "/sys");
  ASSERT_NE(sys, nullptr);
  EXPECT_EQ(sys->kind, MountOpKind::Bind);  // sysfs needs a network namespace of its own
  EXPECT_EQ(sys->source, "/sys");
  EXPECT_TRUE(sys->flags & MS_RDONLY);
  s.namespaces.network = true;
  plan = MountPlan::from_spec(s, ctx);
  ASSERT_TRUE(plan);
  EXPECT_EQ(find(*plan, "/sys")->fstype, "sysfs");
}

}  // namespace
}  // namespace kiste::runtime
