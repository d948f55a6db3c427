// Issue 21: multi-platform images through the kiste binary. The arm64 base is Debian's
// busybox-static:arm64 (downloaded by scripts/setup.sh, unpacked with dpkg-deb -x), imported with
// --platform linux/arm64; arm64 programs run under qemu-user through the binfmt_misc handler
// with the F flag that scripts/setup.sh registers (kiste only detects it). The test without a
// handler hides binfmt_misc in a mount namespace of its own and never touches the host's.
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <kiste/testing/kiste_cli.hpp>
#include <kiste/testing/registry_process.hpp>
#include <kiste/testing/require_root.hpp>
#include <kiste/testing/temp_root.hpp>

namespace kiste::testing {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

// A tiny two-stage Containerfile: the tools stage runs on the build platform (natively), the
// final stage's RUN on the target platform (under qemu-user for arm64).
constexpr const char* kContainerfile =
    "FROM --platform=$BUILDPLATFORM busybox AS tools\n"
    "ARG TARGETARCH\n"
    "ARG BUILDPLATFORM\n"
    "RUN echo \"$(uname -m) $BUILDPLATFORM for $TARGETARCH\" > /tool\n"
    "FROM busybox\n"
    "ARG TARGETPLATFORM\n"
    "ARG TARGETOS\n"
    "ARG TARGETVARIANT\n"
    "COPY --from=tools /tool /tool\n"
    "RUN uname -m > /arch && echo \"$TARGETPLATFORM $TARGETOS [$TARGETVARIANT]\" > /platform\n";

class MultiArch : public ::testing::Test {
 protected:
  void SetUp() override {
    KISTE_REQUIRE_ROOT();
    std::string out;
    ASSERT_EQ(run_shell("grep -q '^flags: .*F' /proc/sys/fs/binfmt_misc/qemu-aarch64", &out), 0)
        << "no qemu-aarch64 binfmt_misc handler with the F flag: run scripts/setup.sh " << out;
  }
  void TearDown() override { EXPECT_TRUE(mounts_below(tmp_.path()).empty()); }

  // busybox-amd64 and busybox-arm64 from Debian's busybox-static, and `busybox` the list of both.
  // Dated 1970 (SOURCE_DATE_EPOCH=0), so that two roots hold the same bases.
  void import_bases(const KisteCli& k) {
    std::string out;
    ASSERT_EQ(run_shell("SOURCE_DATE_EPOCH=0 " +
                            kiste_command(k.root(), "import " + busybox_tar().native() + " busybox-amd64"),
                        &out),
              0)
        << out;
    ASSERT_EQ(run_shell("SOURCE_DATE_EPOCH=0 " +
                            kiste_command(k.root(), "import --platform linux/arm64 " +
                                                        busybox_tar_arm64().native() + " busybox-arm64"),
                        &out),
              0)
        << out;
    auto r = k.run("manifest create busybox busybox-amd64 busybox-arm64");
    ASSERT_EQ(r.status, 0) << r.output;
  }

  fs::path context() {
    fs::path d = tmp_ / "ctx";
    fs::create_directories(d);
    std::ofstream(d / "Containerfile") << kContainerfile;
    return d;
  }

