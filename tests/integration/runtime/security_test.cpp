// Docker-equivalent security defaults, checked from inside the container: seccomp, caps,
// no_new_privs, masked and read-only paths, the old root, fds, the cwd escape, the runtime
// binary (CVE-2019-5736), and the openat2-less fallback.
#include <algorithm>
#include <fstream>

#include <kiste/base/sys.hpp>
#include <kiste/testing/busybox_rootfs.hpp>

#include "runtime_fixture.hpp"

namespace kiste::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;

TEST_F(RuntimeTest, DefaultSeccompBlocksWhatDockerBlocks) {
  std::string out;
  ASSERT_EQ(kiste_run("kiste_test_init try-syscall unshare mount keyctl add_key bpf ptrace "
                      "clone-newuser socket-alg io_uring_setup personality-bad",
                      &out),
            0)
      << out;
  EXPECT_EQ(out,
            "unshare errno=1\nmount errno=1\nkeyctl errno=1\nadd_key errno=1\nbpf errno=1\n"
            "ptrace errno=1\nclone-newuser errno=1\nsocket-alg errno=1\nio_uring_setup errno=1\n"
            "personality-bad errno=1\n");
  out.clear();
  // clone3 looks unimplemented (ENOSYS) so libc falls back to clone; ordinary calls work.
  ASSERT_EQ(kiste_run("kiste_test_init try-syscall clone3 getpid socket-unix mkdir", &out), 0) << out;
  EXPECT_EQ(out, "clone3 errno=38\ngetpid errno=0\nsocket-unix errno=0\nmkdir errno=0\n");
  out.clear();
  ASSERT_EQ(kiste_run("sh -c 'echo ok | wc -l; ls / >/dev/null && echo ls-ok'", &out), 0) << out;
  EXPECT_EQ(out, "1\nls-ok\n");
}

TEST_F(RuntimeTest, CustomDockerProfileDenyingMkdir) {
  fs::path profile = tmp() / "deny-mkdir.json";
  ASSERT_TRUE(sys::write_file_atomic(profile, R"({
    "defaultAction": "SCMP_ACT_ALLOW",
    "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]
  })"));
  std::string out;
  EXPECT_EQ(kiste_run("--security-opt seccomp=" + profile.native() + " kiste_test_init try-syscall mkdir keyctl", &out), 0);
  EXPECT_EQ(out, "mkdir errno=1\nkeyctl errno=0\n");
  out.clear();
  EXPECT_NE(kiste_run("--security-opt seccomp=" + profile.native() + " mkdir /tmp/d", &out), 0);
  EXPECT_THAT(out, HasSubstr("Operation not permitted"));
}

TEST_F(RuntimeTest, BadSeccompProfileFailsBeforeStart) {
  fs::path profile = tmp() / "bad.json";
  ASSERT_TRUE(sys::write_file_atomic(profile, R"({"defaultAction": "SCMP_ACT_NOPE"})"));
  std::string out;
  EXPECT_EQ(kiste_run("--security-opt seccomp=" + profile.native() + " true", &out), 125);
  EXPECT_THAT(out, HasSubstr("seccomp profile: defaultAction: unknown action `SCMP_ACT_NOPE`"));
}

TEST_F(RuntimeTest, SeccompUnconfinedLiftsTheFilter) {
  std::string out;
  ASSERT_EQ(kiste_run("--security-opt seccomp=unconfined kiste_test_init try-syscall keyctl socket-alg", &out), 0) << out;
  EXPECT_THAT(out, Not(HasSubstr("errno=1\n")));
  out.clear();
  ASSERT_EQ(kiste_run("--security-opt seccomp=unconfined kiste_test_init status", &out), 0) << out;
  EXPECT_THAT(out, HasSubstr("Seccomp:\t0\n"));
}

