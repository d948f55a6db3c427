#include <sys/resource.h>
#include <sys/stat.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <kiste/base/sys.hpp>
#include <kiste/base/temp_dir.hpp>
#include <kiste/runtime/run_options.hpp>

namespace kiste::runtime {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

class RunOptionsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_.emplace(std::move(TempDir::create(fs::temp_directory_path(), "kiste-ro-").value()));
    layer0_ = dir_->path() / "l0";
    layer1_ = dir_->path() / "l1";
    ASSERT_TRUE(sys::mkdir_all(layer0_ / "etc"));
    ASSERT_TRUE(sys::mkdir_all(layer1_ / "etc"));
    ASSERT_TRUE(sys::write_file_atomic(layer0_ / "etc/passwd", "root:x:0:0:root:/root:/bin/sh\nold:x:5:5::/:/bin/sh\n"));
    // The upper layer's passwd wins.
    ASSERT_TRUE(sys::write_file_atomic(layer1_ / "etc/passwd",
                                       "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n"));
    ASSERT_TRUE(sys::write_file_atomic(layer0_ / "etc/group", "root:x:0:\napp:x:1000:\nwheel:x:10:app,other\nstaff:x:50:\n"));
  }
  MakeSpecInput input(ImageProcessDefaults img = {}) {
    return {.id = "0123456789abcdef0123", .lower_dirs = {layer0_, layer1_},
            .container_dir = dir_->path() / "c", .image = std::move(img)};
  }
  std::optional<TempDir> dir_;
  fs::path layer0_, layer1_;
};

TEST_F(RunOptionsTest, EntrypointAndCmdFollowDockerRules) {
  ImageProcessDefaults img{.entrypoint = {"/ep"}, .cmd = {"a", "b"}};
  RunOptions o;
  EXPECT_EQ(make_spec(o, input(img))->process.args, (std::vector<std::string>{"/ep", "a", "b"}));
  o.command = {"x"};
  EXPECT_EQ(make_spec(o, input(img))->process.args, (std::vector<std::string>{"/ep", "x"}));
  o.entrypoint = "/other";
  o.command.clear();
  EXPECT_EQ(make_spec(o, input(img))->process.args, (std::vector<std::string>{"/other"}));
  o.entrypoint = "";
  o.command = {"sh"};
  EXPECT_EQ(make_spec(o, input(img))->process.args, (std::vector<std::string>{"sh"}));
  RunOptions empty;
  auto none = make_spec(empty, input());
  ASSERT_FALSE(none);
  EXPECT_THAT(none.error().to_string(), HasSubstr("no command"));
}

// Docker's "Minimum memory limit allowed is 6MB": refused before anything starts.
TEST_F(RunOptionsTest, MemoryBelowSixMegabytesIsRefused) {
  RunOptions o;
  o.command = {"true"};
  for (const char* small : {"1", "4096", "5m", "6291455b"}) {
    o.memory = small;
    auto s = make_spec(o, input());
    ASSERT_FALSE(s) << small;
    EXPECT_EQ(s.error().to_string(),
              fmt::format("memory `{}`: below the minimum memory limit of 6MB (docker's too)", small));
  }
  for (const char* enough : {"6m", "6291456", "1g"}) {
    o.memory = enough;
    auto s = make_spec(o, input());
    ASSERT_TRUE(s) << enough << ": " << s.error().to_string();
    EXPECT_GE(*s->resources.memory, kMinMemoryLimit);
  }
}

TEST_F(RunOptionsTest, EnvironmentLayersInDockerOrder) {
  const char* host[] = {"FROM_HOST=h", "PATH=/host", nullptr};
  fs::path env_file = dir_->path() / "env";
  ASSERT_TRUE(sys::write_file_atomic(env_file, "# c\nA=file\n\nB=file\nFROM_HOST\n"));
  RunOptions o;
  o.command = {"true"};
  o.env_files = {env_file};
  o.env = {"B=flag", "FROM_HOST", "NOT_ON_HOST"};
  auto in = input({.env = {"PATH=/img/bin", "A=img", "C=img"}});
  in.host_env = host;
  auto s = make_spec(o, in);
  ASSERT_TRUE(s) << s.error().to_string();
  EXPECT_EQ(s->process.env,
            (std::vector<std::string>{"PATH=/img/bin", "A=file", "C=img", "B=flag", "FROM_HOST=h",
                                      "HOSTNAME=0123456789ab", "HOME=/root"}));
  o.env = {"=bad"};
  EXPECT_FALSE(make_spec(o, in));
}

