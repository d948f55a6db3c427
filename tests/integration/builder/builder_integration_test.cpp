// The builder end to end through its library API, as root: a real store with a busybox image
// made offline, real layers, the real cache. RUN steps need the runtime part; where this tree
// has none, those tests skip with a reason.
#include <kiste/builder/builder.hpp>

#include <sys/socket.h>
#include <sys/un.h>

#include <cstddef>
#include <cstring>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include <kiste/base/sys.hpp>
#include <kiste/image/archive.hpp>
#include <kiste/image/snapshot.hpp>
#include <kiste/testing/busybox_rootfs.hpp>
#include <kiste/testing/require_root.hpp>
#include <kiste/testing/temp_root.hpp>

#include "builder_fixture.hpp"

namespace kiste::builder {
namespace {

using namespace test;  // NOLINT: the fixture

const char* kCopyOnly =
    "FROM busybox AS base\n"
    "WORKDIR /app\n"
    "COPY a.txt .\n"
    "COPY dir/ ./dir/\n"
    "ENV MODE=prod\n"
    "COPY b.txt .\n"
    "CMD [\"cat\", \"/app/a.txt\"]\n";

void make_context(const fs::path& ctx) {
  write(ctx / "Containerfile", kCopyOnly);
  write(ctx / "a.txt", "A\n");
  write(ctx / "b.txt", "B\n");
  write(ctx / "dir/x/y.txt", "Y\n");
  write(ctx / "dir/skip.log", "log\n");
  write(ctx / ".containerignore", "**/*.log\n");
}

TEST_F(BuilderTest, CopyStepsMakeLayersAndConfig) {
  make_context(tmp_ / "ctx");
  auto r = build(tmp_ / "ctx", {.tags = {*image::Reference::parse("app:1")}});
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(r->steps_run, 3);
  EXPECT_EQ(read_in_image(r->manifest, "app/a.txt"), "A\n");
  EXPECT_EQ(read_in_image(r->manifest, "app/dir/x/y.txt"), "Y\n");
  EXPECT_FALSE(fs::exists(tmp_ / ("flat-" + std::string(r->manifest.digest.hex().substr(0, 8))) / "app/dir/skip.log"));
  auto cfg = config_of(r->manifest);
  EXPECT_EQ(cfg.config.working_dir, "/app");
  EXPECT_EQ(cfg.config.env, (std::vector<std::string>{"MODE=prod"}));
  EXPECT_EQ(cfg.created, "1970-01-01T00:00:00Z");
  EXPECT_EQ(cfg.diff_ids.size(), 5u);  // busybox + WORKDIR's new /app + 3 COPY
  size_t empty = 0;
  for (const auto& h : cfg.history) empty += h.empty_layer ? 1 : 0;
  EXPECT_EQ(empty, 2u);  // ENV, CMD
  EXPECT_EQ(cfg.history.size(), cfg.diff_ids.size() + empty);
  EXPECT_TRUE(store_->resolve("app:1"));
}

TEST_F(BuilderTest, ReproducibleAcrossRootsAndOnlyAffectedStepsChange) {
  make_context(tmp_ / "ctx");
  auto r1 = build(tmp_ / "ctx");
  ASSERT_TRUE(r1) << r1.error().to_string();
  // A second, fresh root with its own busybox import.
  auto other = image::Store::open(tmp_ / "root2");
  ASSERT_TRUE(other);
  ASSERT_TRUE(image::import_rootfs(*other, busybox_tar(), *image::Reference::parse("busybox"), {.created = 0}));
  // Touch mtimes: they must not matter.
  fs::last_write_time(tmp_ / "ctx/a.txt", fs::file_time_type::clock::now() - std::chrono::hours(3));
  auto r2 = build(tmp_ / "ctx", {}, &*other);
  ASSERT_TRUE(r2) << r2.error().to_string();
  EXPECT_EQ(r1->manifest.digest, r2->manifest.digest);
  // Change the file of the second COPY: the first COPY layer stays, the rest change.
  write(tmp_ / "ctx/dir/x/y.txt", "Y2\n");
  auto r3 = build(tmp_ / "ctx");
  ASSERT_TRUE(r3);
  EXPECT_EQ(r3->steps_cached, 1);
  EXPECT_EQ(r3->steps_run, 2);
  auto l1 = layers_of(r1->manifest), l3 = layers_of(r3->manifest);
  ASSERT_EQ(l1.size(), l3.size());
  EXPECT_EQ(l1[0], l3[0]);  // busybox
  EXPECT_EQ(l1[1], l3[1]);  // WORKDIR /app
  EXPECT_EQ(l1[2], l3[2]);  // COPY a.txt
  EXPECT_NE(l1[3], l3[3]);  // COPY dir/ (changed)
  EXPECT_EQ(l1[4], l3[4]);  // b.txt's layer has the same bytes, only its cache key moved
  EXPECT_NE(r1->manifest.digest, r3->manifest.digest);
}

TEST_F(BuilderTest, CacheHitRunsNothingAndIgnoredFilesDoNotBustIt) {
  make_context(tmp_ / "ctx");
  auto r1 = build(tmp_ / "ctx");
  ASSERT_TRUE(r1);
  write(tmp_ / "ctx/dir/skip.log", "changed log\n");
  auto r2 = build(tmp_ / "ctx", {.explain_misses = true});
  ASSERT_TRUE(r2);
  EXPECT_EQ(r2->steps_run, 0);
  EXPECT_EQ(r2->steps_cached, 3);
  EXPECT_EQ(r1->manifest.digest, r2->manifest.digest);
  EXPECT_TRUE(misses_.empty());
  // --no-cache rebuilds every step, to the same digest.
  auto r3 = build(tmp_ / "ctx", {.no_cache = true});
  ASSERT_TRUE(r3);
  EXPECT_EQ(r3->steps_run, 3);
  EXPECT_EQ(r3->manifest.digest, r1->manifest.digest);
  // Corrupt cache records are misses: the build runs the steps again, to the same image.
  for (const auto& e : fs::directory_iterator(store_->root() / "cache" / "build")) {
    if (e.is_regular_file()) write(e.path(), "garbage sha256:zz -1 x\n");
  }
  auto rc = build(tmp_ / "ctx");
  ASSERT_TRUE(rc) << rc.error().to_string();
  EXPECT_EQ(rc->steps_run, 3);
  EXPECT_EQ(rc->manifest.digest, r1->manifest.digest);
  // Another timestamp is another image (mtimes and `created`), never a stale cache hit.
  auto r5 = build(tmp_ / "ctx", {.timestamp = 1700000000});
  ASSERT_TRUE(r5);
  EXPECT_EQ(r5->steps_run, 3);
  EXPECT_NE(r5->manifest.digest, r1->manifest.digest);
  EXPECT_EQ(config_of(r5->manifest).created, "2023-11-14T22:13:20Z");
  // A miss explains which input changed.
  write(tmp_ / "ctx/b.txt", "B2\n");
  misses_.clear();
  auto r4 = build(tmp_ / "ctx", {.explain_misses = true});
  ASSERT_TRUE(r4);
  ASSERT_FALSE(misses_.empty());
  bool named = false;
  for (const auto& m : misses_) named = named || m.find("now   src b.txt") != std::string::npos;
  EXPECT_TRUE(named) << ::testing::PrintToString(misses_);
}

TEST_F(BuilderTest, TargetSkipsStagesItDoesNotNeed) {
  write(tmp_ / "ctx/Containerfile",
        "FROM busybox AS one\nCOPY f /f\n"
        "FROM image-that-does-not-exist AS broken\nCOPY f /g\n"
        "FROM busybox AS two\nCOPY --from=one /f /copied\n");
  write(tmp_ / "ctx/f", "F\n");
  auto r = build(tmp_ / "ctx", {.plan = {.target = "two"}});
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(read_in_image(r->manifest, "copied"), "F\n");
  for (const auto& s : steps_) EXPECT_EQ(s.find("does-not-exist"), std::string::npos) << s;
  auto bad = build(tmp_ / "ctx", {.plan = {.target = "broken"}});
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("Containerfile:3:1"), std::string::npos) << bad.error().to_string();
}

TEST_F(BuilderTest, AddExtractsLocalTarAndHeredocsAndOnbuild) {
  write(tmp_ / "ctx/payload/inner.txt", "inner\n");
  ASSERT_EQ(testing::run_shell(fmt::format("tar -C {} -czf {} payload", (tmp_ / "ctx").string(), (tmp_ / "ctx/p.tar.gz").string())), 0);
  write(tmp_ / "ctx/Containerfile",
        "FROM busybox AS parent\nONBUILD COPY f /from-onbuild\n"
        "FROM parent\nARG WHO=world\nADD p.tar.gz /opt/\nCOPY --chmod=0700 <<EOF /hello\nhello $WHO\nEOF\n");
  write(tmp_ / "ctx/f", "ob\n");
  // Recognised by content, not by name; a non-archive is copied as a file.
  fs::copy_file(tmp_ / "ctx/p.tar.gz", tmp_ / "ctx/noext");
  write(tmp_ / "ctx/plain.tar.gz", "not really an archive");
  write(tmp_ / "ctx/Containerfile",
        "FROM busybox AS parent\nONBUILD COPY f /from-onbuild\n"
        "FROM parent\nARG WHO=world\nADD p.tar.gz /opt/\nADD noext /noext/\nADD plain.tar.gz /plain/\n"
        "COPY --chmod=0700 <<EOF /hello\nhello $WHO\nEOF\n");
  auto r = build(tmp_ / "ctx", {.plan = {.build_args = {{"WHO", "kiste"}}}});
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(read_in_image(r->manifest, "opt/payload/inner.txt"), "inner\n");
  EXPECT_EQ(read_in_image(r->manifest, "noext/payload/inner.txt"), "inner\n");
  EXPECT_EQ(read_in_image(r->manifest, "plain/plain.tar.gz"), "not really an archive");
  EXPECT_EQ(read_in_image(r->manifest, "hello"), "hello kiste\n");
  EXPECT_EQ(read_in_image(r->manifest, "from-onbuild"), "ob\n");
  EXPECT_TRUE(config_of(r->manifest).config.on_build.empty());
}

TEST_F(BuilderTest, WorkdirCreatesAMissingDirectoryOnly) {
  write(tmp_ / "ctx/Containerfile", "FROM busybox\nWORKDIR /srv/www\nWORKDIR /etc\nCMD pwd\n");
  auto r = build(tmp_ / "ctx");
  ASSERT_TRUE(r) << r.error().to_string();
  auto cfg = config_of(r->manifest);
  EXPECT_EQ(cfg.diff_ids.size(), 2u);  // /srv/www is new, /etc exists
  EXPECT_FALSE(cfg.history[1].empty_layer);
  EXPECT_TRUE(cfg.history[2].empty_layer);
  std::string out;
  EXPECT_EQ(testing::run_shell(fmt::format("tar -tzf {}", store_->blob_path(layers_of(r->manifest)[1].digest).string()), &out), 0);
  EXPECT_EQ(out, "srv/\nsrv/www/\n");
  auto again = build(tmp_ / "ctx");
  ASSERT_TRUE(again);
  EXPECT_EQ(again->manifest.digest, r->manifest.digest);
}

TEST_F(BuilderTest, CopyExcludeGlobs) {
  write(tmp_ / "ctx/dir/keep.txt", "k");
  write(tmp_ / "ctx/dir/drop.tmp", "d");
  write(tmp_ / "ctx/dir/sub/also.tmp", "d");
  write(tmp_ / "ctx/one.md", "1");
  write(tmp_ / "ctx/two.md", "2");
  write(tmp_ / "ctx/Containerfile",
        "FROM busybox\nCOPY --exclude=**/*.tmp dir/ /d/\nCOPY *.md /docs/\n");
  auto r = build(tmp_ / "ctx");
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(read_in_image(r->manifest, "d/keep.txt"), "k");
  EXPECT_EQ(read_in_image(r->manifest, "d/drop.tmp"), "");
  EXPECT_EQ(read_in_image(r->manifest, "d/sub/also.tmp"), "");
  EXPECT_EQ(read_in_image(r->manifest, "docs/one.md"), "1");
  EXPECT_EQ(read_in_image(r->manifest, "docs/two.md"), "2");
  write(tmp_ / "ctx/Containerfile", "FROM busybox\nCOPY *.nothing /x/\n");
  EXPECT_FALSE(build(tmp_ / "ctx"));
}

TEST_F(BuilderTest, RunHasOnlyLoopbackUnlessTheBuildOptsIntoHostNetwork) {
  write(tmp_ / "ctx/Containerfile",
        "FROM busybox\nRUN --network=none ls /sys/class/net > /none\nRUN ls /sys/class/net > /default\n");
  auto r = build(tmp_ / "ctx");
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(read_in_image(r->manifest, "none"), "lo\n");
  EXPECT_EQ(read_in_image(r->manifest, "default"), "lo\n");  // issue 12: not the host's network
  auto host = build(tmp_ / "ctx", {.network = BuildNetwork::Host});
  ASSERT_TRUE(host) << host.error().to_string();
  EXPECT_EQ(read_in_image(host->manifest, "none"), "lo\n");
  EXPECT_NE(read_in_image(host->manifest, "default"), "lo\n");
  EXPECT_NE(host->manifest.digest, r->manifest.digest);  // the network is part of the cache key
  // The default bridge reaches the builder from the CLI (StepNetworks): without it, an error.
  auto bridged = build(tmp_ / "ctx", {.network = BuildNetwork::Default});
  ASSERT_FALSE(bridged);
  EXPECT_NE(bridged.error().to_string().find("this build has no bridge networks"), std::string::npos)
      << bridged.error().to_string();

  // RUN --network=host needs the build's opt-in (BuildKit's network.host entitlement).
  write(tmp_ / "ctx/Containerfile", "FROM busybox\nRUN --network=host true\n");
  auto refused = build(tmp_ / "ctx");
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().to_string().find("RUN --network=host: the build was not given `--network host`"),
            std::string::npos) << refused.error().to_string();
  EXPECT_TRUE(build(tmp_ / "ctx", {.network = BuildNetwork::Host}));
}

