// kiste run: isolation the user can see (ps, network, hostname), exit codes, signals, init,
// volumes, user/env/workdir, errors before the command starts.
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include <kiste/base/sys.hpp>

#include "runtime_fixture.hpp"

namespace kiste::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;

std::vector<std::string> lines(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  std::string l;
  while (std::getline(in, l)) out.push_back(l);
  return out;
}

TEST_F(RuntimeTest, PsShowsOnlyTheContainerWithTheCommandAsPid1) {
  std::string out;
  ASSERT_EQ(kiste_run("ps -o pid,args", &out), 0) << out;
  auto l = lines(out);
  ASSERT_EQ(l.size(), 2u) << out;
  EXPECT_THAT(l[1], ::testing::MatchesRegex(" *1 ps -o pid,args"));
}

TEST_F(RuntimeTest, OnlyLoopbackAndItIsUp) {
  std::string out;
  ASSERT_EQ(kiste_run("ls /sys/class/net", &out), 0) << out;
  EXPECT_EQ(out, "lo\n");
  out.clear();
  ASSERT_EQ(kiste_run("cat /sys/class/net/lo/operstate /sys/class/net/lo/flags", &out), 0) << out;
  // IFF_UP (0x1) is set: loopback is usable.
  auto l = lines(out);
  ASSERT_EQ(l.size(), 2u) << out;
  EXPECT_EQ(std::stoul(l[1], nullptr, 16) & 1u, 1u) << out;
}

TEST_F(RuntimeTest, NetworkHostSharesTheHostInterfaces) {
  std::string host, out;
  ASSERT_EQ(run_shell("ls /sys/class/net", &host), 0);
  ASSERT_EQ(kiste_run("--network host ls /sys/class/net", &out), 0) << out;
  EXPECT_EQ(out, host);
}

TEST_F(RuntimeTest, HostnameIsTheContainersOwn) {
  std::string out;
  ASSERT_EQ(kiste_run("--hostname box1 sh -c 'hostname; cat /etc/hostname; grep box1 /etc/hosts'", &out), 0) << out;
  EXPECT_EQ(out, "box1\nbox1\n127.0.1.1\tbox1\n");
  out.clear();
  ASSERT_EQ(kiste_run("hostname", &out), 0) << out;
  EXPECT_THAT(out, ::testing::MatchesRegex("[0-9a-f]{12}\n"));
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  EXPECT_NE(out, std::string(host) + "\n");
}

TEST_F(RuntimeTest, RmMakesTheUpperVolatileAndOnlyThen) {
  // --rm: nothing needs the upper dir after exit, so unmounting the root must not sync the
  // host's filesystem (overlay `volatile`, shown as fsync=volatile since 6.x).
  const std::string show = "sh -c \"grep ' - overlay ' /proc/self/mountinfo | grep -c volatile || true\"";
  std::string out;
  ASSERT_EQ(kiste_run(show, &out), 0) << out;  // kiste_run passes --rm
  EXPECT_EQ(out, "1\n");
  out.clear();
  // Without --rm the container's id goes to stderr first (it is kept until `kiste prune`).
  ASSERT_EQ(run_shell(kiste_cmd() + " run --rootfs " + rootfs().native() + " " + show, &out), 0) << out;
  EXPECT_THAT(out, ::testing::MatchesRegex("[0-9a-f]{64}\n0\n"));
}

TEST_F(RuntimeTest, ExitStatusIsPassedThrough) {
  EXPECT_EQ(kiste_run("sh -c 'exit 3'"), 3);
  EXPECT_EQ(kiste_run("true"), 0);
  EXPECT_EQ(kiste_run("false"), 1);
  // Killed by a signal: 128+N (the shell is not PID 1 under --init, so SIGKILL reaches it).
  EXPECT_EQ(kiste_run("--init sh -c 'kill -9 $$'"), 137);
}

TEST_F(RuntimeTest, SigtermToKisteIsForwardedAndTheExitReported) {
  fs::path out_dir = tmp() / "out";
  ASSERT_TRUE(sys::mkdir_all(out_dir));
  std::string script =
      kiste_cmd() + " run --rm --rootfs " + rootfs().native() + " -v " + out_dir.native() +
      ":/out sh -c 'trap \"exit 42\" TERM; touch /out/ready; sleep 100 & wait' & K=$!; "
      "i=0; while [ ! -e " + out_dir.native() + "/ready ] && [ $i -lt 1000 ]; do sleep 0.02; i=$((i+1)); done; "
      "kill -TERM $K; wait $K; echo rc=$?";
  std::string out;
  ASSERT_EQ(run_shell(script, &out), 0) << out;
  EXPECT_THAT(out, HasSubstr("rc=42"));
}

