// `kiste build` against a real registry (Debian's docker-registry on loopback): --push of every
// -t name, and --cache-to / --cache-from carrying the build cache to a fresh root that then runs
// no RUN step and produces the same manifest digest.
#include <sys/socket.h>
#include <sys/un.h>

#include <fstream>

#include <gtest/gtest.h>

#include <kiste/base/sys.hpp>
#include <kiste/base/unique_fd.hpp>
#include <kiste/image/manifest.hpp>
#include <kiste/image/digest.hpp>
#include <kiste/testing/kiste_cli.hpp>
#include <kiste/testing/registry_process.hpp>
#include <kiste/testing/require_root.hpp>
#include <kiste/testing/temp_root.hpp>

#include "builder_fixture.hpp"

namespace {

namespace fs = std::filesystem;
using kiste::builder::test::sh;
using kiste::builder::test::write;
using kiste::testing::trim;

class BuildRemote : public ::testing::Test {
 protected:
  void SetUp() override {
    KISTE_REQUIRE_ROOT();
    std::string why;
    registry_ = kiste::testing::RegistryProcess::start({}, &why);
    ASSERT_TRUE(registry_) << why;
    w_ = tmp_.path().string();
  }
  void TearDown() override { EXPECT_TRUE(kiste::testing::mounts_below(tmp_.path()).empty()); }

  // kiste with its own root, busybox imported the same way on every root.
  std::string kiste(const std::string& root) {
    std::string k = fmt::format("{} --root {}/{}", kiste::testing::kiste_binary().string(), w_, root);
    if (!fs::exists(tmp_ / root / "index.json")) {
      std::string out;
      EXPECT_EQ(sh(fmt::format("SOURCE_DATE_EPOCH=0 {} import {} busybox", k, kiste::testing::busybox_tar().native()), &out), 0) << out;
    }
    return k;
  }
  std::string runs_file(const std::string& root) {
    return fmt::format("{}/{}/cache/mounts/{}/runs", w_, root,
                       std::string(kiste::image::Digest::of("counter").hex().substr(0, 32)));
  }

