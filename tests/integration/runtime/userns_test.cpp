// kiste run --userns=auto / --uidmap: the container's root is an unprivileged host uid; image
// files owned by host root appear as the container's root through idmapped mounts (nothing is
// chowned on disk); what the container creates belongs to the mapped uid on the host; host files
// only root may read stay unreadable; capabilities only count inside the namespace.
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include <kiste/base/sys.hpp>

#include "runtime_fixture.hpp"

namespace kiste::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

struct MapLine {
  unsigned ctr = 0, host = 0, size = 0;
};

std::vector<MapLine> parse_map(const std::string& text) {
  std::vector<MapLine> out;
  std::istringstream in(text);
  MapLine m;
  while (in >> m.ctr >> m.host >> m.size) out.push_back(m);
  return out;
}

uid_t owner_of(const fs::path& p) {
  struct stat st {};
  EXPECT_EQ(::lstat(p.c_str(), &st), 0) << p;
  return st.st_uid;
}

TEST_F(RuntimeTest, UsernsAutoMapsRootToAFreeRangeAbove100000) {
  std::string out;
  ASSERT_EQ(kiste_run("--userns=auto sh -c 'cat /proc/self/uid_map; echo --; cat /proc/self/gid_map; "
                      "echo --; id -u; id -g'",
                      &out),
            0)
      << out;
  auto parts_at = out.find("--\n");
  ASSERT_NE(parts_at, std::string::npos) << out;
  auto uid_map = parse_map(out.substr(0, parts_at));
  ASSERT_EQ(uid_map.size(), 1u) << out;
  EXPECT_EQ(uid_map[0].ctr, 0u);
  EXPECT_GE(uid_map[0].host, 100000u);
  EXPECT_EQ(uid_map[0].size, 65536u);
  EXPECT_THAT(out, HasSubstr("--\n0\n0\n"));
  // Without --userns the container shares the host's ids (Docker's default).
  out.clear();
  ASSERT_EQ(kiste_run("cat /proc/self/uid_map", &out), 0) << out;
  auto host = parse_map(out);
  ASSERT_EQ(host.size(), 1u) << out;
  EXPECT_EQ(host[0].host, 0u);
  EXPECT_EQ(host[0].size, 4294967295u);
}

TEST_F(RuntimeTest, UsernsImageFilesAppearOwnedByTheirContainerIdsWithoutChown) {
  // A private copy of the rootfs with a file owned by host uid/gid 1234.
  fs::path rf = tmp() / "rf";
  ASSERT_EQ(run_shell("cp -a " + rootfs().native() + " " + rf.native()), 0);
  ASSERT_TRUE(sys::write_file_atomic(rf / "owned", "x"));
  ASSERT_EQ(::chown((rf / "owned").c_str(), 1234, 1234), 0);
  std::string out;
  std::string cmd = kiste_cmd() + " run --rm --userns=auto --rootfs " + rf.native() +
                    " sh -c 'stat -c \"%u:%g %n\" /bin/busybox /owned /etc/passwd /'";
  ASSERT_EQ(run_shell(cmd, &out), 0) << out;
  EXPECT_EQ(out, "0:0 /bin/busybox\n1234:1234 /owned\n0:0 /etc/passwd\n0:0 /\n");
  // Nothing was chowned on disk.
  EXPECT_EQ(owner_of(rf / "bin/busybox"), 0u);
  EXPECT_EQ(owner_of(rf / "owned"), 1234u);
}

TEST_F(RuntimeTest, UsernsFilesCreatedInsideBelongToTheMappedRootOnTheHost) {
  fs::path vol = tmp() / "vol";
  ASSERT_TRUE(sys::mkdir_all(vol));
  ASSERT_EQ(::chmod(vol.c_str(), 01777), 0);
  std::string out;
  ASSERT_EQ(kiste_run("--userns=auto -v " + vol.native() +
                          ":/vol sh -c 'touch /vol/made-inside && cat /proc/self/uid_map'",
                      &out),
            0)
      << out;
  auto map = parse_map(out);
  ASSERT_EQ(map.size(), 1u) << out;
  EXPECT_EQ(owner_of(vol / "made-inside"), map[0].host);
  // Without a user namespace the same file is host root's.
  ASSERT_EQ(kiste_run("-v " + vol.native() + ":/vol touch /vol/made-as-root", &out), 0) << out;
  EXPECT_EQ(owner_of(vol / "made-as-root"), 0u);
}

