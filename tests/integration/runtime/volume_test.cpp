// Volume propagation and named volumes: rslave lets a mount the host makes below the source
// appear inside a running container, the default (rprivate) does not; named volumes keep data
// in <root>/volumes/NAME/_data from one container to the next.
#include <sys/mount.h>
#include <unistd.h>

#include <kiste/base/sys.hpp>

#include "runtime_fixture.hpp"

namespace kiste::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

class VolumeTest : public RuntimeTest {
 protected:
  void TearDown() override {
    for (auto it = host_mounts_.rbegin(); it != host_mounts_.rend(); ++it) ::umount2(it->c_str(), MNT_DETACH);
    host_mounts_.clear();
    RuntimeTest::TearDown();
  }
  void host_mount_tmpfs(const fs::path& at, bool shared) {
    ASSERT_TRUE(sys::mkdir_all(at));
    ASSERT_EQ(::mount("tmpfs", at.c_str(), "tmpfs", 0, "size=1m"), 0) << at;
    host_mounts_.push_back(at);
    if (shared) {
      ASSERT_EQ(::mount(nullptr, at.c_str(), nullptr, MS_SHARED, nullptr), 0);
    }
  }
  // Starts a container with `-v vol:/vol<opts>` that waits for the host's mount below /vol, then
  // reports whether it sees it.
  std::string run_propagation_case(const std::string& opts) {
    fs::path vol = tmp() / ("vol" + std::to_string(host_mounts_.size()));
    host_mount_tmpfs(vol, /*shared=*/true);
    fs::path sig = tmp() / ("sig" + std::to_string(host_mounts_.size()));
    EXPECT_TRUE(sys::mkdir_all(sig));
    std::string script =
        kiste_cmd() + " run --rm --rootfs " + rootfs().native() + " -v " + sig.native() + ":/sig -v " +
        vol.native() + ":/vol" + opts +
        " sh -c 'touch /sig/ready; i=0; while [ ! -e /sig/done ] && [ $i -lt 1000 ]; do sleep 0.01; i=$((i+1)); done; "
        "if [ -e /vol/sub/marker ]; then echo seen; else echo unseen; fi' & K=$!; "
        "i=0; while [ ! -e " + sig.native() + "/ready ] && [ $i -lt 1000 ]; do sleep 0.01; i=$((i+1)); done; "
        "mkdir -p " + vol.native() + "/sub && mount -t tmpfs -o size=1m tmpfs " + vol.native() + "/sub && "
        "touch " + vol.native() + "/sub/marker && touch " + sig.native() + "/done; wait $K";
    std::string out;
    EXPECT_EQ(run_shell(script, &out), 0) << out;
    host_mounts_.push_back(vol / "sub");
    return out;
  }
  std::vector<fs::path> host_mounts_;
};

TEST_F(VolumeTest, RslaveSeesHostMountsMadeLaterTheDefaultDoesNot) {
  EXPECT_EQ(run_propagation_case(":rslave"), "seen\n");
  EXPECT_EQ(run_propagation_case(""), "unseen\n");  // rprivate, Docker's default
  EXPECT_EQ(run_propagation_case(":ro,slave"), "seen\n");
}

TEST_F(VolumeTest, MountBindPropagationAndUnsupportedModes) {
  std::string out;
  fs::path vol = tmp() / "shared";
  host_mount_tmpfs(vol, /*shared=*/true);
  // The container's copy is a slave of the host's peer group ("master:N" in mountinfo).
  EXPECT_EQ(kiste_run("--mount type=bind,source=" + vol.native() +
                          ",target=/t,bind-propagation=rslave grep -c \" /t .*master:\" /proc/self/mountinfo",
                      &out),
            0)
      << out;
  EXPECT_EQ(out, "1\n");
  out.clear();
  EXPECT_EQ(kiste_run("-v /tmp:/t:rshared true", &out), 125);
  EXPECT_THAT(out, HasSubstr("propagation `rshared` is not supported"));
  out.clear();
  EXPECT_EQ(kiste_run("-v /tmp:/t:rslave --userns=auto true", &out), 125);
  EXPECT_THAT(out, HasSubstr("slave propagation needs --userns=host"));
  out.clear();
  EXPECT_EQ(kiste_run("-v /tmp:/t:bogus true", &out), 125);
  EXPECT_THAT(out, HasSubstr("unknown option `bogus`"));
}

TEST_F(VolumeTest, NamedVolumesKeepDataAndZIsAcceptedWithANote) {
  std::string out;
  ASSERT_EQ(kiste_run("-v cache:/data:Z sh -c 'echo kept > /data/f'", &out), 0) << out;
  EXPECT_THAT(out, HasSubstr("SELinux relabel) ignored"));
  EXPECT_EQ(sys::read_file(tmp() / "root/volumes/cache/_data/f").value_or(""), "kept\n");
  out.clear();
  ASSERT_EQ(kiste_run("--mount type=volume,source=cache,target=/d cat /d/f", &out), 0) << out;
  EXPECT_EQ(out, "kept\n");
  out.clear();
  ASSERT_EQ(run_shell(kiste_cmd() + " volume ls", &out), 0) << out;
  EXPECT_EQ(out, "cache\n");
  out.clear();
  ASSERT_EQ(run_shell(kiste_cmd() + " volume rm cache && " + kiste_cmd() + " volume ls", &out), 0) << out;
  EXPECT_EQ(out, "");
  EXPECT_FALSE(fs::exists(tmp() / "root/volumes/cache"));
  out.clear();
  EXPECT_EQ(kiste_run("-v ../etc:/x true", &out), 125);
  EXPECT_THAT(out, HasSubstr("volume name `../etc`"));
  EXPECT_NE(run_shell(kiste_cmd() + " volume rm ../../x", &out), 0);
}

}  // namespace
}  // namespace kiste::testing
