// Issue 20, rootless kiste: the kiste binary run by an ordinary user the test makes with
// useradd (and a subordinate id range from usermod), through setpriv. The user, its
// /etc/subuid and /etc/subgid lines and its home go again at the end; no process of it may be
// left running.
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

#include <kiste/base/sys.hpp>
#include <kiste/testing/kiste_cli.hpp>
#include <kiste/testing/registry_process.hpp>
#include <kiste/testing/require_root.hpp>
#include <kiste/testing/temp_root.hpp>

namespace kiste::testing {
namespace {

namespace fs = std::filesystem;

// One user made for the suite.
struct TestUser {
  std::string name;
  uid_t uid = 0;
  gid_t gid = 0;
  fs::path home;
};

// The first 65536 ids from 300000 up that no line of /etc/subuid or /etc/subgid gives anyone.
uint64_t free_subid_start() {
  uint64_t start = 300000;
  for (const char* f : {"/etc/subuid", "/etc/subgid"}) {
    std::ifstream in(f);
    std::string line;
    while (std::getline(in, line)) {
      std::istringstream parts(line);
      std::string owner, a, b;
      if (!std::getline(parts, owner, ':') || !std::getline(parts, a, ':') || !std::getline(parts, b)) continue;
      try {
        start = std::max<uint64_t>(start, std::stoull(a) + std::stoull(b));
      } catch (...) {
      }
    }
  }
  return start;
}

// The processes of `user` that still run (zombies are dead: this machine's PID 1 reaps the
// orphans it inherits, such as a stopped container's monitor, only after a while).
std::string live_processes(const std::string& user) {
  std::string out, live;
  (void)run_shell("ps -u " + user + " -o pid=,stat=,args=", &out);
  std::istringstream in(out);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream f(line);
    std::string pid, stat;
    f >> pid >> stat;
    if (!stat.empty() && stat[0] != 'Z') live += line + "\n";
  }
  return live;
}

class Rootless : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (::geteuid() != 0) return;
    work_ = std::make_unique<TempRoot>("kiste-rootless-");
    ::chmod(work_->path().c_str(), 0755);  // the users reach the binary and the archive here
    // The binary and the busybox archive, readable by anyone (CI's clone may not be).
    fs::create_directories(work_->path() / "bin");
    fs::copy_file(kiste_binary(), work_->path() / "bin" / "kiste");
    ::chmod((work_->path() / "bin" / "kiste").c_str(), 0755);
    user_ = make_user(true);
    bare_ = make_user(false);
    // The base image, made by root as in the other tests (SOURCE_DATE_EPOCH=0: the same bytes
    // in every store), handed to the users as a docker-archive.
    root_store_ = work_->path() / "root-store";
    std::string out;
    ASSERT_EQ(run_shell("SOURCE_DATE_EPOCH=0 " + kiste_command(root_store_, "import -c 'CMD [\"/bin/sh\"]' " +
                                                                          busybox_tar().native() + " busybox"),
                        &out),
              0)
        << out;
    archive_ = work_->path() / "busybox.tar";
    ASSERT_EQ(run_shell(kiste_command(root_store_, "save -o " + archive_.native() + " busybox"), &out), 0) << out;
    ::chmod(archive_.c_str(), 0644);
  }

  static void TearDownTestSuite() {
    UsersLock lock;
    for (TestUser* u : {&user_, &bare_}) {
      if (u->name.empty()) continue;
      std::string out;
      // Nothing of the user may still run.
      EXPECT_EQ(live_processes(u->name), "") << "processes left";
      (void)run_shell("pkill -KILL -u " + u->name);
      // userdel refuses a user that still has processes, zombies too: wait for PID 1 to reap
      // them (bounded; not a measurement).
      for (int i = 0; i < 600 && run_shell("pgrep -u " + u->name + " >/dev/null") == 0; ++i) ::usleep(100'000);
      EXPECT_EQ(run_shell("userdel -r " + u->name + " 2>&1", &out), 0) << out;
      for (const char* f : {"/etc/subuid", "/etc/subgid"}) {
        (void)run_shell(std::string("sed -i '/^") + u->name + ":/d' " + f);
      }
      EXPECT_FALSE(fs::exists(u->home));
      *u = TestUser{};
    }
    work_.reset();
  }

  // Serialises the users' making and removal among test processes (ctest -j): shadow's tools
  // fail at once when another holds their lock, and two ranges must not be picked at once.
  class UsersLock {
   public:
    UsersLock() : fd_(::open("/etc/passwd", O_RDONLY | O_CLOEXEC)) {
      if (fd_ >= 0) (void)::flock(fd_, LOCK_EX);
    }
    ~UsersLock() {
      if (fd_ >= 0) ::close(fd_);
    }
    UsersLock(const UsersLock&) = delete;
    UsersLock& operator=(const UsersLock&) = delete;

   private:
    int fd_;
  };

  static TestUser make_user(bool with_range) {
    UsersLock lock;
    TestUser u;
    u.name = "kr" + sys::random_hex(4);
    std::string out;
    EXPECT_EQ(run_shell("useradd -m -s /bin/sh -K SUB_UID_COUNT=0 -K SUB_GID_COUNT=0 " + u.name + " 2>&1", &out), 0) << out;
    if (with_range) {
      const uint64_t s = free_subid_start();
      const std::string range = std::to_string(s) + "-" + std::to_string(s + 65535);
      EXPECT_EQ(run_shell("usermod --add-subuids " + range + " --add-subgids " + range + " " + u.name + " 2>&1", &out), 0)
          << out;
      subid_start_ = s;
    }
    EXPECT_EQ(run_shell("id -u " + u.name, &out), 0);
    u.uid = static_cast<uid_t>(std::stoul(out));
    EXPECT_EQ(run_shell("id -g " + u.name, &out), 0);
    u.gid = static_cast<gid_t>(std::stoul(out));
    u.home = fs::path("/home") / u.name;
    return u;
  }

  void SetUp() override { KISTE_REQUIRE_ROOT(); }

  // `kiste ARGS` as `u`, with a login's environment (`env` adds or replaces variables).
  static std::string as(const TestUser& u, const std::string& args, const std::string& env = "",
                        bool runtime_dir = true) {
    std::string e = "HOME=" + u.home.native() + " USER=" + u.name + " PATH=/usr/sbin:/usr/bin:/sbin:/bin";
    if (runtime_dir) e += " XDG_RUNTIME_DIR=" + runtime_dir_of(u).native();
    return "setpriv --reuid=" + u.name + " --regid=" + u.name + " --init-groups env -i " + e + " " + env + " " +
           (work_->path() / "bin" / "kiste").native() + " " + args;
  }
  static fs::path runtime_dir_of(const TestUser& u) {
    fs::path d = work_->path() / ("run-" + u.name);
    if (!fs::exists(d)) {
      fs::create_directory(d);
      (void)::chown(d.c_str(), u.uid, u.gid);
      ::chmod(d.c_str(), 0700);
    }
    return d;
  }
  static CliResult run_as(const TestUser& u, const std::string& args, const std::string& env = "") {
    CliResult r;
    r.status = run_shell(as(u, args, env), &r.output);
    return r;
  }
  // Its stdout only (the warning of a rootless run goes to stderr).
  static CliResult stdout_as(const TestUser& u, const std::string& args) {
    CliResult r;
    r.status = run_shell("(" + as(u, args) + " 2>/dev/null)", &r.output);
    return r;
  }
  // The busybox rootfs tarball, readable by the users.
  static fs::path archive_base() {
    const fs::path p = work_->path() / "busybox-rootfs.tar";
    if (!fs::exists(p)) {
      fs::copy_file(busybox_tar(), p);
      ::chmod(p.c_str(), 0644);
    }
    return p;
  }
  static void load_busybox(const TestUser& u) {
    auto r = run_as(u, "load -q -i " + archive_.native());
    ASSERT_EQ(r.status, 0) << r.output;
  }

  static inline std::unique_ptr<TempRoot> work_;
  static inline TestUser user_, bare_;
  static inline fs::path root_store_, archive_;
  static inline uint64_t subid_start_ = 0;
};

