// Issue 14, honest output through the kiste binary: `inspect` in docker's shape with -f
// templates, --platform on build and run, what `run --help` says about networks, and progress
// on a terminal for import and the first run.
#include <sys/utsname.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <kiste/testing/kiste_cli.hpp>
#include <kiste/testing/temp_root.hpp>

namespace kiste::testing {
namespace {

namespace fs = std::filesystem;

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

class HonestOutput : public ::testing::Test {
 protected:
  TempRoot tmp_{"kiste-e2e-"};
  KisteCli kiste_{tmp_ / "root"};

  // Returns the image id import prints.
  std::string import_busybox(const std::string& name, const std::string& extra = "") {
    auto r = kiste_.run("import -c 'CMD [\"/bin/sh\"]' -c 'ENV A=1' " + extra + " " +
                        busybox_tar().native() + " " + name + " 2>/dev/null");
    EXPECT_EQ(r.status, 0) << r.output;
    return trim(r.output);
  }
};

std::string host_arch() {
  struct utsname u {};
  ::uname(&u);
  std::string m = u.machine;
  return m == "x86_64" ? "amd64" : m == "aarch64" ? "arm64" : m;
}

TEST_F(HonestOutput, InspectHasDockersShape) {
  std::string id = import_busybox("busybox:1");
  ASSERT_TRUE(kiste_.run("tag busybox:1 busybox:latest").status == 0);
  auto r = kiste_.run("inspect busybox:1 2>&1");
  ASSERT_EQ(r.status, 0) << r.output;
  auto j = nlohmann::json::parse(r.output, nullptr, false);
  ASSERT_TRUE(j.is_array() && j.size() == 1) << r.output;
  const auto& o = j[0];
  EXPECT_EQ(o["Id"], id);
  EXPECT_EQ(o["RepoTags"], nlohmann::json({"busybox:1", "busybox:latest"}));
  ASSERT_EQ(o["RepoDigests"].size(), 1u) << r.output;
  EXPECT_TRUE(o["RepoDigests"][0].get<std::string>().starts_with("busybox@sha256:")) << r.output;
  EXPECT_EQ(o["Os"], "linux");
  EXPECT_EQ(o["Architecture"], host_arch());
  EXPECT_EQ(o["Config"]["Cmd"], nlohmann::json({"/bin/sh"}));
  EXPECT_TRUE(o["Config"].contains("Entrypoint"));
  EXPECT_EQ(o["RootFS"]["Type"], "layers");
  EXPECT_EQ(o["RootFS"]["Layers"].size(), 1u);
  EXPECT_TRUE(o["RootFS"]["Layers"][0].get<std::string>().starts_with("sha256:"));
  // Size is unpacked (busybox-static is ~2 MB unpacked, well above its gzip size).
  EXPECT_GT(o["Size"].get<int64_t>(), o["CompressedSize"].get<int64_t>()) << r.output;
  EXPECT_TRUE(o.contains("Created") && o.contains("Metadata"));
  EXPECT_EQ(o["Descriptor"]["digest"].get<std::string>(),
            o["RepoDigests"][0].get<std::string>().substr(std::string("busybox@").size()));
  // Two names: one array with both.
  r = kiste_.run("inspect busybox:1 " + id.substr(7, 12));
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(nlohmann::json::parse(r.output).size(), 2u);
}

TEST_F(HonestOutput, InspectFormatTemplates) {
  std::string id = import_busybox("busybox:1");
  auto r = kiste_.run("inspect -f '{{.Id}}' busybox:1");
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(r.output, id + "\n");
  r = kiste_.run("inspect --format '{{.Config.Env}}' busybox:1");
  EXPECT_EQ(r.output, "[A=1]\n");
  r = kiste_.run("inspect -f '{{json .Config.Cmd}}' busybox:1");
  EXPECT_EQ(r.output, "[\"/bin/sh\"]\n");
  r = kiste_.run("inspect -f 'tag={{index .RepoTags 0}} os={{.Os}}' busybox:1 busybox:1");
  EXPECT_EQ(r.output, "tag=busybox:1 os=linux\ntag=busybox:1 os=linux\n");
  r = kiste_.run("image inspect -f '{{json .RootFS}}' busybox:1");
  auto rootfs = nlohmann::json::parse(r.output, nullptr, false);
  ASSERT_TRUE(rootfs.is_object()) << r.output;
  EXPECT_EQ(rootfs["Type"], "layers");

  // Unsupported and failing templates: one line, 125, nothing printed to stdout.
  for (const char* bad : {"{{range .RepoTags}}{{.}}{{end}}", "{{index .RepoTags 3}}",
                          "{{.Id.Short}}", "{{nope .Id}}"}) {
    r = kiste_.run(std::string("inspect -f '") + bad + "' busybox:1");
    EXPECT_EQ(r.status, 125) << bad << ": " << r.output;
    EXPECT_TRUE(r.output.starts_with("kiste: error: template `")) << bad << ": " << r.output;
    EXPECT_EQ(count_lines(r.output), 1u) << bad << ": " << r.output;
  }
}

std::string other_platform() {
  return host_arch() == "arm64" ? "linux/amd64" : "linux/arm64";
}

TEST_F(HonestOutput, RunPlatformMustBeWhatTheImageIs) {
  import_busybox("busybox");
  auto r = kiste_.run("run --rm --platform " + other_platform() + " busybox true");
  EXPECT_EQ(r.status, 125) << r.output;
  EXPECT_EQ(r.output, "kiste: error: image `busybox`: no manifest for platform " +
                          other_platform() + " (it has: linux/" + host_arch() + ")\n");
  r = kiste_.run("run --rm --platform banana/ busybox true");
  EXPECT_EQ(r.status, 125) << r.output;
  EXPECT_EQ(count_lines(r.output), 1u) << r.output;
  if (::geteuid() != 0) GTEST_SKIP() << "running a container needs root";
  r = kiste_.run("run --rm --platform linux/" + host_arch() + " busybox echo same-platform");
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("same-platform"), std::string::npos) << r.output;
}

TEST_F(HonestOutput, BuildPlatformTheBaseDoesNotHaveIsRefusedAndTagsNothing) {
  import_busybox("busybox");
  fs::create_directories(tmp_ / "ctx");
  {
    std::ofstream(tmp_ / "ctx" / "Containerfile") << "FROM busybox\nCOPY f /f\n";
    std::ofstream(tmp_ / "ctx" / "f") << "x\n";
  }
  auto r = kiste_.run("build --platform " + other_platform() + " -t cross:1 " +
                      (tmp_ / "ctx").native());
  EXPECT_EQ(r.status, 125) << r.output;
  std::string want = "image `busybox`: no manifest for platform " + other_platform() +
                     " (it has: linux/" + host_arch() + ")\n";
  ASSERT_GE(r.output.size(), want.size()) << r.output;
  EXPECT_EQ(r.output.substr(r.output.size() - want.size()), want) << r.output;
  EXPECT_NE(r.output.find("kiste: error: "), std::string::npos) << r.output;
  EXPECT_EQ(kiste_.run("images -q cross").output, "");

  {
    std::ofstream(tmp_ / "ctx" / "Containerfile")
        << "FROM --platform=" << other_platform() << " busybox\nCOPY f /f\n";
  }
  r = kiste_.run("build -t cross:2 " + (tmp_ / "ctx").native());
  EXPECT_EQ(r.status, 125) << r.output;
  EXPECT_NE(r.output.find("no manifest for platform " + other_platform()), std::string::npos)
      << r.output;
  EXPECT_EQ(kiste_.run("images -q cross").output, "");

  // The host's own platform, asked for explicitly, builds.
  {
    std::ofstream(tmp_ / "ctx" / "Containerfile") << "FROM busybox\nCOPY f /f\n";
  }
  r = kiste_.run("build -q --platform linux/" + host_arch() + " -t same:1 " +
                 (tmp_ / "ctx").native());
  EXPECT_EQ(r.status, 0) << r.output;
  r = kiste_.run("inspect -f '{{.Os}}/{{.Architecture}}' same:1");
  EXPECT_EQ(r.output, "linux/" + host_arch() + "\n");
}

TEST(RunHelp, SaysThatRunHasNoNetworkAndBuildTheDefaultBridge) {
  KisteCli kiste(fs::path("/nonexistent-kiste-root"));
  auto r = kiste.run("run --help");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("a container has no network by default"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("Build RUN steps get a private network namespace on that default bridge"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("`kiste build --network none`"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("`kiste build --network host`"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("--network kiste"), std::string::npos) << r.output;  // the bridge
}

// `kiste --root ROOT ARGS` on a pseudo-terminal (stderr is a terminal), stdin from /dev/null.
int on_pty(const fs::path& root, const std::string& args, std::string* out) {
  return run_shell("script -q -e -c '" + kiste_binary().native() + " --root " + root.native() +
                       " " + args + "' /dev/null < /dev/null",
                   out);
}

TEST_F(HonestOutput, ImportAndTheFirstRunShowProgressOnlyOnATerminal) {
  const std::string tar = busybox_tar().native();
  std::string out;
  ASSERT_EQ(on_pty(kiste_.root(), "import " + tar + " bb:1", &out), 0) << out;
  EXPECT_NE(out.find("checking " + tar + ": done ("), std::string::npos) << out;
  EXPECT_NE(out.find("packing " + tar + ": done ("), std::string::npos) << out;
  EXPECT_NE(out.find("\033[Kpacking " + tar + ": "), std::string::npos) << out;  // live line
  auto r = kiste_.run("import " + tar + " bb:2 2>&1");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(count_lines(r.output), 1u) << r.output;  // the id only
  EXPECT_EQ(r.output.find("checking"), std::string::npos) << r.output;

  if (::geteuid() != 0) GTEST_SKIP() << "running a container needs root";
  out.clear();
  ASSERT_EQ(on_pty(kiste_.root(), "run --rm bb:1 true", &out), 0) << out;
  EXPECT_NE(out.find("layer 1/1 sha256:"), std::string::npos) << out;
  EXPECT_NE(out.find(": unpacked ("), std::string::npos) << out;
  out.clear();
  ASSERT_EQ(on_pty(kiste_.root(), "run --rm bb:1 true", &out), 0) << out;
  EXPECT_EQ(out.find("layer 1/1"), std::string::npos) << out;  // unpacked already: nothing to show

  // Not a terminal: a first run says nothing about its layers.
  KisteCli other(tmp_ / "root2");
  ASSERT_EQ(other.run("import " + tar + " bb:1").status, 0);
  r = other.run("run --rm bb:1 echo quiet 2>&1");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(r.output, "quiet\n");
}

}  // namespace
}  // namespace kiste::testing