TEST_F(RuntimeTest, UsernsRootCannotReadAHostRootOnlyFileDespiteItsCapabilities) {
  fs::path vol = tmp() / "secret";
  ASSERT_TRUE(sys::mkdir_all(vol));
  ASSERT_EQ(::chmod(vol.c_str(), 0755), 0);
  ASSERT_TRUE(sys::write_file_atomic(vol / "key", "s3cret\n", 0600));
  std::string out;
  // Docker's capabilities (DAC_OVERRIDE among them) are there, but only for ids of the
  // namespace: a file of the real root stays closed.
  ASSERT_EQ(kiste_run("--userns=auto -v " + vol.native() +
                          ":/secret sh -c 'grep CapEff /proc/self/status; cat /secret/key; "
                          "echo rc=$?; chown 0 /secret/key; echo chown=$?'",
                      &out),
            0)
      << out;
  EXPECT_THAT(out, HasSubstr("CapEff:\t00000000a80425fb"));
  EXPECT_THAT(out, HasSubstr("Permission denied"));
  EXPECT_THAT(out, HasSubstr("rc=1"));
  EXPECT_THAT(out, HasSubstr("chown=1"));
  EXPECT_THAT(out, ::testing::Not(HasSubstr("s3cret")));
  // The same container without a user namespace reads it (host root's DAC_OVERRIDE).
  out.clear();
  ASSERT_EQ(kiste_run("-v " + vol.native() + ":/secret cat /secret/key", &out), 0) << out;
  EXPECT_EQ(out, "s3cret\n");
}

TEST_F(RuntimeTest, UsernsIdmapVolumeShowsHostIdsAsTheContainersAndStoresHostIds) {
  fs::path vol = tmp() / "shared";
  ASSERT_TRUE(sys::mkdir_all(vol));
  ASSERT_EQ(::chmod(vol.c_str(), 0755), 0);
  ASSERT_TRUE(sys::write_file_atomic(vol / "key", "s3cret\n", 0600));
  std::string out;
  // Two runs get two different ranges; through `:idmap` both see the same files as their root's.
  for (int i = 0; i < 2; ++i) {
    out.clear();
    ASSERT_EQ(kiste_run("--userns=auto -v " + vol.native() + ":/v:idmap sh -c 'cat /v/key; "
                        "stat -c %u /v/key; touch /v/made" + std::to_string(i) + "'",
                        &out),
              0)
        << out;
    EXPECT_EQ(out, "s3cret\n0\n");
    EXPECT_EQ(owner_of(vol / ("made" + std::to_string(i))), 0u);  // stored as host root's
  }
  out.clear();
  EXPECT_EQ(kiste_run("-v " + vol.native() + ":/v:idmap true", &out), 125);
  EXPECT_THAT(out, HasSubstr("idmap needs a user namespace"));
}

TEST_F(RuntimeTest, UsernsSysIsOwnWithOwnNetworkAndBoundReadOnlyWithHostNetwork) {
  std::string out;
  ASSERT_EQ(kiste_run("--userns=auto sh -c 'ls /sys/class/net; touch /sys/x 2>&1; "
                      "grep -c \" /sys sysfs\\| /sys .* - sysfs\" /proc/self/mountinfo'",
                      &out),
            0)
      << out;
  EXPECT_THAT(out, ::testing::StartsWith("lo\n"));
  EXPECT_THAT(out, HasSubstr("Read-only file system"));
  std::string host;
  ASSERT_EQ(run_shell("ls /sys/class/net", &host), 0);
  out.clear();
  ASSERT_EQ(kiste_run("--userns=auto --network host sh -c 'ls /sys/class/net; touch /sys/x'", &out), 1)
      << out;
  EXPECT_THAT(out, HasSubstr(host));
  EXPECT_THAT(out, HasSubstr("Read-only file system"));
}