TEST_F(RuntimeTest, InitReapsZombies) {
  std::string out;
  ASSERT_EQ(kiste_run("--init kiste_test_init zombies 5", &out), 0) << out;
  EXPECT_EQ(out, "zombies=0\n");
  out.clear();
  // Without --init the command is PID 1 and does not reap: the orphans stay zombies.
  ASSERT_EQ(kiste_run("kiste_test_init zombies 5", &out), 0) << out;
  EXPECT_EQ(out, "zombies=5\n");
}

TEST_F(RuntimeTest, InitForwardsSigterm) {
  fs::path out_dir = tmp() / "out";
  ASSERT_TRUE(sys::mkdir_all(out_dir));
  std::string script =
      kiste_cmd() + " run --rm --init --rootfs " + rootfs().native() + " -v " + out_dir.native() +
      ":/out sh -c 'touch /out/ready; exec sleep 100' & K=$!; "
      "i=0; while [ ! -e " + out_dir.native() + "/ready ] && [ $i -lt 1000 ]; do sleep 0.02; i=$((i+1)); done; sleep 0.1; "
      "kill -TERM $K; wait $K; echo rc=$?";
  std::string out;
  ASSERT_EQ(run_shell(script, &out), 0) << out;
  EXPECT_THAT(out, HasSubstr("rc=143"));  // sleep died of SIGTERM: 128+15
}

TEST_F(RuntimeTest, UserEnvAndWorkdir) {
  std::string env_file = (tmp() / "env").native();
  {
    std::ofstream f(env_file);
    f << "# comment\nFROM_FILE=1\nFOO=file\n";
  }
  std::string out;
  ASSERT_EQ(kiste_run("-e FOO=bar --env-file " + env_file +
                          " -w /work/dir -u tester sh -c 'echo $FOO $FROM_FILE $HOME; pwd; id'",
                      &out),
            0)
      << out;
  EXPECT_EQ(out, "bar 1 /home/tester\n/work/dir\nuid=1000(tester) gid=1000(tester) groups=1000(tester),2000(extra)\n");
  out.clear();
  ASSERT_EQ(kiste_run("-u 4242:4343 kiste_test_init id", &out), 0) << out;
  EXPECT_EQ(out, "uid=4242 gid=4343 groups=\n");
  out.clear();
  ASSERT_EQ(kiste_run("-u nobody kiste_test_init status", &out), 0) << out;
  EXPECT_THAT(out, HasSubstr("CapEff:\t0000000000000000"));
}

TEST_F(RuntimeTest, UnknownUserFailsBeforeStart) {
  std::string out;
  EXPECT_EQ(kiste_run("-u nosuchuser true", &out), 125);
  EXPECT_THAT(out, HasSubstr("user `nosuchuser`: no such user in the image's /etc/passwd"));
}

TEST_F(RuntimeTest, ExecErrorsAre127And126WithAClearMessage) {
  std::string out;
  EXPECT_EQ(kiste_run("no-such-command", &out), 127);
  EXPECT_THAT(out, HasSubstr("kiste: error: exec `no-such-command`: executable file not found in $PATH"));
  out.clear();
  EXPECT_EQ(kiste_run("/app", &out), 127);
  EXPECT_THAT(out, HasSubstr("exec `/app`: no such file or directory"));
  out.clear();
  EXPECT_EQ(kiste_run("/etc/passwd", &out), 126);
  EXPECT_THAT(out, HasSubstr("exec `/etc/passwd`: Permission denied"));
}

TEST_F(RuntimeTest, VolumesAndTmpfsMounts) {
  fs::path host_dir = tmp() / "vol";
  ASSERT_TRUE(sys::mkdir_all(host_dir));
  ASSERT_TRUE(sys::write_file_atomic(host_dir / "hello", "from host\n"));
  std::string out;
  ASSERT_EQ(kiste_run("-v " + host_dir.native() + ":/data/in:ro --mount type=tmpfs,target=/scratch "
                      "sh -c 'cat /data/in/hello; touch /data/in/x || echo ro-ok; "
                      "touch /scratch/y && echo tmpfs-ok; grep -c \" /scratch .* - tmpfs \" /proc/self/mountinfo'",
                      &out),
            0)
      << out;
  EXPECT_THAT(out, HasSubstr("from host\n"));
  EXPECT_THAT(out, HasSubstr("ro-ok\n"));
  EXPECT_THAT(out, HasSubstr("tmpfs-ok\n1\n"));
  EXPECT_FALSE(fs::exists(host_dir / "x"));
  out.clear();
  ASSERT_EQ(kiste_run("-v " + host_dir.native() + ":/data sh -c 'echo w > /data/written'", &out), 0) << out;
  EXPECT_TRUE(fs::exists(host_dir / "written"));
}