// An untrusted Containerfile's RUN reached a host 127.0.0.1 service and a host abstract unix
// socket (issue 12): by default it reaches neither; with the build's --network host it does.
TEST_F(BuilderTest, RunCannotReachHostLoopbackOrAbstractSocketsByDefault) {
  fs::create_directories(tmp_ / "ctx");
  fs::copy_file(testing::kiste_test_init_binary(), tmp_ / "ctx" / "probe");
  int port = 0;
  int tcp = testing::listen_on_loopback(&port);
  ASSERT_GE(tcp, 0);
  int ux = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(ux, 0);
  std::string name = "kiste-test-" + sys::random_hex(6);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::memcpy(a.sun_path + 1, name.data(), name.size());
  auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
  ASSERT_EQ(::bind(ux, reinterpret_cast<sockaddr*>(&a), len), 0);
  ASSERT_EQ(::listen(ux, 8), 0);
  // Each probe records its answer and never fails the step, so the file tells what happened.
  std::string probe = "RUN /probe connect tcp:" + std::to_string(port) + " > /tcp || true\n" +
                      "RUN /probe connect unix:@" + name + " > /unix || true\n";
  write(tmp_ / "ctx/Containerfile", "FROM busybox\nCOPY probe /probe\n" + probe);
  auto none = build(tmp_ / "ctx");
  ASSERT_TRUE(none) << none.error().to_string();
  EXPECT_EQ(read_in_image(none->manifest, "tcp"), "errno=" + std::to_string(ECONNREFUSED) + "\n");
  EXPECT_EQ(read_in_image(none->manifest, "unix"), "errno=" + std::to_string(ECONNREFUSED) + "\n");
  auto host = build(tmp_ / "ctx", {.network = BuildNetwork::Host});
  ASSERT_TRUE(host) << host.error().to_string();
  EXPECT_EQ(read_in_image(host->manifest, "tcp"), "connected\n");
  EXPECT_EQ(read_in_image(host->manifest, "unix"), "connected\n");
  ::close(tcp);
  ::close(ux);
}

