// Issue 19, whole releases: `kiste promote --release FILE` against the real registry. Twenty
// images (five layers each, the busybox layer and one more shared) go from staging to prod in
// phases: verify all, copy all blobs, push all manifests by digest, then move the tags. Any
// refusal in the verify phase leaves every prod tag as it was (checked with the registry's tag
// lists and the digests its tags name); a release that passes uploads no layer byte (the
// registry's access log shows only mounts). With --require-rebuild every image of a release is
// rebuilt from the context the release file names before any blob moves; one mismatch stops it.
#include <fstream>

#include <gtest/gtest.h>

#include <kiste/base/sys.hpp>
#include <kiste/image/digest.hpp>
#include <kiste/registry/client.hpp>
#include <kiste/testing/kiste_cli.hpp>
#include <kiste/testing/registry_process.hpp>
#include <kiste/testing/temp_root.hpp>

namespace kiste::testing {
namespace {

namespace fs = std::filesystem;

constexpr const char* kPass = "e2e passphrase release";
constexpr int kImages = 20;
constexpr int kUnsigned = 17;

std::string app(int i) { return "app" + std::to_string(i); }

// The registry, and what the tests read back from it.
class ReleaseBase : public ::testing::Test {
 protected:
  void start_registry() {
    ::unsetenv("KISTE_POLICY");
    std::string why;
    reg_ = RegistryProcess::start({}, &why);
    ASSERT_TRUE(reg_) << why;
    h_ = reg_->host();
    auto c = registry::Client::create(h_);
    ASSERT_TRUE(c);
    client_ = std::move(*c);
    ASSERT_EQ(kiste("import " + busybox_tar().native() + " busybox").status, 0);
  }
  CliResult kiste(const std::string& args) const { return kiste_.run(args + " 2>&1"); }
  // The digest `repo:ref` names in the registry ("" when none).
  std::string head(const std::string& repo, const std::string& ref) {
    auto h = client_->try_head_manifest(repo, ref);
    EXPECT_TRUE(h) << h.error().to_string();
    return h && *h ? (*h)->digest.str() : "";
  }
  std::vector<std::string> tags(const std::string& repo) {
    auto t = client_->list_tags(repo);
    EXPECT_TRUE(t) << t.error().to_string();
    return t ? t->names : std::vector<std::string>{};
  }
  // Requests that change prod: uploads, mounts, manifest pushes, deletes.
  int prod_writes() const {
    int n = 0;
    for (const char* verb : {"PUT", "POST", "PATCH", "DELETE"}) {
      n += reg_->count_requests(std::string(verb) + " /v2/prod/");
    }
    return n;
  }

