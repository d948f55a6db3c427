// Issue 19, attestations: `kiste build --sbom --provenance` stores an SPDX 2.3 SBOM and SLSA v1
// provenance as OCI 1.1 artifacts whose subject is the image, `--push`/`push` carry them to the
// real registry (Debian's docker-registry 2.8 has no referrers API, so they land in the
// referrers tag schema index `sha256-<hex>`), and `promote` carries them on. The image digest is
// the one a build without the flags gives, and the attestations are the same bytes on every
// build of the same inputs. The registry side is read with curl and skopeo, not with kiste.
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <kiste/base/sys.hpp>
#include <kiste/image/digest.hpp>
#include <kiste/testing/kiste_cli.hpp>
#include <kiste/testing/registry_process.hpp>
#include <kiste/testing/temp_root.hpp>

namespace kiste::testing {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

constexpr const char* kContainerfile =
    "FROM busybox\nARG GREETING=hi\nCOPY app.txt /app/app.txt\nCOPY status /var/lib/dpkg/status\n";
constexpr const char* kStatus =
    "Package: hello\nStatus: install ok installed\nArchitecture: amd64\nVersion: 2.10-3\n\n"
    "Package: gone\nStatus: deinstall ok config-files\nVersion: 1\n";

class Attest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    reg_ = RegistryProcess::start({}, &why);
    ASSERT_TRUE(reg_) << why;
    h_ = reg_->host();
    ctx_ = tmp_ / "ctx";
    fs::create_directories(ctx_);
    std::ofstream(ctx_ / "Containerfile") << kContainerfile;
    std::ofstream(ctx_ / "app.txt") << "the app\n";
    std::ofstream(ctx_ / "status") << kStatus;
    // Both stores get the same busybox (import stamps SOURCE_DATE_EPOCH, else the clock), so a
    // rebuild in the other store finds the base image digest the provenance pins.
    ::setenv("SOURCE_DATE_EPOCH", "0", 1);
    for (const KisteCli* k : {&a_, &b_}) {
      auto r = k->run("import " + busybox_tar().native() + " busybox 2>&1");
      ASSERT_EQ(r.status, 0) << r.output;
    }
    ::unsetenv("SOURCE_DATE_EPOCH");
  }

  // GET from the registry with curl: the body ("" on failure).
  std::string get(const std::string& path, const std::string& accept = "") {
    std::string out;
    std::string hdr = accept.empty() ? "" : " -H 'Accept: " + accept + "'";
    if (run_shell("curl -sf" + hdr + " http://" + h_ + "/v2/" + path, &out) != 0) return "";
    return out;
  }
  json get_json(const std::string& path, const std::string& accept = "") {
    return json::parse(get(path, accept), nullptr, false);
  }
  std::string digest_of(const std::string& repo, const std::string& tag) {
    std::string out;
    if (run_shell("skopeo inspect --tls-verify=false --raw docker://" + h_ + "/" + repo + ":" + tag +
                      " | sha256sum",
                  &out) != 0) {
      return "";
    }
    return "sha256:" + out.substr(0, 64);
  }
  // The referrers tag schema index of `digest` in `repo`: {artifactType -> manifest digest}.
  std::map<std::string, std::string> referrers(const std::string& repo, const std::string& digest) {
    std::map<std::string, std::string> out;
    json idx = get_json(repo + "/manifests/sha256-" + digest.substr(7),
                        "application/vnd.oci.image.index.v1+json");
    if (idx.is_discarded()) return out;
    EXPECT_EQ(idx.value("mediaType", ""), "application/vnd.oci.image.index.v1+json");
    for (const auto& m : idx["manifests"]) {
      out[m.value("artifactType", "")] = m.value("digest", "");
    }
    return out;
  }
  // An artifact manifest (checked: OCI 1.1 artifact, subject `digest`) and its one layer.
  std::string artifact_document(const std::string& repo, const std::string& art,
                                const std::string& digest, const std::string& type) {
    json m = get_json(repo + "/manifests/" + art, "application/vnd.oci.image.manifest.v1+json");
    EXPECT_FALSE(m.is_discarded()) << art;
    if (m.is_discarded()) return "";
    EXPECT_EQ(m.value("artifactType", ""), type);
    EXPECT_EQ(m["config"].value("mediaType", ""), "application/vnd.oci.empty.v1+json");
    EXPECT_EQ(m["config"].value("digest", ""),
              "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a");
    EXPECT_EQ(m["subject"].value("digest", ""), digest);
    EXPECT_EQ(m["layers"].size(), 1u);
    EXPECT_EQ(m["layers"][0].value("mediaType", ""), type);
    return get(repo + "/blobs/" + m["layers"][0].value("digest", ""));
  }
  // The "attached TYPE DIGEST" lines a build printed.
  static std::map<std::string, std::string> attached(const std::string& out) {
    std::map<std::string, std::string> m;
    std::istringstream in(out);
    std::string word, type, digest;
    for (std::string line; std::getline(in, line);) {
      std::istringstream l(line);
      if (l >> word >> type >> digest && word == "attached") m[type] = digest;
    }
    return m;
  }

  TempRoot tmp_{"kiste-attest-e2e-"};
  KisteCli a_{tmp_ / "a"};
  KisteCli b_{tmp_ / "b"};
  std::unique_ptr<RegistryProcess> reg_;
  std::string h_;
  fs::path ctx_;
};