TEST_F(RunOptionsTest, UsersResolveFromTheTopmostLayer) {
  auto u = resolve_user("app", {layer0_, layer1_});
  ASSERT_TRUE(u) << u.error().to_string();
  EXPECT_EQ(u->uid, 1000u);
  EXPECT_EQ(u->gid, 1000u);
  EXPECT_EQ(u->home, "/home/app");
  EXPECT_EQ(u->additional_gids, (std::vector<gid_t>{1000, 10}));
  EXPECT_FALSE(resolve_user("old", {layer0_, layer1_}));  // shadowed by the upper passwd
  auto g = resolve_user("app:staff", {layer0_, layer1_});
  ASSERT_TRUE(g);
  EXPECT_EQ(g->gid, 50u);
  auto n = resolve_user("4242:77", {layer0_, layer1_});
  ASSERT_TRUE(n);
  EXPECT_EQ(n->uid, 4242u);
  EXPECT_EQ(n->gid, 77u);
  EXPECT_TRUE(n->additional_gids.empty());
  auto missing = resolve_user("nobody-here", {layer0_});
  ASSERT_FALSE(missing);
  EXPECT_THAT(missing.error().to_string(), HasSubstr("user `nobody-here`: no such user"));
  EXPECT_FALSE(resolve_user("app:nogroup", {layer0_, layer1_}));
  EXPECT_FALSE(resolve_user(":5", {layer0_}));
}

TEST_F(RunOptionsTest, PasswdSymlinkCannotReadHostFiles) {
  // /etc/passwd -> /etc/hostname: resolved inside the layer, never the host's file.
  fs::path l = dir_->path() / "evil";
  ASSERT_TRUE(sys::mkdir_all(l / "etc"));
  fs::create_symlink("/../../../../etc/shadow", l / "etc/passwd");
  auto u = resolve_user("root", {l});
  EXPECT_FALSE(u);  // no passwd inside the layer: unknown name
  sys::set_openat2_disabled(true);
  auto u2 = resolve_user("root", {l});
  sys::set_openat2_disabled(false);
  EXPECT_FALSE(u2);
  // A numeric user still works without a passwd.
  EXPECT_TRUE(resolve_user("0", {l}));
}

// Host root reads the image's /etc/passwd and /etc/group on every run: a FIFO there hung `kiste
// run` forever (issue 12). Anything but a regular file is refused before it is read.
TEST_F(RunOptionsTest, PasswdThatIsAFifoIsRefusedWithoutBlocking) {
  fs::path l = dir_->path() / "fifo";
  ASSERT_TRUE(sys::mkdir_all(l / "etc"));
  ASSERT_EQ(::mkfifo((l / "etc/passwd").c_str(), 0644), 0);
  auto u = resolve_user("root", {l});
  ASSERT_FALSE(u);
  EXPECT_THAT(u.error().to_string(), HasSubstr("a FIFO, not a regular file"));
  sys::set_openat2_disabled(true);
  auto u2 = resolve_user("0", {l});
  sys::set_openat2_disabled(false);
  ASSERT_FALSE(u2);
  EXPECT_THAT(u2.error().to_string(), HasSubstr("a FIFO, not a regular file"));
  // A symlink to it inside the layer is no way around the check.
  fs::path l2 = dir_->path() / "fifo-link";
  ASSERT_TRUE(sys::mkdir_all(l2 / "etc"));
  ASSERT_EQ(::mkfifo((l2 / "etc/real").c_str(), 0644), 0);
  fs::create_symlink("/etc/real", l2 / "etc/group");
  ASSERT_TRUE(sys::write_file_atomic(l2 / "etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"));
  auto u3 = resolve_user("root", {l2});
  ASSERT_FALSE(u3);
  EXPECT_THAT(u3.error().to_string(), HasSubstr("a FIFO, not a regular file"));
}

TEST_F(RunOptionsTest, InitIsKisteInitBoundReadOnlyAtDevInit) {
  RunOptions o;
  o.command = {"sh", "-c", "x"};
  o.init = true;
  o.volumes = {"/tmp:/dev"};  // a user mount over /dev does not cover the init: it comes after
  auto none = make_spec(o, input());
  ASSERT_FALSE(none);
  EXPECT_THAT(none.error().to_string(), HasSubstr("--init: no kiste-init binary"));
  MakeSpecInput in = input();
  in.init_binary = "/usr/lib/kiste/kiste-init";
  auto s = make_spec(o, in);
  ASSERT_TRUE(s) << s.error().to_string();
  EXPECT_EQ(s->process.args, (std::vector<std::string>{"/dev/init", "--", "sh", "-c", "x"}));
  ASSERT_FALSE(s->mounts.empty());
  const MountSpec& m = s->mounts.back();
  EXPECT_EQ(m.kind, MountKind::Bind);
  EXPECT_EQ(m.source, "/usr/lib/kiste/kiste-init");
  EXPECT_EQ(m.destination, "/dev/init");
  EXPECT_TRUE(m.readonly);
}

