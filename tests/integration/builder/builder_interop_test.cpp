// Interop through the kiste binary: an image built by `kiste build --output type=oci` is read by
// skopeo and unpacked by umoci; buildah builds the same Containerfile; both programs print the
// same. Needs RUN (the runtime part) and the peers; skips with a reason otherwise.
#include <gtest/gtest.h>

#include <kiste/builder/builder.hpp>
#include <kiste/testing/kiste_cli.hpp>
#include <kiste/testing/require_root.hpp>
#include <kiste/testing/temp_root.hpp>

namespace kiste::builder {
namespace {

namespace fs = std::filesystem;
using testing::run_shell;

bool have(const char* tool) {
  return run_shell(fmt::format("command -v {} >/dev/null 2>&1", tool)) == 0;
}

TEST(BuilderInterop, KisteImageUnpacksWithUmociAndMatchesBuildah) {
  KISTE_REQUIRE_ROOT();
  if (!make_runtime_executor({})) GTEST_SKIP() << "RUN needs the runtime part, which this tree does not have yet";
  for (const char* t : {"skopeo", "umoci"}) {
    if (!have(t)) GTEST_SKIP() << t << " is not installed (scripts/setup.sh installs it)";
  }
  testing::TempRoot tmp;
  const fs::path w = tmp.path();
  const std::string k = fmt::format("{} --root {}/root", testing::kiste_binary().string(), w.string());
  const std::string ctx = std::string(KISTE_SOURCE_DIR) + "/Containerfiles/hello";
  std::string out;
  ASSERT_EQ(run_shell(fmt::format("{} import {} busybox", k, testing::busybox_tar().native()), &out), 0) << out;
  ASSERT_EQ(run_shell(fmt::format("{} build -q --network none -t hello --output type=oci,dest={}/hello.tar {}", k, w.string(), ctx), &out), 0) << out;
  ASSERT_EQ(run_shell(fmt::format("skopeo copy -q oci-archive:{0}/hello.tar oci:{0}/layout:hello && "
                                  "umoci unpack --image {0}/layout:hello {0}/bundle",
                                  w.string()), &out), 0) << out;
  std::string kiste_out;
  ASSERT_EQ(run_shell(fmt::format("chroot {}/bundle/rootfs /usr/local/bin/greet", w.string()), &kiste_out), 0) << kiste_out;
  EXPECT_EQ(kiste_out, "Hello from kiste\n");
  if (!have("buildah")) GTEST_SKIP() << "buildah is not installed: the kiste half passed";
  const std::string b = fmt::format("buildah --root {0}/broot --runroot {0}/brun --storage-driver vfs", w.string());
  ASSERT_EQ(run_shell(fmt::format("{0} save --format oci-archive -o {1}/bb.oci.tar busybox && "
                                  "id=$({2} pull -q oci-archive:{1}/bb.oci.tar) && {2} tag $id busybox && "
                                  "{2} bud -q --layers --pull=never --runtime runc --network none -t bhello {3} && "
                                  "{2} push -q bhello oci:{1}/blayout:hello && "
                                  "umoci unpack --image {1}/blayout:hello {1}/bbundle",
                                  k, w.string(), b, ctx), &out), 0) << out;
  std::string buildah_out;
  ASSERT_EQ(run_shell(fmt::format("chroot {}/bbundle/rootfs /usr/local/bin/greet", w.string()), &buildah_out), 0);
  EXPECT_EQ(buildah_out, kiste_out);
  (void)run_shell(b + " rmi --all --force >/dev/null 2>&1");
  EXPECT_TRUE(testing::mounts_below(w).empty());
}

}  // namespace
}  // namespace kiste::builder
