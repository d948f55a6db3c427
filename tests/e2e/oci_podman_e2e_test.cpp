// Debian's podman running containers with kiste-runc as its OCI runtime (podman --runtime),
// with storage, run and lock dirs of its own under a temp dir, no network (podman would
// otherwise make a bridge and nft rules on the host), the cgroupfs manager (systemd's on a pure
// cgroup v2 host with systemd as PID 1: the tests/vm guest), and busybox loaded
// from a `kiste save` archive (no registry). This host's root lacks CAP_SYS_RESOURCE and has a
// hard nofile limit of 20000: podman's default ulimits (1048576) could not be set, so they are
// given.
#include <linux/magic.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
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

constexpr const char* kRunFlags =
    "--network none --ulimit nofile=20000:20000 --ulimit nproc=32768:32768";

// podman's cgroupfs manager puts conmon in <hierarchy>/libpod_parent/conmon and leaves it.
void remove_libpod_parent() {
  std::error_code ec;
  for (const auto& h : fs::directory_iterator("/sys/fs/cgroup", ec)) {
    const fs::path p = h.path() / "libpod_parent";
    if (!fs::exists(p, ec)) continue;
    std::vector<fs::path> dirs;
    for (auto it = fs::recursive_directory_iterator(p, ec); !ec && it != fs::recursive_directory_iterator();
         it.increment(ec)) {
      if (it->is_directory(ec)) dirs.push_back(it->path());
    }
    for (auto d = dirs.rbegin(); d != dirs.rend(); ++d) ::rmdir(d->c_str());
    ::rmdir(p.c_str());
  }
}

// podman's default manager where systemd owns the cgroups (a pure v2 host with systemd as PID 1).
const char* cgroup_manager() {
  struct statfs st {};
  const bool systemd = ::statfs("/sys/fs/cgroup", &st) == 0 && st.f_type == CGROUP2_SUPER_MAGIC &&
                       ::access("/run/systemd/system", F_OK) == 0;
  return systemd ? "systemd" : "cgroupfs";
}

std::vector<fs::path> cgroups_named(std::string_view prefix) {
  std::vector<fs::path> out;
  std::error_code ec;
  for (const auto& h : fs::directory_iterator("/sys/fs/cgroup", ec)) {
    for (const auto& e : fs::directory_iterator(h.path(), ec)) {
      if (e.is_directory(ec) && e.path().filename().native().starts_with(prefix)) out.push_back(e.path());
    }
  }
  return out;
}

class PodmanE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    KISTE_REQUIRE_ROOT();
    ASSERT_EQ(run_shell("command -v podman >/dev/null && command -v conmon >/dev/null"), 0)
        << "podman and conmon are needed (scripts/setup.sh installs podman)";
    runc_ = fs::path(kiste_binary()).parent_path() / "kiste-runc";
    // podman reads which runtimes understand --log-format=json from containers.conf.
    ASSERT_TRUE(sys::write_file_atomic(tmp_ / "containers.conf",
                                       "[engine]\n"
                                       "runtime_supports_json = [\"kiste-runc\", \"crun\", \"runc\"]\n"
                                       "events_logger = \"none\"\n",
                                       0644));
    KisteCli kiste(tmp_ / "kroot");
    auto imp = kiste.run("import -c 'CMD [\"/bin/sh\"]' " + busybox_tar().native() + " busybox:latest");
    ASSERT_EQ(imp.status, 0) << imp.output;
    auto save = kiste.run("save -o " + (tmp_ / "busybox.tar").native() + " busybox:latest");
    ASSERT_EQ(save.status, 0) << save.output;
    std::string out;
    ASSERT_EQ(podman("load -i " + (tmp_ / "busybox.tar").native(), &out), 0) << out;
  }

  void TearDown() override {
    if (::geteuid() != 0) return;
    std::string out;
    EXPECT_EQ(podman("rm -a -f -t 0", &out), 0) << out;
    // conmon outlives podman for a moment: it runs podman's exit command (`container
    // cleanup`) after the container ended. Wait for it (bounded) before looking for leftovers.
    const std::string conmon = "pgrep -f '[c]onmon .*" + tmp_.path().native() + "' >/dev/null";
    for (int i = 0; i < 600 && run_shell(conmon) == 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    remove_libpod_parent();
    EXPECT_TRUE(cgroups_named("libpod").empty());
    EXPECT_TRUE(cgroups_named("kiste-runc").empty());
    for (const auto& m : mounts_below(tmp_.path())) ADD_FAILURE() << "left mounted: " << m;
    EXPECT_NE(run_shell(conmon), 0) << "a conmon is left";
  }

  int podman(const std::string& args, std::string* out = nullptr) {
    if (out != nullptr) out->clear();
    return run_shell(fmt::format(
        "CONTAINERS_CONF={} timeout 120 podman --root {} --runroot {} --tmpdir {} --storage-driver vfs "
        "--cgroup-manager {} --runtime {} {} </dev/null",
        (tmp_ / "containers.conf").native(), (tmp_ / "storage").native(), (tmp_ / "run").native(),
        (tmp_ / "libpod").native(), cgroup_manager(), runc_.native(), args), out);
  }

  TempRoot tmp_;
  fs::path runc_;
};