  TempRoot tmp_{"kiste-release-e2e-"};
  KisteCli kiste_{tmp_ / "root"};
  std::unique_ptr<RegistryProcess> reg_;
  std::unique_ptr<registry::Client> client_;
  std::string h_;
};

class Release : public ReleaseBase {
 protected:
  void SetUp() override {
    ::setenv("KISTE_PASSWORD", kPass, 1);
    ASSERT_NO_FATAL_FAILURE(start_registry());
    // Five layers: busybox, a shared file, three files of the image's own.
    for (int i = 1; i <= kImages; ++i) {
      fs::path ctx = tmp_ / ("ctx" + std::to_string(i));
      fs::create_directories(ctx);
      std::ofstream(ctx / "Containerfile")
          << "FROM busybox\nCOPY shared /shared\nCOPY b /b\nCOPY c /c\nCOPY d /d\n";
      std::ofstream(ctx / "shared") << "the release's shared layer\n";
      for (const char* f : {"b", "c", "d"}) std::ofstream(ctx / f) << app(i) << " " << f << "\n";
      auto b = kiste("build -q -t " + app(i) + " " + ctx.native());
      ASSERT_EQ(b.status, 0) << b.output;
      auto p = kiste("push -q " + app(i) + " docker://" + h_ + "/staging/" + app(i) + ":1");
      ASSERT_EQ(p.status, 0) << p.output;
      staging_[i] = head("staging/" + app(i), "1");
      ASSERT_FALSE(staging_[i].empty());
    }
    // What prod runs today: busybox under every app's tag.
    ASSERT_EQ(kiste("push -q busybox docker://" + h_ + "/prod/" + app(1) + ":1").status, 0);
    std::string pairs;
    for (int i = 2; i <= kImages; ++i) {
      pairs += " " + h_ + "/prod/" + app(1) + ":1 " + h_ + "/prod/" + app(i) + ":1";
    }
    auto fill = kiste("promote -q" + pairs);
    ASSERT_EQ(fill.status, 0) << fill.output;
    old_ = head("prod/" + app(1), "1");
    ASSERT_FALSE(old_.empty());

    ASSERT_EQ(kiste("key generate --output-key-prefix " + (tmp_ / "k").native()).status, 0);
    for (int i = 1; i <= kImages; ++i) {
      if (i != kUnsigned) sign(i);
    }
    // Production accepts images signed by k for their staging name (remapIdentity).
    policy_ = tmp_ / "policy.json";
    ASSERT_TRUE(sys::write_file_atomic(
        policy_, R"({"default":[{"type":"reject"}],"transports":{"docker":{")" + h_ +
                     R"(/prod":[{"type":"sigstoreSigned","keyPath":")" + (tmp_ / "k.pub").native() +
                     R"(","signedIdentity":{"type":"remapIdentity","prefix":")" + h_ +
                     R"(/prod","signedPrefix":")" + h_ + R"(/staging"}}]}}})"));
    release_ = tmp_ / "release.json";
    write_release({});
  }
  void TearDown() override { ::unsetenv("KISTE_PASSWORD"); }

  void sign(int i) {
    auto s = kiste("sign " + h_ + "/staging/" + app(i) + ":1 --key " + (tmp_ / "k.key").native());
    ASSERT_EQ(s.status, 0) << s.output;
  }
  // The release file: staging/appN:1 -> prod/appN:1, with `expect` digests for some images.
  void write_release(const std::map<int, std::string>& expect) {
    std::string json = "[\n";
    for (int i = 1; i <= kImages; ++i) {
      json += R"(  {"source": "docker://)" + h_ + "/staging/" + app(i) + R"(:1", "destination": ")" +
              h_ + "/prod/" + app(i) + ":1\"";
      if (expect.contains(i)) json += R"(, "expectDigest": ")" + expect.at(i) + "\"";
      json += i == kImages ? "}\n" : "},\n";
    }
    ASSERT_TRUE(sys::write_file_atomic(release_, json + "]\n"));
  }
  // Every prod tag still names what prod ran before, and prod has no other tag.
  void expect_prod_untouched(int writes_before) {
    for (int i = 1; i <= kImages; ++i) {
      EXPECT_EQ(tags("prod/" + app(i)), std::vector<std::string>{"1"}) << app(i);
      EXPECT_EQ(head("prod/" + app(i), "1"), old_) << app(i);
    }
    EXPECT_EQ(prod_writes(), writes_before);
  }

  std::map<int, std::string> staging_;
  std::string old_;
  fs::path policy_, release_;
};