TEST_F(RuntimeTest, StatusShowsSeccompNoNewPrivsAndDockerCaps) {
  std::string out;
  ASSERT_EQ(kiste_run("kiste_test_init status", &out), 0) << out;
  EXPECT_THAT(out, HasSubstr("Seccomp:\t2\n"));
  EXPECT_THAT(out, HasSubstr("NoNewPrivs:\t0\n"));
  EXPECT_THAT(out, HasSubstr("CapEff:\t00000000a80425fb\n"));
  EXPECT_THAT(out, HasSubstr("CapPrm:\t00000000a80425fb\n"));
  EXPECT_THAT(out, HasSubstr("CapBnd:\t00000000a80425fb\n"));
  EXPECT_THAT(out, HasSubstr("CapInh:\t0000000000000000\n"));
  EXPECT_THAT(out, HasSubstr("CapAmb:\t0000000000000000\n"));
  out.clear();
  ASSERT_EQ(kiste_run("--security-opt no-new-privileges --cap-drop NET_RAW --cap-add SYS_PTRACE "
                      "kiste_test_init status",
                      &out),
            0)
      << out;
  EXPECT_THAT(out, HasSubstr("NoNewPrivs:\t1\n"));
  // - NET_RAW (bit 13, 0x2000) + SYS_PTRACE (bit 19, 0x80000)
  EXPECT_THAT(out, HasSubstr("CapEff:\t00000000a80c05fb\n"));
}

TEST_F(RuntimeTest, CapAddAllAllowsTheSysAdminSyscallGroup) {
  std::string out;
  ASSERT_EQ(kiste_run("--cap-add ALL kiste_test_init try-syscall unshare", &out), 0) << out;
  // CAP_SYS_ADMIN's group is allowed with the capability (after kiste's warning on a host
  // without a security module).
  EXPECT_THAT(out, ::testing::EndsWith("unshare errno=0\n"));
}

TEST_F(RuntimeTest, MaskedPathsReadEmpty) {
  std::string out;
  ASSERT_EQ(kiste_run("sh -c 'cat /proc/keys /proc/timer_list /proc/interrupts | wc -c; ls /sys/firmware | wc -l; ls /proc/acpi | wc -l'", &out), 0) << out;
  EXPECT_EQ(out, "0\n0\n0\n");
  out.clear();
  // Writes to a masked file go to /dev/null's node, nowhere on the host.
  ASSERT_EQ(kiste_run("kiste_test_init mounts", &out), 0) << out;
  EXPECT_THAT(out, HasSubstr(" /proc/keys "));
  EXPECT_THAT(out, HasSubstr(" /sys/firmware "));
}

TEST_F(RuntimeTest, ProcSysAndSysAreReadOnly) {
  std::string out;
  EXPECT_NE(kiste_run("sh -c 'echo x > /proc/sys/kernel/domainname'", &out), 0);
  EXPECT_THAT(out, HasSubstr("Read-only file system"));
  out.clear();
  EXPECT_NE(kiste_run("sh -c 'echo 1 > /proc/sysrq-trigger'", &out), 0);
  out.clear();
  EXPECT_NE(kiste_run("sh -c 'echo x > /sys/kernel/uevent_helper'", &out), 0);
  EXPECT_THAT(out, HasSubstr("Read-only file system"));
  out.clear();
  EXPECT_NE(kiste_run("mkdir /sys/fs/cgroup/memory/evil", &out), 0);
}

TEST_F(RuntimeTest, ReadOnlyRootRefusesWrites) {
  std::string out;
  EXPECT_NE(kiste_run("--read-only touch /newfile", &out), 0);
  EXPECT_THAT(out, HasSubstr("Read-only file system"));
  out.clear();
  EXPECT_EQ(kiste_run("sh -c 'touch /newfile && echo ok'", &out), 0) << out;
  EXPECT_FALSE(fs::exists(rootfs() / "newfile")) << "the image's layer must stay untouched";
}