TEST_F(Rootless, RunIsRootInTheUsersNamespaceWithItsWholeRange) {
  load_busybox(user_);
  CliResult r;
  r.status = run_shell("(" + as(user_, "run --rm busybox sh -c 'id -u; cat /proc/self/uid_map; cat /proc/self/gid_map'") +
                           " 2>" + (work_->path() / "stderr").native() + ")",
                       &r.output);
  ASSERT_EQ(r.status, 0) << r.output;
  std::istringstream lines(r.output);
  std::string id;
  std::getline(lines, id);
  EXPECT_EQ(id, "0");
  // uid_map: 0 is the user, 1..65536 the subordinate range (gid_map alike).
  for (const char* which : {"uid", "gid"}) {
    uint64_t in0, out0, n0, in1, out1, n1;
    lines >> in0 >> out0 >> n0 >> in1 >> out1 >> n1;
    EXPECT_EQ(in0, 0u) << which;
    EXPECT_EQ(out0, std::string(which) == "uid" ? user_.uid : user_.gid) << which;
    EXPECT_EQ(n0, 1u) << which;
    EXPECT_EQ(in1, 1u) << which;
    EXPECT_EQ(out1, subid_start_) << which;
    EXPECT_EQ(n1, 65536u) << which;
  }
  // One warning, naming why there are no limits.
  auto err = sys::read_file(work_->path() / "stderr").value_or("");
  EXPECT_EQ(err, "kiste: warning: running without cgroup limits: rootless, and cgroup v1 hierarchies are not "
                 "delegated to users\n");
  // The store is the user's, under XDG_DATA_HOME's default.
  struct stat st {};
  ASSERT_EQ(::stat((user_.home / ".local/share/kiste/index.json").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, user_.uid);
}

TEST_F(Rootless, FilesWrittenToAVolumeAreTheUsers) {
  load_busybox(user_);
  const fs::path d = user_.home / "d";
  ASSERT_EQ(run_shell("setpriv --reuid=" + user_.name + " --regid=" + user_.name + " --init-groups mkdir -p " + d.native()), 0);
  auto r = run_as(user_, "run --rm -v " + d.native() + ":/d busybox sh -c 'echo hi > /d/f && mkdir /d/sub'");
  ASSERT_EQ(r.status, 0) << r.output;
  for (const char* f : {"f", "sub"}) {
    struct stat st {};
    ASSERT_EQ(::stat((d / f).c_str(), &st), 0) << f;
    EXPECT_EQ(st.st_uid, user_.uid) << f;
    EXPECT_EQ(st.st_gid, user_.gid) << f;
  }
  EXPECT_EQ(sys::read_file(d / "f").value_or(""), "hi\n");
}

TEST_F(Rootless, DetachedContainerRunsStopsAndGoes) {
  load_busybox(user_);
  auto r = stdout_as(user_, "run -d --name s1 busybox sleep 600");
  ASSERT_EQ(r.status, 0) << r.output;
  r = run_as(user_, "ps");
  EXPECT_NE(r.output.find(" s1\n"), std::string::npos) << r.output;
  r = run_as(user_, "stop -t 1 s1");
  EXPECT_EQ(r.status, 0) << r.output;
  r = run_as(user_, "rm s1");
  EXPECT_EQ(r.status, 0) << r.output;
  // stop waited for the monitor: nothing of the user runs any more.
  EXPECT_EQ(live_processes(user_.name), "");
}

TEST_F(Rootless, NetworkNoneAndHostWorkBridgeAndLimitsAreRefused) {
  load_busybox(user_);
  auto r = stdout_as(user_, "run --rm --network host busybox true");
  EXPECT_EQ(r.status, 0) << r.output;
  r = stdout_as(user_, "run --rm --network none busybox sh -c 'ls /sys/class/net'");
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(r.output, "lo\n");
  r = run_as(user_, "run --rm --network bridge busybox true 2>&1 | grep -v warning");
  EXPECT_EQ(r.output, "kiste: error: network `kiste`: bridge networks need root (rootless kiste has "
                      "--network none and host; user-mode networking is not there yet)\n");
  for (const char* flag : {"--memory 64m", "--cpus 0.5", "--pids-limit 10"}) {
    r = run_as(user_, std::string("run --rm ") + flag + " busybox true");
    EXPECT_EQ(r.status, 125) << flag << ": " << r.output;
    // The one warning, then the one error naming the flag.
    const std::string name = std::string(flag).substr(0, std::string(flag).find(' '));
    EXPECT_NE(r.output.find("\nkiste: error: " + name + ": this container runs without a cgroup (rootless"),
              std::string::npos)
        << flag << ": " << r.output;
    EXPECT_EQ(count_lines(r.output), 2u) << r.output;
  }
  // Refused before anything was made: no container dir is left.
  EXPECT_TRUE(fs::is_empty(user_.home / ".local/share/kiste/containers")) << "container dirs left";
}

TEST_F(Rootless, BuildGivesTheSameDigestAsRoot) {
  // The same base in both stores, made the same way (a loaded docker-archive keeps its layers
  // uncompressed, so its manifest differs from an imported one's).
  std::string out;
  ASSERT_EQ(run_shell("SOURCE_DATE_EPOCH=0 " + kiste_command(root_store_, "import " + archive_base().native() + " bbase"), &out), 0)
      << out;
  auto imported = run_as(user_, "import " + archive_base().native() + " bbase", "SOURCE_DATE_EPOCH=0");
  ASSERT_EQ(imported.status, 0) << imported.output;
  const fs::path ctx = work_->path() / "ctx";
  fs::create_directories(ctx);
  {
    std::ofstream f(ctx / "Containerfile");
    // Debian's busybox-static has no adduser applet: bob is added by hand, as adduser -D would.
    f << "FROM bbase\n"
         "RUN echo 'bob:x:1000:1000::/home/bob:/bin/sh' >> /etc/passwd && echo 'bob:x:1000:' >> /etc/group && "
         "mkdir -p /home/bob && touch /home/bob/.profile && chown -R bob:bob /home/bob && chown 1000:65534 /tmp\n";
  }
  ::chmod(ctx.c_str(), 0755);
  ::chmod((ctx / "Containerfile").c_str(), 0644);
  std::string root_id;
  ASSERT_EQ(run_shell("(" + kiste_command(root_store_, "build -q --network none -t app " + ctx.native()) + " 2>/dev/null)", &root_id), 0)
      << root_id;
  auto r = stdout_as(user_, "build -q -t app " + ctx.native() + "");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(trim(r.output), trim(root_id));
  // The manifests too (the layers' compressed bytes and the config, bit for bit).
  std::string root_digest;
  ASSERT_EQ(run_shell(kiste_command(root_store_, "inspect -f '{{json .Descriptor}}' app"), &root_digest), 0);
  r = run_as(user_, "inspect -f '{{json .Descriptor}}' app");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(r.output, root_digest);
  EXPECT_NE(root_digest.find("\"digest\":\"sha256:"), std::string::npos) << root_digest;
  // bob is a real owner in the layer (not the user, not 0): he runs as himself.
  r = stdout_as(user_, "run --rm app sh -c 'stat -c %U:%u:%g /home/bob /home/bob/.profile /tmp'");
  EXPECT_EQ(r.output, "bob:1000:1000\nbob:1000:1000\nbob:1000:65534\n");
}

TEST_F(Rootless, PullPushImagesSaveLoadAgainstARegistry) {
  std::string why;
  auto reg = RegistryProcess::start({}, &why);
  ASSERT_TRUE(reg) << why;
  std::string out;
  ASSERT_EQ(run_shell(kiste_command(root_store_, "push -q busybox " + reg->host() + "/base/busybox:1"), &out), 0)
      << out;
  auto r = run_as(user_, "pull -q " + reg->host() + "/base/busybox:1");
  ASSERT_EQ(r.status, 0) << r.output;
  r = run_as(user_, "images");
  EXPECT_NE(r.output.find(reg->host() + "/base/busybox"), std::string::npos) << r.output;
  r = stdout_as(user_, "run --rm " + reg->host() + "/base/busybox:1 echo pulled");
  EXPECT_EQ(r.output, "pulled\n");
  r = run_as(user_, "push -q " + reg->host() + "/base/busybox:1 " + reg->host() + "/user/busybox:1");
  EXPECT_EQ(r.status, 0) << r.output;
  const fs::path saved = user_.home / "saved.tar";
  r = run_as(user_, "save -o " + saved.native() + " " + reg->host() + "/base/busybox:1");
  ASSERT_EQ(r.status, 0) << r.output;
  r = run_as(user_, "rmi " + reg->host() + "/base/busybox:1");
  EXPECT_EQ(r.status, 0) << r.output;
  r = run_as(user_, "load -q -i " + saved.native());
  EXPECT_EQ(r.status, 0) << r.output;
  r = stdout_as(user_, "run --rm " + reg->host() + "/base/busybox:1 echo loaded");
  EXPECT_EQ(r.output, "loaded\n");
}

TEST_F(Rootless, MissingPiecesAreOneLineNamingTheFixAndMakeNothing) {
  const fs::path fresh = work_->path() / "never";  // XDG_DATA_HOME of these runs
  const std::string data = "XDG_DATA_HOME=" + fresh.native();
  // newuidmap not on PATH.
  auto r = run_as(user_, "images", data + " PATH=/nonexistent");
  EXPECT_EQ(r.status, 125) << r.output;
  EXPECT_EQ(r.output, "kiste: error: newuidmap not found on PATH: rootless kiste maps your subordinate ids "
                      "with it; install Debian's `uidmap` package (apt-get install uidmap)\n");
  // No /etc/subuid line.
  r = run_as(bare_, "run --rm busybox true", data);
  EXPECT_EQ(r.status, 125) << r.output;
  EXPECT_EQ(count_lines(r.output), 1u) << r.output;
  EXPECT_EQ(r.output.rfind("kiste: error: user `" + bare_.name + "` has no subordinate uids in /etc/subuid: ", 0), 0u)
      << r.output;
  EXPECT_NE(r.output.find("`usermod --add-subuids "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find(" " + bare_.name + "`"), std::string::npos) << r.output;
  // XDG_RUNTIME_DIR unset.
  r.output.clear();
  r.status = run_shell(as(user_, "pull busybox", data, false), &r.output);
  EXPECT_EQ(r.status, 125) << r.output;
  EXPECT_EQ(count_lines(r.output), 1u) << r.output;
  EXPECT_EQ(r.output.rfind("kiste: error: XDG_RUNTIME_DIR is not set: ", 0), 0u) << r.output;
  EXPECT_FALSE(fs::exists(fresh));
  EXPECT_FALSE(fs::exists(runtime_dir_of(bare_) / "kiste"));
}

TEST_F(Rootless, NoSetuidProgramButNewuidmapAndNewgidmap) {
  load_busybox(user_);
  const fs::path log = work_->path() / "strace.log";
  // strace runs as root, so a setuid program it traces still gets its rights.
  std::string out;
  ASSERT_EQ(run_shell("strace -f -qq -e trace=execve -e signal=none -o " + log.native() + " " +
                          as(user_, "run --rm busybox true") + " 2>&1",
                      &out),
            0)
      << out;
  std::ifstream in(log);
  std::string line;
  std::set<std::string> setuid;
  int execs = 0;
  while (std::getline(in, line)) {
    const auto at = line.find("execve(\"");
    if (at == std::string::npos || line.find(") = 0") == std::string::npos) continue;
    ++execs;
    const std::string path = line.substr(at + 8, line.find('"', at + 8) - at - 8);
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0 && (st.st_mode & (S_ISUID | S_ISGID)) != 0) setuid.insert(path);
  }
  EXPECT_GT(execs, 2);
  EXPECT_EQ(setuid, (std::set<std::string>{"/usr/bin/newgidmap", "/usr/bin/newuidmap"}));
}

}  // namespace
}  // namespace kiste::testing