TEST_F(RuntimeTest, BadVolumeSpecsFailClearly) {
  std::string out;
  // A relative host path is neither a path nor a volume name (volume_test.cpp has named ones).
  EXPECT_EQ(kiste_run("-v ./relative:/x true", &out), 125);
  EXPECT_THAT(out, HasSubstr("volume name `./relative`: must match"));
  out.clear();
  EXPECT_EQ(kiste_run("-v /nonexistent-kiste-dir:/x true", &out), 125);
  EXPECT_THAT(out, HasSubstr("does not exist"));
  out.clear();
  EXPECT_EQ(kiste_run("-v /tmp:/../../etc true", &out), 125);
  EXPECT_THAT(out, HasSubstr("would leave the root"));
}

TEST_F(RuntimeTest, VolumeTargetSymlinkStaysInsideTheRoot) {
  // A symlink in the image pointing at the host's /etc must resolve inside the container root.
  fs::path img = tmp() / "img";
  ASSERT_EQ(run_shell("cp -a " + rootfs().native() + " " + img.native()), 0);
  fs::create_symlink("/etc", img / "escape");
  fs::path host_dir = tmp() / "vol";
  ASSERT_TRUE(sys::mkdir_all(host_dir));
  ASSERT_TRUE(sys::write_file_atomic(host_dir / "marker", "m\n"));
  std::string out;
  int rc = run_shell(kiste_cmd() + " run --rm --rootfs " + img.native() + " -v " + host_dir.native() +
                         ":/escape/kiste-volume-target cat /etc/kiste-volume-target/marker",
                     &out);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_EQ(out, "m\n");
  EXPECT_FALSE(fs::exists("/etc/kiste-volume-target"));
}

TEST_F(RuntimeTest, RssOfTheWaitingRuntimeStaysSmall) {
  // VmRSS of the kiste process while its container runs (what a host with many containers pays).
  fs::path out_dir = tmp() / "out";
  ASSERT_TRUE(sys::mkdir_all(out_dir));
  std::string script =
      kiste_cmd() + " run --rm --rootfs " + rootfs().native() + " -v " + out_dir.native() +
      ":/out sh -c 'touch /out/ready; sleep 3' & K=$!; "
      "i=0; while [ ! -e " + out_dir.native() + "/ready ] && [ $i -lt 1000 ]; do sleep 0.02; i=$((i+1)); done; "
      "sleep 1; grep -E 'VmRSS|VmHWM' /proc/$K/status; wait $K";
  std::string out;
  ASSERT_EQ(run_shell(script, &out), 0) << out;
  auto pos = out.find("VmRSS:");
  ASSERT_NE(pos, std::string::npos) << out;
  long kib = std::stol(out.substr(pos + 6));
  EXPECT_LT(kib, 10 * 1024) << "kiste's RSS while waiting was " << kib << " KiB\n" << out;
}

TEST_F(RuntimeTest, CgroupChargesOnlyTheContainer) {
  // The container's own memory cgroup (its cgroup namespace root) holds only what the command
  // used: no copy of the runtime is charged there (runc#3986).
  std::string out;
  ASSERT_EQ(kiste_run("cat /sys/fs/cgroup/memory/memory.max_usage_in_bytes", &out), 0) << out;
  long bytes = std::stol(out);
  EXPECT_LT(bytes, 4L << 20) << out;
}

TEST_F(RuntimeTest, TerminalGivesTheCommandATty) {
  std::string out;
  ASSERT_EQ(kiste_run("-t sh -c 'test -t 0 && test -t 1 && echo tty-ok; test -c $(tty) && echo in-devpts; stty size'", &out), 0) << out;
  EXPECT_THAT(out, HasSubstr("tty-ok"));
  // The pty is the container's own (its devpts instance), with a window size.
  EXPECT_THAT(out, HasSubstr("in-devpts"));
  EXPECT_THAT(out, ::testing::ContainsRegex("[0-9]+ [0-9]+"));
  out.clear();
  ASSERT_EQ(kiste_run("sh -c 'test -t 1 || echo no-tty'", &out), 0) << out;
  EXPECT_THAT(out, HasSubstr("no-tty"));
}

