// Issue 20, rootless kiste: the kiste binary run by an ordinary user the test makes with
// useradd (and a subordinate id range from usermod), through setpriv. The user, its
// /etc/subuid and /etc/subgid lines and its home go again at the end; no process of it may be
// left running.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <tuple>

#include <gtest/gtest.h>

#include <kiste/base/sys.hpp>
#include <kiste/testing/kiste_cli.hpp>
#include <kiste/testing/netns.hpp>
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

// --userns=keep-id: the user is itself inside (uid, gid, HOME, USER), the image's owners are
// still its own, and what it writes to a volume is the user's on the host with no idmap.
TEST_F(Rootless, KeepIdRunsAsTheUserWithItsOwnIds) {
  load_busybox(user_);
  const fs::path d = user_.home / "keep";
  ASSERT_EQ(run_shell("setpriv --reuid=" + user_.name + " --regid=" + user_.name + " --init-groups mkdir -p " + d.native()), 0);
  auto r = stdout_as(user_, "run --rm --userns=keep-id -v " + d.native() +
                                ":/d busybox sh -c 'id -u; id -g; echo $HOME $USER; cat /proc/self/uid_map; "
                                "stat -c %u:%g / /bin/busybox; echo hi > /d/f; stat -c %u /d/f'");
  ASSERT_EQ(r.status, 0) << r.output;
  const uint32_t u = user_.uid;
  std::string want = fmt::format("{}\n{}\n{} {}\n", u, user_.gid, user_.home.native(), user_.name);
  std::istringstream lines(r.output);
  std::string line;
  std::string head;
  for (int i = 0; i < 3 && std::getline(lines, line); ++i) head += line + "\n";
  EXPECT_EQ(head, want);
  // The map, in kiste's ids: [0, U) -> [1, U+1), U -> 0 (the user), the rest of the range as is.
  for (const auto& [in, out, n] : {std::tuple<uint64_t, uint64_t, uint64_t>{0, 1, u}, {u, 0, 1}, {u + 1, u + 1, 65536 - u}}) {
    uint64_t a = 0, b = 0, c = 0;
    lines >> a >> b >> c;
    EXPECT_EQ(std::tie(a, b, c), std::tie(in, out, n)) << r.output;
  }
  std::string rest((std::istreambuf_iterator<char>(lines)), {});
  EXPECT_EQ(rest, fmt::format("\n0:0\n0:0\n{}\n", u)) << r.output;
  struct stat st {};
  ASSERT_EQ(::stat((d / "f").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, user_.uid);
  EXPECT_EQ(st.st_gid, user_.gid);
  // The layers' copies went with the container.
  EXPECT_TRUE(fs::is_empty(user_.home / ".local/share/kiste/containers")) << "container dirs left";
  // As root there is no user to keep: one line, as podman refuses it.
  std::string out;
  EXPECT_EQ(run_shell(kiste_command(root_store_, "run --rm --userns=keep-id busybox true") + " 2>&1", &out), 125);
  EXPECT_EQ(out, "kiste: error: userns keep-id: keeps an ordinary user's own id in a rootless container; as root "
                 "there is none to keep (podman refuses it too): use --userns=auto or --uidmap\n");
}

// keep-id sees a layered image as it is: a hard link stays one, a whiteout still hides the
// lower file, and an owner other than root keeps its id.
TEST_F(Rootless, KeepIdSeesHardLinksWhiteoutsAndOwnersOfEveryLayer) {
  load_busybox(user_);
  const fs::path ctx = work_->path() / "ctx-keep";
  fs::create_directories(ctx);
  {
    std::ofstream f(ctx / "Containerfile");
    f << "FROM busybox\n"
         "RUN touch /a && ln /a /b && rm /etc/group && mkdir /o && chown 1234:2345 /o\n";
  }
  ::chmod(ctx.c_str(), 0755);
  ::chmod((ctx / "Containerfile").c_str(), 0644);
  auto r = run_as(user_, "build -q -t keep " + ctx.native() + " 2>&1");
  ASSERT_EQ(r.status, 0) << r.output;
  const fs::path err = work_->path() / "keep-id.err";
  r.output.clear();
  r.status = run_shell("(" + as(user_, "run --rm --userns=keep-id keep sh -c "
                                       "'stat -c %h:%i /a; stat -c %i /b; test -e /etc/group || echo gone; "
                                       "stat -c %u:%g /o'") +
                           " 2>" + err.native() + ")",
                       &r.output);
  ASSERT_EQ(r.status, 0) << r.output << sys::read_file(err).value_or("");
  std::istringstream lines(r.output);
  std::string a, b, gone, owner;
  std::getline(lines, a);
  std::getline(lines, b);
  std::getline(lines, gone);
  std::getline(lines, owner);
  EXPECT_EQ(a, "2:" + b) << r.output;
  EXPECT_EQ(gone, "gone");
  EXPECT_EQ(owner, "1234:2345");
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
                      "--network pasta, none and host)\n");
  for (const char* flag : {"--memory 64m", "--cpus 0.5", "--pids-limit 10"}) {
    r = run_as(user_, std::string("run --rm ") + flag + " busybox true");
    EXPECT_EQ(r.status, 125) << flag << ": " << r.output;
    // One line: the error naming the flag and why (no warning before it: the limit is refused).
    const std::string name = std::string(flag).substr(0, std::string(flag).find(' '));
    EXPECT_EQ(r.output, "kiste: error: " + name + ": this container runs without a cgroup (rootless, "
                        "and cgroup v1 hierarchies are not delegated to users), so no limit can be set\n")
        << flag;
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
  const fs::path logs = work_->path() / "strace";
  fs::create_directories(logs);
  // strace runs as root, so a setuid program it traces still gets its rights. One log per
  // process (-ff): newuidmap and newgidmap run at once, and in one shared log their execve
  // lines would be split into "<unfinished ...>" and "resumed" halves.
  std::string out;
  ASSERT_EQ(run_shell("strace -ff -qq -e trace=execve -e signal=none -o " + (logs / "p").native() + " " +
                          as(user_, "run --rm busybox true") + " 2>&1",
                      &out),
            0)
      << out;
  std::set<std::string> setuid;
  int execs = 0;
  for (const auto& file : fs::directory_iterator(logs)) {
    std::ifstream in(file.path());
    std::string line;
    while (std::getline(in, line)) {
      const auto at = line.find("execve(\"");
      if (at == std::string::npos || line.find(") = 0") == std::string::npos) continue;
      ++execs;
      const std::string path = line.substr(at + 8, line.find('"', at + 8) - at - 8);
      struct stat st {};
      if (::stat(path.c_str(), &st) == 0 && (st.st_mode & (S_ISUID | S_ISGID)) != 0) setuid.insert(path);
    }
  }
  EXPECT_GT(execs, 2);
  EXPECT_EQ(setuid, (std::set<std::string>{"/usr/bin/newgidmap", "/usr/bin/newuidmap"}));
}

// exec as the user joins the container (its user namespace: the one the user's kiste made) and
// runs under the container's own seccomp filter, which it reads from the container's dir (the
// kernel gives it back only to the host's root); -u works, and so do healthchecks, which exec
// from the monitor the same way.
TEST_F(Rootless, ExecAndHealthchecksRunInsideTheContainer) {
  load_busybox(user_);
  auto r = stdout_as(user_, "run -d --name ex --health-cmd 'grep -q Seccomp:.2 /proc/self/status' "
                            "--health-interval 1s busybox sleep 600");
  ASSERT_EQ(r.status, 0) << r.output;
  const std::string short_id = r.output.substr(0, 12);  // the container's hostname
  r = stdout_as(user_, "exec ex sh -c 'id -u; grep ^Seccomp /proc/self/status; "
                       "unshare -U true 2>/dev/null || echo unshare-refused; hostname'");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(r.output, "0\nSeccomp:\t2\nSeccomp_filters:\t1\nunshare-refused\n" + short_id + "\n");
  r = stdout_as(user_, "exec -u nobody ex id -u");
  EXPECT_EQ(r.output, "65534\n");
  std::string health;
  for (int i = 0; i < 100 && health != "healthy\n"; ++i) {  // bounded: the first probe is 1 s in
    if (i > 0) ::usleep(100'000);
    health = stdout_as(user_, "inspect -f '{{.State.Health.Status}}' ex").output;
  }
  EXPECT_EQ(health, "healthy\n");
  EXPECT_EQ(run_as(user_, "rm -f ex").status, 0);
  EXPECT_EQ(live_processes(user_.name), "");
}

// --network pasta (Debian's passt): the container reaches an upstream server in another
// namespace through pasta's sockets (so the upstream sees the host's address), it cannot reach a
// service on the host's loopback, and -p publishes a port on the host (a random one, as
// `kiste port` says); a host port in use is one line and exit 125; no pasta outlives its
// container. All of it in this binary's own network namespace (main()). The client keeps its
// side open until the reply is in: pasta 2023-03 can lose the server's FIN when the container
// half-closes first, which leaves `nc </dev/null` hanging.
TEST_F(Rootless, PastaNetworkReachesOutAndPublishes) {
  load_busybox(user_);
  UniqueFd upstream = new_peer_netns("up0", "198.51.100.2", "198.51.100.1");
  ASSERT_TRUE(upstream);
  ASSERT_EQ(run_shell("ip route add default via 198.51.100.1"), 0);  // pasta copies the default route's interface
  OneShotServer server(upstream.get(), "198.51.100.1");
  ASSERT_GT(server.port(), 0);
  // A service on the host's loopback.
  UniqueFd local(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof sa;
  ASSERT_EQ(::bind(local.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
  ASSERT_EQ(::listen(local.get(), 4), 0);
  ASSERT_EQ(::getsockname(local.get(), reinterpret_cast<sockaddr*>(&sa), &len), 0);

  auto r = stdout_as(user_, fmt::format("run --rm --network pasta busybox sh -c 'ip -4 addr show eth0; "
                                        "sleep 2 | nc 198.51.100.1 {}; nc -w 2 127.0.0.1 {} </dev/null || "
                                        "echo host-loopback-refused'",
                                        server.port(), ntohs(sa.sin_port)));
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("inet 198.51.100.2/24"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("pong"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("host-loopback-refused"), std::string::npos) << r.output;
  EXPECT_EQ(server.peer(), "198.51.100.2");

  r = stdout_as(user_, "run -d --name web --network pasta -p 127.0.0.1::8080 busybox httpd -f -p 8080 -h /etc");
  ASSERT_EQ(r.status, 0) << r.output;
  r = stdout_as(user_, "port web");
  ASSERT_EQ(r.status, 0) << r.output;
  const std::string prefix = "8080/tcp -> 127.0.0.1:";
  ASSERT_EQ(r.output.rfind(prefix, 0), 0u) << r.output;
  const std::string host_port = r.output.substr(prefix.size(), r.output.find('\n') - prefix.size());
  // httpd starts a moment after `run -d` returns: bounded retries, not a measurement.
  std::string page;
  for (int i = 0; i < 100 && page.find("root:x:0:0") == std::string::npos; ++i) {
    if (i > 0) ::usleep(100'000);
    (void)run_shell("busybox wget -qO- http://127.0.0.1:" + host_port + "/passwd 2>/dev/null", &page);
  }
  EXPECT_NE(page.find("root:x:0:0"), std::string::npos) << page;
  // The port is taken now: one line, 125, and no second pasta.
  r = run_as(user_, "run --rm --network pasta -p 127.0.0.1:" + host_port + ":80 busybox true 2>&1 | grep -v warning");
  EXPECT_EQ(r.output, "kiste: error: publish 127.0.0.1:" + host_port + "->80/tcp: port " + host_port +
                          " on 127.0.0.1: already in use\n");
  // pasta dies with the process that started it, also when that one is SIGKILLed (the monitor
  // of a detached container): the port is free again.
  std::string out;
  ASSERT_EQ(run_shell("pkill -KILL -u " + user_.name + " -f -- '--monitor'"), 0);
  bool freed = false;
  for (int i = 0; i < 100 && !freed; ++i) {  // bounded: PID 1 reaps late, the kernel does not
    if (i > 0) ::usleep(100'000);
    freed = run_shell("ss -Htln 'sport = :" + host_port + "' | grep -q .") != 0;
  }
  EXPECT_TRUE(freed) << "pasta outlived the SIGKILLed monitor";
  EXPECT_EQ(run_as(user_, "rm -f web").status, 0);
  EXPECT_EQ(live_processes(user_.name), "") << "pasta or the container outlived rm";
}

// A rootless build's RUN steps go out through pasta as well (bridges need root): the step
// reaches the upstream server, which sees the host's address.
TEST_F(Rootless, BuildRunStepsGoOutThroughPasta) {
  load_busybox(user_);
  UniqueFd upstream = new_peer_netns("up0", "198.51.100.2", "198.51.100.1");
  ASSERT_TRUE(upstream);
  ASSERT_EQ(run_shell("ip route add default via 198.51.100.1"), 0);
  OneShotServer server(upstream.get(), "198.51.100.1");
  ASSERT_GT(server.port(), 0);
  const fs::path ctx = user_.home / "netctx";
  ASSERT_EQ(run_shell("setpriv --reuid=" + user_.name + " --regid=" + user_.name + " --init-groups mkdir -p " +
                      ctx.native()),
            0);
  ASSERT_TRUE(sys::write_file_atomic(ctx / "Containerfile",
                                     fmt::format("FROM busybox\nRUN sleep 2 | nc 198.51.100.1 {} > /got\n",
                                                 server.port()),
                                     0644));
  auto r = run_as(user_, "build -q -t netimg " + ctx.native() + " 2>&1");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(server.peer(), "198.51.100.2");
  r = stdout_as(user_, "run --rm netimg cat /got");
  EXPECT_EQ(r.output, "pong\n");
  EXPECT_EQ(live_processes(user_.name), "") << "a step's pasta outlived the build";
}

}  // namespace
}  // namespace kiste::testing

// The pasta test's upstream, host loopback and published ports live in this binary's own network
// namespace. On a host where udev did not make /dev/net/tun mode 0666 (Debian's default rules
// do), the test's own mount namespace gets a node of the same device that is.
int main(int argc, char** argv) {
  if (::geteuid() == 0) {
    (void)kiste::testing::enter_own_netns();
    struct stat st {};
    if (::stat("/dev/net/tun", &st) == 0 && (st.st_mode & 0666) != 0666 && ::unshare(CLONE_NEWNS) == 0 &&
        ::mount(nullptr, "/", nullptr, MS_REC | MS_SLAVE, nullptr) == 0) {
      char dir[] = "/tmp/kiste-tun-XXXXXX";
      if (::mkdtemp(dir) != nullptr) {
        const std::string node = std::string(dir) + "/tun";
        if (::mknod(node.c_str(), S_IFCHR | 0666, st.st_rdev) == 0) {
          ::chmod(node.c_str(), 0666);
          (void)::mount(node.c_str(), "/dev/net/tun", nullptr, MS_BIND, nullptr);
          ::unlink(node.c_str());
        }
        ::rmdir(dir);
      }
    }
  }
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