TEST_F(Release, OneUnsignedImageStopsTheReleaseThenAllTwentyPromoteByMountsOnly) {
  const int before = prod_writes();
  auto refused = kiste("promote --policy " + policy_.native() + " --release " + release_.native());
  EXPECT_EQ(refused.status, 125) << refused.output;
  // The verify lines of the other images, then one error line naming image 17 and the
  // requirement.
  std::string err = refused.output.substr(refused.output.find("kiste: error:"));
  EXPECT_EQ(count_lines(err), 1u) << refused.output;
  EXPECT_NE(err.find(h_ + "/staging/" + app(kUnsigned) + ":1"), std::string::npos) << err;
  EXPECT_NE(err.find(h_ + "/prod/" + app(kUnsigned) + ":1"), std::string::npos) << err;
  EXPECT_NE(err.find("sigstoreSigned (key `" + (tmp_ / "k.pub").native() + "`)"),
            std::string::npos)
      << err;
  EXPECT_NE(err.find("nothing was copied or tagged"), std::string::npos) << err;
  expect_prod_untouched(before);

  // Signed now: the same release promotes all twenty.
  sign(kUnsigned);
  // Uploads prod had before (SetUp pushed busybox to prod/app1).
  std::map<int, int> uploads_before;
  for (int i = 1; i <= kImages; ++i) {
    uploads_before[i] = reg_->count_requests("PUT /v2/prod/" + app(i) + "/blobs/uploads/") +
                        reg_->count_requests("PATCH /v2/prod/" + app(i) + "/");
  }
  auto ok = kiste("promote --policy " + policy_.native() + " --release " + release_.native());
  ASSERT_EQ(ok.status, 0) << ok.output;
  for (int i = 1; i <= kImages; ++i) {
    EXPECT_EQ(head("prod/" + app(i), "1"), staging_[i]) << app(i);
    std::string sig_tag = "sha256-" + staging_[i].substr(7) + ".sig";
    auto t = tags("prod/" + app(i));
    EXPECT_NE(std::find(t.begin(), t.end(), sig_tag), t.end()) << app(i);  // carried along
    // 0 layer bytes uploaded: no upload was finished or sent in chunks, only mounts.
    EXPECT_EQ(reg_->count_requests("PUT /v2/prod/" + app(i) + "/blobs/uploads/") +
                  reg_->count_requests("PATCH /v2/prod/" + app(i) + "/"),
              uploads_before[i])
        << app(i);
    EXPECT_GE(reg_->count_requests("POST /v2/prod/" + app(i) + "/blobs/uploads/?mount="), 6)
        << app(i);  // config + 5 layers (+ the signature's blobs)
    // One progress line per image and phase, and its pinned reference on stdout.
    std::string n = (i < 10 ? "[ " : "[") + std::to_string(i) + "/20] ";
    for (const char* phase : {"verified ", "blobs    ", "manifests", "tagged   "}) {
      EXPECT_NE(ok.output.find(n + phase), std::string::npos) << n << phase;
    }
    EXPECT_NE(ok.output.find(h_ + "/prod/" + app(i) + ":1@" + staging_[i] + "\n"),
              std::string::npos)
        << ok.output;
  }
  EXPECT_NE(ok.output.find(", 0 copied ("), std::string::npos) << ok.output;
  EXPECT_NE(ok.output.find("20 tags moved (and 20 artifact tags)"), std::string::npos) << ok.output;
  // The phases in order: the first tag moved after the last manifest was pushed by digest.
  size_t last_manifest = ok.output.rfind("] manifests ");
  size_t first_tag = ok.output.find("] tagged ");
  EXPECT_LT(last_manifest, first_tag) << ok.output;
  EXPECT_LT(ok.output.rfind("] blobs "), ok.output.find("] manifests ")) << ok.output;
  // Prod's policy accepts what it now serves.
  auto pull = kiste("pull -q --policy " + policy_.native() + " " + h_ + "/prod/" + app(kUnsigned) + ":1");
  EXPECT_EQ(pull.status, 0) << pull.output;
}

TEST_F(Release, DryRunPrintsThePlanAndTouchesNothing) {
  sign(kUnsigned);
  const int before = prod_writes();
  auto dry = kiste("promote --dry-run --policy " + policy_.native() + " --release " + release_.native());
  ASSERT_EQ(dry.status, 0) << dry.output;
  for (int i = 1; i <= kImages; ++i) {
    EXPECT_NE(dry.output.find(h_ + "/staging/" + app(i) + ":1 -> " + h_ + "/prod/" + app(i) +
                              ":1  " + staging_[i]),
              std::string::npos)
        << dry.output;
  }
  expect_prod_untouched(before);
  // The same for pairs on the command line, and a dry run still refuses what it would refuse.
  auto pairs = kiste("promote --dry-run " + h_ + "/staging/app1:1 " + h_ + "/prod/app1:1 " + h_ +
                     "/staging/app2:1 " + h_ + "/prod/app2:1");
  EXPECT_EQ(pairs.status, 0) << pairs.output;
  EXPECT_EQ(pairs.output.find(h_ + "/prod/app3"), std::string::npos) << pairs.output;
  expect_prod_untouched(before);
}