TEST_F(PodmanE2E, RunRemove) {
  std::string out;
  EXPECT_EQ(podman(fmt::format("run --rm {} busybox echo hi", kRunFlags), &out), 0) << out;
  EXPECT_EQ(trim(out), "hi");
}

// -t: conmon hands kiste-runc a console socket and gets the pty master back.
TEST_F(PodmanE2E, TtyThroughTheConsoleSocket) {
  std::string out;
  EXPECT_EQ(podman(fmt::format("run --rm -t {} busybox sh -c 'tty; echo hi'", kRunFlags), &out), 0) << out;
  EXPECT_THAT(out, HasSubstr("/dev/pts/"));
  EXPECT_THAT(out, HasSubstr("hi"));
}

TEST_F(PodmanE2E, DetachedExecStopRemove) {
  std::string id;
  ASSERT_EQ(podman(fmt::format("run -d {} busybox sh -c 'trap \"exit 0\" TERM; while :; do sleep 1 & wait; done'",
                               kRunFlags), &id), 0) << id;
  id = trim(id);
  ASSERT_EQ(id.size(), 64u) << id;
  // kiste-runc holds its state (podman gives no --root: its default).
  EXPECT_TRUE(fs::exists("/run/kiste-runc/" + id + "/state.json"));
  std::string out;
  EXPECT_EQ(podman("exec " + id + " echo from-exec", &out), 0) << out;
  EXPECT_EQ(trim(out), "from-exec");
  EXPECT_EQ(podman("exec " + id + " sh -c 'exit 5'", &out), 5) << out;
  EXPECT_EQ(podman("exec " + id + " cat /proc/1/cmdline", &out), 0) << out;
  EXPECT_THAT(out, HasSubstr("trap"));
  // exec -t (conmon's console socket) and --user (process.json's user).
  EXPECT_EQ(podman("exec -t " + id + " sh -c 'tty; echo hi'", &out), 0) << out;
  EXPECT_THAT(out, HasSubstr("/dev/pts/"));
  EXPECT_EQ(podman("exec --user 1000:1001 " + id + " id", &out), 0) << out;
  EXPECT_THAT(out, HasSubstr("uid=1000 gid=1001"));
  EXPECT_EQ(podman("stop -t 20 " + id, &out), 0) << out;
  EXPECT_EQ(podman("inspect --format '{{.State.Status}} {{.State.ExitCode}}' " + id, &out), 0) << out;
  EXPECT_EQ(trim(out), "exited 0");
  EXPECT_EQ(podman("rm " + id, &out), 0) << out;
  EXPECT_FALSE(fs::exists("/run/kiste-runc/" + id));
}

TEST_F(PodmanE2E, AnErrorReachesPodmansMessage) {
  std::string out;
  EXPECT_EQ(podman(fmt::format("run --rm {} busybox /nope", kRunFlags), &out), 127) << out;
  EXPECT_THAT(out, HasSubstr("kiste-runc: exec `/nope`: no such file or directory"));
}

// --memory and an OOM kill: podman reports the exit (137), and kiste-runc's `events` on the
// container podman made reports it as runc's `oom` record. (podman 4.3.1's OOMKilled flag comes
// from conmon 2.1.6, which writes its `oom` file where podman does not look: false with runc too.)
TEST_F(PodmanE2E, AnOomKillIsExit137AndAnOomEvent) {
  std::string id;
  ASSERT_EQ(podman(fmt::format("run -d --memory 16m --memory-swap 16m {} busybox sh -c "
                               "'until [ -e /tmp/go ]; do sleep 0.1; done; head -c 200000000 /dev/zero | tail'",
                               kRunFlags), &id), 0) << id;
  id = trim(id);
  ASSERT_EQ(id.size(), 64u) << id;
  const fs::path events = tmp_ / "events.out";
  ASSERT_EQ(run_shell(fmt::format("{} events --interval 1s {} </dev/null >{} 2>&1 &", runc_.native(), id,
                                  events.native())), 0);
  auto wait_for = [&](std::string_view what) {  // bounded; the stream ticks every 100 ms
    std::string text;
    for (int i = 0; i < 1000 && text.find(what) == std::string::npos; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      text = sys::read_file(events, 1 << 20).value_or("");
    }
    return text;
  };
  ASSERT_THAT(wait_for("\"stats\""), HasSubstr("\"stats\""));  // the stream is watching
  std::string out;
  ASSERT_EQ(podman("exec " + id + " touch /tmp/go", &out), 0) << out;
  EXPECT_EQ(podman("wait " + id, &out), 0) << out;
  EXPECT_EQ(trim(out), "137");
  EXPECT_THAT(wait_for("\"oom\""), HasSubstr(fmt::format(R"({{"id":"{}","type":"oom"}})", id)));
}

}  // namespace
}  // namespace kiste::testing
