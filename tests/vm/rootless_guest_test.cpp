// Runs INSIDE the VM guest (tests/vm/run.sh), issue 20: rootless kiste's cgroups on a pure v2
// host. A user made here with useradd (the guest's /etc is a tmpfs overlay: it goes with the
// guest) runs kiste with its own systemd user manager started (`user@UID.service`, Delegate=yes
// on Debian): limits are set in a scope of that manager, an OOM kill is 137, and no scope is
// left. A second user has no user manager (nor has anyone in the guest booted without
// systemd): one warning naming why, and a limit refused in one line.
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <regex>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <kiste/base/sys.hpp>
#include <kiste/testing/busybox_rootfs.hpp>
#include <kiste/testing/kiste_cli.hpp>
#include <kiste/testing/temp_root.hpp>

namespace kiste::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

bool pure_v2() {
  struct statfs st {};
  return ::statfs("/sys/fs/cgroup", &st) == 0 && st.f_type == CGROUP2_SUPER_MAGIC;
}
bool systemd_runs() { return ::access("/run/systemd/system", F_OK) == 0; }

struct GuestUser {
  std::string name;
  uid_t uid = 0;
  fs::path home;
  bool manager = false;  // user@UID.service started
};

// Container scopes (kiste-<64 hex>.scope) anywhere below the users' slice.
std::vector<std::string> user_scopes() {
  static const std::regex re("kiste-[0-9a-f]{64}\\.scope");
  std::vector<std::string> out;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator("/sys/fs/cgroup/user.slice", ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_directory(ec) && std::regex_match(it->path().filename().native(), re)) {
      out.push_back(it->path().native());
    }
  }
  return out;
}