TEST_F(RuntimeTest, NoHostRootIsReachable) {
  std::string out;
  ASSERT_EQ(kiste_run("kiste_test_init mounts", &out), 0) << out;
  std::istringstream in(out);
  std::string line;
  int roots = 0;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string id, parent, dev, root, mp;
    ls >> id >> parent >> dev >> root >> mp;
    EXPECT_THAT(mp, Not(HasSubstr(tmp().native()))) << line;
    if (mp == "/") {
      ++roots;
      EXPECT_THAT(line, HasSubstr(" - overlay ")) << line;
    }
  }
  EXPECT_EQ(roots, 1) << out;
  out.clear();
  // /proc/1/root is the container's own root.
  ASSERT_EQ(kiste_run("sh -c 'ls /proc/1/root/ | tr \"\\n\" \" \"; echo; ls / | tr \"\\n\" \" \"'", &out), 0) << out;
  auto nl = out.find('\n');
  EXPECT_EQ(out.substr(0, nl), out.substr(nl + 1)) << out;
}

TEST_F(RuntimeTest, OnlyStdioIsOpenInTheContainer) {
  std::string out;
  ASSERT_EQ(kiste_run("kiste_test_init fds", &out), 0) << out;
  EXPECT_EQ(out, "0\n1\n2\n");
}

TEST_F(RuntimeTest, WorkdirThroughProcSelfFdCannotEscape) {
  for (int fd = 3; fd <= 8; ++fd) {
    std::string out;
    EXPECT_EQ(kiste_run("-w /proc/self/fd/" + std::to_string(fd) + " pwd", &out), 125) << out;
    EXPECT_THAT(out, HasSubstr("working directory"));
  }
}

TEST_F(RuntimeTest, RuntimeBinaryIsNotWritableFromInside) {
  std::string before, after, out;
  ASSERT_EQ(run_shell("sha256sum " + kiste_binary().native(), &before), 0);
  ASSERT_EQ(kiste_run("--init kiste_test_init open-exe-write 1", &out), 0) << out;
  EXPECT_THAT(out, Not(HasSubstr("errno=0")));
  ASSERT_EQ(run_shell("sha256sum " + kiste_binary().native(), &after), 0);
  EXPECT_EQ(before, after);
}

// --init's PID 1 was a fork of kiste that never exec'd: with SYS_PTRACE the container read
// kiste's host environment from /proc/1/environ and reached the host kiste binary through
// /proc/1/exe (issue 12). It is now the static kiste-init, bind-mounted read-only.
TEST_F(RuntimeTest, InitIsNotACopyOfKisteEvenWithSysPtrace) {
  const std::string run = "KISTE_TEST_HOST_MARKER=host-secret " + kiste_cmd() +
                          " run --rm --init --cap-add SYS_PTRACE --rootfs " + rootfs().native() + " ";
  std::string env;
  ASSERT_EQ(run_shell(run + "-e VISIBLE=1 kiste_test_init cat /proc/1/environ", &env), 0) << env;
  EXPECT_THAT(env, Not(HasSubstr("KISTE_TEST_HOST_MARKER")));
  EXPECT_THAT(env, HasSubstr("VISIBLE=1"));  // the container's own environment is all it has
  std::string exe;
  ASSERT_EQ(run_shell(run + "readlink /proc/1/exe", &exe), 0) << exe;
  EXPECT_EQ(exe, "/dev/init\n");
  std::string write;
  ASSERT_EQ(run_shell(run + "kiste_test_init open-exe-write 1", &write), 0) << write;
  // A read-only bind mount (EROFS); kernels that deny writes to running binaries say so first.
  EXPECT_THAT(write, ::testing::AnyOf("errno=" + std::to_string(EROFS) + "\n",
                                      "errno=" + std::to_string(ETXTBSY) + "\n"));
  std::string cmdline;
  ASSERT_EQ(run_shell(run + "kiste_test_init cat /proc/1/cmdline", &cmdline), 0) << cmdline;
  using namespace std::string_literals;
  EXPECT_EQ(cmdline, "/dev/init\0--\0kiste_test_init\0cat\0/proc/1/cmdline\0"s);
}

TEST_F(RuntimeTest, InitReportsACommandThatIsNotThere) {
  std::string out;
  EXPECT_EQ(kiste_run("--init no-such-command", &out), 127) << out;
  EXPECT_THAT(out, HasSubstr("no-such-command: No such file or directory"));
}