TEST_F(BuilderTest, ChownResolvesNamesInTheStage) {
  write(tmp_ / "ctx/Containerfile",
        "FROM busybox\nCOPY --chown=nobody:daemon a /a\nCOPY --chown=daemon b /b\nCOPY --chown=7:8 a /c\n");
  write(tmp_ / "ctx/a", "a");
  write(tmp_ / "ctx/b", "b");
  auto r = build(tmp_ / "ctx");
  ASSERT_TRUE(r) << r.error().to_string();
  std::string out;
  auto layers = layers_of(r->manifest);
  ASSERT_EQ(layers.size(), 4u);
  auto owners = [&](size_t i) {
    std::string o;
    EXPECT_EQ(testing::run_shell(fmt::format("tar -tzvf {} | awk '{{print $2, $6}}'",
                                             store_->blob_path(layers[i].digest).string()), &o), 0);
    return o;
  };
  EXPECT_EQ(owners(1), "65534/1 a\n");
  EXPECT_EQ(owners(2), "1/1 b\n");
  EXPECT_EQ(owners(3), "7/8 c\n");
  write(tmp_ / "ctx/Containerfile", "FROM busybox\nCOPY --chown=nosuchuser a /a\n");
  auto bad = build(tmp_ / "ctx");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().to_string().find("no user `nosuchuser`"), std::string::npos) << bad.error().to_string();
}