TEST_F(RuntimeTest, UsernsTwoContainersAtOnceGetDifferentRanges) {
  fs::path out_dir = tmp() / "out";
  ASSERT_TRUE(sys::mkdir_all(out_dir));
  ASSERT_EQ(::chmod(out_dir.c_str(), 01777), 0);  // the mapped roots write here
  // The first holds its range while the second starts.
  std::string script =
      kiste_cmd() + " run --rm --userns=auto --rootfs " + rootfs().native() + " -v " +
      out_dir.native() + ":/out sh -c 'cat /proc/self/uid_map > /out/first; touch /out/ready; "
      "i=0; while [ ! -e /out/done ] && [ $i -lt 1000 ]; do sleep 0.02; i=$((i+1)); done' & K=$!; "
      "i=0; while [ ! -e " + out_dir.native() + "/ready ] && [ $i -lt 1000 ]; do sleep 0.02; i=$((i+1)); done; " +
      kiste_cmd() + " run --rm --userns=auto --rootfs " + rootfs().native() + " -v " +
      out_dir.native() + ":/out sh -c 'cat /proc/self/uid_map > /out/second; touch /out/done'; "
      "wait $K";
  std::string out;
  ASSERT_EQ(run_shell(script, &out), 0) << out;
  auto first = parse_map(sys::read_file(out_dir / "first").value_or(""));
  auto second = parse_map(sys::read_file(out_dir / "second").value_or(""));
  ASSERT_EQ(first.size(), 1u);
  ASSERT_EQ(second.size(), 1u);
  EXPECT_NE(first[0].host, second[0].host);
  const unsigned a = first[0].host, b = second[0].host;
  EXPECT_TRUE(a + 65536 <= b || b + 65536 <= a) << a << " " << b;
}

// systemd makes the host's / shared. A volume's clone (open_tree) is then a peer of the host's
// mount, and a mount kiste makes on it (a nested volume) would appear on the host too. This
// host's / is private, so the test shares its own source mount.
TEST_F(RuntimeTest, UsernsNestedVolumesStayOffAHostWhoseMountsAreShared) {
  const fs::path a = tmp() / "a", b = tmp() / "b";
  ASSERT_TRUE(sys::mkdir_all(a / "y"));
  ASSERT_TRUE(sys::mkdir_all(b));
  ASSERT_TRUE(sys::write_file_atomic(b / "marker", "from b\n"));
  std::string out;
  ASSERT_EQ(run_shell("mount --bind " + a.native() + " " + a.native() + " && mount --make-shared " + a.native(), &out),
            0)
      << out;
  struct Unmount {
    fs::path dir;
    ~Unmount() { (void)run_shell("umount -R -l " + dir.native() + " 2>/dev/null"); }
  } unmount{a};
  out.clear();
  ASSERT_EQ(kiste_run("--userns=auto -v " + a.native() + ":/x -v " + b.native() + ":/x/y cat /x/y/marker", &out), 0)
      << out;
  EXPECT_EQ(out, "from b\n");
  EXPECT_THAT(mounts_below(a), ::testing::ElementsAre(a.native())) << "a mount of the container reached the host";
}

TEST_F(RuntimeTest, UidmapAndGidmapMapAsGivenWithUserAndReadOnlyRoot) {
  std::string out;
  ASSERT_EQ(kiste_run("--uidmap 0:200000:1000 --uidmap 1000:300000:10 --gidmap 0:400000:2001 "
                      "--read-only -u tester sh -c 'id; cat /proc/self/uid_map /proc/self/gid_map; "
                      "touch /x'",
                      &out),
            1)
      << out;
  EXPECT_THAT(out, HasSubstr("uid=1000(tester) gid=1000(tester)"));
  EXPECT_THAT(out, ::testing::ContainsRegex(" +0 +200000 +1000\n +1000 +300000 +10\n +0 +400000 +2001\n"));
  EXPECT_THAT(out, HasSubstr("Read-only file system"));
}

TEST_F(RuntimeTest, BadUsernsOptionsFailBeforeStart) {
  std::string out;
  EXPECT_EQ(kiste_run("--userns=private true", &out), 125);
  EXPECT_THAT(out, HasSubstr("userns `private`: expected host, auto or keep-id"));
  out.clear();
  EXPECT_EQ(kiste_run("--uidmap 0:1 true", &out), 125);
  EXPECT_THAT(out, HasSubstr("expected CONTAINER_ID:HOST_ID:SIZE"));
  out.clear();
  EXPECT_EQ(kiste_run("--uidmap 0:100000:10 --uidmap 5:200000:10 true", &out), 125);
  EXPECT_THAT(out, HasSubstr("overlap"));
  out.clear();
  EXPECT_EQ(kiste_run("--userns=auto --uidmap 0:100000:10 true", &out), 125);
  EXPECT_THAT(out, HasSubstr("conflicts"));
}

}  // namespace
}  // namespace kiste::testing
