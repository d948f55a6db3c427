// Issue 14, "interrupted work must not leak", through the kiste binary: SIGINT/SIGTERM in the
// middle of a command removes what it made and exits 128+N; `prune` removes what a killed
// (SIGKILL) command left, but never what a live one holds.
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>

#include <kiste/base/disk_usage.hpp>
#include <kiste/testing/kiste_cli.hpp>
#include <kiste/testing/require_root.hpp>
#include <kiste/testing/temp_root.hpp>

namespace kiste::testing {
namespace {

namespace fs = std::filesystem;

int64_t tree_bytes(const fs::path& p) {
  auto u = tree_usage(p);
  return u ? u->bytes : 0;
}

bool nothing_mounted_under(const fs::path& root) {
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.find(root.native()) != std::string::npos) return false;
  }
  return true;
}

// A kiste command started in the background, so a test can signal it mid-work.
class Background {
 public:
  Background(const KisteCli& k, const std::string& args, const fs::path& log) {
    pid_ = ::fork();
    if (pid_ == 0) {
      ::setpgid(0, 0);
      std::string full = "exec " + kiste_binary().native() + " --root " + k.root().native() + " " +
                         args + " >" + log.native() + " 2>&1";
      ::execl("/bin/sh", "sh", "-c", full.c_str(), nullptr);
      ::_exit(127);
    }
  }
  ~Background() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  [[nodiscard]] pid_t pid() const { return pid_; }
  [[nodiscard]] bool running() {
    int st = 0;
    if (pid_ <= 0) return false;
    if (::waitpid(pid_, &st, WNOHANG) == 0) return true;
    status_ = st;
    pid_ = -1;
    return false;
  }
  // Waits for exit; the exit status (or 128+N when killed by signal N).
  int wait() {
    if (pid_ > 0) {
      ::waitpid(pid_, &status_, 0);
      pid_ = -1;
    }
    return WIFEXITED(status_) ? WEXITSTATUS(status_) : 128 + WTERMSIG(status_);
  }

 private:
  pid_t pid_ = -1;
  int status_ = 0;
};

class Interrupt : public ::testing::Test {
 protected:
  TempRoot tmp_{"kiste-e2e-"};
  KisteCli kiste_{tmp_ / "root"};

  void SetUp() override {
    KISTE_REQUIRE_ROOT();
    auto r = kiste_.run("import -c 'CMD [\"/bin/sh\"]' " + busybox_tar().native() + " busybox");
    ASSERT_EQ(r.status, 0) << r.output;
  }

  // A context whose COPY takes seconds: 192 MiB of random bytes (incompressible, so packing the
  // layer streams it all through gzip).
  fs::path big_context() {
    fs::path ctx = tmp_ / "ctx";
    fs::create_directories(ctx);
    std::ofstream(ctx / "Containerfile") << "FROM busybox\nCOPY big /big\n";
    std::string out;
    EXPECT_EQ(run_shell("head -c 192M /dev/urandom > " + (ctx / "big").native(), &out), 0) << out;
    return ctx;
  }

