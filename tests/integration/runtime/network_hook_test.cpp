// RunHooks::network_ready through the library: the caller connects the container's network
// namespace while the container's process already exists (it mounts its root meanwhile), and
// the command runs only after the hook returned; a hook's error ends the run with nothing left.
#include <sys/stat.h>
#include <unistd.h>

#include <kiste/base/sys.hpp>
#include <kiste/runtime/container.hpp>
#include <kiste/runtime/run_options.hpp>

#include "runtime_fixture.hpp"

namespace kiste::testing {
namespace {

namespace fs = std::filesystem;
using namespace kiste::runtime;

// Pids of processes in the network namespace `netns_fd` refers to.
std::vector<int> processes_in_netns(int netns_fd) {
  struct stat ns {};
  std::vector<int> pids;
  if (::fstat(netns_fd, &ns) != 0) return pids;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/proc", ec)) {
    const std::string name = e.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    struct stat st {};
    if (::stat((e.path() / "ns/net").c_str(), &st) == 0 && st.st_ino == ns.st_ino && st.st_dev == ns.st_dev) {
      pids.push_back(std::stoi(name));
    }
  }
  return pids;
}

Result<ContainerSpec> bridged_spec(const fs::path& tmp, const fs::path& rootfs, const std::string& script) {
  RunOptions opts;
  opts.command = {"sh", "-c", script};
  opts.volumes = {(tmp / "out").native() + ":/out"};
  const std::string id = sys::random_hex(16);
  auto spec = make_spec(opts, {.id = id, .lower_dirs = {rootfs}, .container_dir = tmp / "c" / id});
  if (spec) spec->network = NetworkMode::Bridge;
  return spec;
}

TEST_F(RuntimeTest, NetworkIsConnectedWhileTheContainerSetsUpAndBeforeItsCommand) {
  ASSERT_TRUE(sys::mkdir_all(tmp() / "out"));
  auto spec = bridged_spec(tmp(), rootfs(), "cat /out/connected");
  ASSERT_TRUE(spec) << spec.error().to_string();
  RunContext ctx;
  std::vector<int> present;
  ctx.hooks.network_ready = [&](int netns_fd) -> Status {
    // The container's process exists already and enters this namespace first (bounded wait:
    // a hook called before clone would see nobody here).
    for (int i = 0; i < 500 && present.empty(); ++i) {
      present = processes_in_netns(netns_fd);
      if (present.empty()) ::usleep(10'000);
    }
    ::usleep(200'000);  // a slow attach: the command must still wait for it
    return sys::write_file_atomic(tmp() / "out/connected", "connected\n");
  };
  auto exit = run_container(*spec, ctx);
  ASSERT_TRUE(exit) << exit.error().to_string();
  EXPECT_EQ(exit->exit_code, 0);
  EXPECT_EQ(present.size(), 1u) << "no process (or more than the container's) in its network namespace";
}

TEST_F(RuntimeTest, AFailingNetworkHookEndsTheRunBeforeTheCommand) {
  ASSERT_TRUE(sys::mkdir_all(tmp() / "out"));
  auto spec = bridged_spec(tmp(), rootfs(), "touch /out/ran");
  ASSERT_TRUE(spec) << spec.error().to_string();
  RunContext ctx;
  ctx.hooks.network_ready = [](int) -> Status { return fail(Errc::Unavailable, "veth: no more today"); };
  bool started = false;
  ctx.hooks.started = [&](pid_t) { started = true; };
  auto exit = run_container(*spec, ctx);
  ASSERT_FALSE(exit);
  EXPECT_NE(exit.error().to_string().find("veth: no more today"), std::string::npos) << exit.error().to_string();
  EXPECT_FALSE(started);
  EXPECT_FALSE(fs::exists(tmp() / "out/ran"));
  // TearDown: no cgroup, mount or process of the container is left.
}

}  // namespace
}  // namespace kiste::testing
