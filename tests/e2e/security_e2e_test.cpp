// The kiste binary against the findings of issue 12: what an unprivileged host user can reach in a
// store, and what host root reads from an image.
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <string>

#include <gtest/gtest.h>

#include <kiste/base/sys.hpp>
#include <kiste/testing/kiste_cli.hpp>
#include <kiste/testing/require_root.hpp>
#include <kiste/testing/temp_root.hpp>

namespace kiste::testing {
namespace {

namespace fs = std::filesystem;

constexpr uid_t kNobody = 65534;

// Opens `p` as nobody (uid and gid 65534, no supplementary groups) in a forked child; 0 when the
// open worked, else its errno.
int open_as_nobody(const fs::path& p, int flags = O_RDONLY) {
  pid_t pid = ::fork();
  if (pid == 0) {
    if (::setgroups(0, nullptr) != 0 || ::setgid(kNobody) != 0 || ::setuid(kNobody) != 0) _exit(254);
    int fd = ::open(p.c_str(), flags | O_NONBLOCK | O_CLOEXEC);
    _exit(fd >= 0 ? 0 : errno);
  }
  int st = 0;
  if (pid < 0 || ::waitpid(pid, &st, 0) != pid || !WIFEXITED(st)) return -1;
  return WEXITSTATUS(st);
}

mode_t mode_of(const fs::path& p) {
  struct stat st {};
  return ::lstat(p.c_str(), &st) == 0 ? (st.st_mode & 07777) : 0;
}

// The first path below `dir` named `name` (empty if none).
fs::path find_below(const fs::path& dir, const std::string& name) {
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (it->path().filename() == name) return it->path();
  }
  return {};
}

class SecurityE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    KISTE_REQUIRE_ROOT();
    // The test dir is traversable by everyone, as /var/lib is: only the store's own modes may
    // keep nobody out.
    ASSERT_EQ(::chmod(tmp_.path().c_str(), 0755), 0);
  }
  std::string import_busybox(const std::string& name = "busybox") {
    auto r = kiste_.run("import -c 'CMD [\"/bin/sh\"]' " + busybox_tar().native() + " " + name);
    EXPECT_EQ(r.status, 0) << r.output;
    return r.output;
  }
  TempRoot tmp_{"kiste-sec-"};
  KisteCli kiste_{tmp_ / "root"};
};

// CVE-2021-41091 class: setuid binaries and device nodes from an image, or planted by a
// container in its upper dir, must not be reachable by an unprivileged host user.
TEST_F(SecurityE2E, UnprivilegedHostUserReachesNoImageOrContainerFile) {
  fs::path rootfs = tmp_ / "rootfs";
  ASSERT_TRUE(sys::mkdir_all(rootfs, 0755));
  ASSERT_TRUE(sys::write_file_atomic(rootfs / "suid", "#!/bin/sh\n", 04755));
  ASSERT_EQ(::chmod((rootfs / "suid").c_str(), 04755), 0);
  ASSERT_EQ(::mknod((rootfs / "nulldev").c_str(), S_IFCHR | 0666, ::makedev(1, 3)), 0);
  ASSERT_EQ(run_shell("tar -C " + rootfs.native() + " -cf " + (tmp_ / "evil.tar").native() + " ."), 0);
  auto imp = kiste_.run("import " + (tmp_ / "evil.tar").native() + " evil");
  ASSERT_EQ(imp.status, 0) << imp.output;
  import_busybox();
  auto run = kiste_.run("run busybox sh -c 'echo x >/planted && chmod 4755 /planted'");
  ASSERT_EQ(run.status, 0) << run.output;

  // Unpack the evil image's snapshot (a run does that) and find the files as root.
  auto run2 = kiste_.run("run --entrypoint /suid evil");  // fails (no shell), but unpacks
  (void)run2;
  fs::path suid = find_below(kiste_.root() / "snapshots", "suid");
  fs::path dev = find_below(kiste_.root() / "snapshots", "nulldev");
  fs::path planted = find_below(kiste_.root() / "containers", "planted");
  ASSERT_FALSE(suid.empty());
  ASSERT_FALSE(dev.empty());
  ASSERT_FALSE(planted.empty());
  EXPECT_EQ(mode_of(suid), 04755u);
  EXPECT_EQ(mode_of(planted), 04755u);
  ASSERT_EQ(open_as_nobody(tmp_ / "evil.tar"), 0);  // the probe itself works

  EXPECT_EQ(open_as_nobody(suid), EACCES);
  EXPECT_EQ(open_as_nobody(dev, O_RDWR), EACCES);
  EXPECT_EQ(open_as_nobody(planted), EACCES);
  EXPECT_EQ(open_as_nobody(planted.parent_path(), O_PATH), EACCES);
  for (const char* d : {"", "snapshots", "containers", "volumes", "tmp", "cache", "running"}) {
    EXPECT_EQ(mode_of(kiste_.root() / d), 0700u) << d;
  }
  EXPECT_EQ(mode_of(planted.parent_path().parent_path()), 0700u);  // containers/<id>
}