TEST_F(RunOptionsTest, CapabilitiesStartFromDockersFourteen) {
  RunOptions o;
  o.command = {"true"};
  auto s = make_spec(o, input());
  ASSERT_TRUE(s);
  EXPECT_EQ(s->process.capabilities.bounding, kDockerDefaultCaps);
  EXPECT_EQ(s->process.capabilities.inheritable, 0u);
  EXPECT_EQ(s->process.capabilities.ambient, 0u);
  o.cap_add = {"NET_ADMIN", "cap_sys_ptrace"};
  o.cap_drop = {"CAP_CHOWN"};
  s = make_spec(o, input());
  ASSERT_TRUE(s);
  EXPECT_EQ(s->process.capabilities.effective, (kDockerDefaultCaps | (1u << 12) | (1u << 19)) & ~1ull);
  o.cap_drop = {"ALL"};
  o.cap_add = {"KILL"};
  s = make_spec(o, input());
  ASSERT_TRUE(s);
  EXPECT_EQ(s->process.capabilities.bounding, 1ull << 5);
  o.cap_add = {"CAP_WHATEVER"};
  auto bad = make_spec(o, input());
  ASSERT_FALSE(bad);
  EXPECT_THAT(bad.error().to_string(), HasSubstr("capability `CAP_WHATEVER`: unknown"));
}

TEST_F(RunOptionsTest, SecurityOptions) {
  RunOptions o;
  o.command = {"true"};
  o.security_opts = {"no-new-privileges", "seccomp=unconfined"};
  auto s = make_spec(o, input());
  ASSERT_TRUE(s);
  EXPECT_TRUE(s->process.no_new_privileges);
  EXPECT_TRUE(s->seccomp.unconfined);
  o.security_opts = {"seccomp=/nonexistent/profile.json"};
  auto missing = make_spec(o, input());
  ASSERT_FALSE(missing);
  EXPECT_THAT(missing.error().to_string(), HasSubstr("seccomp profile"));
  o.security_opts = {"bogus=1"};
  EXPECT_FALSE(make_spec(o, input()));
  o.security_opts = {"no-new-privileges=maybe"};
  EXPECT_FALSE(make_spec(o, input()));
}

TEST_F(RunOptionsTest, ResourcesNetworkAndMounts) {
  RunOptions o;
  o.command = {"true"};
  o.memory = "8m";
  o.cpus = "1.5";
  o.pids_limit = 20;
  o.network = "host";
  o.volumes = {"/tmp:/data:ro"};
  o.mounts = {"type=tmpfs,target=/scratch,tmpfs-size=1m", "type=bind,source=/tmp,target=/b,readonly"};
  o.ulimits = {"nofile=1024:2048"};
  auto s = make_spec(o, input());
  ASSERT_TRUE(s) << s.error().to_string();
  EXPECT_EQ(s->resources.memory, 8 << 20);
  EXPECT_EQ(s->resources.cpu_quota, 150000);
  EXPECT_EQ(s->resources.pids, 20);
  EXPECT_FALSE(s->namespaces.network);
  ASSERT_EQ(s->mounts.size(), 3u);
  EXPECT_TRUE(s->mounts[0].readonly);
  EXPECT_EQ(s->mounts[1].tmpfs_options, "size=1m");
  EXPECT_TRUE(s->mounts[2].readonly);
  ASSERT_EQ(s->process.rlimits.size(), 1u);
  EXPECT_EQ(s->process.rlimits[0].resource, RLIMIT_NOFILE);
  EXPECT_EQ(s->process.rlimits[0].hard, 2048u);
  for (auto bad : {"relative:/x", "/a", "/a:/b:rx", ":/b"}) {
    RunOptions b;
    b.command = {"true"};
    b.volumes = {bad};
    EXPECT_FALSE(make_spec(b, input())) << bad;
  }
  for (auto bad : {"type=volume,target=/x", "type=bind,target=/x", "type=tmpfs", "type=tmpfs,target=/x,wat=1"}) {
    RunOptions b;
    b.command = {"true"};
    b.mounts = {bad};
    EXPECT_FALSE(make_spec(b, input())) << bad;
  }
  for (auto bad : {"nofile", "nofile=2:1", "bogus=1", "nofile=a"}) {
    RunOptions b;
    b.command = {"true"};
    b.ulimits = {bad};
    EXPECT_FALSE(make_spec(b, input())) << bad;
  }
  RunOptions n;
  n.command = {"true"};
  n.network = "bridge";  // docker's name for the default bridge network
  auto net = make_spec(n, input());
  ASSERT_TRUE(net) << net.error().to_string();
  EXPECT_EQ(net->network, NetworkMode::Bridge);
  EXPECT_EQ(net->network_name, "kiste");
  n.network = "container:abc";
  auto joined = make_spec(n, input());
  ASSERT_TRUE(joined) << joined.error().to_string();
  EXPECT_EQ(joined->network, NetworkMode::Container);
  EXPECT_EQ(joined->network_name, "abc");
  EXPECT_FALSE(joined->namespaces.network);
  n.network = "container:";
  EXPECT_FALSE(make_spec(n, input()));
}