TEST_F(Attest, SbomAndProvenanceAreReferrersPushedPromotedAndLeaveTheImageDigestAlone) {
  // The same build without the flags, in another store, pushed as it is.
  auto plain = b_.run("build -t plain --build-arg GREETING=hello " + ctx_.native() + " 2>&1");
  ASSERT_EQ(plain.status, 0) << plain.output;
  EXPECT_TRUE(attached(plain.output).empty()) << plain.output;
  ASSERT_EQ(b_.run("push -q plain docker://" + h_ + "/staging/plain:1 2>&1").status, 0);

  const std::string dest = h_ + "/staging/app:1";
  auto r = a_.run("build --sbom --provenance --push -t " + dest + " --build-arg GREETING=hello " +
                  ctx_.native() + " 2>&1");
  ASSERT_EQ(r.status, 0) << r.output;
  auto mine = attached(r.output);
  ASSERT_EQ(mine.size(), 2u) << r.output;
  ASSERT_TRUE(mine.contains("application/spdx+json")) << r.output;
  ASSERT_TRUE(mine.contains("application/vnd.in-toto+json")) << r.output;

  const std::string digest = digest_of("staging/app", "1");
  ASSERT_EQ(digest.size(), 71u);
  EXPECT_EQ(digest, digest_of("staging/plain", "1")) << "the attestations changed the image";
  // The store lists them with the image, not as images: `images` shows one app image.
  auto images = a_.run("images --format json");
  EXPECT_EQ(json::parse(images.output, nullptr, false).size(), 2u) << images.output;

  // Same inputs, another store: the same attestation digests.
  auto again = b_.run("build --sbom --provenance -t " + dest + " --build-arg GREETING=hello " +
                      ctx_.native() + " 2>&1");
  ASSERT_EQ(again.status, 0) << again.output;
  EXPECT_EQ(attached(again.output), mine);

  // In the registry: the referrers tag schema lists both, with their artifactType.
  auto refs = referrers("staging/app", digest);
  ASSERT_EQ(refs, mine);

  json sbom = json::parse(artifact_document("staging/app", mine["application/spdx+json"], digest,
                                            "application/spdx+json"),
                          nullptr, false);
  ASSERT_FALSE(sbom.is_discarded());
  EXPECT_EQ(sbom.value("spdxVersion", ""), "SPDX-2.3");
  EXPECT_EQ(sbom["creationInfo"].value("created", ""), "1970-01-01T00:00:00Z");
  std::map<std::string, std::string> pkgs;
  for (const auto& p : sbom["packages"]) pkgs[p.value("name", "")] = p.value("versionInfo", "");
  EXPECT_EQ(pkgs["hello"], "2.10-3");
  EXPECT_FALSE(pkgs.contains("gone"));  // removed, only its config files are left
  std::map<std::string, std::string> files;
  for (const auto& f : sbom["files"]) {
    files[f.value("fileName", "")] = f["checksums"][0].value("checksumValue", "");
  }
  EXPECT_EQ(files["./app/app.txt"], image::Digest::of("the app\n").hex());
  EXPECT_TRUE(files.contains("./var/lib/dpkg/status"));
  EXPECT_FALSE(files.contains("./bin/busybox"));  // the base image's files are not "copied"

  json prov = json::parse(artifact_document("staging/app", mine["application/vnd.in-toto+json"],
                                            digest, "application/vnd.in-toto+json"),
                          nullptr, false);
  ASSERT_FALSE(prov.is_discarded());
  EXPECT_EQ(prov.value("_type", ""), "https://in-toto.io/Statement/v1");
  EXPECT_EQ(prov.value("predicateType", ""), "https://slsa.dev/provenance/v1");
  EXPECT_EQ(prov["subject"][0]["digest"].value("sha256", ""), digest.substr(7));
  const json& def = prov["predicate"]["buildDefinition"];
  EXPECT_EQ(def["externalParameters"]["containerfile"]["digest"].value("sha256", ""),
            image::Digest::of(kContainerfile).hex());
  EXPECT_EQ(def["externalParameters"]["buildArgs"].value("GREETING", ""), "hello");
  EXPECT_EQ(def["internalParameters"].value("SOURCE_DATE_EPOCH", -1), 0);
  ASSERT_EQ(def["resolvedDependencies"].size(), 1u);
  EXPECT_EQ(def["resolvedDependencies"][0].value("name", ""), "busybox");
  EXPECT_EQ(prov["predicate"]["runDetails"]["builder"].value("id", "").rfind("https://kiste.dev/kiste@", 0), 0u);

  // promote carries them: prod has the image, the referrers tag and both artifacts.
  auto p = a_.run("promote " + dest + " " + h_ + "/prod/app:1 2>&1");
  ASSERT_EQ(p.status, 0) << p.output;
  EXPECT_EQ(digest_of("prod/app", "1"), digest);
  EXPECT_EQ(referrers("prod/app", digest), mine);
  for (const auto& [type, art] : mine) {
    EXPECT_FALSE(artifact_document("prod/app", art, digest, type).empty()) << type;
  }
  // skopeo reads the promoted SBOM artifact by digest as the registry stores it.
  std::string raw;
  ASSERT_EQ(run_shell("skopeo inspect --tls-verify=false --raw docker://" + h_ + "/prod/app@" +
                          mine["application/spdx+json"] + " 2>&1",
                      &raw),
            0)
      << raw;
  EXPECT_NE(raw.find("\"subject\""), std::string::npos) << raw;
}