TEST_F(Release, AWrongExpectedDigestStopsTheWholeRelease) {
  sign(kUnsigned);
  // Image 5 pinned to image 4's digest; the others pinned right.
  std::map<int, std::string> expect;
  for (int i = 1; i <= kImages; ++i) expect[i] = staging_[i];
  expect[5] = staging_[4];
  write_release(expect);
  const int before = prod_writes();
  auto r = kiste("promote --policy " + policy_.native() + " --release " + release_.native());
  EXPECT_EQ(r.status, 125) << r.output;
  std::string err = r.output.substr(r.output.find("kiste: error:"));
  EXPECT_EQ(count_lines(err), 1u) << r.output;
  EXPECT_NE(err.find(h_ + "/staging/" + app(5) + ":1"), std::string::npos) << err;
  EXPECT_NE(err.find("source has digest " + staging_[5] + ", expected " + staging_[4]),
            std::string::npos)
      << err;
  expect_prod_untouched(before);
  // Fixed, the pinned release promotes.
  expect[5] = staging_[5];
  write_release(expect);
  auto ok = kiste("promote -q --policy " + policy_.native() + " --release " + release_.native());
  ASSERT_EQ(ok.status, 0) << ok.output;
  EXPECT_EQ(head("prod/" + app(5), "1"), staging_[5]);
  // A malformed file is one line naming the file and the entry; nothing moves.
  ASSERT_TRUE(sys::write_file_atomic(tmp_ / "bad.txt", h_ + "/staging/app1:1 " + h_ + "/prod/x:2\n" +
                                                           h_ + "/staging/app2:1\n"));
  const int after = prod_writes();
  auto bad = kiste("promote --release " + (tmp_ / "bad.txt").native());
  EXPECT_EQ(bad.status, 125) << bad.output;
  EXPECT_EQ(count_lines(bad.output), 1u) << bad.output;
  EXPECT_NE(bad.output.find("bad.txt`: line 2: expected `SOURCE DESTINATION"), std::string::npos)
      << bad.output;
  EXPECT_EQ(prod_writes(), after);
}

// A failure after the verify phase: the last image goes to a second registry that wants
// credentials kiste does not have, so its first blob request fails. The other 19 images' blobs
// may be in prod by then, but no prod tag moved (and no signature tag appeared).
TEST_F(Release, AFailureInTheBlobPhaseMovesNoTag) {
  sign(kUnsigned);
  std::string why;
  auto locked = RegistryProcess::start({.auth = RegistryAuth::Basic}, &why);
  ASSERT_TRUE(locked) << why;
  std::string text;
  for (int i = 1; i <= kImages; ++i) {
    text += h_ + "/staging/" + app(i) + ":1 " + (i == kImages ? locked->host() : h_) + "/prod/" +
            app(i) + ":1\n";
  }
  ASSERT_TRUE(sys::write_file_atomic(tmp_ / "release.txt", text));
  ASSERT_TRUE(sys::write_file_atomic(tmp_ / "auth.json", "{\"auths\": {}}"));
  auto r = kiste("promote --authfile " + (tmp_ / "auth.json").native() + " --release " +
                 (tmp_ / "release.txt").native());
  EXPECT_EQ(r.status, 125) << r.output;
  std::string err = r.output.substr(r.output.find("kiste: error:"));
  EXPECT_EQ(count_lines(err), 1u) << r.output;
  EXPECT_NE(err.find("blob phase (no tag was moved)"), std::string::npos) << err;
  EXPECT_NE(err.find(locked->host() + "/prod/" + app(kImages) + ":1"), std::string::npos) << err;
  EXPECT_EQ(r.output.find("] tagged "), std::string::npos) << r.output;
  for (int i = 1; i < kImages; ++i) {
    EXPECT_EQ(tags("prod/" + app(i)), std::vector<std::string>{"1"}) << app(i);
    EXPECT_EQ(head("prod/" + app(i), "1"), old_) << app(i);
  }
}

