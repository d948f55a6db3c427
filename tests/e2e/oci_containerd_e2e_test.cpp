// Debian's containerd (with its runc shim, containerd-shim-runc-v2, and `ctr`) running
// containers with kiste-runc as the shim's runc binary (`ctr run --runc-binary`): the path
// Kubernetes takes (a RuntimeClass whose runc options name BinaryName). Each test starts its own
// containerd: a config with root, state, the opt dir and the gRPC socket under a temp dir, the
// CRI plugin (CNI networks) and the snapshotters that would probe the host disabled. Containers
// get a network namespace with only `lo` (ctr without --cni or --net-host). busybox comes from a
// `kiste save` archive through `ctr image import`, no registry. At the end every task is killed
// and deleted, containerd stopped, its shims gone, and the cgroups made for the namespace
// removed.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <kiste/base/sys.hpp>
#include <kiste/testing/kiste_cli.hpp>
#include <kiste/testing/require_root.hpp>
#include <kiste/testing/temp_root.hpp>

namespace kiste::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

// containerd's namespace for the test's containers; ctr's default cgroupsPath is /<ns>/<id>.
constexpr const char* kNamespace = "kiste-ctrd-test";
constexpr const char* kImage = "docker.io/library/busybox:latest";

class ContainerdE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    KISTE_REQUIRE_ROOT();
    ASSERT_EQ(run_shell("command -v containerd && command -v ctr && command -v containerd-shim-runc-v2"), 0)
        << "containerd, ctr and containerd-shim-runc-v2 are needed (scripts/setup.sh installs containerd)";
    runc_ = fs::path(kiste_binary()).parent_path() / "kiste-runc";
    ASSERT_TRUE(fs::exists(runc_)) << runc_;
    ASSERT_TRUE(hierarchy_cgroups_named(kNamespace).empty()) << "a " << kNamespace << " cgroup exists before the test";
    had_run_containerd_ = fs::exists("/run/containerd");
    const fs::path d = tmp_.path();
    ASSERT_TRUE(sys::write_file_atomic(
        d / "config.toml",
        fmt::format(R"(version = 2
root = "{0}/root"
state = "{0}/state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.internal.v1.tracing",
  "io.containerd.tracing.processor.v1.otlp"]
[grpc]
  address = "{0}/containerd.sock"
[ttrpc]
  address = ""
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "{0}/opt"
)",
                    d.native()),
        0644));
    daemon_ = ::fork();
    ASSERT_GE(daemon_, 0);
    if (daemon_ == 0) {
      ::setsid();
      const std::string cmd = fmt::format("exec containerd --config {0}/config.toml >{0}/containerd.log 2>&1 </dev/null",
                                          d.native());
      ::execl("/bin/sh", "sh", "-c", cmd.c_str(), nullptr);
      ::_exit(127);
    }
    std::string out;
    for (int i = 0; i < 300 && ctr("version", &out) != 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ASSERT_EQ(ctr("version", &out), 0) << out << log();
    KisteCli kiste(d / "kroot");
    auto imp = kiste.run("import -c 'CMD [\"/bin/sh\"]' " + busybox_tar().native() + " busybox:latest");
    ASSERT_EQ(imp.status, 0) << imp.output;
    auto save = kiste.run("save -o " + (d / "busybox.tar").native() + " busybox:latest");
    ASSERT_EQ(save.status, 0) << save.output;
    ASSERT_EQ(ctr("image import " + (d / "busybox.tar").native(), &out), 0) << out;
    ASSERT_EQ(ctr("image ls -q", &out), 0) << out;
    ASSERT_THAT(out, HasSubstr(kImage));
  }

  void TearDown() override {
    if (::geteuid() != 0 || daemon_ <= 0) return;
    std::string out;
    // Whatever a failed case left: kill and delete its tasks, remove its containers.
    (void)ctr("task ls -q", &out);
    for (const std::string& id : lines(out)) {
      (void)ctr("task kill -s KILL " + id);
      (void)ctr("task delete -f " + id);
    }
    (void)ctr("container ls -q", &out);
    for (const std::string& id : lines(out)) (void)ctr("container rm " + id);
    ::kill(daemon_, SIGTERM);
    int st = 0;
    ::waitpid(daemon_, &st, 0);
    // A shim exits once its last task is deleted; give it a moment, then name what is left.
    const std::string sock = (tmp_ / "containerd.sock").native();
    for (int i = 0; i < 200 && !pids_mentioning(sock).empty(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    for (pid_t p : pids_mentioning(sock)) {
      ADD_FAILURE() << "a process of the test's containerd is left: " << p;
      ::kill(p, SIGKILL);
    }
    // kiste-runc removes each container's cgroup; the namespace's parent (made on the way, as
    // runc makes it too) is the engine's, so the test removes it.
    for (const fs::path& p : hierarchy_cgroups_named(kNamespace)) {
      EXPECT_EQ(::rmdir(p.c_str()), 0) << p << ": " << std::strerror(errno);
    }
    // containerd 1.6 puts shim sockets in /run/containerd/s and ctr its stdio fifos in
    // /run/containerd/fifo, whatever the config says; each is removed when done with, the
    // directories stay. (Kept when another containerd was there first.)
    if (!had_run_containerd_) {
      for (const char* d : {"/run/containerd/s", "/run/containerd/fifo", "/run/containerd"}) {
        if (::rmdir(d) != 0 && errno != ENOENT) ADD_FAILURE() << d << ": " << std::strerror(errno);
      }
    }
    for (const auto& m : mounts_below(tmp_.path())) ADD_FAILURE() << "left mounted: " << m;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(tmp_ / "runc" / kNamespace, ec)) {
      if (e.path().filename() != ".seccomp-cache") ADD_FAILURE() << "left in kiste-runc's root: " << e.path();
    }
  }

  static std::vector<std::string> lines(const std::string& s) {
    std::vector<std::string> out;
    std::istringstream in(s);
    for (std::string l; std::getline(in, l);) {
      if (!l.empty()) out.push_back(l);
    }
    return out;
  }

  std::string log() const {
    return sys::read_file(tmp_ / "containerd.log", 1 << 20).value_or("");
  }

  int ctr(const std::string& args, std::string* out = nullptr) const {
    if (out != nullptr) out->clear();
    return run_shell(fmt::format("timeout 120 ctr --address {} --namespace {} {} </dev/null",
                                 (tmp_ / "containerd.sock").native(), kNamespace, args),
                     out);
  }

  // `ctr run` with kiste-runc as the shim's runc and its state under the temp dir.
  std::string run_flags() const {
    return fmt::format("--runc-binary {} --runc-root {}", runc_.native(), (tmp_ / "runc").native());
  }

  // The task's status column in `ctr task ls` (RUNNING, PAUSED, STOPPED), empty when absent.
  std::string task_status(const std::string& id) const {
    std::string out;
    (void)ctr("task ls", &out);
    for (const std::string& l : lines(out)) {
      std::istringstream in(l);
      std::string name, pid, status;
      in >> name >> pid >> status;
      if (name == id) return status;
    }
    return "";
  }

  TempRoot tmp_{"kiste-ctrd-"};
  fs::path runc_;
  pid_t daemon_ = -1;
  bool had_run_containerd_ = false;
};