// The builder hands RUN --mount's paths to the runtime typed: a context (bind source) and a
// secret file whose paths hold `,` or `:` work, as under docker build.
TEST_F(BuilderTest, RunMountPathsMayHoldCommas) {
  const fs::path ctx = tmp_ / "ctx,with,commas:and:colons";
  write(ctx / "data.txt", "from the context\n");
  write(tmp_ / "secret,file:x", "s3cret\n");
  write(ctx / "Containerfile",
        "FROM busybox\n"
        "RUN --mount=type=bind,target=/m --mount=type=secret,id=tok "
        "cat /m/data.txt /run/secrets/tok > /out\n");
  BuildOptions o;
  o.secrets["tok"] = tmp_ / "secret,file:x";
  auto r = build(ctx, o);
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(read_in_image(r->manifest, "out"), "from the context\ns3cret\n");
}

// The runtime hands back an upper dir that holds only what the step wrote: on a base without
// /proc, /dev, /sys and /etc the mount points it made for them, for a tmpfs two levels below a
// new dir and for the runtime's /etc files never reach the layer.
TEST_F(BuilderTest, RunLayerHoldsOnlyWhatTheStepWrote) {
  write(tmp_ / "ctx/Containerfile",
        "FROM scratch\n"
        "COPY --from=busybox /bin /bin\n"
        "RUN --mount=type=tmpfs,target=/new/scratch "
        "touch /x /new/scratch/gone && echo 'nameserver 192.0.2.1' > /etc/resolv.conf\n");
  auto r = build(tmp_ / "ctx");
  ASSERT_TRUE(r) << r.error().to_string();
  auto layers = layers_of(r->manifest);
  ASSERT_EQ(layers.size(), 2u);
  std::string out;
  EXPECT_EQ(sh(fmt::format("tar -tzf {}", store_->blob_path(layers[1].digest).string()), &out), 0);
  EXPECT_EQ(out, "x\n");
}

