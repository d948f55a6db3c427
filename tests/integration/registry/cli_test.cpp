// The kiste binary against a real registry: push/pull/promote/tags/delete, login/logout,
// SIGKILL during a pull, and peak memory of a 100 MB pull and push.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <thread>

#include <kiste/base/sys.hpp>
#include <kiste/testing/kiste_cli.hpp>

#include "fault_proxy.hpp"
#include "registry_fixture.hpp"

namespace kiste::testing {
namespace {

namespace fs = std::filesystem;

std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }

// Every file under blobs/ has the digest its name says.
void expect_blobs_verified(const image::Store& store) {
  auto blobs = store.list_blobs();
  ASSERT_TRUE(blobs) << blobs.error().to_string();
  for (const auto& d : *blobs) {
    auto bytes = sys::read_file(store.blob_path(d));
    ASSERT_TRUE(bytes);
    EXPECT_EQ(image::Digest::of(*bytes), d) << store.blob_path(d);
  }
}

TEST_F(RegistryTest, CliPushPullPromoteTagsDelete) {
  auto reg = start_registry();
  ASSERT_TRUE(reg);
  auto root = tmp_ / "root";
  auto a = open_store("root");
  auto img = make_test_image(a, "localhost/app:1", {200'000, 100'000}, 31);
  std::string h = reg->host();
  std::string out;
  ASSERT_EQ(
      run_shell(kiste_command(root, "push -q localhost/app:1 docker://" + h + "/staging/app:1"), &out), 0)
      << out;
  EXPECT_EQ(first_line(out), img.manifest.digest.str());

  auto root2 = tmp_ / "root2";
  out.clear();
  ASSERT_EQ(run_shell(kiste_command(root2, "pull -q " + h + "/staging/app:1"), &out), 0) << out;
  EXPECT_EQ(first_line(out), img.manifest.digest.str());
  EXPECT_TRUE(validate(open_store("root2"), h + "/staging/app:1"));
  out.clear();
  EXPECT_EQ(run_shell(kiste_command(root2, "fsck"), &out), 0) << out;  // the store fscks clean
  EXPECT_NE(out.find("ok: "), std::string::npos) << out;

  out.clear();
  ASSERT_EQ(run_shell(kiste_command(root, "promote -q --expect-digest " + img.manifest.digest.str() + " " +
                                      h + "/staging/app:1 " + h + "/prod/app:1"),
                      &out),
            0)
      << out;
  EXPECT_EQ(first_line(out), img.manifest.digest.str());
  EXPECT_EQ(reg->count_requests("PUT /v2/prod/app/blobs/uploads/"), 0);

  out.clear();
  std::string wrong = image::Digest::of("x").str();
  EXPECT_EQ(run_shell(kiste_command(root, "promote --expect-digest " + wrong + " " + h + "/staging/app:1 " +
                                      h + "/prod/app:2"),
                      &out),
            125);
  EXPECT_TRUE(out.starts_with("kiste: error: ")) << out;
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << out;
  auto c = client(h);
  auto tag2 = c->try_head_manifest("prod/app", "2");
  ASSERT_TRUE(tag2);
  EXPECT_FALSE(tag2->has_value());

  out.clear();
  ASSERT_EQ(run_shell(kiste_command(root, "tags " + h + "/prod/app"), &out), 0) << out;
  EXPECT_EQ(out, "1\n");
  out.clear();
  ASSERT_EQ(run_shell(kiste_command(root, "delete docker://" + h + "/prod/app:1"), &out), 0) << out;
  out.clear();
  EXPECT_EQ(run_shell(kiste_command(root, "pull " + h + "/prod/app:1"), &out), 125);
  EXPECT_NE(out.find("MANIFEST_UNKNOWN"), std::string::npos) << out;

  // `kiste inspect docker://REF` reads the remote image without pulling it.
  out.clear();
  ASSERT_EQ(run_shell(kiste_command(root, "inspect docker://" + h + "/staging/app:1"), &out), 0) << out;
  EXPECT_NE(out.find("\"digest\": \"" + img.manifest.digest.str() + "\""), std::string::npos)
      << out;
  EXPECT_NE(out.find(img.blobs[1].digest.str()), std::string::npos) << out;
  EXPECT_NE(out.find("\"Architecture\""), std::string::npos) << out;
  // copy through an oci-archive and back keeps the digest.
  auto tar = tmp_ / "app.tar";
  out.clear();
  ASSERT_EQ(
      run_shell(kiste_command(root, "copy -q docker://" + h + "/staging/app:1 oci-archive:" + tar.string()),
                &out),
      0)
      << out;
  out.clear();
  ASSERT_EQ(run_shell(kiste_command(root, "copy -q oci-archive:" + tar.string() + " docker://" + h +
                                      "/from-archive:1"),
                      &out),
            0)
      << out;
  EXPECT_EQ(first_line(out), img.manifest.digest.str());
  out.clear();
  EXPECT_EQ(run_shell(kiste_command(root, "copy oci:" + (tmp_ / "nolayout").string() + " docker://" + h +
                                      "/a:1"),
                      &out),
            125);
  EXPECT_NE(out.find("nolayout"), std::string::npos) << out;
}

TEST_F(RegistryTest, CliLoginLogoutWithPasswordOnStdin) {
  auto reg = start_registry({.auth = RegistryAuth::Basic});
  ASSERT_TRUE(reg);
  auto root = tmp_ / "root";
  auto a = open_store("root");
  make_test_image(a, "localhost/l:1", {1000}, 32);
  auto authfile = tmp_ / "auth.json";
  std::string h = reg->host();
  std::string out;
  EXPECT_EQ(
      run_shell("echo wrong-pass | " + kiste_command(root, "login -u kiste --password-stdin --authfile " +
                                                       authfile.string() + " " + h),
                &out),
      125);
  EXPECT_EQ(out.find("wrong-pass"), std::string::npos) << out;
  EXPECT_FALSE(fs::exists(authfile));
  out.clear();
  ASSERT_EQ(
      run_shell("echo kiste-secret | " + kiste_command(root, "login -u kiste --password-stdin --authfile " +
                                                         authfile.string() + " " + h),
                &out),
      0)
      << out;
  EXPECT_NE(out.find("Login Succeeded"), std::string::npos);
  struct stat st {};
  ASSERT_EQ(::stat(authfile.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  out.clear();
  ASSERT_EQ(run_shell(kiste_command(root, "push -q --authfile " + authfile.string() + " localhost/l:1 " +
                                      h + "/l:1"),
                      &out),
            0)
      << out;
  ASSERT_EQ(run_shell(kiste_command(root, "logout --authfile " + authfile.string() + " " + h), &out), 0);
  out.clear();
  EXPECT_EQ(run_shell(kiste_command(root, "push -q --authfile " + authfile.string() + " localhost/l:1 " +
                                      h + "/l:2"),
                      &out),
            125);
  EXPECT_NE(out.find("requires a login"), std::string::npos) << out;
}

// docker's `login -u USER -p PASSWORD REGISTRY`: works, with docker's warning.
TEST_F(RegistryTest, CliLoginWithPasswordFlag) {
  auto reg = start_registry({.auth = RegistryAuth::Basic});
  ASSERT_TRUE(reg);
  auto root = tmp_ / "root";
  auto authfile = tmp_ / "auth.json";
  std::string login = "login --authfile " + authfile.string() + " ";
  std::string out;
  EXPECT_EQ(run_shell(kiste_command(root, login + "-u kiste -p wrong-pass " + reg->host()) + " </dev/null", &out), 125);
  EXPECT_FALSE(fs::exists(authfile));
  out.clear();
  ASSERT_EQ(run_shell(kiste_command(root, login + "-u kiste -p kiste-secret " + reg->host()) + " </dev/null", &out), 0)
      << out;
  EXPECT_NE(out.find("Login Succeeded"), std::string::npos) << out;
  EXPECT_NE(out.find("use --password-stdin"), std::string::npos) << out;
  EXPECT_TRUE(fs::exists(authfile));
  out.clear();
  EXPECT_EQ(run_shell("echo x | " + kiste_command(root, login + "-u kiste -p kiste-secret --password-stdin " +
                                                    reg->host()),
                      &out),
            125);
  EXPECT_NE(out.find("exclusive"), std::string::npos) << out;
}

TEST_F(RegistryTest, SigkillDuringPullLeavesValidStoreAndNextPullCompletes) {
  auto reg = start_registry();
  ASSERT_TRUE(reg);
  auto a = open_store("src");
  auto img = make_test_image(a, "localhost/k:1", {2'000'000, 2'000'000, 1'000'000}, 33);
  auto c = client(reg->host());
  ASSERT_TRUE(push(a, "localhost/k:1", *c, reg->host() + "/k:1"));
  FaultProxy slow(reg->port(), FaultProxy::Fault::Slow, -1);
  auto root = tmp_ / "root";
  std::string ref = slow.host() + "/k:1";

  pid_t pid = ::fork();
  if (pid == 0) {
    int devnull = ::open("/dev/null", O_WRONLY);
    ::dup2(devnull, 1);
    ::dup2(devnull, 2);
    ::execl(kiste_binary().c_str(), "kiste", "--root", root.c_str(), "pull", ref.c_str(),
            static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ASSERT_GT(pid, 0);
  // Kill it once a download is under way (a partial file exists in tmp/).
  bool partial = false;
  for (int i = 0; i < 1000 && !partial; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    std::error_code ec;
    for (auto& e : fs::directory_iterator(root / "tmp", ec)) {
      if (e.is_regular_file() && e.file_size() > 100'000) partial = true;
    }
  }
  ::kill(pid, SIGKILL);
  int st = 0;
  ::waitpid(pid, &st, 0);
  EXPECT_TRUE(partial);
  ASSERT_TRUE(WIFSIGNALED(st));

  auto store = open_store("root");
  expect_blobs_verified(store);
  EXPECT_FALSE(store.resolve(ref));  // never named half-pulled
  std::string out;
  // fsck finds no damage (it only clears the killed writer's temporary file).
  EXPECT_EQ(run_shell(kiste_command(root, "fsck"), &out), 0) << out;
  out.clear();
  ASSERT_EQ(run_shell(kiste_command(root, "pull -q " + ref), &out), 0) << out;
  EXPECT_EQ(first_line(out), img.manifest.digest.str());
  auto v = validate(store, ref);
  EXPECT_TRUE(v) << v.error().to_string();
  expect_blobs_verified(store);
  out.clear();
  EXPECT_EQ(run_shell(kiste_command(root, "fsck"), &out), 0) << out;
}

// Progress: live lines per blob (bytes, rate, ETA) only on a terminal; `script` gives the pull a
// pseudo-terminal. The first chunk of every streamed blob draws its line, so this needs no timing.
TEST_F(RegistryTest, PullShowsPerBlobProgressOnlyOnATerminal) {
  auto reg = start_registry();
  ASSERT_TRUE(reg);
  auto a = open_store("src");
  auto img = make_test_image(a, "localhost/p:1", {1'500'000, 700'000}, 35);
  auto c = client(reg->host());
  ASSERT_TRUE(push(a, "localhost/p:1", *c, reg->host() + "/p:1"));
  auto on_pty = [&](const std::string& root, const std::string& args, std::string* out) {
    return run_shell("script -q -e -c '" + kiste_command(tmp_ / root, args) + "' /dev/null < /dev/null",
                     out);
  };
  std::string out;
  ASSERT_EQ(on_pty("r1", "pull " + reg->host() + "/p:1", &out), 0) << out;
  for (const auto& b : img.blobs) {
    std::string shortd = b.digest.str().substr(0, 19);
    EXPECT_NE(out.find("blob " + shortd + ": "), std::string::npos) << out;
    EXPECT_NE(out.find("blob " + shortd + ": copied"), std::string::npos) << out;
  }
  std::string layer = img.blobs[1].digest.str().substr(0, 19);
  auto live = out.find("\033[Kblob " + layer + ": ");
  ASSERT_NE(live, std::string::npos) << out;
  std::string line = out.substr(live, out.find('\n', live) - live);
  EXPECT_NE(line.find(" / 1.5 MB"), std::string::npos) << line;
  EXPECT_NE(line.find("/s  ETA "), std::string::npos) << line;
  EXPECT_NE(out.find(img.manifest.digest.str()), std::string::npos) << out;

  // --progress=plain on a terminal, and no terminal at all: finished blobs only, no escapes.
  out.clear();
  ASSERT_EQ(on_pty("r2", "pull --progress=plain " + reg->host() + "/p:1", &out), 0) << out;
  EXPECT_NE(out.find("blob " + layer + ": copied"), std::string::npos) << out;
  EXPECT_EQ(out.find("ETA"), std::string::npos) << out;
  EXPECT_EQ(out.find("\033["), std::string::npos) << out;
  out.clear();
  ASSERT_EQ(run_shell(kiste_command(tmp_ / "r3", "pull " + reg->host() + "/p:1") + " 2>&1 | cat", &out), 0)
      << out;
  EXPECT_NE(out.find("blob " + layer + ": copied"), std::string::npos) << out;
  EXPECT_EQ(out.find("ETA"), std::string::npos) << out;
}

// Peak RSS of `kiste pull` and `kiste push` of a ~100 MB, 5-layer image (GNU time).
long peak_rss_kib(const std::string& cmd, std::string* out) {
  auto file = fs::temp_directory_path() / ("kiste-rss-" + std::to_string(::getpid()));
  int rc = run_shell("/usr/bin/time -f %M -o " + file.string() + " " + cmd, out);
  std::ifstream in(file);
  long kib = -1;
  in >> kib;
  fs::remove(file);
  return rc == 0 ? kib : -1;
}

TEST_F(RegistryTest, HundredMegabytePullAndPushStayUnder20MiB) {
  if (!fs::exists("/usr/bin/time")) GTEST_SKIP() << "/usr/bin/time (GNU time) is not installed";
  auto reg = start_registry();
  ASSERT_TRUE(reg);
  auto root = tmp_ / "root";
  auto a = open_store("root");
  make_test_image(a, "localhost/big:1", {40'000'000, 30'000'000, 20'000'000, 8'000'000, 2'000'000},
                  34);
  std::string out;
  long push_kib =
      peak_rss_kib(kiste_command(root, "push -q localhost/big:1 " + reg->host() + "/big:1"), &out);
  ASSERT_GT(push_kib, 0) << out;
  auto root2 = tmp_ / "root2";
  long pull_kib = peak_rss_kib(kiste_command(root2, "pull -q " + reg->host() + "/big:1"), &out);
  ASSERT_GT(pull_kib, 0) << out;
  std::printf("peak RSS: push %ld KiB, pull %ld KiB\n", push_kib, pull_kib);
  EXPECT_LT(push_kib, 20 * 1024);
  EXPECT_LT(pull_kib, 20 * 1024);
}

}  // namespace
}  // namespace kiste::testing