TEST_F(Attest, PushingAgainKeepsOneEntryPerArtifactAndOtherReferrers) {
  const std::string dest = h_ + "/staging/app:1";
  auto r = a_.run("build --sbom -t " + dest + " " + ctx_.native() + " 2>&1");
  ASSERT_EQ(r.status, 0) << r.output;
  auto sbom = attached(r.output);
  ASSERT_EQ(sbom.size(), 1u) << r.output;
  ASSERT_EQ(a_.run("push -q " + dest + " 2>&1").status, 0);
  // The provenance of the same image added later joins the index; a second push adds nothing.
  auto p = a_.run("build --provenance -t " + dest + " " + ctx_.native() + " 2>&1");
  ASSERT_EQ(p.status, 0) << p.output;
  ASSERT_EQ(a_.run("push -q " + dest + " 2>&1").status, 0);
  ASSERT_EQ(a_.run("push -q " + dest + " 2>&1").status, 0);
  const std::string digest = digest_of("staging/app", "1");
  auto refs = referrers("staging/app", digest);
  EXPECT_EQ(refs.size(), 2u);
  EXPECT_EQ(refs["application/spdx+json"], sbom["application/spdx+json"]);
}

TEST_F(Attest, PruneKeepsAttestationsOfNamedImagesAndDropsThemWithTheImage) {
  auto r = a_.run("build --sbom --provenance -t app " + ctx_.native() + " 2>&1");
  ASSERT_EQ(r.status, 0) << r.output;
  auto mine = attached(r.output);
  ASSERT_EQ(mine.size(), 2u);
  auto blob = [&](const std::string& d) {
    return a_.root() / "blobs" / "sha256" / d.substr(7);
  };
  ASSERT_EQ(a_.run("prune 2>&1").status, 0);
  for (const auto& [type, d] : mine) EXPECT_TRUE(fs::exists(blob(d))) << type;
  ASSERT_EQ(a_.run("rmi app 2>&1").status, 0);
  auto pr = a_.run("prune 2>&1");
  ASSERT_EQ(pr.status, 0) << pr.output;
  for (const auto& [type, d] : mine) EXPECT_FALSE(fs::exists(blob(d))) << type;
  std::string index = sys::read_file(a_.root() / "index.json", 1 << 20).value();
  EXPECT_EQ(index.find("dev.kiste.referrer.subject"), std::string::npos) << index;
  auto fsck = a_.run("fsck 2>&1");
  EXPECT_EQ(fsck.status, 0) << fsck.output;
}