TEST_F(BuilderTest, SymlinksCannotLeaveTheContext) {
  fs::create_directories(tmp_ / "ctx");
  fs::create_symlink("/etc", tmp_ / "ctx/escape");
  fs::create_symlink("/etc/passwd", tmp_ / "ctx/pw");
  // A bind mount source through a symlink resolves inside the context (where /etc is absent).
  write(tmp_ / "ctx/Containerfile", "FROM busybox\nRUN --mount=type=bind,source=escape,target=/m cat /m/passwd\n");
  auto r = build(tmp_ / "ctx");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().to_string().find("escape"), std::string::npos) << r.error().to_string();
  // COPY of a symlink copies the link, not the host file it names.
  write(tmp_ / "ctx/Containerfile", "FROM busybox\nCOPY pw /pw\n");
  auto c = build(tmp_ / "ctx");
  ASSERT_TRUE(c) << c.error().to_string();
  std::string out;
  auto layers = layers_of(c->manifest);
  EXPECT_EQ(testing::run_shell(fmt::format("tar -tzvf {} | awk '{{print $1, $6, $7, $8}}'",
                                           store_->blob_path(layers.back().digest).string()), &out), 0);
  EXPECT_EQ(out.substr(0, 1), "l") << out;
  EXPECT_NE(out.find("pw -> /etc/passwd"), std::string::npos) << out;
}