// The runtime's /etc/hosts, /etc/hostname and /etc/resolv.conf never go through a symlink the
// image put there (runc refuses them; issue 12): hosts -> passwd covered the image's passwd.
TEST_F(RuntimeTest, RuntimeFilesRefuseImageSymlinks) {
  fs::path img = tmp() / "img";
  std::string out;
  ASSERT_EQ(run_shell("cp -a " + rootfs().native() + " " + img.native(), &out), 0) << out;
  for (const char* f : {"hosts", "hostname", "resolv.conf"}) {
    fs::remove(img / "etc" / f);
    fs::create_symlink("/etc/passwd", img / "etc" / f);
    std::string passwd_before = sys::read_file(img / "etc/passwd").value();
    // --read-only binds the files in (the writable root gets them from a layer above the image).
    out.clear();
    int rc = run_shell(kiste_cmd() + " run --rm --read-only --rootfs " + img.native() +
                           " cat /etc/passwd", &out);
    EXPECT_EQ(rc, 125) << f << ": " << out;
    EXPECT_THAT(out, HasSubstr(std::string("provide /etc/") + f +
                               ": the image has a symlink there"));
    EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << out;
    EXPECT_EQ(sys::read_file(img / "etc/passwd").value(), passwd_before);
    fs::remove(img / "etc" / f);
    ASSERT_TRUE(sys::write_file_atomic(img / "etc" / f, "\n"));
  }
}

TEST_F(RuntimeTest, DevicesAreDockersSet) {
  std::string out;
  ASSERT_EQ(kiste_run("sh -c 'ls /dev | tr \"\\n\" \" \"; echo; head -c 4 /dev/zero | wc -c; echo x > /dev/null && echo null-ok'", &out), 0) << out;
  EXPECT_THAT(out, HasSubstr("fd full mqueue null ptmx pts random shm stderr stdin stdout tty urandom zero"));
  EXPECT_THAT(out, HasSubstr("4\nnull-ok\n"));
  out.clear();
  // CAP_MKNOD makes the node, the device cgroup refuses to open it (loop0: a block device
  // this host lets root open, so the refusal is the container's).
  EXPECT_NE(kiste_run("sh -c 'mknod /tmp/loop b 7 0 && head -c 1 /tmp/loop'", &out), 0);
  EXPECT_THAT(out, HasSubstr("Operation not permitted"));
}

TEST_F(RuntimeTest, WorksWithoutOpenat2) {
  // The whole runtime (user lookup in the image, mount targets) under a filter that makes
  // openat2 look unimplemented: the userspace fallbacks must give the same result.
  fs::path host_dir = tmp() / "vol";
  ASSERT_TRUE(sys::mkdir_all(host_dir));
  std::string out;
  std::string cmd = kiste_test_init_binary().native() + " no-openat2 " + kiste_cmd() +
                    " run --rm --rootfs " + rootfs().native() + " -u tester -v " + host_dir.native() +
                    ":/deep/new/target kiste_test_init id";
  ASSERT_EQ(run_shell(cmd, &out), 0) << out;
  EXPECT_EQ(out, "uid=1000 gid=1000 groups=1000,2000\n");
}

}  // namespace
}  // namespace kiste::testing

namespace kiste::testing {
namespace {

TEST_F(RuntimeTest, HostileImageSymlinksForMountTargetsStayInsideTheRoot) {
  // An image whose /sys is an absolute symlink climbing out: sysfs must land inside the root
  // (at the image's /kiste-probe), never on a host path.
  fs::path img = tmp() / "img";
  ASSERT_EQ(run_shell("cp -a " + rootfs().native() + " " + img.native()), 0);
  std::error_code ec;
  fs::remove_all(img / "sys", ec);
  ASSERT_TRUE(sys::mkdir_all(img / "kiste-probe"));
  fs::create_symlink("/../../../../../../kiste-probe", img / "sys");
  std::string out;
  int rc = run_shell(kiste_cmd() + " run --rm --rootfs " + img.native() +
                         " sh -c 'test -d /kiste-probe/kernel && echo sysfs-in-root'",
                     &out);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_EQ(out, "sysfs-in-root\n");
  EXPECT_FALSE(fs::exists("/kiste-probe")) << "nothing may be created on the host";
}

}  // namespace
}  // namespace kiste::testing