// save/load: an oci-archive carries the attestations (their manifests as index.json entries with
// the image as `subject`, as oras and skopeo keep referrers in an OCI layout); after save, rmi,
// prune and load they are the image's again, pushed with it, and the image digest is the same.
// A docker-archive cannot hold them: save says so in one note line and load brings none back.
TEST_F(Attest, OciArchiveKeepsAttestationsThroughSaveRmiLoadDockerArchiveSaysItCannot) {
  auto r = a_.run("build --sbom --provenance -t app " + ctx_.native() + " 2>&1");
  ASSERT_EQ(r.status, 0) << r.output;
  auto mine = attached(r.output);
  ASSERT_EQ(mine.size(), 2u) << r.output;
  const fs::path oci = tmp_ / "app-oci.tar", dock = tmp_ / "app-docker.tar";
  auto so = a_.run("save --format oci-archive -o " + oci.native() + " app 2>&1");
  ASSERT_EQ(so.status, 0) << so.output;
  EXPECT_TRUE(so.output.empty()) << so.output;
  auto sd = a_.run("save -o " + dock.native() + " app 2>&1");
  ASSERT_EQ(sd.status, 0) << sd.output;
  EXPECT_EQ(count_lines(sd.output), 1u) << sd.output;
  EXPECT_NE(sd.output.find("note: a docker-archive cannot hold signatures or attestations: 2 "
                           "referrers of the saved images left out"),
            std::string::npos)
      << sd.output;

  // skopeo reads the archive's image by its name (index.json has three entries, one named).
  std::string raw;
  ASSERT_EQ(run_shell("skopeo inspect --raw oci-archive:" + oci.native() +
                          ":docker.io/library/app:latest 2>&1",
                      &raw),
            0)
      << raw;
  const std::string out(image::Digest::of(raw).hex());
  ASSERT_EQ(a_.run("push -q app docker://" + h_ + "/saved/app:1 2>&1").status, 0);
  const std::string digest = digest_of("saved/app", "1");
  ASSERT_EQ(digest.size(), 71u);
  EXPECT_EQ("sha256:" + out.substr(0, 64), digest);

  ASSERT_EQ(a_.run("rmi app 2>&1").status, 0);
  ASSERT_EQ(a_.run("prune 2>&1").status, 0);
  for (const auto& [type, d] : mine) {
    EXPECT_FALSE(fs::exists(a_.root() / "blobs" / "sha256" / d.substr(7))) << type;
  }
  auto ld = a_.run("load -i " + dock.native() + " 2>&1");
  ASSERT_EQ(ld.status, 0) << ld.output;
  EXPECT_EQ(ld.output.find("signature/attestation"), std::string::npos) << ld.output;
  auto lo = a_.run("load -i " + oci.native() + " 2>&1");
  ASSERT_EQ(lo.status, 0) << lo.output;
  EXPECT_NE(lo.output.find("with 2 signature/attestation artifacts"), std::string::npos)
      << lo.output;
  // Kept by prune, pushed with the image, listed by the registry's referrers tag.
  ASSERT_EQ(a_.run("prune 2>&1").status, 0);
  auto p = a_.run("push -q app docker://" + h_ + "/loaded/app:1 2>&1");
  ASSERT_EQ(p.status, 0) << p.output;
  EXPECT_EQ(digest_of("loaded/app", "1"), digest);
  EXPECT_EQ(referrers("loaded/app", digest), mine);
  auto fsck = a_.run("fsck 2>&1");
  EXPECT_EQ(fsck.status, 0) << fsck.output;
}