TEST_F(BuilderTest, ErrorsNameTheLine) {
  write(tmp_ / "ctx/Containerfile", "FROM busybox\nCOPY missing.txt /x\n");
  auto r = build(tmp_ / "ctx");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().to_string().find("Containerfile:2:1: COPY: `missing.txt` not found in the build context"), std::string::npos) << r.error().to_string();
  write(tmp_ / "ctx/Containerfile", "FROM busybox\nCOPY ../../etc/passwd /x\n");
  auto esc = build(tmp_ / "ctx");
  ASSERT_FALSE(esc);  // `..` cannot leave the context
  write(tmp_ / "ctx/Containerfile", "FROM nope-not-here\n");
  auto nf = build(tmp_ / "ctx");
  ASSERT_FALSE(nf);
  EXPECT_NE(nf.error().to_string().find("not in the local store"), std::string::npos);
  write(tmp_ / "ctx/Containerfile", "FROM busybox\nRUNN x\n");
  auto un = build(tmp_ / "ctx");
  ASSERT_FALSE(un);
  EXPECT_NE(un.error().to_string().find("Containerfile:2:1: unknown instruction `RUNN` (did you mean `RUN`?)"), std::string::npos);
}

TEST_F(BuilderTest, ExamplesBuild) {
  auto other = image::Store::open(tmp_ / "root2");
  ASSERT_TRUE(other);
  ASSERT_TRUE(image::import_rootfs(*other, busybox_tar(), *image::Reference::parse("busybox"), {.created = 0}));
  for (const char* ex : {"hello", "config", "cache"}) {
    auto r = build(fs::path(KISTE_SOURCE_DIR) / "Containerfiles" / ex);
    ASSERT_TRUE(r) << ex << ": " << r.error().to_string();
    // RUN layers are reproducible too: a second root gives the same manifest digest.
    auto r2 = build(fs::path(KISTE_SOURCE_DIR) / "Containerfiles" / ex, {}, &*other);
    ASSERT_TRUE(r2) << ex << ": " << r2.error().to_string();
    EXPECT_EQ(r->manifest.digest, r2->manifest.digest) << ex;
  }
  auto hello = build(fs::path(KISTE_SOURCE_DIR) / "Containerfiles/hello");
  ASSERT_TRUE(hello);
  EXPECT_EQ(read_in_image(hello->manifest, "usr/share/greeting.txt"), "Hello from kiste\n");
  EXPECT_EQ(read_in_image(hello->manifest, "src/greeting.txt"), "");  // the build stage stays behind
}

TEST_F(BuilderTest, RunCacheMountCountsRealRunsOnly) {
  write(tmp_ / "ctx/Containerfile",
        "FROM busybox\nCOPY in.txt /in.txt\n"
        "RUN --mount=type=cache,id=counter,target=/cache echo run >> /cache/runs && cp /in.txt /out.txt\n");
  write(tmp_ / "ctx/in.txt", "1\n");
  auto count = [&] {
    return sys::read_file(store_->root() / "cache" / "mounts" /
                          std::string(image::Digest::of("counter").hex().substr(0, 32)) / "runs", 1 << 16)
        .value_or("");
  };
  auto r1 = build(tmp_ / "ctx");
  ASSERT_TRUE(r1) << r1.error().to_string();
  EXPECT_EQ(count(), "run\n");
  auto r2 = build(tmp_ / "ctx");
  ASSERT_TRUE(r2);
  EXPECT_EQ(count(), "run\n");  // the cached rebuild ran nothing
  EXPECT_EQ(r2->steps_run, 0);
  EXPECT_EQ(r1->manifest.digest, r2->manifest.digest);
  EXPECT_EQ(read_in_image(r2->manifest, "out.txt"), "1\n");
  EXPECT_EQ(read_in_image(r2->manifest, "cache/runs"), "");  // the cache is not in a layer
}

TEST_F(BuilderTest, SecretsNeverReachLayersHistoryOrConfig) {
  const std::string secret = "s3cr3t-" + sys::random_hex(8);
  write(tmp_ / "secret", secret);
  write(tmp_ / "ctx/Containerfile",
        "FROM busybox\nRUN --mount=type=secret,id=tok test \"$(cat /run/secrets/tok)\" != \"\" && echo ok > /ok\n");
  auto r = build(tmp_ / "ctx", {.secrets = {{"tok", tmp_ / "secret"}}});
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(read_in_image(r->manifest, "ok"), "ok\n");
  std::string out;
  int rc = testing::run_shell(fmt::format("for f in {}/blobs/sha256/*; do (zcat -f $f | grep -a -c {}) ; done | grep -v '^0$' | wc -l",
                                          store_->root().string(), secret), &out);
  EXPECT_EQ(rc, 0);
  EXPECT_EQ(out, "0\n");
  EXPECT_EQ(read_in_image(r->manifest, "run/secrets/tok"), "");
}

}  // namespace
}  // namespace kiste::builder
