// Issue 14, "a docker user's first hour", through the kiste binary: unknown commands and flags,
// the docker-style commands and aliases, names that look like ids, one image id, sizes and dates
// that tell the truth.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include <kiste/testing/kiste_cli.hpp>
#include <kiste/testing/require_root.hpp>
#include <kiste/testing/temp_root.hpp>

namespace kiste::testing {
namespace {

namespace fs = std::filesystem;

class FirstHour : public ::testing::Test {
 protected:
  TempRoot tmp_{"kiste-e2e-"};
  KisteCli kiste_{tmp_ / "root"};

  std::string import_busybox(const std::string& name = "busybox") {
    auto r = kiste_.run("import -c 'CMD [\"/bin/sh\"]' " + busybox_tar().native() + " " + name +
                        " 2>/dev/null");
    EXPECT_EQ(r.status, 0) << r.output;
    return trim(r.output);
  }
};

TEST_F(FirstHour, DockerRunFlagsKisteLacksAreNamedNotTakenForImages) {
  import_busybox();
  const char* cases[][2] = {
      {"--expose 80 busybox", "--expose: not supported by kiste yet"},
      {"--sysctl a=b busybox", "--sysctl: not supported by kiste yet"},
      {"--device /dev/fuse busybox", "--device: not supported by kiste yet"},
      {"--add-host a:192.0.2.1 busybox", "--add-host needs --network NAME (a bridge network)"},
      {"--dns 192.0.2.53 busybox", "--dns needs --network NAME (a bridge network)"},
      {"--tmpfs /run busybox", "--tmpfs: not supported by kiste yet (use --mount type=tmpfs"},
      {"--label a=b busybox", "--label: not supported by kiste yet"},
      {"--shm-size 1g busybox", "--shm-size: not supported by kiste yet"},
      {"--group-add 10 busybox", "--group-add: not supported by kiste yet"},
      {"--cidfile CIDFILE busybox", "--cidfile: not supported by kiste yet"},
      {"-l a=b busybox", "-l: not supported by kiste yet"},
      {"--rn busybox true", "unknown flag --rn (did you mean --rm?)"},
  };
  for (const auto& [args, want] : cases) {
    std::string line = std::string("run ") + args;
    if (auto at = line.find("CIDFILE"); at != std::string::npos) {
      line.replace(at, 7, (tmp_ / "cid").native());
    }
    auto r = kiste_.run(line);
    EXPECT_EQ(r.status, 125) << args << ": " << r.output;
    EXPECT_EQ(r.output.rfind("kiste: error: " + std::string(want), 0), 0u) << args << ": " << r.output;
    EXPECT_EQ(count_lines(r.output), 1u) << args << ": " << r.output;
    EXPECT_EQ(r.output.find("no image"), std::string::npos) << args << ": " << r.output;
  }
  EXPECT_FALSE(fs::exists(tmp_ / "cid"));
}

TEST_F(FirstHour, UnknownFlagsOfOtherCommandsGetSuggestions) {
  auto r = kiste_.run("build --tga x DIR");
  EXPECT_EQ(r.status, 125);
  EXPECT_EQ(r.output, "kiste: error: unknown flag --tga (did you mean --tag?)\n");
  r = kiste_.run("images --quite");
  EXPECT_EQ(r.status, 125);
  EXPECT_EQ(r.output, "kiste: error: unknown flag --quite (did you mean --quiet?)\n");
  r = kiste_.run("pull --platfrom linux/amd64 x");
  EXPECT_EQ(r.output, "kiste: error: unknown flag --platfrom (did you mean --platform?)\n");
  EXPECT_FALSE(fs::exists(kiste_.root()));  // nothing ran, nothing was created
}

TEST_F(FirstHour, UnknownCommandsAndPlainKiste) {
  auto r = kiste_.run("");
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("Usage: kiste"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("build"), std::string::npos) << r.output;
  r = kiste_.run("biuld");
  EXPECT_EQ(r.status, 125);
  EXPECT_EQ(r.output, "kiste: error: unknown command biuld (did you mean build?)\n");
  for (const char* docker_only : {"unpause", "pause", "history"}) {
    r = kiste_.run(docker_only);
    EXPECT_EQ(r.status, 125) << docker_only;
    EXPECT_EQ(r.output.rfind(std::string("kiste: error: ") + docker_only +
                                 ": not supported by kiste yet (",
                             0),
              0u)
        << r.output;
    EXPECT_EQ(count_lines(r.output), 1u) << r.output;
  }
  r = kiste_.run("image lss");
  EXPECT_EQ(r.status, 125);
  EXPECT_EQ(r.output, "kiste: error: unknown command image lss (did you mean image ls?)\n");
  r = kiste_.run("image");  // a group alone prints its help, as docker does
  EXPECT_EQ(r.status, 0);
  EXPECT_NE(r.output.find("Usage: kiste image"), std::string::npos) << r.output;
  r = kiste_.run("help build");
  EXPECT_EQ(r.status, 0);
  EXPECT_NE(r.output.find("--tag"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(kiste_.root()));
}

TEST_F(FirstHour, VersionInfoAndSystemDf) {
  auto r = kiste_.run("version");
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(r.output.rfind("kiste version ", 0), 0u) << r.output;
  import_busybox();
  r = kiste_.run("info");
  ASSERT_EQ(r.status, 0) << r.output;
  for (const char* key : {"Store:            " , "Kernel:", "Cgroups:", "Cgroup manager:",
                          "Overlay:", "User namespaces:", "Seccomp:", "openat2:"}) {
    EXPECT_NE(r.output.find(key), std::string::npos) << key << "\n" << r.output;
  }
  EXPECT_NE(r.output.find(kiste_.root().native() + " ("), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("1 named images"), std::string::npos) << r.output;
  EXPECT_EQ(kiste_.run("system info").output, r.output);

  // A leftover of a killed command in tmp/ shows in df and goes with prune.
  { std::ofstream(kiste_.root() / "tmp" / "blob-leftover") << std::string(5000, 'x'); }
  r = kiste_.run("system df");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("Images             1 "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("Temporary files    1 "), std::string::npos) << r.output;
  r = kiste_.run("system prune");
  ASSERT_EQ(r.status, 0) << r.output;
  r = kiste_.run("system df");
  EXPECT_NE(r.output.find("Temporary files    0 "), std::string::npos) << r.output;
}

TEST_F(FirstHour, ImageAndContainerGroupsAreTheSameCommands) {
  std::string id = import_busybox();
  auto ls = kiste_.run("image ls");
  ASSERT_EQ(ls.status, 0) << ls.output;
  EXPECT_EQ(ls.output, kiste_.run("images").output);
  EXPECT_EQ(kiste_.run("image list -q").output, kiste_.run("images -q").output);
  EXPECT_EQ(kiste_.run("image inspect busybox").output, kiste_.run("inspect busybox").output);
  ASSERT_EQ(kiste_.run("image tag busybox other:1").status, 0);
  auto rm = kiste_.run("image rm other:1");
  EXPECT_EQ(rm.status, 0) << rm.output;
  EXPECT_NE(rm.output.find("Untagged: docker.io/library/other:1"), std::string::npos) << rm.output;
  EXPECT_EQ(kiste_.run("image prune").status, 0);
  KISTE_REQUIRE_ROOT();
  auto run = kiste_.run("container run --rm busybox echo hello-from-container");
  EXPECT_EQ(run.status, 0) << run.output;
  EXPECT_NE(run.output.find("hello-from-container"), std::string::npos) << run.output;
  auto bad = kiste_.run("container run --rn busybox true");
  EXPECT_EQ(bad.output, "kiste: error: unknown flag --rn (did you mean --rm?)\n");
}

TEST_F(FirstHour, NamesThatLookLikeHexAreNames) {
  import_busybox();
  for (const char* name : {"cafe", "face", "added", "decade", "bad4"}) {
    ASSERT_EQ(kiste_.run(std::string("tag busybox ") + name).status, 0) << name;
    auto inspect = kiste_.run(std::string("inspect ") + name);
    EXPECT_EQ(inspect.status, 0) << inspect.output;
    EXPECT_NE(inspect.output.find(std::string("\"") + name + ":latest\""),
              std::string::npos)
        << inspect.output;
  }
  if (::geteuid() == 0) {
    auto run = kiste_.run("run --rm cafe echo ran-cafe");
    EXPECT_EQ(run.status, 0) << run.output;
    EXPECT_NE(run.output.find("ran-cafe"), std::string::npos) << run.output;
  }
  auto rmi = kiste_.run("rmi cafe");
  EXPECT_EQ(rmi.status, 0) << rmi.output;
  EXPECT_EQ(rmi.output, "Untagged: docker.io/library/cafe:latest\n");
  EXPECT_EQ(kiste_.run("inspect face").status, 0);  // the other names stay
  auto gone = kiste_.run("inspect cafe");
  EXPECT_EQ(gone.status, 125);
  EXPECT_EQ(gone.output, "kiste: error: no image `cafe` in the store\n");
}

// Docker's rule, everywhere: the image ID is the config digest.
TEST_F(FirstHour, BuildImportAndImagesShowOneImageId) {
  std::string imported = import_busybox();
  ASSERT_EQ(imported.rfind("sha256:", 0), 0u) << imported;
  auto inspect = kiste_.run("inspect busybox");
  EXPECT_NE(inspect.output.find("\"Id\": \"" + imported + "\""), std::string::npos) << inspect.output;
  EXPECT_EQ(kiste_.run("images -q").output, imported.substr(7, 12) + "\n");

  fs::create_directories(tmp_ / "ctx");
  std::ofstream(tmp_ / "ctx" / "Containerfile") << "FROM busybox\nCOPY msg /msg\n";
  std::ofstream(tmp_ / "ctx" / "msg") << "hi\n";
  fs::path iid = tmp_ / "iid";
  auto q = kiste_.run("build -q -t app --iidfile " + iid.native() + " " + (tmp_ / "ctx").native());
  ASSERT_EQ(q.status, 0) << q.output;
  std::string built = trim(q.output);
  std::ifstream in(iid);
  std::string from_file((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(from_file, built);
  auto loud = kiste_.run("build -t app " + (tmp_ / "ctx").native());
  ASSERT_EQ(loud.status, 0) << loud.output;
  EXPECT_NE(loud.output.find("built " + built + " in "), std::string::npos) << loud.output;
  auto app = kiste_.run("inspect app");
  EXPECT_NE(app.output.find("\"Id\": \"" + built + "\""), std::string::npos) << app.output;
  // The printed ID (and its short form) names the image.
  EXPECT_EQ(kiste_.run("inspect " + built).output, app.output);
  EXPECT_EQ(kiste_.run("inspect " + built.substr(7, 12)).output, app.output);

  // An archive without a name loads as its ID.
  fs::path oci = tmp_ / "oci";
  std::string out;
  ASSERT_EQ(run_shell("skopeo copy -q oci:" + kiste_.root().native() +
                          ":docker.io/library/app:latest oci-archive:" + (tmp_ / "noname.tar").native(),
                      &out),
            0)
      << out;
  KisteCli other(tmp_ / "other");
  auto l = other.run("load -i " + (tmp_ / "noname.tar").native());
  ASSERT_EQ(l.status, 0) << l.output;
  EXPECT_EQ(l.output, "Loaded image ID: " + built + "\n");
}

// SIZE is the unpacked size, as docker shows it: before the first run it is read from the
// layers' tar headers, after it measured on the snapshots; both within 2% of `du -sb`.
TEST_F(FirstHour, ImagesSizeIsTheUnpackedSize) {
  KISTE_REQUIRE_ROOT();
  import_busybox();
  auto json_size = [this](const char* key) {
    auto r = kiste_.run("images --format json");
    std::string k = std::string("\"") + key + "\":";
    size_t at = r.output.find(k);
    return at == std::string::npos ? -1LL : std::stoll(r.output.substr(at + k.size()));
  };
  const long long estimated = json_size("size");
  const long long compressed = json_size("compressed_size");
  ASSERT_GT(estimated, 0);
  auto run = kiste_.run("run --rm busybox true");
  ASSERT_EQ(run.status, 0) << run.output;
  const long long measured = json_size("size");
  std::string du;
  ASSERT_EQ(run_shell("cd " + (kiste_.root() / "snapshots").native() +
                          " && du -scb $(ls) | tail -1 | cut -f1",
                      &du),
            0)
      << du;
  const double unpacked = std::stod(du);
  EXPECT_NEAR(static_cast<double>(estimated), unpacked, unpacked * 0.02) << du;
  EXPECT_NEAR(static_cast<double>(measured), unpacked, unpacked * 0.02) << du;
  EXPECT_GT(measured, compressed);  // busybox compresses: the listing is no longer the blob size
  auto table = kiste_.run("images");
  EXPECT_NE(table.output.find(" " + std::to_string(measured / 100000 / 10) + "."), std::string::npos)
      << table.output;
}

TEST_F(FirstHour, ImagesListsLikeDocker) {
  std::string id = import_busybox();
  ASSERT_EQ(kiste_.run("tag busybox localhost:5000/team/app:1").status, 0);
  fs::create_directories(tmp_ / "ctx");
  std::ofstream(tmp_ / "ctx" / "Containerfile") << "FROM busybox\nCOPY msg /msg\n";
  std::ofstream(tmp_ / "ctx" / "msg") << "hi\n";
  ASSERT_EQ(kiste_.run("build -q -t built " + (tmp_ / "ctx").native()).status, 0);
  auto all = kiste_.run("images");
  ASSERT_EQ(all.status, 0) << all.output;
  // Reproducible builds are dated 1970 on purpose, and say so.
  EXPECT_NE(all.output.find("1970-01-01 (reproducible)"), std::string::npos) << all.output;
  EXPECT_EQ(all.output.find("years ago"), std::string::npos) << all.output;
  auto digests = kiste_.run("images --digests --no-trunc");
  EXPECT_NE(digests.output.find("DIGEST"), std::string::npos) << digests.output;
  EXPECT_NE(digests.output.find(id), std::string::npos) << digests.output;  // whole image id
  auto manifest = kiste_.run("inspect -f '{{.Descriptor.digest}}' busybox");
  ASSERT_EQ(manifest.status, 0) << manifest.output;
  ASSERT_EQ(manifest.output.size(), 72u) << manifest.output;
  EXPECT_NE(digests.output.find(trim(manifest.output)), std::string::npos) << digests.output;
  auto named = kiste_.run("images busybox");
  EXPECT_NE(named.output.find("busybox "), std::string::npos) << named.output;
  EXPECT_EQ(named.output.find("team/app"), std::string::npos) << named.output;
  EXPECT_EQ(count_lines(named.output), 2u) << named.output;
  auto ref = kiste_.run("images --filter 'reference=localhost:5000/*/app'");
  EXPECT_NE(ref.output.find("localhost:5000/team/app"), std::string::npos) << ref.output;
  EXPECT_EQ(ref.output.find("busybox"), std::string::npos) << ref.output;
  EXPECT_EQ(count_lines(ref.output), 2u) << ref.output;
  EXPECT_EQ(kiste_.run("images -a -q").output, kiste_.run("images -q").output);
  auto bad = kiste_.run("images --filter label=x");
  EXPECT_EQ(bad.status, 125);
  EXPECT_EQ(count_lines(bad.output), 1u) << bad.output;

  // An image without a name (an archive that names none) is <none> <none>, and dangling.
  std::string out;
  ASSERT_EQ(run_shell("skopeo copy -q oci:" + kiste_.root().native() +
                          ":docker.io/library/busybox:latest oci-archive:" + (tmp_ / "n.tar").native(),
                      &out),
            0)
      << out;
  KisteCli other(tmp_ / "other");
  ASSERT_EQ(other.run("load -i " + (tmp_ / "n.tar").native()).status, 0);
  auto none = other.run("images --filter dangling=true");
  EXPECT_NE(none.output.find("<none>                                   <none>"), std::string::npos)
      << none.output;
  EXPECT_EQ(none.output.find("sha256 "), std::string::npos) << none.output;
  EXPECT_EQ(count_lines(other.run("images --filter dangling=false").output), 1u);  // the header only
}

TEST_F(FirstHour, BuildSaysItsDateIsReproducible) {
  import_busybox();
  fs::create_directories(tmp_ / "ctx");
  std::ofstream(tmp_ / "ctx" / "Containerfile") << "FROM busybox\nCOPY msg /msg\n";
  std::ofstream(tmp_ / "ctx" / "msg") << "hi\n";
  auto r = kiste_.run("build -t app " + (tmp_ / "ctx").native());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("created 1970-01-01 (reproducible: SOURCE_DATE_EPOCH=0; --timestamp now "
                          "to stamp the build time)"),
            std::string::npos)
      << r.output;
  r = kiste_.run("build --timestamp now -t app2 " + (tmp_ / "ctx").native());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(r.output.find("reproducible"), std::string::npos) << r.output;
  auto images = kiste_.run("images app2");
  EXPECT_TRUE(images.output.find("seconds ago") != std::string::npos ||
              images.output.find("Less than a second ago") != std::string::npos ||
              images.output.find("1 second ago") != std::string::npos)
      << images.output;
}

TEST_F(FirstHour, RegistryCommandsDescribeTheirArguments) {
  for (const char* cmd : {"copy", "promote", "tags", "delete", "login"}) {
    auto r = kiste_.run(std::string(cmd) + " --help");
    EXPECT_EQ(r.status, 0) << cmd;
    // Every positional has a description after its name and type.
    size_t at = r.output.find("Positionals:");
    ASSERT_NE(at, std::string::npos) << r.output;
    std::string block = r.output.substr(at, r.output.find("Options:") - at);
    size_t n = 0;
    std::istringstream in(block);
    std::string line;
    std::getline(in, line);  // "Positionals:"
    while (std::getline(in, line)) {
      std::istringstream words(line);
      std::string name, word, described;
      if (!(words >> name)) continue;
      ++n;
      while (words >> word) {
        if (word != "TEXT" && word != "REQUIRED") described += word;
      }
      EXPECT_FALSE(described.empty()) << cmd << " has an undescribed argument: " << line;
    }
    EXPECT_GT(n, 0u) << r.output;
  }
}

}  // namespace
}  // namespace kiste::testing