  // Waits until the command has written at least `bytes` under tmp/ (progress, not time).
  bool wait_for_tmp(Background& cmd, int64_t bytes) {
    while (cmd.running()) {
      if (tree_bytes(kiste_.root() / "tmp") >= bytes) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return false;
  }
};

TEST_F(Interrupt, SigintDuringABigCopyLeavesNothingAndExits130) {
  fs::path ctx = big_context();
  Background b(kiste_, "build -t big " + ctx.native(), tmp_ / "build.log");
  ASSERT_TRUE(wait_for_tmp(b, 16 << 20)) << "the build ended before it wrote 16 MiB to tmp/";
  ASSERT_EQ(::kill(b.pid(), SIGINT), 0);
  EXPECT_EQ(b.wait(), 130);
  std::ifstream log(tmp_ / "build.log");
  std::string text((std::istreambuf_iterator<char>(log)), {});
  EXPECT_NE(text.find("interrupted by SIGINT"), std::string::npos) << text;
  EXPECT_TRUE(fs::is_empty(kiste_.root() / "tmp")) << text;
  EXPECT_TRUE(nothing_mounted_under(kiste_.root()));
  EXPECT_NE(kiste_.run("inspect big").status, 0) << "no image was named";
}

TEST_F(Interrupt, SigtermDuringImportLeavesNothingAndExits143) {
  fs::path ctx = big_context();
  std::string out;
  ASSERT_EQ(run_shell("tar cf " + (tmp_ / "big.tar").native() + " -C " + ctx.native() + " big", &out),
            0)
      << out;
  Background b(kiste_, "import " + (tmp_ / "big.tar").native() + " big", tmp_ / "import.log");
  ASSERT_TRUE(wait_for_tmp(b, 16 << 20)) << "the import ended before it wrote 16 MiB to tmp/";
  ASSERT_EQ(::kill(b.pid(), SIGTERM), 0);
  EXPECT_EQ(b.wait(), 143);
  EXPECT_TRUE(fs::is_empty(kiste_.root() / "tmp"));
  EXPECT_NE(kiste_.run("inspect big").status, 0);
}

TEST_F(Interrupt, PruneRemovesWhatAKilledBuildLeftAndDfShowsIt) {
  fs::path ctx = big_context();
  Background b(kiste_, "build -t big " + ctx.native(), tmp_ / "build.log");
  ASSERT_TRUE(wait_for_tmp(b, 16 << 20)) << "the build ended before it wrote 16 MiB to tmp/";
  ASSERT_EQ(::kill(b.pid(), SIGKILL), 0);
  EXPECT_EQ(b.wait(), 128 + SIGKILL);
  const int64_t left = tree_bytes(kiste_.root() / "tmp");
  ASSERT_GE(left, 16 << 20) << "SIGKILL cleans nothing up";

  auto df = kiste_.run("system df");
  ASSERT_EQ(df.status, 0) << df.output;
  EXPECT_NE(df.output.find("Temporary files"), std::string::npos) << df.output;
  EXPECT_NE(df.output.find("leftovers of killed commands"), std::string::npos) << df.output;

  // A live owner's work dir survives prune: a TempDir of this test process, locked as kiste
  // locks its own.
  fs::path live = kiste_.root() / "tmp" / "build-live";
  fs::create_directories(live / "sub");
  int fd = ::open(live.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::flock(fd, LOCK_EX | LOCK_NB), 0);

  auto p = kiste_.run("prune");
  ASSERT_EQ(p.status, 0) << p.output;
  EXPECT_TRUE(fs::exists(live / "sub")) << p.output;
  ::close(fd);
  std::vector<std::string> rest;
  for (const auto& e : fs::directory_iterator(kiste_.root() / "tmp")) {
    rest.push_back(e.path().filename());
  }
  EXPECT_EQ(rest, std::vector<std::string>{"build-live"}) << p.output;

  // Now that its owner is gone, the next prune takes it too.
  p = kiste_.run("system prune");
  ASSERT_EQ(p.status, 0) << p.output;
  EXPECT_TRUE(fs::is_empty(kiste_.root() / "tmp")) << p.output;
  EXPECT_TRUE(nothing_mounted_under(kiste_.root()));
  // The build works afterwards.
  auto r = kiste_.run("build -t big " + ctx.native());
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(fs::is_empty(kiste_.root() / "tmp"));
}

TEST_F(Interrupt, RunWithoutRmNamesItsContainerAndPruneRemovesItOnceExited) {
  // The id goes to stderr: stdout stays the command's own.
  std::string out;
  ASSERT_EQ(run_shell("{ " + kiste_binary().native() + " --root " + kiste_.root().native() +
                          " run busybox echo hello 2>" + (tmp_ / "id").native() + "; }",
                      &out),
            0)
      << out;
  EXPECT_EQ(out, "hello\n");
  std::ifstream in(tmp_ / "id");
  std::string id((std::istreambuf_iterator<char>(in)), {});
  id = trim(id);
  ASSERT_EQ(id.size(), 64u) << id;
  ASSERT_TRUE(fs::is_directory(kiste_.root() / "containers" / id));
  // A running container's dir stays (its live marker says it runs).
  Background live(kiste_, "run busybox sleep 1000", tmp_ / "live.log");
  std::string live_id;
  while (live.running() && live_id.empty()) {
    std::error_code ec;
    for (auto it = fs::directory_iterator(kiste_.root() / "running", ec);
         !ec && it != fs::directory_iterator(); it.increment(ec)) {
      if (it->path().filename().native().size() == 64) live_id = it->path().filename();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_FALSE(live_id.empty());
  auto p = kiste_.run("prune");
  ASSERT_EQ(p.status, 0) << p.output;
  EXPECT_NE(p.output.find("Removed 1 exited containers"), std::string::npos) << p.output;
  EXPECT_FALSE(fs::exists(kiste_.root() / "containers" / id));
  EXPECT_TRUE(fs::is_directory(kiste_.root() / "containers" / live_id));
  ASSERT_EQ(::kill(live.pid(), SIGKILL), 0);
  (void)live.wait();
  p = kiste_.run("prune");  // the killed run's leftovers (cgroup, dir) go too
  ASSERT_EQ(p.status, 0) << p.output;
  EXPECT_TRUE(fs::is_empty(kiste_.root() / "containers")) << p.output;
  EXPECT_TRUE(nothing_mounted_under(kiste_.root()));
}

}  // namespace
}  // namespace kiste::testing