TEST_F(Release, ReleaseIndexListsEveryImageAndIsSigned) {
  sign(kUnsigned);
  ASSERT_EQ(kiste("key generate --output-key-prefix " + (tmp_ / "prod").native()).status, 0);
  auto r = kiste("promote -q --policy " + policy_.native() + " --release " + release_.native() +
                 " --release-index " + h_ + "/prod/releases:7 --sign-by " +
                 (tmp_ / "prod.key").native());
  ASSERT_EQ(r.status, 0) << r.output;
  std::string index = head("prod/releases", "7");
  ASSERT_FALSE(index.empty());
  EXPECT_NE(r.output.find(h_ + "/prod/releases:7@" + index), std::string::npos) << r.output;
  auto m = client_->get_manifest("prod/releases", "7");
  ASSERT_TRUE(m) << m.error().to_string();
  ASSERT_TRUE(m->is_index());
  ASSERT_EQ(m->index().manifests.size(), static_cast<size_t>(kImages));
  for (int i = 1; i <= kImages; ++i) {
    const auto& d = m->index().manifests[static_cast<size_t>(i - 1)];
    EXPECT_EQ(d.digest.str(), staging_[i]);
    EXPECT_EQ(d.annotations.at("org.opencontainers.image.ref.name"), h_ + "/prod/" + app(i) + ":1");
    EXPECT_EQ(d.annotations.at("dev.kiste.release.source"), h_ + "/staging/" + app(i) + ":1");
    // Each image re-signed for prod, the index too.
    EXPECT_EQ(kiste("verify " + h_ + "/prod/" + app(i) + ":1 --key " + (tmp_ / "prod.pub").native())
                  .status,
              0)
        << app(i);
  }
  auto v = kiste("verify " + h_ + "/prod/releases:7 --key " + (tmp_ / "prod.pub").native());
  EXPECT_EQ(v.status, 0) << v.output;
}

// `promote --release --require-rebuild`: a release of three images, each built with its
// provenance from its own context, which the release file names (relative to the file). Every
// image is rebuilt in a scratch store before any blob moves: one changed byte in the third
// image's context stops the whole release (nothing copied to prod, no tag moved) and the error
// names that image and the file; with the context fixed all three are promoted.
class RebuildRelease : public ReleaseBase {
 protected:
  static constexpr int kCount = 3;
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(start_registry());
    for (int i = 1; i <= kCount; ++i) {
      fs::path ctx = tmp_ / "rel" / ("ctx" + std::to_string(i));
      fs::create_directories(ctx);
      std::ofstream(ctx / "Containerfile")
          << "FROM busybox\nARG WHO=nobody\nLABEL who=$WHO\nCOPY b /b\nCOPY c /c\n";
      for (const char* f : {"b", "c"}) std::ofstream(ctx / f) << app(i) << " " << f << "\n";
      auto b = kiste("build -q --provenance --build-arg WHO=" + app(i) + " --push -t " + h_ +
                     "/staging/" + app(i) + ":1 " + ctx.native());
      ASSERT_EQ(b.status, 0) << b.output;
      staging_[i] = head("staging/" + app(i), "1");
      ASSERT_FALSE(staging_[i].empty());
      auto p = kiste("push -q busybox docker://" + h_ + "/prod/" + app(i) + ":1");
      ASSERT_EQ(p.status, 0) << p.output;
    }
    old_ = head("prod/" + app(1), "1");
    // Image 3's context, one byte changed in `c`.
    fs::copy(tmp_ / "rel" / "ctx3", tmp_ / "rel" / "changed3", fs::copy_options::recursive);
    std::ofstream(tmp_ / "rel" / "changed3" / "c", std::ios::trunc) << app(3) << " C\n";
  }
  // The release file: staging/appN:1 -> prod/appN:1 rebuilt from `contexts[N-1]`.
  fs::path write_release(const std::vector<std::string>& contexts) {
    std::string json = "{\"images\": [\n";
    for (int i = 1; i <= kCount; ++i) {
      json += R"(  {"source": ")" + h_ + "/staging/" + app(i) + R"(:1", "destination": ")" + h_ +
              "/prod/" + app(i) + R"(:1", "context": ")" + contexts[static_cast<size_t>(i - 1)] +
              "\"}" + (i == kCount ? "\n" : ",\n");
    }
    fs::path f = tmp_ / "rel" / "release.json";
    EXPECT_TRUE(sys::write_file_atomic(f, json + "]}\n"));
    return f;
  }
  int scratch_dirs() const {
    int n = 0;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(kiste_.root() / "tmp", ec)) {
      n += e.path().filename().native().starts_with("rebuild-") ? 1 : 0;
    }
    return n;
  }

  std::map<int, std::string> staging_;
  std::string old_;
};