// A store made by an older kiste (everything 0755) is narrowed the next time it is opened.
TEST_F(SecurityE2E, OlderWideStoreIsNarrowedOnOpen) {
  import_busybox();
  auto run = kiste_.run("run busybox true");
  ASSERT_EQ(run.status, 0) << run.output;
  for (const char* d : {"", "snapshots", "containers", "tmp", "cache"}) {
    ASSERT_EQ(::chmod((kiste_.root() / d).c_str(), 0755), 0) << d;
  }
  auto images = kiste_.run("images");
  ASSERT_EQ(images.status, 0) << images.output;
  for (const char* d : {"", "snapshots", "containers", "tmp", "cache"}) {
    EXPECT_EQ(mode_of(kiste_.root() / d), 0700u) << d;
  }
}

// Host root read the image's /etc/passwd and /etc/group on every run: a char device 1:11 opened
// the host's /dev/kmsg, 1:5 was read to the limit, a FIFO hung `kiste run` (issue 12).
TEST_F(SecurityE2E, RunRefusesSpecialFilesAsImagePasswdAndGroup) {
  struct Case {
    const char* file;
    mode_t type;
    dev_t dev;
    const char* says;
  } cases[] = {{"passwd", S_IFCHR, ::makedev(1, 11), "a character device, not a regular file"},
               {"group", S_IFCHR, ::makedev(1, 5), "a character device, not a regular file"},
               {"passwd", S_IFIFO, 0, "a FIFO, not a regular file"},
               {"group", S_IFBLK, ::makedev(7, 0), "a block device, not a regular file"}};
  for (const auto& c : cases) {
    fs::path rootfs = tmp_ / ("rootfs-" + std::to_string(&c - cases));
    ASSERT_TRUE(sys::mkdir_all(rootfs / "etc", 0755));
    ASSERT_TRUE(sys::write_file_atomic(rootfs / "etc/passwd", "root:x:0:0::/:/bin/sh\n"));
    ASSERT_TRUE(sys::write_file_atomic(rootfs / "etc/group", "root:x:0:\n"));
    ASSERT_EQ(::unlink((rootfs / "etc" / c.file).c_str()), 0);
    ASSERT_EQ(::mknod((rootfs / "etc" / c.file).c_str(), c.type | 0666, c.dev), 0);
    // `timeout` only turns a hang (the bug) into a failure; nothing here measures speed.
    CliResult r;
    r.status = run_shell("timeout -s KILL 120 " + kiste_binary().native() + " --root " +
                             kiste_.root().native() + " run --rm --rootfs " + rootfs.native() +
                             " /bin/true </dev/null",
                         &r.output);
    ASSERT_NE(r.status, 128 + SIGKILL) << "kiste run hung on " << c.file;
    EXPECT_EQ(r.status, 125) << c.file << ": " << r.output;
    EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
    EXPECT_NE(r.output.find(c.says), std::string::npos) << r.output;
    EXPECT_NE(r.output.find(std::string("/etc/") + c.file), std::string::npos) << r.output;
  }
}

// Build contexts are hostile too: a FIFO or a device node as the Containerfile, .dockerignore or a
// COPY source is refused with one line (inside a copied directory such files are skipped).
TEST_F(SecurityE2E, BuildRefusesSpecialFilesInTheContext) {
  import_busybox();
  fs::path ctx = tmp_ / "ctx";
  ASSERT_TRUE(sys::mkdir_all(ctx / "dir", 0755));
  ASSERT_EQ(::mkfifo((ctx / "Containerfile").c_str(), 0644), 0);
  auto cf = kiste_.run("build " + ctx.native());
  EXPECT_EQ(cf.status, 125) << cf.output;
  EXPECT_NE(cf.output.find("open `Containerfile`: a FIFO, not a regular file"), std::string::npos)
      << cf.output;
  ASSERT_EQ(::unlink((ctx / "Containerfile").c_str()), 0);

  ASSERT_TRUE(sys::write_file_atomic(ctx / "Containerfile", "FROM busybox\nCOPY dir /dir\n"));
  ASSERT_EQ(::mknod((ctx / ".dockerignore").c_str(), S_IFCHR | 0666, ::makedev(1, 5)), 0);
  auto ig = kiste_.run("build " + ctx.native());
  EXPECT_EQ(ig.status, 125) << ig.output;
  EXPECT_NE(ig.output.find("open `.dockerignore`: a character device, not a regular file"),
            std::string::npos) << ig.output;
  ASSERT_EQ(::unlink((ctx / ".dockerignore").c_str()), 0);

  ASSERT_EQ(::mkfifo((ctx / "dir" / "pipe").c_str(), 0644), 0);
  ASSERT_TRUE(sys::write_file_atomic(ctx / "dir" / "file", "x"));
  auto dir = kiste_.run("build -t ok " + ctx.native());
  EXPECT_EQ(dir.status, 0) << dir.output;
  auto ls = kiste_.run("run --rm ok ls /dir");
  EXPECT_EQ(ls.output, "file\n");

  ASSERT_TRUE(sys::write_file_atomic(ctx / "Containerfile", "FROM busybox\nCOPY dir/pipe /p\n"));
  auto named = kiste_.run("build " + ctx.native());
  EXPECT_EQ(named.status, 125) << named.output;
  EXPECT_NE(named.output.find("`dir/pipe` is not a regular file, directory or symlink"),
            std::string::npos) << named.output;
}

}  // namespace
}  // namespace kiste::testing
