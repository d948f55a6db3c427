#include <kiste/image/manifest.hpp>

#include <gtest/gtest.h>

#include <kiste/image/image_config.hpp>
#include <kiste/image/media_type.hpp>

namespace kiste::image {
namespace {

const std::string kA = "sha256:" + std::string(64, 'a');
const std::string kB = "sha256:" + std::string(64, 'b');

std::string desc(std::string_view type, const std::string& digest, int64_t size,
                 std::string_view extra = "") {
  return fmt::format(R"({{"mediaType":"{}","digest":"{}","size":{}{}}})", type, digest, size,
                     extra);
}

std::string oci_manifest(std::string_view extra = "") {
  return fmt::format(R"({{"schemaVersion":2,"mediaType":"{}","config":{},"layers":[{}]{}}})",
                     media_type::kOciManifest, desc(media_type::kOciConfig, kA, 10),
                     desc(media_type::kOciLayerGzip, kB, 20), extra);
}

TEST(Manifest, ParsesOciManifestKeepingBytesAndDigest) {
  std::string bytes = oci_manifest(R"(,"x-unknown":{"kept":true})");
  auto m = parse_manifest(bytes);
  ASSERT_TRUE(m) << m.error().to_string();
  EXPECT_FALSE(m->is_index());
  EXPECT_EQ(m->bytes, bytes);
  EXPECT_EQ(m->digest, Digest::of(bytes));
  EXPECT_EQ(m->manifest().layers.size(), 1u);
  EXPECT_EQ(m->manifest().layers[0].size, 20);
  EXPECT_EQ(m->descriptor().size, static_cast<int64_t>(bytes.size()));
  // Whitespace changes the digest: the parsed form never stands in for the bytes.
  auto spaced = parse_manifest(bytes + " ");
  ASSERT_TRUE(spaced);
  EXPECT_NE(spaced->digest, m->digest);
}

TEST(Manifest, DockerSchema2AndIndexes) {
  std::string d2 = fmt::format(R"({{"schemaVersion":2,"mediaType":"{}","config":{},"layers":[]}})",
                               media_type::kDockerManifest, desc(media_type::kDockerConfig, kA, 1));
  auto m = parse_manifest(d2, media_type::kDockerManifest);
  ASSERT_TRUE(m) << m.error().to_string();
  EXPECT_EQ(m->media_type, media_type::kDockerManifest);

  std::string list = fmt::format(
      R"({{"schemaVersion":2,"mediaType":"{}","manifests":[{},{}]}})",
      media_type::kDockerManifestList,
      desc(media_type::kDockerManifest, kA, 5, R"(,"platform":{"architecture":"amd64","os":"linux"})"),
      desc(media_type::kDockerManifest, kB, 6,
           R"(,"platform":{"architecture":"arm64","os":"linux","variant":"v8"})"));
  auto idx = parse_manifest(list);
  ASSERT_TRUE(idx) << idx.error().to_string();
  ASSERT_TRUE(idx->is_index());
  auto arm = select_platform(idx->index(), Platform::parse("linux/arm64").value());
  ASSERT_TRUE(arm);
  EXPECT_EQ(arm->digest.str(), kB);
  auto amd = select_platform(idx->index(), Platform::parse("linux/amd64").value());
  EXPECT_EQ(amd->digest.str(), kA);
  auto none = select_platform(idx->index(), Platform::parse("linux/s390x").value());
  ASSERT_FALSE(none);
  EXPECT_NE(none.error().message.find("linux/arm64/v8"), std::string::npos);

  // An OCI index without mediaType is inferred from `manifests`.
  auto oci = parse_manifest(R"({"schemaVersion":2,"manifests":[]})");
  ASSERT_TRUE(oci);
  EXPECT_EQ(oci->media_type, media_type::kOciIndex);
}

TEST(Manifest, RejectsHostileAndMalformedDocuments) {
  struct Bad {
    std::string bytes;
    std::string declared;
    Errc code;
  };
  const Bad cases[] = {
      {"not json", "", Errc::Corrupt},
      {"[]", "", Errc::Corrupt},
      {R"({"schemaVersion":1,"fsLayers":[]})", "", Errc::Unsupported},
      {R"({"mediaType":"x"})", "", Errc::Corrupt},
      // both an index and a manifest (CVE-2021-41190)
      {fmt::format(R"({{"schemaVersion":2,"manifests":[],"config":{},"layers":[]}})",
                   desc(media_type::kOciConfig, kA, 1)),
       "", Errc::Corrupt},
      // declared type contradicts the document
      {oci_manifest(), std::string(media_type::kDockerManifest), Errc::Corrupt},
      {R"({"schemaVersion":2,"mediaType":"application/x-unknown","layers":[]})", "",
       Errc::Unsupported},
      {fmt::format(R"({{"schemaVersion":2,"config":{},"layers":[{}]}})",
                   desc(media_type::kOciConfig, kA, 1),
                   desc(media_type::kOciLayerGzip, "sha256:../../x", 1)),
       "", Errc::Corrupt},
      {fmt::format(R"({{"schemaVersion":2,"config":{},"layers":[]}})",
                   desc(media_type::kOciConfig, kA, -1)),
       "", Errc::Corrupt},
      {R"({"schemaVersion":2,"layers":[]})", "", Errc::Corrupt},
      {std::string(kMaxManifestBytes + 1, ' '), "", Errc::InvalidArgument},
  };
  for (const auto& c : cases) {
    auto m = parse_manifest(c.bytes, c.declared);
    ASSERT_FALSE(m) << c.bytes.substr(0, 200);
    EXPECT_EQ(m.error().code, c.code) << c.bytes.substr(0, 200) << ": " << m.error().to_string();
  }
}

TEST(Manifest, SerializeRoundTrips) {
  Manifest m;
  m.media_type = media_type::kOciManifest;
  m.config = {.media_type = std::string(media_type::kOciConfig), .digest = Digest::of("c"), .size = 1};
  m.layers.push_back({.media_type = std::string(media_type::kOciLayerGzip), .digest = Digest::of("l"), .size = 2});
  std::string s = serialize_manifest(m);
  EXPECT_EQ(s, serialize_manifest(m));
  auto p = parse_manifest(s);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->manifest().layers[0], m.layers[0]);
  EXPECT_EQ(p->manifest().config, m.config);
}

TEST(ImageConfig, ParseValidateAndPreserveUnknownFields) {
  std::string raw = fmt::format(
      R"({{"architecture":"amd64","os":"linux","created":"2024-01-01T00:00:00Z","x-extra":[1,2],)"
      R"("config":{{"Env":["A=1"],"Cmd":["sh"],"WorkingDir":"/w","User":"nobody","X-Cfg":"keep",)"
      R"("ExposedPorts":{{"80/tcp":{{}}}}}},"rootfs":{{"type":"layers","diff_ids":["{}"]}},)"
      R"("history":[{{"created_by":"import"}},{{"empty_layer":true}}]}})",
      kA);
  auto c = ImageConfig::parse(raw);
  ASSERT_TRUE(c) << c.error().to_string();
  EXPECT_EQ(c->config.env, std::vector<std::string>{"A=1"});
  EXPECT_EQ(c->config.cmd.value(), std::vector<std::string>{"sh"});
  EXPECT_FALSE(c->config.entrypoint);
  EXPECT_EQ(c->config.exposed_ports, std::vector<std::string>{"80/tcp"});
  EXPECT_EQ(c->diff_ids.at(0).str(), kA);
  EXPECT_TRUE(c->history.at(1).empty_layer);
  c->config.cmd = std::vector<std::string>{"echo", "hi"};
  std::string out = c->serialize();
  EXPECT_NE(out.find(R"("x-extra":[1,2])"), std::string::npos);
  EXPECT_NE(out.find(R"("X-Cfg":"keep")"), std::string::npos);
  auto again = ImageConfig::parse(out).value();
  EXPECT_EQ(again.config, c->config);
  EXPECT_EQ(again.serialize(), out);

  EXPECT_FALSE(ImageConfig::parse(R"({"os":"linux","rootfs":{"type":"layers"}})"));
  EXPECT_FALSE(ImageConfig::parse(R"({"architecture":"amd64","os":"linux","rootfs":{"type":"x"}})"));
  EXPECT_FALSE(ImageConfig::parse(
      R"({"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:../x"]}})"));
}

// A hostile index listed all of its 15,000 platforms in one error line (issue 12).
TEST(Index, NoMatchingPlatformNamesTheFirstEightOnly) {
  Index idx;
  for (int i = 0; i < 15000; ++i) {
    Descriptor d;
    d.media_type = std::string(media_type::kOciManifest);
    d.digest = Digest::parse(kA).value();
    d.size = 1;
    d.platform = Platform::parse("linux/arch" + std::to_string(i)).value();
    idx.manifests.push_back(d);
  }
  auto none = select_platform(idx, Platform::parse("linux/s390x").value());
  ASSERT_FALSE(none);
  const std::string m = none.error().message;
  EXPECT_NE(m.find("linux/arch0, linux/arch1,"), std::string::npos) << m;
  EXPECT_NE(m.find("linux/arch7 … and 14992 more)"), std::string::npos) << m;
  EXPECT_EQ(m.find("linux/arch8"), std::string::npos) << m;
  EXPECT_LT(m.size(), 400u);
}

TEST(ImageConfig, SerializeReplacesInvalidUtf8) {
  // Found by fuzz/containerfile_fuzzer: `CMD ["greet\xa2]` (shell form) made the build's
  // serialize() throw nlohmann's type_error 316 out of a non-throwing API.
  ImageConfig c;
  c.architecture = "amd64";
  c.os = "linux";
  c.config.cmd = std::vector<std::string>{"/bin/sh", "-c", "[\"greet\xa2]"};
  c.config.labels["k\xff"] = "v\xc3";
  std::string out = c.serialize();
  auto again = ImageConfig::parse(out);
  ASSERT_TRUE(again) << again.error().to_string();
  EXPECT_EQ(again->config.cmd->at(2), "[\"greet\xef\xbf\xbd]");
  EXPECT_EQ(again->config.labels.at("k\xef\xbf\xbd"), "v\xef\xbf\xbd");
}

TEST(ImageConfig, RefusesNestingDeeperThanGo) {
  // A 200 KB config with 100000 nested arrays in an unknown field parsed, and serialize() (which
  // keeps unknown fields) then overflowed the stack: fuzz/corpus/image_config/regress_deep_nesting.
  auto config = [](int depth) {
    return R"({"architecture":"amd64","os":"linux","rootfs":{"type":"layers"},"x":)" +
           std::string(depth, '[') + std::string(depth, ']') + "}";
  };
  auto deep = ImageConfig::parse(config(100000));
  ASSERT_FALSE(deep);
  EXPECT_EQ(deep.error().message, "parse image config: nested deeper than 10000 levels");
  auto m = parse_manifest(R"({"schemaVersion":2,"x":)" + std::string(10001, '[') +
                          std::string(10001, ']') + "}");
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().message, "parse manifest: nested deeper than 10000 levels");
  // Go's limit itself is fine, and brackets inside strings do not count.
  auto ok = ImageConfig::parse(config(9999));
  ASSERT_TRUE(ok) << ok.error().to_string();
  EXPECT_NE(ok->serialize().find(std::string(9999, '[')), std::string::npos);
  EXPECT_TRUE(ImageConfig::parse(
      R"({"architecture":"amd64","os":"linux","rootfs":{"type":"layers"},"s":")" +
      std::string(20000, '[') + "\\\"\"}"));
}

