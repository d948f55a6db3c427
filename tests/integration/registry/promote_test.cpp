// Promotion: byte-identical, mounts instead of uploads, --expect-digest refuses, artifacts travel.
#include <kiste/image/media_type.hpp>
#include <kiste/registry/promote.hpp>

#include "fault_proxy.hpp"

#include "registry_fixture.hpp"

namespace kiste::testing {
namespace {

using image::Platform;

TEST_F(RegistryTest, PromoteSameRegistryMountsEveryBlobAndKeepsDigest) {
  auto reg = start_registry();
  ASSERT_TRUE(reg);
  auto a = open_store("a");
  auto img = make_test_image(a, "localhost/app:rc", {400'000, 300'000, 200'000, 100'000}, 11);
  auto c = client(reg->host());
  ASSERT_TRUE(push(a, "localhost/app:rc", *c, reg->host() + "/staging/app:rc"));

  auto pc = client(reg->host());  // a fresh client: no cache of any kind
  auto r =
      registry::promote(*pc, ref(reg->host() + "/staging/app:rc"), *pc,
                        ref(reg->host() + "/prod/app:1.0"), {.expect_digest = img.manifest.digest});
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(r->digest, img.manifest.digest);
  EXPECT_EQ(r->copy.blobs_mounted, 5);
  EXPECT_EQ(r->copy.blobs_copied, 0);
  EXPECT_EQ(pc->stats().blob_bytes_uploaded, 0u);
  EXPECT_EQ(pc->stats().blob_bytes_downloaded, 0u);
  // The registry's own log: mounts, and not one upload into prod.
  EXPECT_EQ(reg->count_requests("POST /v2/prod/app/blobs/uploads/?mount="), 5);
  EXPECT_EQ(reg->count_requests("PUT /v2/prod/app/blobs/uploads/"), 0);
  EXPECT_EQ(reg->count_requests("PATCH /v2/prod/app/blobs/uploads/"), 0);
  auto served = pc->try_head_manifest("prod/app", "1.0");
  ASSERT_TRUE(served && served->has_value());
  EXPECT_EQ((*served)->digest, img.manifest.digest);
  auto bytes_src = pc->get_manifest("staging/app", "rc");
  auto bytes_dst = pc->get_manifest("prod/app", "1.0");
  ASSERT_TRUE(bytes_src && bytes_dst);
  EXPECT_EQ(bytes_src->bytes, bytes_dst->bytes);
}

TEST_F(RegistryTest, PromoteWithWrongExpectedDigestTagsNothing) {
  auto reg = start_registry();
  ASSERT_TRUE(reg);
  auto a = open_store("a");
  make_test_image(a, "localhost/app:rc", {10'000}, 12);
  auto c = client(reg->host());
  ASSERT_TRUE(push(a, "localhost/app:rc", *c, reg->host() + "/staging/app:rc"));
  auto wrong = image::Digest::of("something else");
  auto r = registry::promote(*c, ref(reg->host() + "/staging/app:rc"), *c,
                             ref(reg->host() + "/prod/app:1.0"), {.expect_digest = wrong});
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().to_string().find(wrong.str()), std::string::npos) << r.error().to_string();
  EXPECT_EQ(reg->count_requests("/v2/prod/"), 0);
  auto h = c->try_head_manifest("prod/app", "1.0");
  ASSERT_TRUE(h) << h.error().to_string();
  EXPECT_FALSE(h->has_value());
}

TEST_F(RegistryTest, PromoteIndexWithEveryChildAndSignatureTags) {
  auto reg = start_registry();
  ASSERT_TRUE(reg);
  auto a = open_store("a");
  Platform amd = Platform::parse("linux/amd64").value();
  Platform arm = Platform::parse("linux/arm64/v8").value();
  auto i1 = make_test_image(a, "localhost/mp:amd64", {10'000}, 13, amd);
  auto i2 = make_test_image(a, "localhost/mp:arm64", {20'000}, 14, arm);
  auto idx = make_test_index(a, "localhost/mp:multi", {{i1.manifest, amd}, {i2.manifest, arm}});
  auto c = client(reg->host());
  ASSERT_TRUE(push(a, "localhost/mp:multi", *c, reg->host() + "/staging/mp:rc"));
  // A cosign-style signature stored under sha256-<hex>.sig next to the image.
  auto sig = make_test_image(a, "localhost/mp:sig", {500}, 15);
  std::string sig_tag = "sha256-" + std::string(idx.digest.hex()) + ".sig";
  ASSERT_TRUE(push(a, "localhost/mp:sig", *c, reg->host() + "/staging/mp:" + sig_tag));

  auto r = registry::promote(*c, ref(reg->host() + "/staging/mp:rc"), *c,
                             ref(reg->host() + "/prod/mp:1"), {});
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(r->digest, idx.digest);
  EXPECT_EQ(r->artifacts_copied, 1);
  for (const auto& d : {i1.manifest.digest, i2.manifest.digest}) {
    auto h = c->try_head_manifest("prod/mp", d.str());
    ASSERT_TRUE(h && h->has_value()) << d.str();
  }
  auto s = c->try_head_manifest("prod/mp", sig_tag);
  ASSERT_TRUE(s && s->has_value());
  EXPECT_EQ((*s)->digest, sig.manifest.digest);
  EXPECT_EQ(reg->count_requests("PUT /v2/prod/mp/blobs/uploads/"), 0);
}

TEST_F(RegistryTest, CrossRegistryPromotionUploadsEachLayerOnce) {
  auto staging = start_registry();
  auto prod = start_registry();
  ASSERT_TRUE(staging && prod);
  auto a = open_store("a");
  auto img = make_test_image(a, "localhost/x:1", {100'000, 200'000, 300'000}, 16);
  auto sc = client(staging->host());
  ASSERT_TRUE(push(a, "localhost/x:1", *sc, staging->host() + "/x:rc"));
  auto dc = client(prod->host());
  auto r = registry::promote(*sc, ref(staging->host() + "/x:rc"), *dc, ref(prod->host() + "/x:1"),
                             {.expect_digest = img.manifest.digest});
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(r->digest, img.manifest.digest);
  EXPECT_EQ(r->copy.blobs_copied, 4);
  EXPECT_EQ(prod->count_requests("PUT /v2/x/blobs/uploads/"), 4);
  for (const auto& b : img.blobs) {
    EXPECT_EQ(prod->count_requests("digest=sha256%3A" + std::string(b.digest.hex())), 1)
        << b.digest.str();
  }
  EXPECT_EQ(prod->count_requests("?mount="), 0);  // no mount across registries
  // Promoting again moves nothing.
  auto again =
      registry::promote(*sc, ref(staging->host() + "/x:rc"), *dc, ref(prod->host() + "/x:1"), {});
  ASSERT_TRUE(again);
  EXPECT_EQ(again->copy.blobs_existing, 4);
  EXPECT_EQ(prod->count_requests("PUT /v2/x/blobs/uploads/"), 4);
}

// Pushes an OCI artifact (empty config, one layer) into `repo` by digest only, with `subject`.
image::ManifestBlob push_artifact(registry::Client& c, const std::string& repo,
                                  const std::string& artifact_type, const std::string& content,
                                  const std::optional<image::Descriptor>& subject) {
  namespace mt = image::media_type;
  image::Manifest m;
  m.media_type = std::string(mt::kOciManifest);
  m.artifact_type = artifact_type;
  m.config = {.media_type = std::string(mt::kOciEmpty), .digest = image::Digest::of("{}"), .size = 2};
  m.layers.push_back({.media_type = artifact_type + "+json",
                      .digest = image::Digest::of(content),
                      .size = static_cast<int64_t>(content.size())});
  m.subject = subject;
  m.annotations["org.example.kind"] = artifact_type;
  for (const auto& [d, bytes] : {std::pair{m.config, std::string("{}")}, {m.layers[0], content}}) {
    image::StringReader r(bytes);
    EXPECT_TRUE(c.upload_blob(repo, d, r));
  }
  auto blob = image::parse_manifest(image::serialize_manifest(m));
  EXPECT_TRUE(blob) << blob.error().to_string();
  auto put = c.put_manifest(repo, blob->digest.str(), *blob);
  EXPECT_TRUE(put) << put.error().to_string();
  return *blob;
}

// The registry has no referrers API; a proxy answers it from the manifests really stored there
// (see FaultProxy::serve_referrers), so promote's referrers path runs against real artifacts.
TEST_F(RegistryTest, PromoteCopiesTheImagesReferrers) {
  auto reg = start_registry();
  ASSERT_TRUE(reg);
  FaultProxy proxy(reg->port(), FaultProxy::Fault::None, 0);
  proxy.serve_referrers(reg->storage());
  auto a = open_store("a");
  auto img = make_test_image(a, "localhost/app:rc", {10'000, 5'000}, 17);
  auto other = make_test_image(a, "localhost/app:other", {3'000}, 18);
  auto c = client(proxy.host());
  const std::string h = proxy.host();
  ASSERT_TRUE(push(a, "localhost/app:rc", *c, h + "/staging/app:rc"));
  ASSERT_TRUE(push(a, "localhost/app:other", *c, h + "/staging/app:other"));
  auto sbom = push_artifact(*c, "staging/app", "application/vnd.example.sbom", "sbom of rc",
                            img.manifest);
  auto sig = push_artifact(*c, "staging/app", "application/vnd.example.sig", "signature of rc",
                           img.manifest);
  auto unrelated = push_artifact(*c, "staging/app", "application/vnd.example.sig",
                                 "signature of other", other.manifest);

  auto listed = c->try_referrers("staging/app", img.manifest.digest);
  ASSERT_TRUE(listed) << listed.error().to_string();
  ASSERT_TRUE(listed->has_value());
  ASSERT_EQ((*listed)->index().manifests.size(), 2u);

  auto r = registry::promote(*c, ref(h + "/staging/app:rc"), *c, ref(h + "/prod/app:1"),
                             {.expect_digest = img.manifest.digest});
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(r->artifacts_copied, 2);
  for (const auto& m : {sbom, sig}) {
    auto got = c->get_manifest("prod/app", m.digest.str());
    ASSERT_TRUE(got) << got.error().to_string();
    EXPECT_EQ(got->bytes, m.bytes);
  }
  auto absent = c->try_head_manifest("prod/app", unrelated.digest.str());
  ASSERT_TRUE(absent);
  EXPECT_FALSE(absent->has_value());
  // The destination's referrers (from the registry's own storage) are the same two.
  auto dst_refs = c->try_referrers("prod/app", img.manifest.digest);
  ASSERT_TRUE(dst_refs && dst_refs->has_value());
  EXPECT_EQ((*dst_refs)->index().manifests.size(), 2u);
  EXPECT_GE(proxy.referrers_answered(), 3);
  // The artifacts' blobs were mounted, not uploaded.
  EXPECT_EQ(reg->count_requests("PUT /v2/prod/app/blobs/uploads/"), 0);
}

}  // namespace
}  // namespace kiste::testing
