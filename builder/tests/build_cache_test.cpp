// The build-cache document that --cache-to exports and --cache-from imports: round trip, stable
// bytes, and hostile documents rejected with a reason.
#include <kiste/builder/build_cache.hpp>

#include <gtest/gtest.h>

namespace kiste::builder {
namespace {

CacheRecord rec(std::string_view key, bool layer) {
  CacheRecord r{.key = image::Digest::of(key)};
  if (layer) {
    r.layer = image::LayerResult{.digest = image::Digest::of(std::string(key) + "-blob"),
                                 .size = 42,
                                 .diff_id = image::Digest::of(std::string(key) + "-tar"),
                                 .media_type = "application/vnd.oci.image.layer.v1.tar+gzip"};
  }
  return r;
}

TEST(BuildCache, RoundTripsAndIsStable) {
  std::vector<CacheRecord> recs = {rec("b", true), rec("a", false), rec("c", true), rec("b", true)};
  std::string bytes = serialize_cache_config(recs);
  std::vector<CacheRecord> reversed(recs.rbegin(), recs.rend());
  EXPECT_EQ(serialize_cache_config(reversed), bytes);  // order of the build does not matter
  auto back = parse_cache_config(bytes);
  ASSERT_TRUE(back) << back.error().to_string();
  ASSERT_EQ(back->size(), 3u);  // the duplicate is dropped
  for (const auto& r : *back) {
    bool found = false;
    for (const auto& want : recs) found = found || want == r;
    EXPECT_TRUE(found) << r.key.str();
  }
  EXPECT_EQ(serialize_cache_config(*back), bytes);
}

TEST(BuildCache, RejectsHostileDocuments) {
  const std::string key = image::Digest::of("k").str();
  const std::string d = image::Digest::of("d").str();
  const std::vector<std::string> bad = {
      "",
      "[]",
      "{\"version\":2,\"steps\":[]}",
      "{\"version\":1}",
      "{\"version\":1,\"steps\":{}}",
      "{\"version\":1,\"steps\":[1]}",
      "{\"version\":1,\"steps\":[{\"key\":\"sha256:xyz\"}]}",
      "{\"version\":1,\"steps\":[{\"key\":\"" + key + "\",\"digest\":\"" + d + "\"}]}",
      "{\"version\":1,\"steps\":[{\"key\":\"" + key + "\",\"digest\":\"" + d +
          "\",\"size\":-1,\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\",\"diffID\":\"" + d + "\"}]}",
      "{\"version\":1,\"steps\":[{\"key\":\"" + key + "\",\"digest\":\"" + d +
          "\",\"size\":1,\"mediaType\":\"text/html\",\"diffID\":\"" + d + "\"}]}",
      "{\"version\":1,\"steps\":[{\"key\":\"" + key + "\",\"digest\":\"../../etc/passwd\",\"size\":1,"
          "\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\",\"diffID\":\"" + d + "\"}]}",
  };
  for (const auto& b : bad) {
    auto r = parse_cache_config(b);
    EXPECT_FALSE(r) << b;
    if (!r) {
      EXPECT_NE(r.error().message.find("build cache config"), std::string::npos) << r.error().message;
    }
  }
}

TEST(BuildCache, ManifestCheckRefusesOrdinaryImages) {
  image::Manifest m;
  m.media_type = "application/vnd.oci.image.manifest.v1+json";
  m.config = {.media_type = "application/vnd.oci.image.config.v1+json", .digest = image::Digest::of("{}"), .size = 2};
  auto blob = image::parse_manifest(image::serialize_manifest(m));
  ASSERT_TRUE(blob) << blob.error().to_string();
  auto r = check_cache_manifest(*blob);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("not a kiste build cache"), std::string::npos);
  m.artifact_type = std::string(kCacheArtifactType);
  m.config.media_type = std::string(kCacheConfigType);
  auto ok = image::parse_manifest(image::serialize_manifest(m));
  ASSERT_TRUE(ok);
  EXPECT_TRUE(check_cache_manifest(*ok));
}

}  // namespace
}  // namespace kiste::builder