class RootlessGuest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!pure_v2() || ::geteuid() != 0) return;
    // Below /tmp (a real tmpfs in the guest): the users' stores hold overlay upper dirs, which
    // cannot be on the guest's overlay root.
    work_ = std::make_unique<TempRoot>("kiste-vm-rootless-");
    ::chmod(work_->path().c_str(), 0755);
    const fs::path rootfs = work_->path() / "rootfs";
    ASSERT_TRUE(make_busybox_rootfs(rootfs));
    tar_ = work_->path() / "bb.tar";
    std::string out;
    ASSERT_EQ(run_shell("tar -C " + rootfs.native() + " -cf " + tar_.native() + " . 2>&1", &out), 0) << out;
    ::chmod(tar_.c_str(), 0644);
    // The user with a manager only where systemd can start one (its tests skip elsewhere).
    if (systemd_runs()) with_manager_ = make_user("kvm", 400000, true);
    without_ = make_user("kvn", 500000, false);
  }

  static void TearDownTestSuite() {
    for (GuestUser* u : {&with_manager_, &without_}) {
      if (u->name.empty()) continue;
      std::string out;
      if (u->manager) {
        EXPECT_EQ(run_shell(fmt::format("systemctl stop user@{}.service 2>&1", u->uid), &out), 0) << out;
      }
      (void)run_shell("pkill -KILL -u " + u->name);
      out.clear();
      EXPECT_EQ(run_shell("userdel -r " + u->name + " 2>&1", &out), 0) << out;
      *u = GuestUser{};
    }
    work_.reset();
  }

  static GuestUser make_user(const std::string& prefix, uint64_t subid_start, bool manager) {
    GuestUser u;
    u.name = prefix + sys::random_hex(4);
    u.home = work_->path() / ("home-" + u.name);
    std::string out;
    EXPECT_EQ(run_shell("useradd -m -d " + u.home.native() + " -s /bin/sh " + u.name + " 2>&1", &out), 0) << out;
    const std::string range = fmt::format("{}-{}", subid_start, subid_start + 65535);
    out.clear();
    EXPECT_EQ(run_shell("usermod --add-subuids " + range + " --add-subgids " + range + " " + u.name + " 2>&1", &out),
              0)
        << out;
    out.clear();
    EXPECT_EQ(run_shell("id -u " + u.name, &out), 0);
    u.uid = static_cast<uid_t>(std::stoul(out));
    if (manager) {
      out.clear();
      EXPECT_EQ(run_shell(fmt::format("systemctl start user@{}.service 2>&1", u.uid), &out), 0) << out;
      u.manager = true;
    } else {
      // A runtime dir of its own, as a login without pam_systemd might give it.
      const fs::path run = work_->path() / ("run-" + u.name);
      fs::create_directory(run);
      (void)::chown(run.c_str(), u.uid, u.uid);
      ::chmod(run.c_str(), 0700);
    }
    out.clear();
    EXPECT_EQ(run_shell(as(u, "import " + tar_.native() + " bb") + " 2>&1", &out), 0) << out;
    return u;
  }

  // `kiste ARGS` as `u`, with what a login would set (the user bus where its manager runs).
  static std::string as(const GuestUser& u, const std::string& args) {
    const std::string run =
        u.manager ? fmt::format("/run/user/{}", u.uid) : (work_->path() / ("run-" + u.name)).native();
    std::string env = "HOME=" + u.home.native() + " USER=" + u.name +
                      " PATH=/usr/sbin:/usr/bin:/sbin:/bin XDG_RUNTIME_DIR=" + run;
    if (u.manager) env += " DBUS_SESSION_BUS_ADDRESS=unix:path=" + run + "/bus";
    return "setpriv --reuid=" + u.name + " --regid=" + u.name + " --init-groups env -i " + env + " " +
           kiste_binary().native() + " " + args;
  }
  static int run_as(const GuestUser& u, const std::string& args, std::string* out) {
    out->clear();
    return run_shell(as(u, args) + " 2>&1", out);
  }

  void SetUp() override {
    if (!pure_v2()) GTEST_SKIP() << "not a pure cgroup v2 host: these tests run in tests/vm/run.sh";
    ASSERT_EQ(::geteuid(), 0u) << "the guest runs its tests as root";
  }
  void TearDown() override {
    if (!work_) return;
    EXPECT_THAT(user_scopes(), ::testing::IsEmpty());
    EXPECT_THAT(mounts_below(work_->path()), ::testing::IsEmpty());
  }

  static inline std::unique_ptr<TempRoot> work_;
  static inline fs::path tar_;
  static inline GuestUser with_manager_, without_;
};

TEST_F(RootlessGuest, LimitsGoThroughTheUsersOwnSystemd) {
  if (!systemd_runs()) GTEST_SKIP() << "systemd is not PID 1 in this guest";
  const GuestUser& u = with_manager_;
  std::string out;
  // No warning: the container has a cgroup, and its limit is its own.
  ASSERT_EQ(run_as(u, "run --rm --memory 32m --pids-limit 50 bb sh -c "
                      "'cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max'",
                   &out),
            0)
      << out;
  // The scope holds one more task, its holder (kiste-init --hold): the container still gets 50.
  EXPECT_EQ(out, "33554432\n51\n");
  EXPECT_EQ(run_as(u, "run --rm --memory 6m bb kiste_test_init memhog 50", &out), 137) << out;
  EXPECT_THAT(out, HasSubstr("kiste: error: killed: out of memory (limit 6 MiB)"));
  EXPECT_THAT(out, ::testing::Not(HasSubstr("warning")));
  ASSERT_EQ(run_as(u, "run --rm --pids-limit 20 bb kiste_test_init forkbomb 200", &out), 0) << out;
  int forked = -1, failed = -1;
  ASSERT_EQ(std::sscanf(out.c_str(), "forked=%d failed=%d", &forked, &failed), 2) << out;
  EXPECT_LE(forked, 19);
  EXPECT_GE(failed, 181);
}