  TempRoot tmp_{"kiste-e2e-"};
  KisteCli kiste_{tmp_ / "root"};
};

TEST_F(MultiArch, Arm64BusyboxFromDebianRunsUnderQemuUser) {
  import_bases(kiste_);
  auto r = kiste_.run("inspect -f '{{.Architecture}}' busybox-arm64");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(trim(r.output), "arm64");
  r = kiste_.run("run --rm --platform linux/arm64 busybox-arm64 uname -m");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(r.output, "aarch64\n");
  r = kiste_.run("run --rm busybox-arm64 uname -m");  // an arm64-only image, no --platform
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(r.output, "aarch64\n");
  // The list picks the platform: arm64 under qemu-user, the host's natively.
  r = kiste_.run("run --rm --platform linux/arm64 busybox uname -m");
  EXPECT_EQ(r.output, "aarch64\n");
  r = kiste_.run("run --rm busybox uname -m");
  EXPECT_EQ(r.output, "x86_64\n");
  // Asking an arm64-only image for amd64 stays an error.
  r = kiste_.run("run --rm --platform linux/amd64 busybox-arm64 true");
  EXPECT_EQ(r.status, 125) << r.output;
}

// Without a handler, run and a build's RUN fail with one line that says what to install and how
// to register it. The test's own mount namespace covers binfmt_misc with a tmpfs: bare (as if
// binfmt_misc were not mounted), or with the `register` and `status` files of a binfmt_misc that
// has no handler. The host's registration is never touched.
TEST_F(MultiArch, WithoutBinfmtHandlerOneLineNamesQemuUserStatic) {
  import_bases(kiste_);
  fs::path ctx = context();
  auto in_ns = [&](const std::string& setup, const std::string& args) {
    std::string out;
    int rc = run_shell("unshare -m --propagation private sh -c 'mount -t tmpfs none "
                       "/proc/sys/fs/binfmt_misc && " + setup + kiste_command(kiste_.root(), args) + "'",
                       &out);
    return CliResult{.status = rc, .output = out};
  };
  const std::string how =
      "install Debian's qemu-user-static and binfmt-support, then register it with "
      "`update-binfmts --enable qemu-aarch64`\n";
  const std::string empty =
      "touch /proc/sys/fs/binfmt_misc/register /proc/sys/fs/binfmt_misc/status && ";
  auto r = in_ns(empty, "run --rm busybox-arm64 uname -m");
  EXPECT_EQ(r.status, 125) << r.output;
  EXPECT_EQ(r.output, "kiste: error: image `busybox-arm64`: image is linux/arm64, this host is "
                      "linux/amd64: no binfmt_misc handler with the F (fix-binary) flag runs aarch64 "
                      "programs; " + how);
  r = in_ns(empty, "run --rm --platform linux/arm64 busybox uname -m");  // from the list
  EXPECT_EQ(r.status, 125) << r.output;
  EXPECT_EQ(count_lines(r.output), 1u) << r.output;
  r = in_ns("", "run --rm busybox-arm64 uname -m");
  EXPECT_EQ(r.status, 125) << r.output;
  EXPECT_EQ(count_lines(r.output), 1u) << r.output;
  EXPECT_NE(r.output.find("binfmt_misc is not mounted at `/proc/sys/fs/binfmt_misc`"), std::string::npos)
      << r.output;
  EXPECT_TRUE(r.output.ends_with(how)) << r.output;
  r = in_ns(empty, "build -q --network none --platform linux/arm64 -t x " + ctx.native());
  EXPECT_EQ(r.status, 125) << r.output;
  EXPECT_TRUE(r.output.ends_with(how)) << r.output;
  // The host's registration is untouched, and the failed build named nothing.
  EXPECT_EQ(run_shell("grep -q '^enabled' /proc/sys/fs/binfmt_misc/qemu-aarch64"), 0);
  r = kiste_.run("inspect x");
  EXPECT_EQ(r.status, 125) << r.output;
}

TEST_F(MultiArch, ManifestCommandsAssembleAnIndexInTheStore) {
  import_bases(kiste_);
  auto r = kiste_.run("manifest inspect busybox");
  ASSERT_EQ(r.status, 0) << r.output;
  json idx = json::parse(r.output);
  EXPECT_EQ(idx["mediaType"], "application/vnd.oci.image.index.v1+json");
  ASSERT_EQ(idx["manifests"].size(), 2u) << r.output;
  EXPECT_EQ(idx["manifests"][0]["platform"]["architecture"], "amd64");
  EXPECT_EQ(idx["manifests"][1]["platform"]["architecture"], "arm64");
  const std::string arm = idx["manifests"][1]["digest"];

  r = kiste_.run("manifest create busybox busybox-amd64");
  EXPECT_EQ(r.status, 125);
  EXPECT_NE(r.output.find("already exists"), std::string::npos) << r.output;
  r = kiste_.run("manifest create --amend busybox busybox-arm64");  // already there: no change
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(json::parse(kiste_.run("manifest inspect busybox").output), idx);
  r = kiste_.run("manifest remove busybox " + arm);
  ASSERT_EQ(r.status, 0) << r.output;
  r = kiste_.run("manifest inspect busybox");
  EXPECT_EQ(json::parse(r.output)["manifests"].size(), 1u) << r.output;
  r = kiste_.run("manifest remove busybox " + arm);
  EXPECT_EQ(r.status, 125) << r.output;
  r = kiste_.run("manifest add busybox busybox-arm64");
  ASSERT_EQ(r.status, 0) << r.output;
  r = kiste_.run("manifest add busybox busybox-arm64");  // the same image again: no duplicate
  r = kiste_.run("manifest inspect busybox");
  EXPECT_EQ(json::parse(r.output)["manifests"].size(), 2u) << r.output;
  // Single images are not lists.
  r = kiste_.run("manifest inspect busybox-arm64");
  EXPECT_EQ(r.status, 125);
  EXPECT_EQ(count_lines(r.output), 1u) << r.output;
  EXPECT_NE(r.output.find("is an image, not a manifest list"), std::string::npos) << r.output;
  r = kiste_.run("manifest add busybox-arm64 busybox-amd64");
  EXPECT_EQ(r.status, 125);
  r = kiste_.run("manifest rm busybox-arm64");
  EXPECT_EQ(r.status, 125);
  r = kiste_.run("manifest rm busybox");
  ASSERT_EQ(r.status, 0) << r.output;
  r = kiste_.run("manifest inspect busybox");
  EXPECT_EQ(r.status, 125);
  r = kiste_.run("run --rm busybox-arm64 true");  // its images stay
  EXPECT_EQ(r.status, 0) << r.output;
}

// The demonstration: one command builds both platforms into one index, each runs as its
// architecture, the cross stage ran natively, a rebuild and a second root give the same index
// digest, and the index goes through a registry and back one platform at a time.
TEST_F(MultiArch, BuildTwoPlatformsPushAndPullOne) {
  import_bases(kiste_);
  fs::path ctx = context();
  const std::string build = "build -q --network none --platform linux/amd64,linux/arm64 -t multi " + ctx.native();
  auto r = kiste_.run(build);
  ASSERT_EQ(r.status, 0) << r.output;
  const std::string digest = trim(r.output);
  ASSERT_TRUE(digest.starts_with("sha256:")) << r.output;

  r = kiste_.run("manifest inspect multi");
  ASSERT_EQ(r.status, 0) << r.output;
  json idx = json::parse(r.output);
  ASSERT_EQ(idx["manifests"].size(), 2u) << r.output;
  EXPECT_EQ(idx["manifests"][0]["platform"]["architecture"], "amd64");
  EXPECT_EQ(idx["manifests"][1]["platform"]["architecture"], "arm64");

  r = kiste_.run("run --rm --platform linux/arm64 multi cat /arch /platform /tool");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(r.output, "aarch64\nlinux/arm64 linux []\nx86_64 linux/amd64 for arm64\n");
  r = kiste_.run("run --rm --platform linux/amd64 multi cat /arch /platform /tool");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(r.output, "x86_64\nlinux/amd64 linux []\nx86_64 linux/amd64 for amd64\n");

  // Reproducible: a rebuild that runs every step, and a build in another root.
  r = kiste_.run(build + " --no-cache");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(trim(r.output), digest);
  KisteCli other(tmp_ / "other");
  import_bases(other);
  r = other.run(build);
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(trim(r.output), digest);

  std::string why;
  auto reg = RegistryProcess::start({}, &why);
  ASSERT_TRUE(reg) << why;
  const std::string dest = reg->host() + "/multi:1";
  r = kiste_.run("manifest push multi docker://" + dest);
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(trim(r.output).substr(trim(r.output).rfind('\n') + 1), digest) << r.output;
  std::string raw;
  ASSERT_EQ(run_shell("skopeo inspect --raw --tls-verify=false docker://" + dest, &raw), 0) << raw;
  json remote = json::parse(raw);
  EXPECT_EQ(remote["mediaType"], "application/vnd.oci.image.index.v1+json");
  EXPECT_EQ(remote["manifests"].size(), 2u) << raw;
  EXPECT_EQ(remote, idx);

  // build --push pushes the same index (every image, then the index).
  r = kiste_.run("build -q --network none --platform linux/amd64,linux/arm64 --push -t " + reg->host() +
                 "/multi:2 " + ctx.native());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(trim(r.output), digest);
  raw.clear();
  ASSERT_EQ(run_shell("skopeo inspect --raw --tls-verify=false docker://" + reg->host() + "/multi:2", &raw), 0);
  EXPECT_EQ(json::parse(raw), idx) << raw;

  KisteCli fresh(tmp_ / "fresh");
  r = fresh.run("pull -q --platform linux/arm64 " + dest);
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(trim(r.output), idx["manifests"][1]["digest"]) << r.output;
  r = fresh.run("run --rm " + dest + " cat /arch");
  EXPECT_EQ(r.output, "aarch64\n");
  // Only the arm64 image came: the amd64 manifest is not in the fresh store.
  const std::string amd = idx["manifests"][0]["digest"];
  EXPECT_FALSE(fs::exists(tmp_ / "fresh/blobs/sha256" / amd.substr(7)));
  EXPECT_TRUE(fs::exists(tmp_ / "fresh/blobs/sha256" / std::string(idx["manifests"][1]["digest"]).substr(7)));
}

// --sbom/--provenance with several platforms: one SBOM and one provenance per platform image,
// each with that image's manifest as its subject, the index digest the one a build without them
// gives; build --push carries them, each listed in the referrers tag schema index of its
// platform image (Debian's registry has no referrers API), read back with curl.
TEST_F(MultiArch, AttestationsPerPlatformImageLeaveTheIndexDigestAlone) {
  import_bases(kiste_);
  fs::path ctx = context();
  const std::string platforms = "build --network none --platform linux/amd64,linux/arm64 ";
  auto plain = kiste_.run(platforms + "-q -t plain " + ctx.native());
  ASSERT_EQ(plain.status, 0) << plain.output;
  const std::string digest = trim(plain.output);

  std::string why;
  auto reg = RegistryProcess::start({}, &why);
  ASSERT_TRUE(reg) << why;
  const std::string dest = reg->host() + "/multi:att";
  auto r = kiste_.run(platforms + "--sbom --provenance --push -t " + dest + " " + ctx.native() +
                      " 2>&1");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(trim(r.output).substr(trim(r.output).rfind('\n') + 1), digest) << r.output;

  auto idx = kiste_.run("manifest inspect " + dest);
  ASSERT_EQ(idx.status, 0) << idx.output;
  json index = json::parse(idx.output, nullptr, false);
  ASSERT_EQ(index["manifests"].size(), 2u) << idx.output;
  for (const auto& child : index["manifests"]) {
    const std::string d = child["digest"];
    const std::string arch = child["platform"]["architecture"];
    // The build said which attestations it attached to this image.
    for (const char* type : {"application/spdx+json", "application/vnd.in-toto+json"}) {
      EXPECT_NE(r.output.find(std::string("attached ") + type + " sha256:"), std::string::npos)
          << r.output;
    }
    EXPECT_NE(r.output.find(" to " + d + " (linux/" + arch + ")"), std::string::npos) << r.output;
    std::string body;
    ASSERT_EQ(run_shell("curl -sf -H 'Accept: application/vnd.oci.image.index.v1+json' http://" +
                            reg->host() + "/v2/multi/manifests/sha256-" + d.substr(7),
                        &body),
              0)
        << arch;
    json refs = json::parse(body, nullptr, false);
    ASSERT_EQ(refs["manifests"].size(), 2u) << body;
    for (const auto& a : refs["manifests"]) {
      std::string art;
      ASSERT_EQ(run_shell("curl -sf -H 'Accept: application/vnd.oci.image.manifest.v1+json' "
                          "http://" + reg->host() + "/v2/multi/manifests/" +
                              a["digest"].get<std::string>(),
                          &art),
                0);
      json m = json::parse(art, nullptr, false);
      EXPECT_EQ(m["subject"]["digest"], d) << art;
      if (a["artifactType"] == "application/vnd.in-toto+json") {
        std::string doc;
        ASSERT_EQ(run_shell("curl -sf http://" + reg->host() + "/v2/multi/blobs/" +
                                m["layers"][0]["digest"].get<std::string>(),
                            &doc),
                  0);
        json stmt = json::parse(doc, nullptr, false);
        EXPECT_EQ(stmt["subject"][0]["digest"]["sha256"], d.substr(7)) << doc;
        EXPECT_EQ(stmt["predicate"]["buildDefinition"]["externalParameters"].value("platform", ""),
                  "linux/" + arch)
            << doc;
      }
    }
  }
  // The index itself has none: they belong to the platform images.
  std::string none;
  EXPECT_NE(run_shell("curl -sf http://" + reg->host() + "/v2/multi/manifests/sha256-" +
                          digest.substr(7),
                      &none),
            0)
      << none;
  // promote carries each platform image's attestations with the index.
  auto p = kiste_.run("promote -q " + dest + " " + reg->host() + "/prod/multi:1 2>&1");
  ASSERT_EQ(p.status, 0) << p.output;
  for (const auto& child : index["manifests"]) {
    const std::string d = child["digest"];
    std::string body;
    ASSERT_EQ(run_shell("curl -sf -H 'Accept: application/vnd.oci.image.index.v1+json' http://" +
                            reg->host() + "/v2/prod/multi/manifests/sha256-" + d.substr(7),
                        &body),
              0)
        << d;
    EXPECT_EQ(json::parse(body, nullptr, false)["manifests"].size(), 2u) << body;
  }
  // And so does a release of it.
  std::ofstream(tmp_ / "release.txt") << dest << " " << reg->host() << "/rel/multi:1\n";
  auto rel = kiste_.run("promote -q --release " + (tmp_ / "release.txt").native() + " 2>&1");
  ASSERT_EQ(rel.status, 0) << rel.output;
  for (const auto& child : index["manifests"]) {
    const std::string d = child["digest"];
    std::string body;
    ASSERT_EQ(run_shell("curl -sf -H 'Accept: application/vnd.oci.image.index.v1+json' http://" +
                            reg->host() + "/v2/rel/multi/manifests/sha256-" + d.substr(7),
                        &body),
              0)
        << d;
    EXPECT_EQ(json::parse(body, nullptr, false)["manifests"].size(), 2u) << body;
  }
}

}  // namespace
}  // namespace kiste::testing