  kiste::testing::TempRoot tmp_;
  std::unique_ptr<kiste::testing::RegistryProcess> registry_;
  std::string w_;
};

TEST_F(BuildRemote, PushSendsEveryTag) {
  const std::string h = registry_->host();
  write(tmp_ / "ctx/Containerfile", "FROM busybox\nCOPY msg /msg\nCMD [\"cat\", \"/msg\"]\n");
  write(tmp_ / "ctx/msg", "pushed\n");
  std::string digest, out;
  ASSERT_EQ(sh(fmt::format("{} build --network none -q --push -t {}/app:1 -t {}/app:2 {}/ctx", kiste("a"), h, h, w_), &digest), 0) << digest;
  ASSERT_EQ(sh(fmt::format("{} tags {}/app | sort", kiste("a"), h), &out), 0) << out;
  EXPECT_EQ(out, "1\n2\n");
  // build prints the image ID (config digest); pull prints the manifest digest, which both
  // roots' `inspect` show as Descriptor.digest.
  std::string inspect_a;
  ASSERT_EQ(sh(fmt::format("{} inspect {}/app:2", kiste("a"), h), &inspect_a), 0) << inspect_a;
  EXPECT_NE(inspect_a.find("\"Id\": \"" + trim(digest) + "\""), std::string::npos) << inspect_a;
  ASSERT_EQ(sh(fmt::format("{} pull -q {}/app:2", kiste("c"), h), &out), 0) << out;
  EXPECT_NE(inspect_a.find("\"digest\": \"" + trim(out) + "\""), std::string::npos) << inspect_a;
  ASSERT_EQ(sh(fmt::format("{} run --rm {}/app:2 2>&1", kiste("c"), h), &out), 0) << out;
  EXPECT_EQ(out, "pushed\n");
  // --push without a name says so.
  int rc = sh(fmt::format("{} build --network none -q --push {}/ctx 2>&1", kiste("a"), w_), &out);
  EXPECT_EQ(rc, 125);
  EXPECT_NE(out.find("--push needs at least one -t NAME"), std::string::npos) << out;
}

TEST_F(BuildRemote, CacheToAndFromRunNothingOnAFreshRoot) {
  const std::string h = registry_->host();
  write(tmp_ / "ctx/Containerfile",
        "FROM busybox\nWORKDIR /work\nCOPY big.bin in.txt ./\n"
        "RUN --mount=type=cache,id=counter,target=/cache echo run >> /cache/runs && "
        "md5sum big.bin > sum.txt && cat in.txt >> sum.txt\n"
        "CMD [\"cat\", \"/work/sum.txt\"]\n");
  write(tmp_ / "ctx/in.txt", "input\n");
  ASSERT_EQ(sh(fmt::format("head -c 3000000 /dev/urandom > {}/ctx/big.bin", w_)), 0);
  std::string da, db, out;
  ASSERT_EQ(sh(fmt::format("{} build --network none -q --cache-to {}/cache -t app {}/ctx", kiste("a"), h, w_), &da), 0) << da;
  EXPECT_EQ(kiste::sys::read_file(runs_file("a"), 4096).value_or(""), "run\n");
  ASSERT_EQ(sh(fmt::format("{} tags {}/cache", kiste("a"), h), &out), 0) << out;
  EXPECT_EQ(out, "buildcache\n");

  // Root B has only busybox: every layer comes from the registry cache, no RUN executes.
  ASSERT_EQ(sh(fmt::format("{} build --network none --progress=plain --cache-from type=registry,ref={}/cache:buildcache -t app {}/ctx 2>&1",
                           kiste("b"), h, w_), &out), 0) << out;
  EXPECT_NE(out.find("CACHED (imported)"), std::string::npos) << out;
  EXPECT_NE(out.find("(0 steps run, 2 cached)"), std::string::npos) << out;
  EXPECT_FALSE(fs::exists(runs_file("b")));
  ASSERT_EQ(sh(fmt::format("{} build --network none -q -t app {}/ctx", kiste("b"), w_), &db), 0) << db;
  EXPECT_EQ(db, da);
  ASSERT_EQ(sh(fmt::format("{} run --rm app 2>&1", kiste("b")), &out), 0) << out;
  EXPECT_NE(out.find("input"), std::string::npos) << out;

  // A changed input misses the imported cache for the steps it affects, and only those.
  write(tmp_ / "ctx/in.txt", "changed\n");
  ASSERT_EQ(sh(fmt::format("{} build --network none --cache-from {}/cache -t app {}/ctx 2>&1", kiste("d"), h, w_), &out), 0) << out;
  EXPECT_NE(out.find("(2 steps run, 0 cached)"), std::string::npos) << out;
  EXPECT_EQ(kiste::sys::read_file(runs_file("d"), 4096).value_or(""), "run\n");

  // A repository without a cache is a note; an ordinary image is refused by name.
  ASSERT_EQ(sh(fmt::format("{} build --network none --cache-from {}/nothing-here -t app {}/ctx 2>&1", kiste("d"), h, w_), &out), 0) << out;
  EXPECT_NE(out.find("note: no build cache at"), std::string::npos) << out;
  ASSERT_EQ(sh(fmt::format("{} push app {}/img:1", kiste("d"), h), &out), 0) << out;
  int rc = sh(fmt::format("{} build --network none --cache-from {}/img:1 {}/ctx 2>&1", kiste("d"), h, w_), &out);
  EXPECT_EQ(rc, 125);
  EXPECT_NE(out.find("not a kiste build cache"), std::string::npos) << out;
  rc = sh(fmt::format("{} build --network none --cache-to type=local,dest=/tmp/x {}/ctx 2>&1", kiste("d"), w_), &out);
  EXPECT_EQ(rc, 125);
  EXPECT_NE(out.find("only type=registry is supported"), std::string::npos) << out;
}

// The binary's wiring of ADD URL (the registry client's HTTP stack; a registry blob URL is a
// plain HTTP download) and of --ssh.
TEST_F(BuildRemote, AddUrlAndSshThroughTheBinary) {
  const std::string h = registry_->host();
  write(tmp_ / "ctx/Containerfile", "FROM busybox\nCOPY msg /msg\n");
  write(tmp_ / "ctx/msg", "blob body\n");
  std::string out;
  ASSERT_EQ(sh(fmt::format("{} build --network none -q --push -t {}/src:1 {}/ctx", kiste("a"), h, w_), &out), 0) << out;
  // The config blob of the pushed image (build prints its digest, the image ID) is the
  // checksum of what the URL serves.
  const std::string cfg = trim(out);
  ASSERT_EQ(cfg.rfind("sha256:", 0), 0u) << cfg;
  const std::string url = fmt::format("http://{}/v2/src/blobs/{}", h, cfg);
  write(tmp_ / "ctx2/Containerfile",
        fmt::format("FROM busybox\nADD --checksum={} {} /cfg/\n"
                    "RUN --mount=type=ssh test -S \"$SSH_AUTH_SOCK\" && ls -l /cfg > /listing\n"
                    "CMD [\"cat\", \"/listing\"]\n", cfg, url));
  // A unix socket standing in for the agent.
  const std::string sock = w_ + "/agent.sock";
  kiste::UniqueFd agent(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", sock.c_str());
  ASSERT_EQ(::bind(agent.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(sh(fmt::format("SSH_AUTH_SOCK={} {} build --network none -q --ssh default -t withurl {}/ctx2 2>&1", sock, kiste("a"), w_), &out), 0) << out;
  ASSERT_EQ(sh(fmt::format("{} run --rm withurl 2>&1", kiste("a")), &out), 0) << out;
  EXPECT_NE(out.find("-rw-------"), std::string::npos) << out;
  EXPECT_NE(out.find(cfg), std::string::npos) << out;  // named by the URL's last segment
  // A wrong checksum fails with a one-line error naming the line.
  write(tmp_ / "ctx2/Containerfile",
        fmt::format("FROM busybox\nADD --checksum={} {} /cfg/\n", kiste::image::Digest::of("x").str(), url));
  int rc = sh(fmt::format("{} build --network none -q {}/ctx2 2>&1", kiste("a"), w_), &out);
  EXPECT_EQ(rc, 125);
  EXPECT_NE(out.find("Containerfile:2:1: ADD: `" + url + "`: checksum mismatch"), std::string::npos) << out;
}

// A FROM image the store lacks is pulled with build's registry flags: a TLS registry whose CA
// only --cert-dir names is reached with it and refused without it.
TEST_F(BuildRemote, FromPullUsesTheRegistryFlags) {
  std::string why;
  auto tls = kiste::testing::RegistryProcess::start({.tls = true}, &why);
  ASSERT_TRUE(tls) << why;
  const std::string h = tls->host();
  const std::string certs = "--cert-dir " + tls->cert_dir().string();
  std::string out;
  ASSERT_EQ(sh(fmt::format("{} push -q {} busybox {}/base/bb:1 2>&1", kiste("a"), certs, h), &out), 0) << out;
  write(tmp_ / "ctx/Containerfile", fmt::format("FROM {}/base/bb:1\nCMD [\"true\"]\n", h));
  int rc = sh(fmt::format("{} build --network none -q -t app {}/ctx 2>&1", kiste("e"), w_), &out);
  EXPECT_EQ(rc, 125) << out;
  EXPECT_NE(out.find("certificate"), std::string::npos) << out;
  ASSERT_EQ(sh(fmt::format("{} build --network none -q {} -t app {}/ctx 2>&1", kiste("e"), certs, w_), &out), 0) << out;
}

}  // namespace