TEST(ImageConfig, ChainIds) {
  auto a = Digest::of("a"), b = Digest::of("b");
  auto ids = chain_ids({a, b});
  ASSERT_EQ(ids.size(), 2u);
  EXPECT_EQ(ids[0], a);
  EXPECT_EQ(ids[1], Digest::of(a.str() + " " + b.str()));
  EXPECT_EQ(rfc3339(0), "1970-01-01T00:00:00Z");
}

TEST(Platform, ParseNormaliseMatch) {
  EXPECT_EQ(Platform::parse("linux/x86_64")->str(), "linux/amd64");
  EXPECT_EQ(Platform::parse("arm64")->str(), "linux/arm64");
  EXPECT_FALSE(Platform::parse("linux//x"));
  EXPECT_FALSE(Platform::parse("a/b/c/d"));
  Platform want = Platform::parse("linux/arm64/v8").value();
  EXPECT_TRUE(want.matches({.os = "linux", .architecture = "arm64"}));
  EXPECT_FALSE(want.matches({.os = "linux", .architecture = "amd64"}));
  EXPECT_TRUE(Platform::parse("linux/arm")->matches({.os = "linux", .architecture = "arm", .variant = "v7"}));
  EXPECT_FALSE(Platform::parse("linux/arm/v6")->matches({.os = "linux", .architecture = "arm", .variant = "v7"}));
  EXPECT_FALSE(Platform::host().architecture.empty());
}

TEST(Platform, CheckPlatformOfASingleManifestImage) {
  auto p = [](const char* s) { return *Platform::parse(s); };
  EXPECT_TRUE(check_platform(p("linux/amd64"), p("linux/amd64")));
  EXPECT_TRUE(check_platform(p("linux/arm64"), p("linux/arm64/v8")));  // v8 implied
  EXPECT_TRUE(check_platform(p("linux/arm/v7"), p("linux/arm")));      // any variant
  auto r = check_platform(p("linux/amd64"), p("linux/arm64"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::NotFound);
  EXPECT_EQ(r.error().to_string(), "no manifest for platform linux/arm64 (it has: linux/amd64)");
  EXPECT_FALSE(check_platform(p("linux/arm/v6"), p("linux/arm/v7")));
  EXPECT_FALSE(check_platform(p("windows/amd64"), p("linux/amd64")));
}

}  // namespace
}  // namespace kiste::image