// copy between the store and archives/layouts carries the attestations the same way:
// `copy IMAGE oci:DIR` lists them as unnamed index.json entries with their artifactType (as oras
// does; skopeo still reads the image by name), `copy oci:DIR NAME` brings them into another
// store, `copy IMAGE oci-archive:F` and
// `copy oci-archive:F NAME` into another store keep them as store-side referrers (pushed from
// there), and `copy IMAGE docker-archive:F` says in one note line that it left them out.
TEST_F(Attest, CopyCarriesAttestationsToOciLayoutsAndArchives) {
  auto r = a_.run("build --sbom --provenance -t app " + ctx_.native() + " 2>&1");
  ASSERT_EQ(r.status, 0) << r.output;
  auto mine = attached(r.output);
  ASSERT_EQ(mine.size(), 2u) << r.output;

  const fs::path layout = tmp_ / "layout";
  auto c1 = a_.run("copy app oci:" + layout.native() + ":app 2>&1");
  ASSERT_EQ(c1.status, 0) << c1.output;
  EXPECT_NE(c1.output.find("2 signature/attestation artifacts copied"), std::string::npos)
      << c1.output;
  json index = json::parse(sys::read_file(layout / "index.json", 1 << 20).value_or(""), nullptr,
                           false);
  ASSERT_EQ(index["manifests"].size(), 3u) << index.dump();
  std::map<std::string, std::string> listed;
  for (const auto& m : index["manifests"]) {
    if (m.contains("artifactType")) listed[m.value("artifactType", "")] = m.value("digest", "");
  }
  EXPECT_EQ(listed, mine) << index.dump();
  std::string out;
  EXPECT_EQ(run_shell("skopeo inspect --raw oci:" + layout.native() + ":app 2>&1", &out), 0) << out;
  // Without a name the image is the one candidate: the artifacts are not images. Into another
  // store they come along, and a push from there lists them in the registry.
  auto c2 = b_.run("copy oci:" + layout.native() + " from-layout 2>&1");
  ASSERT_EQ(c2.status, 0) << c2.output;
  EXPECT_NE(c2.output.find("2 signature/attestation artifacts copied"), std::string::npos)
      << c2.output;
  auto p2 = b_.run("push -q from-layout docker://" + h_ + "/from-layout/app:1 2>&1");
  ASSERT_EQ(p2.status, 0) << p2.output;
  EXPECT_EQ(referrers("from-layout/app", digest_of("from-layout/app", "1")), mine);

  const fs::path oci = tmp_ / "copy-oci.tar", dock = tmp_ / "copy-docker.tar";
  auto c3 = a_.run("copy app oci-archive:" + oci.native() + " 2>&1");
  ASSERT_EQ(c3.status, 0) << c3.output;
  auto c4 = b_.run("copy oci-archive:" + oci.native() + " from-archive 2>&1");
  ASSERT_EQ(c4.status, 0) << c4.output;
  EXPECT_NE(c4.output.find("2 signature/attestation artifacts copied"), std::string::npos)
      << c4.output;
  auto p = b_.run("push -q from-archive docker://" + h_ + "/copied/app:1 2>&1");
  ASSERT_EQ(p.status, 0) << p.output;
  const std::string digest = digest_of("copied/app", "1");
  EXPECT_EQ(referrers("copied/app", digest), mine);

  auto c5 = a_.run("copy app docker-archive:" + dock.native() + " 2>&1");
  ASSERT_EQ(c5.status, 0) << c5.output;
  EXPECT_NE(c5.output.find("note: docker-archive:" + dock.native() +
                           " cannot hold signatures or attestations: 2 referrers"),
            std::string::npos)
      << c5.output;
}

