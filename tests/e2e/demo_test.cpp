// The README's first command, end to end: scripts/demo.sh builds an image, pushes it to a real
// registry it starts, promotes it with --expect-digest, pulls it into a fresh store and runs it.
#include <gtest/gtest.h>

#include <kiste/testing/require_root.hpp>
#include <kiste/testing/temp_root.hpp>

namespace kiste::testing {
namespace {

TEST(Demo, WholeStoryRunsGreenAndLeavesNothingBehind) {
  KISTE_REQUIRE_ROOT();
  std::string out;
  int rc = run_shell("KISTE_DEMO_SKIP_BUILD=1 KISTE=" + kiste_binary().native() + " bash " +
                         std::string(KISTE_SOURCE_DIR) + "/scripts/demo.sh",
                     &out);
  ASSERT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("digests are equal"), std::string::npos) << out;
  EXPECT_NE(out.find("blobs uploaded to prod: 0"), std::string::npos) << out;
  EXPECT_NE(out.find("Hello from kiste"), std::string::npos) << out;
  std::string procs;
  run_shell("pgrep -f '[d]ocker-registry serve /tmp/kiste-demo' || true", &procs);
  EXPECT_EQ(procs, "") << "the demo's registry is still running";
  EXPECT_TRUE(mounts_below("/tmp").empty() ||
              std::none_of(mounts_below("/tmp").begin(), mounts_below("/tmp").end(),
                           [](const std::string& m) { return m.find("kiste-demo") != std::string::npos; }));
}

}  // namespace
}  // namespace kiste::testing
