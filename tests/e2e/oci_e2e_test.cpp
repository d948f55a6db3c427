// kiste-runc (the kiste binary under runc's name) driven as engines drive runc: bundles made by
// `runc spec` and by kiste-runc's own `spec`, on a busybox rootfs. The test process is a child
// subreaper, as conmon and containerd's shim are: a container whose `create` exited is its
// child, and it reaps it.
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <kiste/base/scope_exit.hpp>
#include <kiste/base/sys.hpp>
#include <kiste/base/unique_fd.hpp>
#include <kiste/testing/busybox_rootfs.hpp>
#include <kiste/testing/kiste_cli.hpp>
#include <kiste/testing/require_root.hpp>
#include <kiste/testing/temp_root.hpp>

namespace kiste::testing {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using ::testing::HasSubstr;
using ::testing::Not;

// Every kiste-runc cgroup directory on this host (the default parent is /kiste-runc).
std::vector<fs::path> kiste_runc_cgroups() {
  std::vector<fs::path> out;
  std::error_code ec;
  for (const auto& h : fs::directory_iterator("/sys/fs/cgroup", ec)) {
    if (fs::exists(h.path() / "kiste-runc", ec)) out.push_back(h.path() / "kiste-runc");
  }
  if (fs::exists("/sys/fs/cgroup/kiste-runc", ec)) out.emplace_back("/sys/fs/cgroup/kiste-runc");
  return out;
}

class OciE2E : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { ASSERT_EQ(::prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), 0); }

  void SetUp() override {
    KISTE_REQUIRE_ROOT();
    runc_ = fs::path(kiste_binary()).parent_path() / "kiste-runc";
    ASSERT_TRUE(fs::exists(runc_)) << runc_;
    ASSERT_TRUE(kiste_runc_cgroups().empty()) << "a kiste-runc cgroup exists before the test";
  }

  void TearDown() override {
    if (::geteuid() != 0) return;
    reap();
    for (const auto& m : mounts_below(tmp_.path())) ADD_FAILURE() << "left mounted: " << m;
    EXPECT_TRUE(kiste_runc_cgroups().empty()) << "the test left a kiste-runc cgroup";
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(state_root(), ec)) {
      // (compiled seccomp programs are kept, as `kiste run` keeps them)
      if (e.path().filename() != ".seccomp-cache") ADD_FAILURE() << "left in the state root: " << e.path();
    }
  }

  // Reaps exited containers re-parented to this process.
  static void reap() {
    int st;
    while (::waitpid(-1, &st, WNOHANG) > 0) {
    }
  }

  fs::path state_root() const { return tmp_ / "state"; }
  fs::path log_file() const { return tmp_ / "runc.log"; }

  // kiste-runc with the engine's global flags; stdio to a file (a created container keeps
  // them, so a pipe would never close). Returns the exit status; *out gets the output.
  int oci(const std::string& args, std::string* out = nullptr, const std::string& out_name = "out") {
    const fs::path o = tmp_ / out_name;
    const int rc = run_shell(fmt::format("{} --root {} --log {} --log-format json {} </dev/null >{} 2>&1",
                                         runc_.native(), state_root().native(), log_file().native(), args,
                                         o.native()));
    if (out != nullptr) *out = sys::read_file(o, 1 << 20).value_or("");
    return rc;
  }

  json state(const std::string& id) {
    std::string out;
    EXPECT_EQ(oci("state " + id, &out), 0) << out;
    json j = json::parse(out, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << out;
    return j;
  }

  // Waits (bounded) for the container to be stopped; the process it was is then reaped.
  void wait_stopped(const std::string& id) {
    for (int i = 0; i < 500; ++i) {
      reap();
      if (state(id)["status"] == "stopped") return;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ADD_FAILURE() << id << " did not stop";
  }

  // A bundle with a busybox rootfs; `spec_cmd` writes its config.json there.
  fs::path make_bundle(const std::string& name, const std::string& spec_cmd) {
    const fs::path b = tmp_ / name;
    EXPECT_TRUE(sys::mkdir_all(b / "rootfs", 0755));
    EXPECT_TRUE(make_busybox_rootfs(b / "rootfs"));
    std::string out;
    EXPECT_EQ(run_shell(fmt::format("cd {} && {}", b.native(), spec_cmd), &out), 0) << out;
    return b;
  }

  // A bundle from kiste-runc's own `spec` whose process (no terminal) is `sh -c script`, and its
  // config to change.
  std::pair<fs::path, json> sh_bundle(const std::string& name, const std::string& script) {
    const fs::path b = make_bundle(name, runc_.native() + " spec");
    json c = config(b);
    c["process"]["terminal"] = false;
    c["process"]["args"] = {"sh", "-c", script};
    return {b, c};
  }

  // Writes `c` into the bundle and `run`s it as `id`, expecting exit 0; its output.
  std::string run_ok(const fs::path& bundle, const json& c, const std::string& id) {
    write_config(bundle, c);
    std::string out;
    EXPECT_EQ(oci(fmt::format("run --bundle {} {}", bundle.native(), id), &out), 0) << out;
    return out;
  }

  json config(const fs::path& bundle) {
    return json::parse(sys::read_file(bundle / "config.json", 1 << 20).value_or("{}"));
  }
  void write_config(const fs::path& bundle, const json& j) {
    ASSERT_TRUE(sys::write_file_atomic(bundle / "config.json", j.dump(), 0644));
  }

  // runc's lifecycle, as the runtime-spec describes it.
  void lifecycle(const fs::path& bundle, const std::string& id) {
    json c = config(bundle);
    c["process"]["terminal"] = false;
    // TERM ends it (a PID 1 without a handler would ignore it).
    c["process"]["args"] = {"sh", "-c", "trap 'exit 7' TERM; echo up; while :; do sleep 1 & wait; done"};
    write_config(bundle, c);
    std::string out;
    ASSERT_EQ(oci(fmt::format("create --bundle {} --pid-file {} {}", bundle.native(),
                              (tmp_ / "pid").native(), id), &out, "create.out"), 0) << out;
    json st = state(id);
    EXPECT_EQ(st["status"], "created");
    EXPECT_EQ(st["id"], id);
    EXPECT_EQ(st["bundle"], bundle.native());
    EXPECT_TRUE(st.contains("ociVersion"));
    const int pid = st["pid"].get<int>();
    ASSERT_GT(pid, 0);
    EXPECT_EQ(sys::read_file(tmp_ / "pid", 64).value_or(""), std::to_string(pid));
    EXPECT_TRUE(fs::exists(fmt::format("/proc/{}", pid)));
    // Created: the command has not run yet (its stdout is create's).
    EXPECT_EQ(sys::read_file(tmp_ / "create.out", 1 << 16).value_or("x"), "");

    ASSERT_EQ(oci("start " + id, &out), 0) << out;
    EXPECT_EQ(state(id)["status"], "running");
    for (int i = 0; i < 500 && sys::read_file(tmp_ / "create.out", 1 << 16).value_or("") != "up\n"; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    EXPECT_EQ(sys::read_file(tmp_ / "create.out", 1 << 16).value_or(""), "up\n");
    EXPECT_NE(oci("start " + id, &out), 0);  // not created any more
    EXPECT_THAT(out, HasSubstr("not created"));
    ASSERT_EQ(oci("ps --format json " + id, &out), 0) << out;
    EXPECT_THAT(out, HasSubstr(std::to_string(pid)));
    EXPECT_NE(oci("delete " + id, &out), 0);  // running: needs --force
    EXPECT_THAT(out, HasSubstr("not stopped"));

    ASSERT_EQ(oci("pause " + id, &out), 0) << out;
    EXPECT_EQ(state(id)["status"], "paused");
    EXPECT_NE(oci("pause " + id, &out), 0);
    ASSERT_EQ(oci("resume " + id, &out), 0) << out;
    EXPECT_EQ(state(id)["status"], "running");

    ASSERT_EQ(oci("kill " + id + " TERM", &out), 0) << out;
    wait_stopped(id);
    EXPECT_EQ(state(id)["pid"], 0);
    ASSERT_EQ(oci("delete " + id, &out), 0) << out;
    EXPECT_NE(oci("state " + id, &out), 0);
    EXPECT_THAT(out, HasSubstr("does not exist"));
  }

  TempRoot tmp_;
  fs::path runc_;
};

TEST_F(OciE2E, RuncSpecBundleLifecycle) {
  const fs::path b = make_bundle("runc-bundle", "runc spec");
  lifecycle(b, "runc-made");
}

TEST_F(OciE2E, OwnSpecBundleLifecycle) {
  const fs::path b = make_bundle("own-bundle", runc_.native() + " spec");
  json c = config(b);
  EXPECT_EQ(c["process"]["noNewPrivileges"], false);  // Docker's default, not runc's
  EXPECT_EQ(c["process"]["capabilities"]["bounding"].size(), 14u);
  lifecycle(b, "own-made");
}

TEST_F(OciE2E, RunWaitsAndReturnsTheStatus) {
  const fs::path b = make_bundle("run-bundle", runc_.native() + " spec");
  json c = config(b);
  c["process"]["terminal"] = false;
  c["process"]["args"] = {"sh", "-c", "echo in-container $(hostname); exit 3"};
  write_config(b, c);
  std::string out;
  EXPECT_EQ(oci(fmt::format("run --bundle {} r1", b.native()), &out), 3) << out;
  EXPECT_THAT(out, HasSubstr("in-container kiste"));
  EXPECT_NE(oci("state r1", &out), 0);
}

// containerd's shim: `update --resources=- ID` with a LinuxResources JSON on stdin, and
// `events --stats ID` (one record in runc's shape, go-runc's Stats decodes it).
TEST_F(OciE2E, UpdateEventsAndExecUserAsEnginesCallThem) {
  const fs::path b = make_bundle("upd-bundle", runc_.native() + " spec");
  json c = config(b);
  c["process"]["terminal"] = false;
  c["process"]["args"] = {"sh", "-c", "while :; do sleep 1; done"};
  write_config(b, c);
  std::string out;
  ASSERT_EQ(oci(fmt::format("create --bundle {} u1", b.native()), &out), 0) << out;
  ASSERT_EQ(oci("start u1", &out), 0) << out;
  const fs::path res = tmp_ / "resources.json";
  ASSERT_TRUE(sys::write_file_atomic(res, R"({"memory":{"limit":67108864},"pids":{"limit":50},)"
                                          R"("cpu":{"quota":20000,"period":100000}})", 0644));
  EXPECT_EQ(run_shell(fmt::format("{} --root {} --log {} --log-format json update --resources=- u1 <{}",
                                  runc_.native(), state_root().native(), log_file().native(), res.native()),
                      &out),
            0)
      << out;
  auto file = [](const std::string& hierarchy, const std::string& name) {
    return trim(sys::read_file(fmt::format("/sys/fs/cgroup/{}/kiste-runc/u1/{}", hierarchy, name), 64).value_or("?"));
  };
  EXPECT_EQ(file("memory", "memory.limit_in_bytes"), "67108864");
  EXPECT_EQ(file("pids", "pids.max"), "50");
  EXPECT_EQ(file("cpu", "cpu.cfs_quota_us"), "20000");
  // runc's flags; a quota alone keeps the period.
  EXPECT_EQ(oci("update --memory 128m --pids-limit -1 --cpu-quota 30000 u1", &out), 0) << out;
  EXPECT_EQ(file("memory", "memory.limit_in_bytes"), "134217728");
  EXPECT_EQ(file("pids", "pids.max"), "max");
  EXPECT_EQ(file("cpu", "cpu.cfs_quota_us"), "30000");
  EXPECT_EQ(file("cpu", "cpu.cfs_period_us"), "100000");
  // What kiste cannot set is refused, naming the field; nothing changes.
  ASSERT_TRUE(sys::write_file_atomic(res, R"({"memory":{"kernel":1048576}})", 0644));
  EXPECT_NE(oci("update --resources " + res.native() + " u1", &out), 0);
  EXPECT_THAT(out, HasSubstr("linux.resources.memory.kernel"));
  EXPECT_THAT(sys::read_file(log_file(), 1 << 20).value_or(""),
              HasSubstr(R"("level":"error","msg":"update --resources: linux.resources.memory.kernel: is not supported)"));
  EXPECT_EQ(file("memory", "memory.limit_in_bytes"), "134217728");

  // exec --user (runc's numeric UID[:GID]); bad input is one line.
  ASSERT_EQ(oci("exec --user 1000:1001 u1 id", &out), 0) << out;
  EXPECT_THAT(out, HasSubstr("uid=1000(tester) gid=1001"));  // (the fixture's passwd names 1000)
  EXPECT_NE(oci("exec --user bob u1 id", &out), 0);
  EXPECT_THAT(out, HasSubstr("--user `bob`: not a number"));
  EXPECT_NE(oci("exec --tty u1 tty", &out), 0);
  EXPECT_THAT(out, HasSubstr("exec with a terminal: --console-socket is required"));

  ASSERT_EQ(oci("events --stats u1", &out), 0) << out;
  EXPECT_EQ(count_lines(out), 1u) << out;
  json ev = json::parse(out, nullptr, false);
  ASSERT_FALSE(ev.is_discarded()) << out;
  EXPECT_EQ(ev["type"], "stats");
  EXPECT_EQ(ev["id"], "u1");
  EXPECT_GE(ev["data"]["pids"]["current"].get<int>(), 2) << out;  // sh and its sleep
  EXPECT_GT(ev["data"]["memory"]["usage"]["usage"].get<uint64_t>(), 0u) << out;
  EXPECT_EQ(ev["data"]["memory"]["usage"]["limit"].get<uint64_t>(), 134217728u) << out;
  EXPECT_GT(ev["data"]["cpu"]["usage"]["total"].get<uint64_t>(), 0u) << out;
  // The stream (`events --interval`) ends when the container does.
  ASSERT_EQ(oci("kill u1 KILL", &out), 0) << out;
  wait_stopped("u1");
  EXPECT_EQ(oci("events --interval 1s u1", &out), 0) << out;
  EXPECT_NE(oci("events --stats u1", &out), 0);
  EXPECT_THAT(out, HasSubstr("is not running"));
  ASSERT_EQ(oci("delete u1", &out), 0) << out;
  // delete --force of a container that is gone succeeds, as runc's does (the shim's cleanup).
  EXPECT_EQ(oci("delete --force u1", &out), 0) << out;
  EXPECT_NE(oci("delete u1", &out), 0);
}

// All six kinds, in the runtime-spec's order, each with the state on stdin. prestart,
// createRuntime and poststart/poststop run in the runtime's namespaces; createContainer in the
// container's mount namespace before pivot_root (its path and log are the host's);
// startContainer inside the container (its path exists only in the container's root).
TEST_F(OciE2E, HooksRunInOrderWithTheState) {
  const fs::path b = make_bundle("hook-bundle", runc_.native() + " spec");
  const fs::path logdir = tmp_ / "hooklog";
  ASSERT_TRUE(sys::mkdir_all(logdir, 0755));
  const fs::path log = logdir / "hooks.log";
  auto line_of = [](const std::string& name, const std::string& file) {
    return fmt::format("read s; echo \"{} $(readlink /proc/self/ns/mnt) $s\" >> {}", name, file);
  };
  ASSERT_TRUE(sys::write_file_atomic(b / "rootfs/bin/start-hook",
                                     "#!/bin/sh\n" + line_of("startContainer", "/hooklog/hooks.log") + "\n", 0755));
  json c = config(b);
  c["process"]["terminal"] = false;
  c["process"]["args"] = {"sh", "-c", "echo command >> /hooklog/hooks.log; sleep 30"};
  c["mounts"].push_back({{"destination", "/hooklog"}, {"type", "bind"}, {"source", logdir.native()},
                         {"options", {"rbind"}}});
  auto hook = [&](const std::string& name) {
    return json::array({{{"path", "/bin/sh"}, {"args", {"sh", "-c", line_of(name, log.native())}}}});
  };
  c["hooks"] = {{"prestart", hook("prestart")},
                {"createRuntime", hook("createRuntime")},
                {"createContainer", hook("createContainer")},
                {"startContainer", {{{"path", "/bin/start-hook"}, {"timeout", 10}}}},
                {"poststart", hook("poststart")},
                {"poststop", hook("poststop")}};
  write_config(b, c);
  std::string out;
  ASSERT_EQ(oci(fmt::format("create --bundle {} h1", b.native()), &out), 0) << out;
  const int pid = state("h1")["pid"].get<int>();
  std::error_code ec;
  const std::string container_mnt = fs::read_symlink(fmt::format("/proc/{}/ns/mnt", pid), ec).native();
  const std::string host_mnt = fs::read_symlink("/proc/self/ns/mnt", ec).native();
  ASSERT_NE(container_mnt, host_mnt);
  ASSERT_EQ(oci("start h1", &out), 0) << out;
  for (int i = 0; i < 500 && sys::read_file(log, 1 << 16).value_or("").find("command") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(oci("delete --force h1", &out), 0) << out;
  const std::string text = sys::read_file(log, 1 << 16).value_or("");
  std::vector<std::string> names;
  for (size_t at = 0; at < text.size();) {
    const size_t nl = text.find('\n', at);
    const std::string line = text.substr(at, nl - at);
    at = nl == std::string::npos ? text.size() : nl + 1;
    const std::string name = line.substr(0, line.find(' '));
    if (name == "command") {  // (it races with poststart)
      EXPECT_GE(names.size(), 4u) << "the command ran before startContainer: " << text;
      continue;
    }
    names.push_back(name);
    const size_t sp2 = line.find(' ', name.size() + 1);
    const std::string mnt = line.substr(name.size() + 1, sp2 - name.size() - 1);
    json st = json::parse(line.substr(sp2 + 1), nullptr, false);
    ASSERT_FALSE(st.is_discarded()) << line;
    EXPECT_EQ(st["id"], "h1") << line;
    EXPECT_EQ(st["bundle"], b.native()) << line;
    const bool inside = name == "createContainer" || name == "startContainer";
    EXPECT_EQ(mnt, inside ? container_mnt : host_mnt) << line;
    if (name == "poststop") {
      EXPECT_EQ(st["status"], "stopped") << line;
    } else {
      EXPECT_EQ(st["pid"], pid) << line;
      const char* want = name == "startContainer" ? "created" : name == "poststart" ? "running" : "creating";
      EXPECT_EQ(st["status"], want) << line;
    }
  }
  EXPECT_EQ(names, (std::vector<std::string>{"prestart", "createRuntime", "createContainer", "startContainer",
                                             "poststart", "poststop"}))
      << text;
  EXPECT_THAT(text, HasSubstr("command\n"));
}

// createContainer fails create (and leaves nothing); startContainer fails start, the command
// never runs and the container is stopped; a failing poststop hook only warns: delete succeeds.
TEST_F(OciE2E, FailingHooksInsideTheContainerAndPoststop) {
  auto [b, c] = sh_bundle("hookfail-bundle", "echo ran-the-command");
  c["hooks"] = {{"createContainer", {{{"path", "/bin/sh"}, {"args", {"sh", "-c", "exit 3"}}}}}};
  write_config(b, c);
  std::string out;
  EXPECT_EQ(oci(fmt::format("create --bundle {} hf1", b.native()), &out), 125);
  EXPECT_THAT(out, HasSubstr("createContainer hook `/bin/sh`: exit status 3"));
  EXPECT_NE(oci("state hf1", &out), 0);

  c["hooks"] = {{"startContainer", {{{"path", "/bin/false"}}}}, {"poststop", {{{"path", "/bin/false"}}}}};
  write_config(b, c);
  ASSERT_EQ(oci(fmt::format("create --bundle {} hf2", b.native()), &out, "create.out"), 0) << out;
  EXPECT_EQ(oci("start hf2", &out), 125);
  EXPECT_THAT(out, HasSubstr("startContainer hook `/bin/false`: exit status 1"));
  wait_stopped("hf2");
  EXPECT_EQ(sys::read_file(tmp_ / "create.out", 1 << 16).value_or("?"), "");
  EXPECT_EQ(oci("delete hf2", &out), 0) << out;
  EXPECT_THAT(out, HasSubstr("poststop hook `/bin/false`: exit status 1"));
  EXPECT_THAT(sys::read_file(log_file(), 1 << 20).value_or(""), HasSubstr(R"("level":"warning")"));
  EXPECT_NE(oci("state hf2", &out), 0);
}

TEST_F(OciE2E, AFailingPrestartHookFailsCreateAndLeavesNothing) {
  const fs::path b = make_bundle("badhook-bundle", runc_.native() + " spec");
  json c = config(b);
  c["process"]["terminal"] = false;
  c["hooks"] = {{"prestart", {{{"path", "/bin/false"}}}}};
  write_config(b, c);
  std::string out;
  EXPECT_NE(oci(fmt::format("create --bundle {} bh", b.native()), &out), 0);
  EXPECT_THAT(out, HasSubstr("prestart hook `/bin/false`: exit status 1"));
  EXPECT_NE(oci("state bh", &out), 0);
}

TEST_F(OciE2E, ConsoleSocketReceivesThePtyMaster) {
  const fs::path b = make_bundle("tty-bundle", runc_.native() + " spec");
  json c = config(b);
  c["process"]["terminal"] = true;
  c["process"]["args"] = {"sh", "-c", "tty; echo hello-tty"};
  write_config(b, c);
  const fs::path sock = tmp_ / "console.sock";
  UniqueFd listener(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strcpy(addr.sun_path, sock.c_str());
  ASSERT_EQ(::bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(listener.get(), 1), 0);
  std::string out;
  // The connection waits in the backlog: create sends the master and exits before accept.
  ASSERT_EQ(oci(fmt::format("create --bundle {} --console-socket {} t1", b.native(), sock.native()), &out), 0)
      << out;
  UniqueFd conn(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
  ASSERT_TRUE(conn);
  char byte;
  iovec iov{&byte, 1};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ASSERT_EQ(::recvmsg(conn.get(), &msg, MSG_CMSG_CLOEXEC), 1);
  cmsghdr* cm = CMSG_FIRSTHDR(&msg);
  ASSERT_NE(cm, nullptr);
  ASSERT_EQ(cm->cmsg_type, SCM_RIGHTS);
  int fd;
  std::memcpy(&fd, CMSG_DATA(cm), sizeof fd);
  UniqueFd master(fd);
  unsigned ptn = 0;
  EXPECT_EQ(::ioctl(master.get(), TIOCGPTN, &ptn), 0) << "not a pty master";
  ASSERT_EQ(oci("start t1", &out), 0) << out;
  std::string seen;
  char buf[256];
  ssize_t n;
  while ((n = ::read(master.get(), buf, sizeof buf)) > 0) seen.append(buf, static_cast<size_t>(n));
  EXPECT_THAT(seen, HasSubstr("/dev/pts/"));
  EXPECT_THAT(seen, HasSubstr("hello-tty"));
  wait_stopped("t1");
  ASSERT_EQ(oci("delete t1", &out), 0) << out;
}

TEST_F(OciE2E, ErrorsReachTheLogAsJson) {
  const fs::path b = make_bundle("nope-bundle", runc_.native() + " spec");
  json c = config(b);
  c["process"]["terminal"] = false;
  c["process"]["args"] = {"/nope"};
  write_config(b, c);
  std::string out;
  EXPECT_EQ(oci(fmt::format("create --bundle {} n1", b.native()), &out), 125);
  const std::string log = sys::read_file(log_file(), 1 << 16).value_or("");
  json line = json::parse(log.substr(0, log.find('\n')), nullptr, false);
  ASSERT_FALSE(line.is_discarded()) << log;
  EXPECT_EQ(line["level"], "error");
  EXPECT_THAT(line["msg"].get<std::string>(), HasSubstr("/nope"));
  EXPECT_TRUE(line["time"].is_string());
  EXPECT_NE(oci("state n1", &out), 0);

  // A hostile config is refused the same way, naming the field.
  c["process"]["args"] = {"sh"};
  c["linux"]["seccomp"] = {{"defaultAction", "SCMP_ACT_NOTIFY"}};
  write_config(b, c);
  EXPECT_NE(oci(fmt::format("create --bundle {} n2", b.native()), &out), 0);
  EXPECT_THAT(out, HasSubstr("SCMP_ACT_NOTIFY"));
}

TEST_F(OciE2E, SpecMappingReachesTheContainer) {
  const fs::path b = make_bundle("map-bundle", runc_.native() + " spec");
  json c = config(b);
  c["process"]["terminal"] = false;
  c["process"]["args"] = {"sh", "-c",
                          "cat /proc/self/oom_score_adj; ulimit -n; cat /proc/sys/kernel/shmmax; "
                          "cat /data/f; touch /data/x 2>&1 || echo ro-bind; mkdir /m 2>&1 || true; "
                          "cat /sys/fs/cgroup/memory$(grep :memory: /proc/self/cgroup | cut -d: -f3)/memory.limit_in_bytes"};
  c["process"]["oomScoreAdj"] = 123;
  c["process"]["rlimits"] = {{{"type", "RLIMIT_NOFILE"}, {"hard", 512}, {"soft", 512}}};
  c["linux"]["sysctl"] = {{"kernel.shmmax", "65536"}};
  c["linux"]["resources"]["memory"] = {{"limit", 64 << 20}};
  c["linux"]["seccomp"] = {{"defaultAction", "SCMP_ACT_ALLOW"},
                           {"syscalls", {{{"names", {"mkdir", "mkdirat"}}, {"action", "SCMP_ACT_ERRNO"}, {"errnoRet", 38}}}}};
  ASSERT_TRUE(sys::mkdir_all(tmp_ / "data", 0755));
  ASSERT_TRUE(sys::write_file_atomic(tmp_ / "data/f", "from-host\n", 0644));
  c["mounts"].push_back({{"destination", "/data"}, {"type", "bind"}, {"source", (tmp_ / "data").native()},
                         {"options", {"rbind", "ro"}}});
  write_config(b, c);
  std::string out;
  EXPECT_EQ(oci(fmt::format("run --bundle {} m1", b.native()), &out), 0) << out;
  EXPECT_THAT(out, HasSubstr("123\n512\n65536\nfrom-host\n"));
  EXPECT_THAT(out, HasSubstr("ro-bind"));
  EXPECT_THAT(out, HasSubstr("Function not implemented"));  // errnoRet 38 = ENOSYS
  EXPECT_THAT(out, HasSubstr("67108864"));
}

// runtime-tools' default config carries an old Docker profile without close_range (EPERM): the
// runtime's own setup (closing inherited fds) must not be subject to the container's filter.
TEST_F(OciE2E, ASeccompFilterThatDeniesCloseRangeStillStarts) {
  auto [b, c] = sh_bundle("closerange-bundle", "echo started");
  c["linux"]["seccomp"] = {{"defaultAction", "SCMP_ACT_ALLOW"},
                           {"syscalls", {{{"names", {"close_range"}}, {"action", "SCMP_ACT_ERRNO"}}}}};
  EXPECT_THAT(run_ok(b, c, "cr1"), HasSubstr("started"));
}

// A relative cgroupsPath goes below kiste-runc's default parent; delete removes the directories
// in between too (TearDown checks that no kiste-runc cgroup is left).
TEST_F(OciE2E, ARelativeCgroupsPathLeavesNoParentBehind) {
  auto [b, c] = sh_bundle("relcg-bundle", "cat /proc/self/cgroup");
  c["linux"]["cgroupsPath"] = "reltest/leaf";
  json ns = json::array();  // without a cgroup namespace, /proc/self/cgroup shows the host path
  for (const json& n : c["linux"]["namespaces"]) {
    if (n["type"] != "cgroup") ns.push_back(n);
  }
  c["linux"]["namespaces"] = ns;
  EXPECT_THAT(run_ok(b, c, "rel1"), HasSubstr(":/kiste-runc/reltest/leaf\n"));
}

// linux.devices of type p: a fifo with its mode and owner (runtime-tools' linux_devices).
TEST_F(OciE2E, AFifoDeviceNodeIsMade) {
  auto [b, c] = sh_bundle("fifo-bundle", "stat -c '%F %a %u' /dev/fifo1");
  c["linux"]["devices"] = {{{"path", "/dev/fifo1"}, {"type", "p"}, {"fileMode", 0640}, {"uid", 7}}};
  EXPECT_THAT(run_ok(b, c, "fifo1"), HasSubstr("fifo 640 7"));
}

// `events` (the stream containerd's shim and podman read) reports an OOM kill in the container
// as runc does: {"type":"oom","id":…}, then ends when the container stops.
TEST_F(OciE2E, EventsReportAnOomKill) {
  // tail keeps all of its input: the OOM killer takes it, the shell goes on.
  auto [b, c] = sh_bundle("oom-bundle", "head -c 200000000 /dev/zero | tail; echo after-oom");
  c["linux"]["resources"]["memory"] = {{"limit", 16 << 20}, {"swap", 16 << 20}};
  write_config(b, c);
  std::string out;
  ASSERT_EQ(oci(fmt::format("create --bundle {} om1", b.native()), &out, "create.out"), 0) << out;
  const fs::path events = tmp_ / "events.out";
  ASSERT_EQ(run_shell(fmt::format("{} --root {} events --interval 1s om1 </dev/null >{} 2>&1 &", runc_.native(),
                                  state_root().native(), events.native())),
            0);
  ASSERT_EQ(oci("start om1", &out), 0) << out;
  wait_stopped("om1");
  std::string text;
  for (int i = 0; i < 500; ++i) {  // the stream notices within its 100 ms tick
    text = sys::read_file(events, 1 << 20).value_or("");
    if (text.find("\"oom\"") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_THAT(text, HasSubstr(R"({"id":"om1","type":"oom"})"));
  EXPECT_THAT(sys::read_file(tmp_ / "create.out", 1 << 20).value_or(""), HasSubstr("after-oom"));
  EXPECT_EQ(oci("delete om1", &out), 0) << out;
  reap();
}

// The target of /proc/PID/ns/TYPE ("uts:[4026532]"), or "" when it cannot be read.
std::string ns_of(const std::string& pid, const char* type) {
  std::error_code ec;
  return fs::read_symlink(fmt::format("/proc/{}/ns/{}", pid, type), ec).native();
}

// Starts `unshare FLAGS sleep 60` in the background, a holder of namespaces for a bundle to join
// by path; its pid ("" when it did not start). The caller kills it.
std::string start_holder(const std::string& flags) {
  std::string out;
  if (run_shell("unshare " + flags + " sleep 60 >/dev/null 2>&1 & echo $!", &out) != 0) return "";
  return out.substr(0, out.find('\n'));
}

// linux.namespaces[].path for uts and cgroup: the container enters the given namespaces (those
// of a process the test made with unshare), and sets its hostname in the joined one.
TEST_F(OciE2E, JoinsUtsAndCgroupNamespacesByPath) {
  const std::string pid = start_holder("--uts --cgroup");
  ASSERT_FALSE(pid.empty());
  ScopeExit stop([&] {
    ::kill(std::stoi(pid), SIGKILL);
    reap();
  });
  std::string uts, cgroup;
  for (int i = 0; i < 500 && (uts.empty() || uts == ns_of("self", "uts")); ++i) {  // until unshare ran
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    uts = ns_of(pid, "uts");
    cgroup = ns_of(pid, "cgroup");
  }
  ASSERT_NE(uts, ns_of("self", "uts"));
  auto [b, c] = sh_bundle("joinns-bundle", "readlink /proc/self/ns/uts; readlink /proc/self/ns/cgroup");
  c["hostname"] = "joined";
  for (json& n : c["linux"]["namespaces"]) {
    if (n["type"] == "uts" || n["type"] == "cgroup") n["path"] = fmt::format("/proc/{}/ns/{}", pid, n["type"].get<std::string>());
  }
  EXPECT_EQ(run_ok(b, c, "jn1"), uts + "\n" + cgroup + "\n");
  std::string host;
  EXPECT_EQ(run_shell(fmt::format("nsenter -t {} -u hostname", pid), &host), 0);
  EXPECT_EQ(host, "joined\n");
}


// linux.namespaces[].path for pid and mount: the container is made in the pid namespace and
// enters the mount namespace of a process the test made (unshare forks its command into the new
// pid namespace: its pid_for_children is that one); the root's path resolves there.
TEST_F(OciE2E, JoinsPidAndMountNamespacesByPath) {
  const std::string pid = start_holder("--pid --fork --kill-child --mount-proc");
  ASSERT_FALSE(pid.empty());
  ScopeExit stop([&] {
    ::kill(std::stoi(pid), SIGKILL);
    reap();
  });
  std::string pidns, mnt;
  for (int i = 0; i < 500 && (mnt.empty() || mnt == ns_of("self", "mnt") || pidns == ns_of("self", "pid")); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));  // until unshare ran
    pidns = ns_of(pid, "pid_for_children");
    mnt = ns_of(pid, "mnt");
  }
  ASSERT_NE(mnt, ns_of("self", "mnt"));
  ASSERT_NE(pidns, ns_of("self", "pid"));
  auto [b, c] = sh_bundle("joinpid-bundle",
                          "readlink /proc/self/ns/pid; readlink /proc/self/ns/mnt; echo pid=$$; sleep 30");
  for (json& n : c["linux"]["namespaces"]) {
    if (n["type"] == "pid") n["path"] = fmt::format("/proc/{}/ns/pid_for_children", pid);
    if (n["type"] == "mount") n["path"] = fmt::format("/proc/{}/ns/mnt", pid);
  }
  write_config(b, c);
  std::string out;
  ASSERT_EQ(oci(fmt::format("create --bundle {} jp1", b.native()), &out, "create.out"), 0) << out;
  const std::string cpid = std::to_string(state("jp1")["pid"].get<int>());
  EXPECT_EQ(ns_of(cpid, "pid"), pidns);
  EXPECT_EQ(ns_of(cpid, "mnt"), mnt);
  ASSERT_EQ(oci("start jp1", &out), 0) << out;
  std::string text;
  for (int i = 0; i < 500 && text.find("pid=") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    text = sys::read_file(tmp_ / "create.out", 1 << 16).value_or("");
  }
  EXPECT_THAT(text, HasSubstr(pidns + "\n" + mnt + "\n"));
  EXPECT_THAT(text, Not(HasSubstr("pid=1\n")));  // sleep is that namespace's init
  ASSERT_EQ(oci("delete --force jp1", &out), 0) << out;
}


// linux.uidMappings/gidMappings with a new user namespace: the runtime writes the maps; the
// bundle's root is owned by the mapped root (kiste does not chown it, as runc does not). What
// the container's root creates in a bind-mounted directory is the mapped host id's.
TEST_F(OciE2E, AUserNamespaceWithMappings) {
  auto [b, c] = sh_bundle("userns-bundle", "id -u; cat /proc/self/uid_map /proc/self/gid_map; touch /data/made");
  const fs::path data = tmp_ / "userns-data";
  ASSERT_TRUE(sys::mkdir_all(data, 0755));
  std::string out;
  ASSERT_EQ(run_shell(fmt::format("chown -R -h 100000:100000 {} {}", (b / "rootfs").native(), data.native()), &out), 0)
      << out;
  c["linux"]["namespaces"].push_back({{"type", "user"}});
  c["linux"]["uidMappings"] = {{{"containerID", 0}, {"hostID", 100000}, {"size", 65536}}};
  c["linux"]["gidMappings"] = {{{"containerID", 0}, {"hostID", 100000}, {"size", 65536}}};
  c["mounts"].push_back({{"destination", "/data"}, {"type", "bind"}, {"source", data.native()}, {"options", {"rbind"}}});
  out = run_ok(b, c, "us1");
  EXPECT_THAT(out, HasSubstr("0\n"));
  EXPECT_THAT(out, ::testing::ContainsRegex("^0\n +0 +100000 +65536\n +0 +100000 +65536\n"));
  auto st = sys::lstat(data / "made");
  ASSERT_TRUE(st) << out;
  EXPECT_EQ(st->st_uid, 100000u);
  EXPECT_EQ(st->st_gid, 100000u);

  // Maps without a user namespace, and a user namespace without maps, are refused.
  json no_ns = c;
  json ns = json::array();
  for (const json& n : c["linux"]["namespaces"]) {
    if (n["type"] != "user") ns.push_back(n);
  }
  no_ns["linux"]["namespaces"] = ns;
  write_config(b, no_ns);
  EXPECT_EQ(oci(fmt::format("create --bundle {} us2", b.native()), &out), 125);
  EXPECT_THAT(out, HasSubstr("linux.uidMappings: given without a new user namespace"));
  json no_maps = c;
  no_maps["linux"].erase("gidMappings");
  write_config(b, no_maps);
  EXPECT_EQ(oci(fmt::format("create --bundle {} us3", b.native()), &out), 125);
  EXPECT_THAT(out, HasSubstr("linux.gidMappings: a new user namespace needs both"));
}

}  // namespace
}  // namespace kiste::testing