// `promote --require-rebuild`: another store rebuilds the staged image from a context with the
// provenance's inputs; the same context promotes, one changed byte is refused with the file named
// and prod's tag left as it was; the scratch store is gone either way.
TEST_F(Attest, RequireRebuildPromotesTheSameContextAndNamesTheChangedFile) {
  const std::string staging = h_ + "/staging/app:1";
  const std::string prod = h_ + "/prod/app:1";
  auto r = a_.run("build --provenance --push -t " + staging + " --build-arg GREETING=hello " +
                  ctx_.native() + " 2>&1");
  ASSERT_EQ(r.status, 0) << r.output;
  const std::string digest = digest_of("staging/app", "1");
  ASSERT_EQ(b_.run("push -q busybox docker://" + prod + " 2>&1").status, 0);
  const std::string old = digest_of("prod/app", "1");
  ASSERT_NE(old, digest);
  auto scratch_dirs = [&] {
    int n = 0;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(b_.root() / "tmp", ec)) {
      n += e.path().filename().native().starts_with("rebuild-") ? 1 : 0;
    }
    return n;
  };

  // One changed byte in one file of another copy of the context.
  fs::path changed = tmp_ / "changed";
  fs::copy(ctx_, changed, fs::copy_options::recursive);
  std::ofstream(changed / "app.txt", std::ios::trunc) << "the apq\n";
  auto refused = b_.run("promote --require-rebuild --context " + changed.native() + " " + staging +
                        " " + prod + " 2>&1");
  EXPECT_EQ(refused.status, 125) << refused.output;
  EXPECT_NE(refused.output.find("layer 1 differs first (source sha256:"), std::string::npos)
      << refused.output;
  EXPECT_NE(refused.output.find("`/app/app.txt`: content " + image::Digest::of("the app\n").str()),
            std::string::npos)
      << refused.output;
  EXPECT_NE(refused.output.find("nothing was promoted"), std::string::npos) << refused.output;
  EXPECT_EQ(digest_of("prod/app", "1"), old);
  EXPECT_EQ(scratch_dirs(), 0);

  // The same context (the provenance gives GREETING, SOURCE_DATE_EPOCH and busybox's digest),
  // with the rebuilder's statement attached in prod beside the provenance promote carried.
  const std::string provenance = attached(r.output)["application/vnd.in-toto+json"];
  auto ok = b_.run("promote --require-rebuild --attest-rebuild --context " + ctx_.native() + " " +
                   staging + " " + prod + " 2>&1");
  ASSERT_EQ(ok.status, 0) << ok.output;
  EXPECT_NE(ok.output.find("the same digest"), std::string::npos) << ok.output;
  EXPECT_EQ(digest_of("prod/app", "1"), digest);
  EXPECT_EQ(scratch_dirs(), 0);
  json idx = get_json("prod/app/manifests/sha256-" + digest.substr(7),
                      "application/vnd.oci.image.index.v1+json");
  ASSERT_FALSE(idx.is_discarded());
  ASSERT_EQ(idx["manifests"].size(), 2u) << idx.dump();
  EXPECT_EQ(idx["manifests"][0].value("digest", ""), provenance);
  json stmt = json::parse(artifact_document("prod/app", idx["manifests"][1].value("digest", ""),
                                            digest, "application/vnd.in-toto+json"),
                          nullptr, false);
  ASSERT_FALSE(stmt.is_discarded());
  EXPECT_EQ(stmt.value("predicateType", ""), "https://kiste.dev/rebuild/v1");
  EXPECT_EQ(stmt["predicate"]["provenance"]["digest"].value("sha256", ""), provenance.substr(7));
  EXPECT_EQ(stmt["predicate"]["buildArgs"].value("GREETING", ""), "hello");

  // Flags that only a rebuild reads are refused without it.
  auto stray = b_.run("promote --context " + ctx_.native() + " " + staging + " " + prod + " 2>&1");
  EXPECT_EQ(stray.status, 125) << stray.output;
}

}  // namespace
}  // namespace kiste::testing