TEST_F(ContainerdE2E, RunRemove) {
  std::string out;
  ASSERT_EQ(ctr(fmt::format("run --rm {} {} c1 echo hi", run_flags(), kImage), &out), 0) << out << log();
  EXPECT_EQ(trim(out), "hi");
  // The network namespace is the container's own, with only loopback.
  ASSERT_EQ(ctr(fmt::format("run --rm {} {} c1 cat /proc/net/dev", run_flags(), kImage), &out), 0) << out;
  EXPECT_THAT(out, HasSubstr("lo:"));
  EXPECT_EQ(count_lines(out), 3u) << out;
  // The exit status comes back through the shim.
  EXPECT_EQ(ctr(fmt::format("run --rm {} {} c1 sh -c 'exit 3'", run_flags(), kImage), &out), 3) << out;
}

// -t: the shim hands kiste-runc a console socket and gets the pty master back (ctr needs a
// terminal of its own: script(1) gives it one).
TEST_F(ContainerdE2E, Tty) {
  std::string out;
  const std::string cmd = fmt::format("ctr --address {} --namespace {} run --rm -t {} {} c1 sh -c 'tty; echo hi'",
                                      (tmp_ / "containerd.sock").native(), kNamespace, run_flags(), kImage);
  ASSERT_EQ(run_shell("timeout 120 script -qec \"" + cmd + "\" /dev/null </dev/null", &out), 0) << out << log();
  EXPECT_THAT(out, HasSubstr("/dev/pts/0"));
  EXPECT_THAT(out, HasSubstr("hi"));
}

