// The kiste binary against real peers: oci-image-tool, skopeo and umoci read what kiste writes,
// kiste reads what skopeo writes; crashes, concurrency, memory and bad input.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <random>
#include <thread>

#include <gtest/gtest.h>

#include <kiste/base/sys.hpp>
#include <kiste/image/digest.hpp>
#include <kiste/testing/kiste_cli.hpp>
#include <kiste/testing/registry_process.hpp>
#include <kiste/testing/temp_root.hpp>

namespace kiste::testing {
namespace {

namespace fs = std::filesystem;

std::string image_hex(const std::string& s) { return std::string(image::Digest::of(s).hex()); }

class StoreE2E : public ::testing::Test {
 protected:
  TempRoot tmp_{"kiste-e2e-"};
  KisteCli kiste_{tmp_ / "root"};

  std::string import_busybox(const std::string& name = "busybox") {
    auto r = kiste_.run("import -c 'CMD [\"/bin/sh\"]' " + busybox_tar().native() + " " + name);
    EXPECT_EQ(r.status, 0) << r.output;
    return trim(r.output);
  }
  // Manifest digest of a name, through `kiste inspect`.
  std::string digest_of(const KisteCli& k, const std::string& name) {
    auto r = k.run("inspect -f '{{.Descriptor.digest}}' " + name);
    EXPECT_EQ(r.status, 0) << r.output;
    return trim(r.output);
  }
};

TEST_F(StoreE2E, OciToolsReadTheStore) {
  import_busybox();
  std::string digest = digest_of(kiste_, "busybox");
  std::string out;
  std::string root = kiste_.root().native();
  ASSERT_EQ(run_shell("oci-image-tool validate --type image --ref name=docker.io/library/busybox:latest " + root, &out), 0) << out;
  EXPECT_NE(out.find("Validation succeeded"), std::string::npos) << out;
  out.clear();
  ASSERT_EQ(run_shell("skopeo inspect oci:" + root + ":docker.io/library/busybox:latest", &out), 0) << out;
  EXPECT_NE(out.find(digest), std::string::npos) << out;
  out.clear();
  fs::path bundle = tmp_ / "bundle";
  std::string rootless = ::geteuid() == 0 ? "" : " --rootless";
  ASSERT_EQ(run_shell("umoci unpack" + rootless + " --image " + root +
                          ":docker.io/library/busybox:latest " + bundle.native(), &out), 0) << out;
  EXPECT_TRUE(fs::exists(bundle / "rootfs" / "bin" / "busybox"));
  EXPECT_TRUE(fs::is_symlink(bundle / "rootfs" / "bin" / "sh"));
}

TEST_F(StoreE2E, UnpackMatchesUmoci) {
  import_busybox();
  fs::path mine = tmp_ / "mine", bundle = tmp_ / "bundle";
  auto u = kiste_.run("unpack busybox " + mine.native());
  ASSERT_EQ(u.status, 0) << u.output;
  std::string out;
  std::string rootless = ::geteuid() == 0 ? "" : " --rootless";
  ASSERT_EQ(run_shell("umoci unpack" + rootless + " --image " + kiste_.root().native() +
                          ":docker.io/library/busybox:latest " + bundle.native(), &out), 0) << out;
  auto listing = [](const fs::path& d) {
    std::string o;
    run_shell("cd " + d.native() + " && find . -printf '%P %y %m %U %G %s %l\\n' | sort && "
              "find . -type f -exec sha256sum {} + | sort", &o);
    return o;
  };
  std::string a = listing(mine), b = listing(bundle / "rootfs");
  EXPECT_GT(a.size(), 1000u);
  EXPECT_EQ(a, b);
  // A second unpack into a non-empty directory is refused, and nothing is touched.
  auto again = kiste_.run("unpack busybox " + mine.native());
  EXPECT_EQ(again.status, 125);
  EXPECT_EQ(listing(mine), a);
  EXPECT_EQ(kiste_.run("rmi busybox").status, 0);
  auto p = kiste_.run("prune");
  EXPECT_EQ(p.status, 0) << p.output;
  EXPECT_TRUE(fs::is_empty(kiste_.root() / "blobs" / "sha256"));
}

TEST_F(StoreE2E, BuildPullsAMissingBaseImageFromTheRegistry) {
  std::string why;
  auto reg = RegistryProcess::start({}, &why);
  ASSERT_TRUE(reg) << why;
  import_busybox();
  auto push = kiste_.run("push -q busybox " + reg->host() + "/base/busybox:1");
  ASSERT_EQ(push.status, 0) << push.output;
  fs::path ctx = tmp_ / "ctx";
  fs::create_directories(ctx);
  ASSERT_TRUE(sys::write_file_atomic(ctx / "Containerfile", "FROM " + reg->host() +
                                         "/base/busybox:1\nCOPY msg /msg\nCMD [\"cat\", \"/msg\"]\n"));
  ASSERT_TRUE(sys::write_file_atomic(ctx / "msg", "hi"));
  KisteCli fresh(tmp_ / "fresh");  // a store without the base image
  auto b = fresh.run("build -t built " + ctx.native());
  ASSERT_EQ(b.status, 0) << b.output;
  EXPECT_NE(b.output.find("pulling " + reg->host() + "/base/busybox:1"), std::string::npos) << b.output;
  auto imgs = fresh.run("images --format json");
  EXPECT_NE(imgs.output.find(reg->host() + "/base/busybox:1"), std::string::npos) << imgs.output;
  EXPECT_EQ(fresh.run("fsck").status, 0);
  // A base image that exists nowhere fails the build with one line naming it.
  ASSERT_TRUE(sys::write_file_atomic(ctx / "Containerfile", "FROM " + reg->host() + "/base/none:1\n"));
  auto missing = fresh.run("build " + ctx.native());
  EXPECT_EQ(missing.status, 125);
  EXPECT_NE(missing.output.find("MANIFEST_UNKNOWN"), std::string::npos) << missing.output;
}

TEST_F(StoreE2E, ArchivesInteroperateWithSkopeo) {
  import_busybox();
  std::string digest = digest_of(kiste_, "busybox");
  std::string out;
  fs::path docker_tar = tmp_ / "d.tar", oci_tar = tmp_ / "o.tar";
  ASSERT_EQ(kiste_.run("save -o " + docker_tar.native() + " busybox").status, 0);
  ASSERT_EQ(kiste_.run("save --format oci-archive -o " + oci_tar.native() + " busybox").status, 0);
  // skopeo reads kiste's docker-archive (what `docker load` reads) and oci-archive.
  ASSERT_EQ(run_shell("skopeo copy docker-archive:" + docker_tar.native() + " oci:" + (tmp_ / "sk").native() + ":a", &out), 0) << out;
  out.clear();
  ASSERT_EQ(run_shell("skopeo inspect oci-archive:" + oci_tar.native() + ":docker.io/library/busybox:latest", &out), 0) << out;
  EXPECT_NE(out.find(digest), std::string::npos) << "oci-archive must keep the manifest digest";
  // kiste reads skopeo's docker-archive.
  out.clear();
  fs::path skopeo_tar = tmp_ / "s.tar";
  ASSERT_EQ(run_shell("skopeo copy oci:" + kiste_.root().native() + ":docker.io/library/busybox:latest docker-archive:" +
                          skopeo_tar.native() + ":example.com/team/app:7", &out), 0) << out;
  KisteCli other(tmp_ / "other");
  auto l = other.run("load -i " + skopeo_tar.native());
  ASSERT_EQ(l.status, 0) << l.output;
  EXPECT_NE(l.output.find("Loaded image: example.com/team/app:7"), std::string::npos) << l.output;
  // Save/load round trip of an oci-archive keeps the digest.
  ASSERT_EQ(other.run("load -i " + oci_tar.native()).status, 0);
  EXPECT_EQ(digest_of(other, "busybox"), digest);
  auto f = other.run("fsck");
  EXPECT_EQ(f.status, 0) << f.output;
}

TEST_F(StoreE2E, SurvivesSigkillAtRandomMoments) {
  // A 48 MiB layer so each import runs long enough to be interrupted mid-stream.
  fs::path big = tmp_ / "big.tar";
  std::string out;
  ASSERT_EQ(run_shell("cd " + tmp_.path().native() + " && head -c 48M /dev/urandom > payload && tar cf big.tar payload && rm payload", &out), 0) << out;
  ASSERT_EQ(kiste_.run("import " + big.native() + " seed").status, 0);
  fs::path archive = tmp_ / "a.tar";
  ASSERT_EQ(kiste_.run("save --format oci-archive -o " + archive.native() + " seed").status, 0);
  std::mt19937 rng(12345);
  int kills = 0;
  for (int i = 0; i < 34; ++i) {
    bool load = i % 2 == 1;
    std::string cmd = load ? "load -i " + archive.native() : "import " + big.native() + " crash" + std::to_string(i);
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      std::string full = kiste_binary().native() + " --root " + kiste_.root().native() + " " + cmd + " >/dev/null 2>&1";
      ::execl("/bin/sh", "sh", "-c", ("exec " + full).c_str(), nullptr);
      ::_exit(127);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(std::uniform_int_distribution<int>(0, 900)(rng)));
    if (::kill(pid, SIGKILL) == 0) ++kills;
    int st = 0;
    ::waitpid(pid, &st, 0);
    auto f = kiste_.run("fsck");
    ASSERT_EQ(f.status, 0) << "after kill " << i << ": " << f.output;
    // No partial blob: every file in blobs/ hashes to its name (fsck checked), and no stray.
    for (const auto& e : fs::directory_iterator(kiste_.root() / "blobs" / "sha256")) {
      EXPECT_EQ(e.path().filename().native().size(), 64u);
    }
    EXPECT_TRUE(fs::is_empty(kiste_.root() / "tmp")) << "fsck removes what the killed writer left";
  }
  EXPECT_GE(kills, 30);
  auto again = kiste_.run("import " + big.native() + " after");
  EXPECT_EQ(again.status, 0) << again.output;
  auto l = kiste_.run("load -i " + archive.native());
  EXPECT_EQ(l.status, 0) << l.output;
  EXPECT_EQ(kiste_.run("fsck").status, 0);
}

TEST_F(StoreE2E, ParallelImportsAndTagsKeepEveryName) {
  import_busybox("base");
  std::string script = "set -e; pids=; ";
  for (int i = 0; i < 4; ++i) {
    std::string dir = (tmp_ / ("c" + std::to_string(i))).native();
    script += "mkdir -p " + dir + " && echo " + std::to_string(i) + " > " + dir + "/f && tar cf " + dir + ".tar -C " + dir + " f; ";
  }
  std::string k = kiste_binary().native() + " --root " + kiste_.root().native();
  for (int i = 0; i < 4; ++i) {
    script += k + " import " + (tmp_ / ("c" + std::to_string(i))).native() + ".tar imp" + std::to_string(i) + " & pids=\"$pids $!\"; ";
    script += k + " tag base tag" + std::to_string(i) + " & pids=\"$pids $!\"; ";
  }
  script += "for p in $pids; do wait $p; done";
  std::string out;
  ASSERT_EQ(run_shell("bash -c '" + script + "'", &out), 0) << out;
  auto j = kiste_.run("images --format json");
  for (int i = 0; i < 4; ++i) {
    EXPECT_NE(j.output.find("docker.io/library/imp" + std::to_string(i) + ":latest"), std::string::npos) << j.output;
    EXPECT_NE(j.output.find("docker.io/library/tag" + std::to_string(i) + ":latest"), std::string::npos) << j.output;
  }
  EXPECT_EQ(kiste_.run("fsck").status, 0);
}

TEST_F(StoreE2E, OneGibLayerStreamsInBoundedMemory) {
  std::string out;
  ASSERT_EQ(run_shell("cd " + tmp_.path().native() + " && head -c 1G /dev/zero > payload && tar cf big.tar payload && rm payload", &out), 0) << out;
  auto peak_kib = [&](const std::string& args) {
    std::string o;
    int rc = run_shell("/usr/bin/time -f 'PEAK_KIB=%M' " + kiste_binary().native() + " --root " +
                           kiste_.root().native() + " " + args, &o);
    EXPECT_EQ(rc, 0) << o;
    auto at = o.rfind("PEAK_KIB=");
    return at == std::string::npos ? -1L : std::stol(o.substr(at + 9));
  };
  long import_kib = peak_kib("import " + (tmp_ / "big.tar").native() + " big");
  long save_kib = peak_kib("save -o " + (tmp_ / "saved.tar").native() + " big");
  ::unlink((tmp_ / "big.tar").c_str());
  KisteCli other(tmp_ / "other");
  std::string o;
  int rc = run_shell("/usr/bin/time -f 'PEAK_KIB=%M' " + kiste_binary().native() + " --root " +
                         other.root().native() + " load -i " + (tmp_ / "saved.tar").native(), &o);
  ASSERT_EQ(rc, 0) << o;
  long load_kib = std::stol(o.substr(o.rfind("PEAK_KIB=") + 9));
  std::printf("peak RSS for a 1 GiB layer: import %ld KiB, save %ld KiB, load %ld KiB\n", import_kib, save_kib, load_kib);
  RecordProperty("import_peak_kib", std::to_string(import_kib));
  RecordProperty("save_peak_kib", std::to_string(save_kib));
  RecordProperty("load_peak_kib", std::to_string(load_kib));
  EXPECT_GT(import_kib, 0);
  EXPECT_LT(import_kib, 64 * 1024);
  EXPECT_LT(save_kib, 64 * 1024);
  EXPECT_LT(load_kib, 64 * 1024);
}

TEST_F(StoreE2E, BadInputGivesOneLineErrorAndChangesNothing) {
  import_busybox();
  std::string before = tree_listing(kiste_.root());
  auto write = [&](const std::string& name, const std::string& content) {
    EXPECT_TRUE(sys::write_file_atomic(tmp_ / name, content));
    return (tmp_ / name).native();
  };
  // Archives made with tar from a directory of hand-written files.
  auto make_archive = [&](const std::string& name, const std::vector<std::pair<std::string, std::string>>& files) {
    fs::path dir = tmp_ / (name + ".d");
    for (const auto& [p, c] : files) {
      fs::create_directories((dir / p).parent_path());
      EXPECT_TRUE(sys::write_file_atomic(dir / p, c));
    }
    std::string out;
    EXPECT_EQ(run_shell("tar cf " + (tmp_ / name).native() + " -C " + dir.native() + " .", &out), 0) << out;
    return (tmp_ / name).native();
  };
  std::string bad_manifest = R"({"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:../../x","size":2},"layers":[]})";
  std::string unknown = R"({"schemaVersion":2,"mediaType":"application/x-unknown","layers":[]})";
  std::string missing_manifest = R"({"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:)" + std::string(64, 'c') + R"(","size":2},"layers":[]})";
  auto index_for = [](const std::string& doc, const std::string& type) {
    return R"({"schemaVersion":2,"manifests":[{"mediaType":")" + type + R"(","digest":"sha256:)" + image_hex(doc) +
           R"(","size":)" + std::to_string(doc.size()) + "}]}";
  };
  const std::string oci_type = "application/vnd.oci.image.manifest.v1+json";
  std::string good_tar = busybox_tar().native();
  std::string truncated = write("trunc.tar", sys::read_file(good_tar).value().substr(0, 70000));
  struct Case {
    std::string args, why;
  };
  const Case cases[] = {
      {"import " + write("garbage.tar", std::string(4096, 'G')) + " x", "garbage tar"},
      {"import " + truncated + " x", "truncated tar"},
      {"load -i " + write("garbage2.tar", "not an archive at all"), "garbage archive"},
      {"load -i " + make_archive("baddigest.tar", {{"oci-layout", "{}"}, {"index.json", index_for(bad_manifest, oci_type)},
                                                   {"blobs/sha256/" + image_hex(bad_manifest), bad_manifest}}),
       "malformed digest sha256:../../x"},
      {"load -i " + make_archive("unknown.tar", {{"oci-layout", "{}"}, {"index.json", index_for(unknown, "application/x-unknown")},
                                                 {"blobs/sha256/" + image_hex(unknown), unknown}}),
       "unknown media type"},
      {"load -i " + make_archive("missing.tar", {{"oci-layout", "{}"}, {"index.json", index_for(missing_manifest, oci_type)},
                                                 {"blobs/sha256/" + image_hex(missing_manifest), missing_manifest}}),
       "missing blob"},
      {"inspect no-such-image", "unknown image"},
      {"tag busybox 'Upper:1'", "invalid reference (uppercase repository)"},
  };
  for (const auto& c : cases) {
    auto r = kiste_.run(c.args);
    EXPECT_NE(r.status, 0) << c.why;
    std::string out = trim(r.output);
    EXPECT_EQ(out.find('\n'), std::string::npos) << c.why << ": " << out;
    EXPECT_TRUE(out.starts_with("kiste: error: ")) << c.why << ": " << out;
    EXPECT_EQ(tree_listing(kiste_.root()), before) << c.why << " changed the store";
  }
  // A directory that is not an OCI layout, given as the root, is refused and left alone.
  fs::path foreign = tmp_ / "foreign";
  fs::create_directories(foreign);
  ASSERT_TRUE(sys::write_file_atomic(foreign / "notes.txt", "mine"));
  KisteCli wrong(foreign);
  auto r = wrong.run("import /dev/null x");
  EXPECT_EQ(r.status, 125);
  EXPECT_NE(r.output.find("not an OCI image layout"), std::string::npos) << r.output;
  EXPECT_EQ(trim(r.output).find('\n'), std::string::npos);
  EXPECT_EQ(std::distance(fs::directory_iterator(foreign), fs::directory_iterator{}), 1);
  // A command that only reads never makes a store where --root points (a mistyped root).
  for (const char* cmd : {"images", "inspect x", "fsck", "prune", "rmi x", "save -o /dev/null x"}) {
    KisteCli missing(tmp_ / "no-such-root");
    auto m = missing.run(cmd);
    EXPECT_EQ(m.status, 125) << cmd;
    EXPECT_EQ(trim(m.output), fmt::format("kiste: error: no kiste store at `{}`", (tmp_ / "no-such-root").native()))
        << cmd;
    EXPECT_FALSE(fs::exists(tmp_ / "no-such-root")) << cmd;
  }
}

}  // namespace
}  // namespace kiste::testing