TEST_F(RunOptionsTest, HostnameWorkdirAndUser) {
  RunOptions o;
  o.command = {"true"};
  auto s = make_spec(o, input({.working_dir = "/srv", .user = "app"}));
  ASSERT_TRUE(s);
  EXPECT_EQ(s->hostname, "0123456789ab");
  EXPECT_EQ(s->process.cwd, "/srv");
  EXPECT_EQ(s->process.uid, 1000u);
  o.workdir = "relative";
  EXPECT_FALSE(make_spec(o, input()));
  o.workdir = "";
  o.hostname = "bad/name";
  EXPECT_FALSE(make_spec(o, input()));
}

TEST_F(RunOptionsTest, VolumeOptionsPropagationAndNamedVolumes) {
  RunOptions o;
  o.command = {"true"};
  o.volumes = {"/tmp:/a:ro,rslave", "/tmp:/b:z", "data:/c:slave"};
  o.mounts = {"type=bind,source=/tmp,target=/d,bind-propagation=private",
              "type=volume,source=data,target=/e"};
  MakeSpecInput in = input();
  in.volumes_dir = dir_->path() / "volumes";
  auto s = make_spec(o, in);
  ASSERT_TRUE(s) << s.error().to_string();
  ASSERT_EQ(s->mounts.size(), 5u);
  EXPECT_TRUE(s->mounts[0].readonly);
  EXPECT_EQ(s->mounts[0].propagation, Propagation::RSlave);
  EXPECT_EQ(s->mounts[1].propagation, Propagation::RPrivate);  // Docker's default
  EXPECT_EQ(s->mounts[2].source, in.volumes_dir / "data" / "_data");
  EXPECT_TRUE(fs::is_directory(in.volumes_dir / "data" / "_data"));
  EXPECT_EQ(s->mounts[2].propagation, Propagation::Slave);
  EXPECT_EQ(s->mounts[3].propagation, Propagation::Private);
  EXPECT_EQ(s->mounts[4].source, in.volumes_dir / "data" / "_data");

  for (auto bad : {"/tmp:/a:rshared", "/tmp:/a:shared", "/tmp:/a:rbogus", "../x:/a", "a/b:/c", ".hidden:/a"}) {
    RunOptions b;
    b.command = {"true"};
    b.volumes = {bad};
    EXPECT_FALSE(make_spec(b, in)) << bad;
  }
  EXPECT_FALSE(fs::exists(in.volumes_dir / "..x"));
  // A named volume needs a kiste root; slave propagation cannot reach into a user namespace.
  RunOptions n;
  n.command = {"true"};
  n.volumes = {"data:/c"};
  EXPECT_FALSE(make_spec(n, input()));
  n.volumes = {"/tmp:/c:rslave"};
  n.userns = "auto";
  auto u = make_spec(n, in);
  ASSERT_FALSE(u);
  EXPECT_THAT(u.error().message, HasSubstr("needs --userns=host"));
}

}  // namespace
}  // namespace kiste::runtime

namespace kiste::runtime {
namespace {

TEST(SysAdminWarning, OnlyWhenAddedAndNoSecurityModule) {
  auto dir = TempDir::create(std::filesystem::temp_directory_path(), "kiste-lsm-");
  ASSERT_TRUE(dir);
  const auto lsm = dir->path() / "lsm";
  ASSERT_TRUE(sys::write_file_atomic(lsm, "lockdown,capability,landlock,yama,bpf"));
  RunOptions o;
  o.command = {"true"};
  auto plain = make_spec(o, {.id = "a", .lower_dirs = {"/"}, .container_dir = dir->path() / "c"});
  ASSERT_TRUE(plain);
  EXPECT_EQ(sys_admin_warning(*plain, lsm), "");
  o.cap_add = {"SYS_ADMIN"};
  auto admin = make_spec(o, {.id = "a", .lower_dirs = {"/"}, .container_dir = dir->path() / "c"});
  ASSERT_TRUE(admin);
  EXPECT_THAT(sys_admin_warning(*admin, lsm), ::testing::HasSubstr("CAP_SYS_ADMIN is added"));
  ASSERT_TRUE(sys::write_file_atomic(lsm, "lockdown,capability,apparmor"));
  EXPECT_EQ(sys_admin_warning(*admin, lsm), "");
}

}  // namespace
}  // namespace kiste::runtime