// -t binds the pty on /dev/console, as docker does (issue 12); the pty stays the user's own.
TEST_F(RuntimeTest, TerminalIsAlsoDevConsole) {
  std::string out;
  ASSERT_EQ(kiste_run("-t sh -c 'test -c /dev/console && "
                      "[ \"$(stat -c %t:%T /dev/console)\" = \"$(stat -c %t:%T $(tty))\" ] && "
                      "echo console-ok'",
                      &out),
            0)
      << out;
  EXPECT_THAT(out, HasSubstr("console-ok"));
  out.clear();
  ASSERT_EQ(kiste_run("-t -u 65534 sh -c 'echo x >/dev/tty && echo x >/dev/console && "
                      "[ $(stat -c %u $(tty)) = 65534 ] && echo user-ok'",
                      &out),
            0)
      << out;
  EXPECT_THAT(out, HasSubstr("user-ok"));
  out.clear();
  ASSERT_EQ(kiste_run("sh -c 'test -e /dev/console || echo no-console'", &out), 0) << out;
  EXPECT_THAT(out, HasSubstr("no-console"));
}

TEST_F(RuntimeTest, StdinIsConnectedOnlyWithInteractive) {
  std::string out;
  ASSERT_EQ(run_shell("echo piped | " + kiste_cmd() + " run --rm -i --rootfs " + rootfs().native() + " cat", &out), 0) << out;
  EXPECT_EQ(out, "piped\n");
  out.clear();
  ASSERT_EQ(run_shell("echo piped | " + kiste_cmd() + " run --rm --rootfs " + rootfs().native() + " cat", &out), 0) << out;
  EXPECT_EQ(out, "");
}

TEST_F(RuntimeTest, RmRemovesTheContainerDirectory) {
  ASSERT_EQ(kiste_run("true"), 0);
  std::error_code ec;
  EXPECT_TRUE(fs::is_empty(tmp() / "root" / "containers", ec));
  // A container that wrote files, and one that failed before it ran.
  ASSERT_EQ(kiste_run("sh -c 'mkdir -p /a/b && touch /a/b/c /d'"), 0);
  EXPECT_TRUE(fs::is_empty(tmp() / "root" / "containers", ec));
  EXPECT_EQ(kiste_run("-w /proc/self/fd/3 true"), 125);  // setup fails: no cwd outside the root
  EXPECT_TRUE(fs::is_empty(tmp() / "root" / "containers", ec));
  std::string out;
  ASSERT_EQ(run_shell(kiste_cmd() + " run --rootfs " + rootfs().native() + " touch /kept", &out), 0) << out;
  size_t n = 0;
  for (const auto& e : fs::directory_iterator(tmp() / "root" / "containers")) {
    ++n;
    EXPECT_TRUE(fs::exists(e.path() / "upper" / "kept"));
  }
  EXPECT_EQ(n, 1u);
}

}  // namespace
}  // namespace kiste::testing

namespace kiste::testing {
namespace {

TEST_F(RuntimeTest, RunsAnImageFromTheStoreWithItsConfig) {
  std::string out;
  fs::path tar = tmp() / "bb.tar";
  ASSERT_EQ(run_shell("tar -C " + rootfs().native() + " -cf " + tar.native() + " .", &out), 0) << out;
  ASSERT_EQ(run_shell(kiste_cmd() + " import -c 'ENTRYPOINT [\"sh\", \"-c\"]' -c 'CMD [\"echo default $FOO\"]' "
                      "-c 'ENV FOO=img' -c 'WORKDIR /srv' -c 'USER tester' " + tar.native() + " bb:1",
                      &out),
            0)
      << out;
  out.clear();
  ASSERT_EQ(run_shell(kiste_cmd() + " run --rm bb:1", &out), 0) << out;
  EXPECT_EQ(out, "default img\n");
  out.clear();
  ASSERT_EQ(run_shell(kiste_cmd() + " run --rm -e FOO=flag bb:1 'echo $FOO; pwd; id -u'", &out), 0) << out;
  EXPECT_EQ(out, "flag\n/srv\n1000\n");
  out.clear();
  EXPECT_EQ(run_shell(kiste_cmd() + " run --rm --pull never no-such-image:1 true", &out), 125);
  EXPECT_THAT(out, ::testing::HasSubstr("no-such-image"));
}

}  // namespace
}  // namespace kiste::testing

namespace kiste::testing {
namespace {

TEST_F(RuntimeTest, EveryNamespaceIsNewIncludingTime) {
  std::string out;
  ASSERT_EQ(kiste_run("sh -c 'for n in mnt pid uts ipc net cgroup time; do echo $n $(readlink /proc/self/ns/$n); done'", &out), 0) << out;
  std::istringstream in(out);
  std::string name, link;
  int n = 0;
  while (in >> name >> link) {
    char host[256] = {};
    ssize_t len = ::readlink(("/proc/self/ns/" + name).c_str(), host, sizeof host - 1);
    ASSERT_GT(len, 0) << name;
    EXPECT_NE(link, std::string(host, static_cast<size_t>(len))) << name << " is shared with the host";
    ++n;
  }
  EXPECT_EQ(n, 7) << out;
}

}  // namespace
}  // namespace kiste::testing
