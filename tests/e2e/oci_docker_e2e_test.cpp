// Debian's docker.io (dockerd 20.10 with its own containerd and the runc shim) running
// containers with kiste-runc as an added runtime (`dockerd --add-runtime kiste=…`, `docker run
// --runtime kiste`). This binary and every dockerd it starts live in a network namespace of
// their own (main() below), and dockerd gets no bridge, no iptables/ip6tables rules and no
// masquerading; data root, exec root, pid file, key file and API socket are under a temp dir.
// busybox comes from a `kiste save` archive through `docker load`, no registry.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <kiste/base/sys.hpp>
#include <kiste/testing/kiste_cli.hpp>
#include <kiste/testing/netns.hpp>
#include <kiste/testing/require_root.hpp>
#include <kiste/testing/temp_root.hpp>

namespace kiste::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

bool g_own_netns = false;

class DockerE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    KISTE_REQUIRE_ROOT();
    ASSERT_TRUE(g_own_netns) << "the test could not make its own network namespace";
    ASSERT_EQ(run_shell("command -v dockerd && command -v docker"), 0)
        << "dockerd and docker are needed (scripts/setup.sh installs docker.io)";
    runc_ = fs::path(kiste_binary()).parent_path() / "kiste-runc";
    ASSERT_TRUE(hierarchy_cgroups_named("docker").empty()) << "a docker cgroup exists before the test";
    had_run_docker_ = fs::exists("/run/docker");
    had_run_containerd_ = fs::exists("/run/containerd");
    const fs::path d = tmp_.path();
    // (without it, dockerd 20.10 writes its trust key to /etc/docker/key.json)
    ASSERT_TRUE(sys::write_file_atomic(d / "daemon.json",
                                       fmt::format(R"({{"deprecated-key-path": "{}/key.json"}})", d.native()), 0644));
    daemon_ = ::fork();
    ASSERT_GE(daemon_, 0);
    if (daemon_ == 0) {
      ::setsid();
      const std::string cmd = fmt::format(
          "exec dockerd --bridge=none --iptables=false --ip6tables=false --ip-masq=false "
          "--userland-proxy=false --data-root {0}/data --exec-root {0}/exec --pidfile {0}/docker.pid "
          "-H unix://{0}/docker.sock --config-file {0}/daemon.json --add-runtime kiste={1} "
          ">{0}/dockerd.log 2>&1 </dev/null",
          d.native(), runc_.native());
      ::execl("/bin/sh", "sh", "-c", cmd.c_str(), nullptr);
      ::_exit(127);
    }
    std::string out;
    for (int i = 0; i < 600 && docker("version", &out) != 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ASSERT_EQ(docker("version", &out), 0) << out << log();
    KisteCli kiste(d / "kroot");
    auto imp = kiste.run("import -c 'CMD [\"/bin/sh\"]' " + busybox_tar().native() + " busybox:latest");
    ASSERT_EQ(imp.status, 0) << imp.output;
    auto save = kiste.run("save -o " + (d / "busybox.tar").native() + " busybox:latest");
    ASSERT_EQ(save.status, 0) << save.output;
    ASSERT_EQ(docker("load -i " + (d / "busybox.tar").native(), &out), 0) << out;
  }

  void TearDown() override {
    if (::geteuid() != 0 || daemon_ <= 0) return;
    std::string out;
    (void)docker("ps -aq", &out);
    if (!trim(out).empty()) (void)docker("rm -f " + trim(out));
    ::kill(daemon_, SIGTERM);
    int st = 0;
    ::waitpid(daemon_, &st, 0);
    // dockerd stops its containerd; the shims end with their containers.
    for (int i = 0; i < 200 && !pids_mentioning(tmp_.path().native()).empty(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    for (pid_t p : pids_mentioning(tmp_.path().native())) {
      ADD_FAILURE() << "a process of the test's dockerd is left: " << p;
      ::kill(p, SIGKILL);
    }
    // kiste-runc removes each container's cgroup; dockerd's parent `docker` is left, as with runc.
    for (const fs::path& p : hierarchy_cgroups_named("docker")) {
      EXPECT_EQ(::rmdir(p.c_str()), 0) << p << ": " << std::strerror(errno);
    }
    // Fixed paths dockerd 20.10 and its containerd use whatever the flags say (plugin sockets,
    // shim sockets); empty once they are done.
    std::vector<const char*> dirs;
    if (!had_run_docker_) dirs.insert(dirs.end(), {"/run/docker/plugins", "/run/docker"});
    if (!had_run_containerd_) dirs.insert(dirs.end(), {"/run/containerd/s", "/run/containerd/fifo", "/run/containerd"});
    for (const char* d : dirs) {
      if (::rmdir(d) != 0 && errno != ENOENT) ADD_FAILURE() << d << ": " << std::strerror(errno);
    }
    for (const auto& m : mounts_below(tmp_.path())) ADD_FAILURE() << "left mounted: " << m;
  }

  std::string log() const { return sys::read_file(tmp_ / "dockerd.log", 1 << 20).value_or(""); }

  int docker(const std::string& args, std::string* out = nullptr) const {
    if (out != nullptr) out->clear();
    return run_shell(fmt::format("timeout 120 docker -H unix://{} {} </dev/null", (tmp_ / "docker.sock").native(), args),
                     out);
  }

  TempRoot tmp_{"kiste-docker-"};
  fs::path runc_;
  pid_t daemon_ = -1;
  bool had_run_docker_ = false;
  bool had_run_containerd_ = false;
};

TEST_F(DockerE2E, RunRemove) {
  std::string out;
  ASSERT_EQ(docker("run --runtime kiste --rm --network none busybox echo hi", &out), 0) << out << log();
  EXPECT_EQ(trim(out), "hi");
  EXPECT_EQ(docker("run --runtime kiste --rm --network none busybox sh -c 'exit 3'", &out), 3) << out;
  // --device: linux.devices plus the device cgroup's allow rule.
  ASSERT_EQ(docker("run --runtime kiste --rm --network none --device /dev/fuse --device /dev/net/tun:/dev/net/tun "
                   "busybox sh -c 'ls -ln /dev/fuse /dev/net/tun; head -c 0 /dev/fuse && echo opened'",
                   &out),
            0)
      << out << log();
  EXPECT_THAT(out, HasSubstr("10, 229"));
  EXPECT_THAT(out, HasSubstr("10, 200"));
  EXPECT_THAT(out, HasSubstr("opened"));
}

TEST_F(DockerE2E, DetachedExecUpdatePauseStop) {
  std::string id;
  ASSERT_EQ(docker("run -d --runtime kiste --network none busybox sh -c "
                   "'trap \"exit 0\" TERM; while :; do sleep 1 & wait; done'",
                   &id),
            0)
      << id << log();
  id = trim(id);
  ASSERT_EQ(id.size(), 64u) << id;
  std::string out;
  ASSERT_EQ(docker("exec " + id + " echo from-exec", &out), 0) << out;
  EXPECT_EQ(trim(out), "from-exec");
  EXPECT_EQ(docker("exec " + id + " sh -c 'exit 5'", &out), 5) << out;
  // exec --user: the process.json's user, not the container's.
  ASSERT_EQ(docker("exec --user 1000:1001 " + id + " id", &out), 0) << out;
  EXPECT_THAT(out, HasSubstr("uid=1000 gid=1001"));
  ASSERT_EQ(docker("exec " + id + " id -u", &out), 0) << out;
  EXPECT_EQ(trim(out), "0");
  // exec -t: the shim hands `exec` a console socket; the pty is the container's.
  ASSERT_EQ(docker("exec -t " + id + " sh -c 'tty; echo hi'", &out), 0) << out << log();
  EXPECT_THAT(out, HasSubstr("/dev/pts/"));
  EXPECT_THAT(out, HasSubstr("hi"));
  // docker update: the shim pipes a LinuxResources JSON into `update --resources -`.
  ASSERT_EQ(docker("update --memory 64m --memory-swap 128m --pids-limit 40 " + id, &out), 0) << out;
  auto file = [&](const std::string& hierarchy, const std::string& name) {
    return trim(sys::read_file(fmt::format("/sys/fs/cgroup/{}/docker/{}/{}", hierarchy, id, name), 64).value_or("?"));
  };
  EXPECT_EQ(file("memory", "memory.limit_in_bytes"), "67108864");
  EXPECT_EQ(file("pids", "pids.max"), "40");
  ASSERT_EQ(docker("top " + id, &out), 0) << out;
  EXPECT_THAT(out, HasSubstr("sleep 1"));
  ASSERT_EQ(docker("pause " + id, &out), 0) << out;
  ASSERT_EQ(docker("inspect -f '{{.State.Status}}' " + id, &out), 0) << out;
  EXPECT_EQ(trim(out), "paused");
  ASSERT_EQ(docker("unpause " + id, &out), 0) << out;
  ASSERT_EQ(docker("stop -t 20 " + id, &out), 0) << out;
  ASSERT_EQ(docker("inspect -f '{{.State.Status}} {{.State.ExitCode}}' " + id, &out), 0) << out;
  EXPECT_EQ(trim(out), "exited 0");
  EXPECT_EQ(docker("rm " + id, &out), 0) << out;
}

TEST_F(DockerE2E, AnErrorReachesDockersMessage) {
  std::string out;
  EXPECT_EQ(docker("run --runtime kiste --rm --network none busybox /nope", &out), 127) << out;
  EXPECT_THAT(out, HasSubstr("exec `/nope`: no such file or directory"));
}

}  // namespace
}  // namespace kiste::testing

int main(int argc, char** argv) {
  // This binary, and every dockerd it starts, lives in its own network namespace.
  kiste::testing::g_own_netns = kiste::testing::enter_own_netns();
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