TEST_F(ContainerdE2E, DetachedTaskLifecycle) {
  std::string out;
  ASSERT_EQ(ctr(fmt::format("run -d {} {} c2 sh -c 'trap \"exit 0\" TERM; while :; do sleep 1 & wait; done'",
                            run_flags(), kImage),
                &out),
            0)
      << out << log();
  EXPECT_EQ(task_status("c2"), "RUNNING");
  // The shim's exec: `exec --process FILE --detach --pid-file F`. ctr 1.6 sometimes exits before
  // its copy of a short exec's output is done, whatever the runtime: measured under load, runc
  // lost 1 of 40 and kiste-runc 0 of 40. So an exec that succeeded with no output is run again,
  // at most three times; a runtime that loses output every time still fails.
  auto exec_output = [&](const std::string& exec_id, const std::string& cmd) {
    for (int attempt = 0; attempt < 3; ++attempt) {
      const int rc = ctr(fmt::format("task exec --exec-id {}{} c2 {}", exec_id, attempt, cmd), &out);
      if (rc != 0 || !trim(out).empty()) break;
    }
    return out;
  };
  EXPECT_EQ(trim(exec_output("e1", "echo from-exec")), "from-exec") << log();
  EXPECT_EQ(ctr("task exec --exec-id e2 c2 sh -c 'exit 5'", &out), 5) << out;
  EXPECT_THAT(exec_output("e3", "cat /proc/1/cmdline"), HasSubstr("trap"));
  // exec -t (ctr needs a terminal of its own: script(1)).
  const std::string cmd = fmt::format("ctr --address {} --namespace {} task exec -t --exec-id e4 c2 sh -c 'tty; echo hi'",
                                      (tmp_ / "containerd.sock").native(), kNamespace);
  ASSERT_EQ(run_shell("timeout 120 script -qec \"" + cmd + "\" /dev/null </dev/null", &out), 0) << out << log();
  EXPECT_THAT(out, HasSubstr("/dev/pts/"));
  EXPECT_THAT(out, HasSubstr("hi"));
  // ps (the shim asks `ps --format json`), metrics (the shim reads the container's cgroups
  // itself), pause/resume. (ctr 1.6 has no `task update`: docker's update drives it, see
  // oci_docker_e2e_test.)
  ASSERT_EQ(ctr("task ps c2", &out), 0) << out;
  EXPECT_GE(count_lines(out), 3u) << out;  // header, sh, sleep
  ASSERT_EQ(ctr("task metrics c2", &out), 0) << out << log();
  EXPECT_THAT(out, HasSubstr("memory.usage_in_bytes"));
  ASSERT_EQ(ctr("task pause c2", &out), 0) << out << log();
  EXPECT_EQ(task_status("c2"), "PAUSED");
  ASSERT_EQ(ctr("task resume c2", &out), 0) << out << log();
  EXPECT_EQ(task_status("c2"), "RUNNING");
  // kill (TERM) -> STOPPED -> delete; then the container record.
  ASSERT_EQ(ctr("task kill c2", &out), 0) << out;
  for (int i = 0; i < 200 && task_status("c2") != "STOPPED"; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(task_status("c2"), "STOPPED");
  ASSERT_EQ(ctr("task delete c2", &out), 0) << out << log();
  EXPECT_EQ(task_status("c2"), "");
  EXPECT_FALSE(fs::exists(tmp_ / "runc" / kNamespace / "c2"));
  EXPECT_EQ(ctr("container rm c2", &out), 0) << out;
}

// A command that cannot run: kiste-runc's one-line error reaches ctr's message through the
// shim (it reads the --log file, runc's JSON lines).
TEST_F(ContainerdE2E, AnErrorReachesCtr) {
  std::string out;
  EXPECT_NE(ctr(fmt::format("run --rm {} {} c3 /nope", run_flags(), kImage), &out), 0) << out;
  EXPECT_THAT(out, HasSubstr("exec `/nope`: no such file or directory")) << out;
  (void)ctr("container rm c3");
}

}  // namespace
}  // namespace kiste::testing