TEST_F(RebuildRelease, OneChangedByteStopsTheWholeReleaseThenTheSameContextsPromote) {
  const int before = prod_writes();
  auto refused = kiste("promote --require-rebuild --release " +
                       write_release({"ctx1", "ctx2", "changed3"}).native());
  EXPECT_EQ(refused.status, 125) << refused.output;
  std::string err = refused.output.substr(refused.output.find("kiste: error:"));
  EXPECT_EQ(count_lines(err), 1u) << refused.output;
  EXPECT_NE(err.find("rebuild phase: nothing was copied or tagged"), std::string::npos) << err;
  EXPECT_NE(err.find("`" + h_ + "/staging/" + app(3) + ":1` to `" + h_ + "/prod/" + app(3) + ":1`"),
            std::string::npos)
      << err;
  EXPECT_NE(err.find("`/c`: content " + image::Digest::of(app(3) + " c\n").str()),
            std::string::npos)
      << err;
  // The first two were rebuilt (and matched) before the third was refused.
  EXPECT_NE(refused.output.find("[2/3] rebuild"), std::string::npos) << refused.output;
  for (int i = 1; i <= kCount; ++i) {
    EXPECT_EQ(tags("prod/" + app(i)), std::vector<std::string>{"1"}) << app(i);
    EXPECT_EQ(head("prod/" + app(i), "1"), old_) << app(i);
  }
  EXPECT_EQ(prod_writes(), before);
  EXPECT_EQ(scratch_dirs(), 0);

  // An entry without a context, and no --context: refused before anything is read.
  auto no_ctx = kiste("promote --require-rebuild " + h_ + "/staging/app1:1 " + h_ +
                      "/prod/app1:1 " + h_ + "/staging/app2:1 " + h_ + "/prod/app2:1");
  EXPECT_EQ(no_ctx.status, 125) << no_ctx.output;
  EXPECT_EQ(count_lines(no_ctx.output), 1u) << no_ctx.output;
  EXPECT_NE(no_ctx.output.find("`" + h_ + "/staging/app1:1`: --require-rebuild needs its context"),
            std::string::npos)
      << no_ctx.output;

  // The contexts the images were built from (build args, SOURCE_DATE_EPOCH and base digest from
  // each image's provenance): all three rebuild to their digests and are promoted, each with the
  // rebuilder's statement beside the provenance promote carried.
  auto ok = kiste("promote --require-rebuild --attest-rebuild --release " +
                  write_release({"ctx1", "ctx2", "ctx3"}).native());
  ASSERT_EQ(ok.status, 0) << ok.output;
  size_t same = 0;
  for (size_t at = 0; (at = ok.output.find("the same digest", at)) != std::string::npos; ++at) {
    ++same;
  }
  EXPECT_EQ(same, 3u) << ok.output;
  // Every rebuild came before the first blob moved.
  EXPECT_LT(ok.output.rfind("the same digest"), ok.output.find("] blobs ")) << ok.output;
  EXPECT_NE(ok.output.find("Attached 3 rebuild attestations"), std::string::npos) << ok.output;
  for (int i = 1; i <= kCount; ++i) {
    EXPECT_EQ(head("prod/" + app(i), "1"), staging_[i]) << app(i);
    // The referrers tag schema index in prod: the provenance and the rebuild statement.
    auto idx = client_->get_manifest("prod/" + app(i), "sha256-" + staging_[i].substr(7));
    ASSERT_TRUE(idx) << idx.error().to_string();
    ASSERT_TRUE(idx->is_index());
    EXPECT_EQ(idx->index().manifests.size(), 2u) << app(i);
  }
  EXPECT_EQ(scratch_dirs(), 0);
}

}  // namespace
}  // namespace kiste::testing
