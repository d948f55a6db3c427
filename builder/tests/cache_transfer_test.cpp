// Moving a build cache: BuildKit's --cache-to/--cache-from grammar, and a cache exported into an
// image sink and imported back from the matching source (an OCI layout here; the registry in
// tests/integration/builder) through image's copy routine.
#include <kiste/builder/build_cache.hpp>

#include <gtest/gtest.h>

#include <kiste/base/temp_dir.hpp>
#include <kiste/image/oci_layout.hpp>

namespace kiste::builder {
namespace {

std::string ref_of(std::string_view s) {
  auto r = parse_cache_ref(s, "--cache-to");
  return r ? r->str() : "error: " + r.error().message;
}

TEST(CacheRef, ShortAndBuildKitFormsNameTheSameRepository) {
  EXPECT_EQ(ref_of("localhost:5000/app/cache"), "localhost:5000/app/cache:buildcache");
  EXPECT_EQ(ref_of("localhost:5000/app/cache:main"), "localhost:5000/app/cache:main");
  EXPECT_EQ(ref_of("type=registry,ref=localhost:5000/app/cache"),
            "localhost:5000/app/cache:buildcache");
  EXPECT_EQ(ref_of("ref=localhost:5000/app/cache:v2,type=registry"),
            "localhost:5000/app/cache:v2");
  // BuildKit's other keys are accepted (kiste exports every step whatever mode= says).
  EXPECT_EQ(ref_of("type=registry,ref=localhost:5000/c,mode=max,oci-mediatypes=true,"
                   "compression=zstd,ignore-error=true"),
            "localhost:5000/c:buildcache");
  EXPECT_EQ(ref_of("example.com/c"), "example.com/c:buildcache");
}

TEST(CacheRef, RefusesWhatIsNotARegistryTag) {
  struct Case {
    std::string in, says;
    Errc code;
  };
  const std::string digest = image::Digest::of("x").str();
  const std::vector<Case> cases = {
      {"type=local,dest=/tmp/c", "--cache-to type=local,dest=/tmp/c: only type=registry",
       Errc::Unsupported},
      {"type=registry", "--cache-to type=registry: ref= is required", Errc::InvalidArgument},
      {"type=registry,ref=", "ref= is required", Errc::InvalidArgument},
      {"mode=max", "ref= is required", Errc::InvalidArgument},
      {"localhost:5000/c@" + digest, "a cache is named by a tag, not a digest",
       Errc::InvalidArgument},
      {"type=registry,ref=localhost:5000/c@" + digest, "named by a tag", Errc::InvalidArgument},
      {"localhost:5000/Bad", "--cache-to", Errc::InvalidArgument},
      {"", "--cache-to", Errc::InvalidArgument},
  };
  for (const auto& c : cases) {
    auto r = parse_cache_ref(c.in, "--cache-to");
    ASSERT_FALSE(r) << c.in << " gave " << r->str();
    EXPECT_NE(r.error().to_string().find(c.says), std::string::npos) << r.error().to_string();
    EXPECT_EQ(r.error().code, c.code) << c.in << ": " << r.error().message;
    EXPECT_EQ(r.error().message.find('\n'), std::string::npos);
  }
}

class CacheTransfer : public ::testing::Test {
 protected:
  image::Store store(const std::string& name) {
    auto s = image::Store::open(dir_.path() / name);
    EXPECT_TRUE(s) << s.error().to_string();
    return std::move(*s);
  }
  static CacheRecord layer_record(const image::Store& s, std::string_view key,
                                  std::string_view bytes) {
    auto d = s.put_blob(bytes, "application/vnd.oci.image.layer.v1.tar+gzip");
    EXPECT_TRUE(d) << d.error().to_string();
    return CacheRecord{.key = image::Digest::of(key),
                       .layer = image::LayerResult{.digest = d->digest,
                                                   .size = static_cast<uint64_t>(d->size),
                                                   .diff_id = image::Digest::of(key),
                                                   .media_type = d->media_type}};
  }
  TempDir dir_ =
      std::move(TempDir::create(std::filesystem::temp_directory_path(), "kiste-cache-").value());
};

TEST_F(CacheTransfer, ExportedCacheImportsBackWithItsLayers) {
  image::Store a = store("a");
  std::vector<CacheRecord> recs = {layer_record(a, "step1", "layer one"),
                                   layer_record(a, "step2", "layer two"),
                                   CacheRecord{.key = image::Digest::of("workdir")}};
  image::LayoutRef layout{.dir = dir_.path() / "layout", .name = "cache"};
  {
    auto sink = image::OciLayoutSink::create(layout);
    ASSERT_TRUE(sink) << sink.error().to_string();
    auto r = export_cache(a, recs, **sink);
    ASSERT_TRUE(r) << r.error().to_string();
  }
  auto src = image::OciLayoutImage::open(layout);
  ASSERT_TRUE(src) << src.error().to_string();
  image::Store b = store("b");
  SourceCache cache(std::move(*src), b);
  auto back = cache.records();
  ASSERT_TRUE(back) << back.error().to_string();
  EXPECT_EQ(back->size(), 3u);
  const image::Digest layer = recs[0].layer->digest;
  EXPECT_FALSE(b.has_blob(layer));
  FirstCache first({&cache});
  auto f = first.fetch({.media_type = recs[0].layer->media_type,
                        .digest = layer,
                        .size = static_cast<int64_t>(recs[0].layer->size)});
  ASSERT_TRUE(f) << f.error().to_string();
  auto bytes = b.read_blob(layer);
  ASSERT_TRUE(bytes) << bytes.error().to_string();
  EXPECT_EQ(*bytes, "layer one");
  // A descriptor whose size lies is refused by the store, and nothing is stored.
  const image::Digest other = recs[1].layer->digest;
  auto lied = cache.fetch({.media_type = recs[1].layer->media_type, .digest = other, .size = 3});
  EXPECT_FALSE(lied);
  EXPECT_FALSE(b.has_blob(other));
}

TEST_F(CacheTransfer, AnOrdinaryImageIsNotACache) {
  image::Store a = store("a");
  auto cfg = a.put_blob("{}", "application/vnd.oci.image.config.v1+json");
  ASSERT_TRUE(cfg);
  image::Manifest m;
  m.media_type = "application/vnd.oci.image.manifest.v1+json";
  m.config = *cfg;
  auto mb = image::parse_manifest(image::serialize_manifest(m), m.media_type);
  ASSERT_TRUE(mb) << mb.error().to_string();
  SourceCache cache(a.open_unstored(*mb, "plain"), a);
  auto r = cache.records();
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("not a kiste build cache"), std::string::npos)
      << r.error().message;
}

TEST_F(CacheTransfer, FirstCacheWithoutCachesSaysSo) {
  FirstCache none({});
  auto r = none.fetch({.digest = image::Digest::of("x"), .size = 1});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::NotFound);
}

}  // namespace
}  // namespace kiste::builder
