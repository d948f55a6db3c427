// Pull, push, round trips with skopeo, multi-platform selection, TLS and auth against a real
// docker-registry process.
#include <kiste/image/media_type.hpp>
#include <kiste/registry/credentials.hpp>
#include <kiste/registry/errors.hpp>

#include "registry_fixture.hpp"

namespace kiste::testing {
namespace {

using image::Platform;

TEST_F(RegistryTest, PushPullRoundTripPlainHttp) {
  auto reg = start_registry();
  ASSERT_TRUE(reg);
  auto a = open_store("a");
  auto img = make_test_image(a, "localhost/app:1", {300'000, 1'000, 2'000'000}, 1);
  auto c = client(reg->host());
  std::string dest = reg->host() + "/team/app:1";
  auto pushed = push(a, "localhost/app:1", *c, dest);
  ASSERT_TRUE(pushed) << pushed.error().to_string();
  EXPECT_EQ(*pushed, img.manifest.digest);
  EXPECT_EQ(c->base_url(), "http://" + reg->host());

  // A second push finds every blob present (HEAD) and uploads nothing.
  auto uploads_before = reg->count_requests("PUT /v2/team/app/blobs/uploads/");
  ASSERT_TRUE(push(a, "localhost/app:1", *c, dest));
  EXPECT_EQ(reg->count_requests("PUT /v2/team/app/blobs/uploads/"), uploads_before);

  auto b = open_store("b");
  auto c2 = client(reg->host());
  auto r = pull(*c2, dest, b);
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(r->top.digest, img.manifest.digest);
  EXPECT_EQ(r->blobs_copied, 4);
  EXPECT_EQ(c2->stats().blob_bytes_downloaded, 300'000u + 1'000 + 2'000'000 + img.blobs[0].size);
  auto entry = b.resolve(dest);
  ASSERT_TRUE(entry) << entry.error().to_string();
  EXPECT_EQ(entry->manifest.digest, img.manifest.digest);
  auto v = validate(b, dest);
  EXPECT_TRUE(v) << v.error().to_string();
}

TEST_F(RegistryTest, KistePushSkopeoReadsAndSkopeoPushKistePulls) {
  auto reg = start_registry();
  ASSERT_TRUE(reg);
  auto a = open_store("a");
  auto img = make_test_image(a, "localhost/rt:1", {100'000, 50'000}, 2);
  auto c = client(reg->host());
  ASSERT_TRUE(push(a, "localhost/rt:1", *c, reg->host() + "/rt/kiste:1"));

  std::string out;
  ASSERT_EQ(run_shell("skopeo inspect --raw --tls-verify=false docker://" + reg->host() +
                          "/rt/kiste:1 | sha256sum",
                      &out),
            0)
      << out;
  EXPECT_EQ("sha256:" + out.substr(0, 64), img.manifest.digest.str());
  ASSERT_EQ(run_shell("skopeo copy --preserve-digests --src-tls-verify=false docker://" +
                          reg->host() + "/rt/kiste:1 oci:" + (tmp_ / "skopeo-oci").string() + ":x",
                      &out),
            0)
      << out;

  // skopeo pushes (from its own OCI layout copy), kiste pulls: same digest, valid store.
  ASSERT_EQ(
      run_shell("skopeo copy --preserve-digests --dest-tls-verify=false oci:" +
                    (tmp_ / "skopeo-oci").string() + ":x docker://" + reg->host() + "/rt/skopeo:2",
                &out),
      0)
      << out;
  out.clear();
  ASSERT_EQ(run_shell("skopeo inspect --tls-verify=false --format '{{.Digest}}' docker://" +
                          reg->host() + "/rt/skopeo:2",
                      &out),
            0)
      << out;
  std::string skopeo_digest = out.substr(0, 71);
  auto b = open_store("b");
  auto r = pull(*c, reg->host() + "/rt/skopeo:2", b);
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(r->top.digest.str(), skopeo_digest);
  EXPECT_EQ(r->top.digest, img.manifest.digest);
  auto v = validate(b, reg->host() + "/rt/skopeo:2");
  EXPECT_TRUE(v) << v.error().to_string();
}

TEST_F(RegistryTest, MultiPlatformIndexPullSelectsChildAndAllKeepsIndex) {
  auto reg = start_registry();
  ASSERT_TRUE(reg);
  auto a = open_store("a");
  Platform amd = Platform::parse("linux/amd64").value();
  Platform arm = Platform::parse("linux/arm64/v8").value();
  auto i1 = make_test_image(a, "localhost/mp:amd64", {10'000}, 3, amd);
  auto i2 = make_test_image(a, "localhost/mp:arm64", {20'000}, 4, arm);
  auto idx = make_test_index(a, "localhost/mp:multi", {{i1.manifest, amd}, {i2.manifest, arm}});
  auto c = client(reg->host());
  auto pushed = push(a, "localhost/mp:multi", *c, reg->host() + "/mp:multi");
  ASSERT_TRUE(pushed) << pushed.error().to_string();
  EXPECT_EQ(*pushed, idx.digest);

  auto b = open_store("b");
  auto r = pull(*c, reg->host() + "/mp:multi", b, {.platform = arm});
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(r->top.digest, i2.manifest.digest);
  EXPECT_FALSE(b.has_blob(i1.blobs[1].digest));  // the other platform's layer stayed away
  EXPECT_TRUE(b.has_blob(i2.blobs[1].digest));

  auto all = open_store("all");
  auto r2 = pull(*c, reg->host() + "/mp:multi", all, {.all = true});
  ASSERT_TRUE(r2) << r2.error().to_string();
  EXPECT_EQ(r2->top.digest, idx.digest);
  EXPECT_TRUE(all.has_blob(i1.blobs[1].digest));
  EXPECT_TRUE(all.has_blob(i2.blobs[1].digest));

  // No matching platform: a clear NotFound, nothing named.
  auto none = open_store("none");
  auto r3 = pull(*c, reg->host() + "/mp:multi", none,
                 {.platform = Platform::parse("linux/s390x").value()});
  ASSERT_FALSE(r3);
  EXPECT_EQ(r3.error().code, Errc::NotFound);
}

TEST_F(RegistryTest, ChunkedUploadWithPatchAndContentRange) {
  auto reg = start_registry();
  ASSERT_TRUE(reg);
  auto a = open_store("a");
  auto img = make_test_image(a, "localhost/ch:1", {1'000'000, 10}, 41);
  auto c = client(reg->host(), {.upload_chunk_bytes = 300'000});
  auto p = push(a, "localhost/ch:1", *c, reg->host() + "/ch:1");
  ASSERT_TRUE(p) << p.error().to_string();
  EXPECT_EQ(reg->count_requests("PATCH /v2/ch/blobs/uploads/"), 4);  // 3 x 300 kB + 100 kB
  auto b = open_store("b");
  auto r = pull(*c, reg->host() + "/ch:1", b);
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(r->top.digest, img.manifest.digest);
  EXPECT_TRUE(validate(b, reg->host() + "/ch:1"));
}

TEST_F(RegistryTest, RegistryErrorsAreStructuredAndOneLine) {
  auto reg = start_registry();
  ASSERT_TRUE(reg);
  auto c = client(reg->host());
  auto r = c->get_manifest("nope/nothing", "1");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().http_status, 404);
  ASSERT_FALSE(r.error().registry_codes.empty());
  EXPECT_TRUE(r.error().registry_codes[0] == "MANIFEST_UNKNOWN" ||
              r.error().registry_codes[0] == "NAME_UNKNOWN");
  std::string line = r.error().to_string();
  EXPECT_EQ(line.find('\n'), std::string::npos);
  EXPECT_NE(line.find("404"), std::string::npos) << line;
  auto h = c->try_head_manifest("nope/nothing", "1");
  ASSERT_TRUE(h) << h.error().to_string();
  EXPECT_FALSE(h->has_value());
  // Invalid tags and digests never reach the wire.
  EXPECT_EQ(c->get_manifest("a", "../../etc").error().code, Errc::InvalidArgument);
  EXPECT_EQ(c->get_manifest("a", "sha256:../../x").error().code, Errc::InvalidArgument);
}

TEST_F(RegistryTest, TagsListAndDelete) {
  auto reg = start_registry();
  ASSERT_TRUE(reg);
  auto a = open_store("a");
  make_test_image(a, "localhost/t:1", {1000}, 5);
  auto c = client(reg->host());
  for (std::string tag : {"1", "2", "latest"}) {
    ASSERT_TRUE(push(a, "localhost/t:1", *c, reg->host() + "/tags/t:" + tag));
  }
  auto tags = c->list_tags("tags/t");
  ASSERT_TRUE(tags) << tags.error().to_string();
  std::sort(tags->names.begin(), tags->names.end());
  EXPECT_EQ(tags->names, (std::vector<std::string>{"1", "2", "latest"}));
  EXPECT_EQ(tags->skipped, 0u);
  auto cat = c->catalog();
  ASSERT_TRUE(cat) << cat.error().to_string();
  EXPECT_NE(std::find(cat->names.begin(), cat->names.end(), "tags/t"), cat->names.end());
  auto d = c->try_head_manifest("tags/t", "1");
  ASSERT_TRUE(d && d->has_value());
  ASSERT_TRUE(c->delete_manifest("tags/t", (*d)->digest));
  auto gone = c->try_head_manifest("tags/t", (*d)->digest.str());
  ASSERT_TRUE(gone);
  EXPECT_FALSE(gone->has_value());
}

TEST_F(RegistryTest, TlsVerifiesAgainstCertDirAndNeverFallsBackToHttp) {
  auto reg = start_registry({.tls = true});
  ASSERT_TRUE(reg);
  auto a = open_store("a");
  auto img = make_test_image(a, "localhost/tls:1", {50'000}, 6);
  // Without the CA: verification fails; kiste does not quietly switch to plain HTTP.
  auto bad = client(reg->host());
  auto r = push(a, "localhost/tls:1", *bad, reg->host() + "/tls:1");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::PermissionDenied) << r.error().to_string();
  EXPECT_EQ(reg->count_requests("/v2/"), 0);
  // With --cert-dir: verified TLS.
  auto good = client(reg->host(), {.cert_dir = reg->cert_dir()});
  auto p = push(a, "localhost/tls:1", *good, reg->host() + "/tls:1");
  ASSERT_TRUE(p) << p.error().to_string();
  EXPECT_EQ(good->base_url(), "https://" + reg->host());
  auto b = open_store("b");
  auto q = pull(*good, reg->host() + "/tls:1", b);
  ASSERT_TRUE(q) << q.error().to_string();
  EXPECT_EQ(q->top.digest, img.manifest.digest);
  // --tls-verify=false: TLS without verification.
  auto insecure = client(reg->host(), {.tls_verify = false});
  EXPECT_TRUE(insecure->get_manifest("tls", "1"));
  EXPECT_EQ(insecure->base_url(), "https://" + reg->host());
}

TEST_F(RegistryTest, BasicAuthWithKeychain) {
  auto reg = start_registry({.auth = RegistryAuth::Basic});
  ASSERT_TRUE(reg);
  auto a = open_store("a");
  make_test_image(a, "localhost/basic:1", {10'000}, 7);
  auto anon = client(reg->host());
  auto r = push(a, "localhost/basic:1", *anon, reg->host() + "/basic:1");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::PermissionDenied) << r.error().to_string();

  auto file = tmp_ / "auth.json";
  ASSERT_TRUE(registry::save_login(file, reg->host(), {.username = "kiste", .password = "wrong"}));
  registry::DockerKeychain wrong_kc(std::vector<std::filesystem::path>{file});
  auto wrong = client(reg->host(), {.keychain = &wrong_kc});
  auto w = push(a, "localhost/basic:1", *wrong, reg->host() + "/basic:1");
  ASSERT_FALSE(w);
  EXPECT_EQ(w.error().http_status, 401);
  EXPECT_EQ(w.error().to_string().find("wrong"), std::string::npos);  // no secret in errors

  ASSERT_TRUE(
      registry::save_login(file, reg->host(), {.username = "kiste", .password = "kiste-secret"}));
  registry::DockerKeychain kc(std::vector<std::filesystem::path>{file});
  auto c = client(reg->host(), {.keychain = &kc});
  auto p = push(a, "localhost/basic:1", *c, reg->host() + "/basic:1");
  ASSERT_TRUE(p) << p.error().to_string();
  auto b = open_store("b");
  auto q = pull(*c, reg->host() + "/basic:1", b);
  ASSERT_TRUE(q) << q.error().to_string();
  EXPECT_TRUE(c->ping());
}

TEST_F(RegistryTest, BearerTokenAuthCachesTokensPerScope) {
  auto reg = start_registry({.auth = RegistryAuth::Token});
  ASSERT_TRUE(reg);
  auto a = open_store("a");
  auto img = make_test_image(a, "localhost/tok:1", {10'000, 20'000, 30'000}, 8);
  auto file = tmp_ / "auth.json";
  ASSERT_TRUE(
      registry::save_login(file, reg->host(), {.username = "kiste", .password = "kiste-secret"}));
  registry::DockerKeychain kc(std::vector<std::filesystem::path>{file});
  auto c = client(reg->host(), {.keychain = &kc});
  auto p = push(a, "localhost/tok:1", *c, reg->host() + "/team/tok:1");
  ASSERT_TRUE(p) << p.error().to_string();
  // One token for the push scope, shared by all workers (plus at most a pull-only one).
  EXPECT_LE(c->stats().token_fetches, 2u);
  EXPECT_EQ(uint64_t(reg->token_requests()), c->stats().token_fetches);
  auto b = open_store("b");
  auto c2 = client(reg->host(), {.keychain = &kc});
  auto q = pull(*c2, reg->host() + "/team/tok:1", b);
  ASSERT_TRUE(q) << q.error().to_string();
  EXPECT_EQ(q->top.digest, img.manifest.digest);
  EXPECT_EQ(c2->stats().token_fetches, 1u);

  // Wrong password: the token server refuses; one line, no secret.
  ASSERT_TRUE(
      registry::save_login(file, reg->host(), {.username = "kiste", .password = "nope-pw"}));
  registry::DockerKeychain bad_kc(std::vector<std::filesystem::path>{file});
  auto bad = client(reg->host(), {.keychain = &bad_kc});
  auto r = bad->get_manifest("team/tok", "1");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().http_status, 401) << r.error().to_string();
  EXPECT_EQ(r.error().to_string().find("nope-pw"), std::string::npos);
  // Anonymous: the registry's challenge is answered with a token request that fails.
  auto anon = client(reg->host());
  EXPECT_FALSE(anon->get_manifest("team/tok", "1"));
}

}  // namespace
}  // namespace kiste::testing
