// registries.d lookaside configuration: the YAML subset, scope precedence, hostile files.
#include <gtest/gtest.h>

#include <kiste/registry/lookaside.hpp>

namespace kiste::registry {
namespace {

image::Reference ref(std::string_view s) { return image::Reference::parse(s).value(); }

TEST(Lookaside, ParsesWhatSkopeoUsersWrite) {
  LookasideConfig c;
  ASSERT_TRUE(parse_registries_d(R"(# comment
default-docker:
  lookaside: file:///var/lib/containers/sigstore
docker:
  registry.example.com:5000:
    lookaside: "file:///srv/sigs"   
    lookaside-staging: file:///srv/staging
    use-sigstore-attachments: true
  registry.example.com:5000/prod:
    sigstore: 'file:///srv/prod-sigs' # the older name
)", c));
  EXPECT_EQ(c.default_docker, "file:///var/lib/containers/sigstore");
  EXPECT_EQ(c.lookaside_for(ref("registry.example.com:5000/prod/app:1")), "file:///srv/prod-sigs");
  EXPECT_EQ(c.lookaside_for(ref("registry.example.com:5000/staging/app:1")), "file:///srv/sigs");
  EXPECT_EQ(c.lookaside_for(ref("other.example.com/app:1")), "file:///var/lib/containers/sigstore");
  LookasideConfig empty;
  EXPECT_FALSE(empty.lookaside_for(ref("other.example.com/app:1")));
}

TEST(Lookaside, HostileFilesAreRefused) {
  for (std::string bad : {std::string("docker:\n\tr.io:\n"), std::string("just words\n"),
                          std::string("docker:\n  r.io: value\n"),
                          std::string(1024 * 1024 + 1, 'x')}) {
    LookasideConfig c;
    EXPECT_FALSE(parse_registries_d(bad, c)) << bad.substr(0, 40);
  }
}

TEST(Lookaside, OnlyFileStorageIsRead) {
  auto r = read_lookaside_signatures("https://sigs.example.com", ref("r.io/a:1"), image::Digest::of("m"));
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("only file://"), std::string::npos);
  auto none = read_lookaside_signatures("file:///nonexistent-kiste", ref("r.io/a:1"), image::Digest::of("m"));
  ASSERT_TRUE(none) << none.error().to_string();
  EXPECT_TRUE(none->empty());
}

}  // namespace
}  // namespace kiste::registry
