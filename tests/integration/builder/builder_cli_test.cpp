// `kiste build` through the binary: several -t, -q, --output type=docker-archive|oci,
// --format docker, --progress=plain explaining a miss, one-line errors with file:line:column.
#include <fstream>

#include <gtest/gtest.h>

#include <kiste/testing/require_root.hpp>
#include <kiste/testing/temp_root.hpp>

#include "builder_fixture.hpp"

namespace {

namespace fs = std::filesystem;
using kiste::builder::test::sh;
using kiste::builder::test::write;

TEST(BuildCli, TagsOutputsFormatsAndErrors) {
  KISTE_REQUIRE_ROOT();
  kiste::testing::TempRoot tmp;
  const std::string w = tmp.path().string();
  const std::string k = fmt::format("{} --root {}/root", kiste::testing::kiste_binary().string(), w);
  std::string out;
  ASSERT_EQ(sh(fmt::format("{} import {} busybox", k, kiste::testing::busybox_tar().native()), &out), 0) << out;
  write(tmp / "ctx/Containerfile", "FROM busybox\nCOPY --from=busybox /bin/busybox /bb\nCOPY msg /msg\nCMD [\"cat\", \"/msg\"]\n");
  write(tmp / "ctx/msg", "one\n");
  std::string digest;
  ASSERT_EQ(sh(fmt::format("{} build -q -t a:1 -t b:2 --output type=docker-archive,dest={}/d.tar "
                                  "--output type=oci,dest={}/o.tar {}/ctx", k, w, w, w), &digest), 0) << digest;
  ASSERT_EQ(digest.rfind("sha256:", 0), 0u) << digest;
  EXPECT_EQ(digest.size(), 7u + 64u + 1u);  // -q: only the digest
  ASSERT_EQ(sh(fmt::format("{} images", k), &out), 0);
  EXPECT_NE(out.find("a "), std::string::npos) << out;
  EXPECT_NE(out.find("b "), std::string::npos) << out;
  EXPECT_EQ(sh(fmt::format("tar -tf {}/d.tar manifest.json && tar -tf {}/o.tar index.json", w, w)), 0);
  // The docker-archive loads back into a fresh root.
  EXPECT_EQ(sh(fmt::format("{} --root {}/root2 load -i {}/d.tar", kiste::testing::kiste_binary().string(), w, w), &out), 0) << out;
  // --format docker writes Docker media types.
  ASSERT_EQ(sh(fmt::format("{} build -q --format docker -t d:1 {}/ctx", k, w), &out), 0) << out;
  std::string m;
  ASSERT_EQ(sh(fmt::format("cat {}/root/blobs/sha256/$({} inspect -f '{{{{.Descriptor.digest}}}}' d:1 | cut -d: -f2)", w, k), &m), 0);
  EXPECT_NE(m.find("application/vnd.docker.distribution.manifest.v2+json"), std::string::npos) << m;
  // --progress=plain shows the cached steps and why a step missed.
  write(tmp / "ctx/msg", "two\n");
  ASSERT_EQ(sh(fmt::format("{} build --progress=plain -t a:1 {}/ctx 2>&1", k, w), &out), 0) << out;
  EXPECT_NE(out.find("CACHED"), std::string::npos) << out;
  EXPECT_NE(out.find("cache miss: now   src msg"), std::string::npos) << out;
  EXPECT_NE(out.find("[stage-0 3/4] COPY msg /msg"), std::string::npos) << out;
  // Errors: one line, file:line:column, exit 125.
  write(tmp / "ctx/Containerfile", "FROM busybox\nCOPPY msg /msg\n");
  int rc = sh(fmt::format("{} build {}/ctx 2>&1", k, w), &out);
  EXPECT_EQ(rc, 125);
  EXPECT_EQ(out, "kiste: error: build: Containerfile:2:1: unknown instruction `COPPY` (did you mean `COPY`?)\n");
  EXPECT_TRUE(kiste::testing::mounts_below(tmp.path()).empty());
}

}  // namespace

namespace {

// The e2e: build each example and run it with `kiste run`, checking its output.
TEST(BuildCli, ExamplesRunWithKisteRun) {
  KISTE_REQUIRE_ROOT();
  kiste::testing::TempRoot tmp;
  const std::string w = tmp.path().string();
  const std::string k = fmt::format("{} --root {}/root", kiste::testing::kiste_binary().string(), w);
  std::string out;
  ASSERT_EQ(sh(fmt::format("SOURCE_DATE_EPOCH=0 {} import {} busybox", k, kiste::testing::busybox_tar().native()), &out), 0) << out;
  const std::pair<const char*, const char*> cases[] = {
      {"hello", "Hello from kiste\n"},
      {"config", "version=1.0 user=1000 dir=/srv/app\n"},
      {"cache", "cached input\n"},
  };
  for (const auto& [ex, want] : cases) {
    ASSERT_EQ(sh(fmt::format("{} build -q --network none -t ex-{} {}/Containerfiles/{}", k, ex, KISTE_SOURCE_DIR, ex), &out), 0) << ex << ": " << out;
    ASSERT_EQ(sh(fmt::format("{} run --rm ex-{} 2>&1", k, ex), &out), 0) << ex << ": " << out;
    EXPECT_EQ(out, want) << ex;
  }
  EXPECT_TRUE(kiste::testing::mounts_below(tmp.path()).empty());
}

}  // namespace