// A rootless build's RUN steps get their limits in the user's scopes too.
TEST_F(RootlessGuest, BuildRunStepsGetTheirLimitsThroughTheUsersSystemd) {
  if (!systemd_runs()) GTEST_SKIP() << "systemd is not PID 1 in this guest";
  const GuestUser& u = with_manager_;
  const fs::path ctx = work_->path() / "ctx";
  fs::create_directory(ctx);
  ASSERT_TRUE(sys::write_file_atomic(ctx / "Containerfile",
                                     "FROM bb\nRUN cat /sys/fs/cgroup/memory.max > /limit\n", 0644));
  ::chmod(ctx.c_str(), 0755);
  std::string out;
  ASSERT_EQ(run_as(u, "build --network none --memory 8m -t lim " + ctx.native(), &out), 0) << out;
  EXPECT_THAT(out, ::testing::Not(HasSubstr("warning")));
  ASSERT_EQ(run_as(u, "run --rm lim cat /limit", &out), 0) << out;
  EXPECT_EQ(out, "8388608\n");
}

// The scope is the user manager's, in its delegated subtree, and goes with the container.
TEST_F(RootlessGuest, TheScopeIsInTheUsersSubtreeAndGoesWithTheContainer) {
  if (!systemd_runs()) GTEST_SKIP() << "systemd is not PID 1 in this guest";
  const GuestUser& u = with_manager_;
  std::string out;
  ASSERT_EQ(run_as(u, "run -d --name s1 bb sleep 600", &out), 0) << out;
  const std::vector<std::string> scopes = user_scopes();
  ASSERT_EQ(scopes.size(), 1u);
  EXPECT_THAT(scopes[0], ::testing::StartsWith(fmt::format(
                             "/sys/fs/cgroup/user.slice/user-{0}.slice/user@{0}.service/kiste.slice/",
                             u.uid)));
  struct stat st {};
  ASSERT_EQ(::stat(scopes[0].c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, u.uid);
  EXPECT_EQ(run_as(u, "rm -f s1", &out), 0) << out;
  out.clear();
  EXPECT_EQ(run_shell(fmt::format("setpriv --reuid={0} --regid={0} --init-groups env -i "
                                  "XDG_RUNTIME_DIR=/run/user/{0} systemctl --user list-units --all "
                                  "--plain --no-legend 'kiste-*'",
                                  u.uid),
                      &out),
            0);
  EXPECT_EQ(out, "");
}

// No user manager (or no systemd at all): one warning that says why, and every limit refused in
// one line, before anything is made.
TEST_F(RootlessGuest, WithoutAUserManagerOneWarningAndLimitsAreRefused) {
  const GuestUser& u = without_;
  std::string out;
  ASSERT_EQ(run_as(u, "run --rm bb echo fine", &out), 0) << out;
  const std::string why = systemd_runs()
                              ? "rootless, and your systemd user manager, which delegates cgroups to you, has no bus"
                              : "rootless, and no systemd runs here to delegate a cgroup v2 subtree to you";
  EXPECT_THAT(out, ::testing::StartsWith("kiste: warning: running without cgroup limits: " + why)) << out;
  EXPECT_EQ(count_lines(out), 2u) << out;
  EXPECT_THAT(out, ::testing::EndsWith("\nfine\n"));
  for (const char* flag : {"--memory 6m", "--pids-limit 20", "--cpus 0.5"}) {
    EXPECT_EQ(run_as(u, std::string("run --rm ") + flag + " bb true", &out), 125) << flag;
    const std::string name = std::string(flag).substr(0, std::string(flag).find(' '));
    EXPECT_THAT(out, ::testing::StartsWith("kiste: error: " + name + ": this container runs without a cgroup (" +
                                           why))
        << flag;
    EXPECT_EQ(count_lines(out), 1u) << out;
  }
  std::error_code ec;
  EXPECT_TRUE(fs::is_empty(u.home / ".local/share/kiste/containers", ec)) << "container dirs left";
}

}  // namespace
}  // namespace kiste::testing
