// registries.d lookaside configuration: the YAML subset, scope precedence, hostile files.
#include <gtest/gtest.h>

#include <kiste/registry/lookaside.hpp>

#include <filesystem>

#include <kiste/base/temp_dir.hpp>

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

TEST(Lookaside, SignaturesAreAddedAfterThoseThereAndReadBack) {
  auto dir = TempDir::create(std::filesystem::temp_directory_path(), "kiste-lookaside-").value();
  const std::string url = "file://" + dir.path().native();
  const auto r = ref("r.io/team/app:1");
  const auto d = image::Digest::of("m");
  auto one = write_lookaside_signature(url, r, d, "first");
  ASSERT_TRUE(one) << one.error().to_string();
  EXPECT_EQ(*one, dir.path() / ("team/app@sha256=" + std::string(d.hex())) / "signature-1");
  auto two = write_lookaside_signature(url, r, d, "second");
  ASSERT_TRUE(two) << two.error().to_string();
  EXPECT_EQ(two->filename(), "signature-2");
  auto read = read_lookaside_signatures(url, r, d);
  ASSERT_TRUE(read) << read.error().to_string();
  EXPECT_EQ(*read, (std::vector<std::string>{"first", "second"}));
  // Nothing else is left in the directory (the temp file is gone).
  size_t n = 0;
  for (const auto& e : std::filesystem::directory_iterator(one->parent_path())) {
    (void)e;
    ++n;
  }
  EXPECT_EQ(n, 2u);
  EXPECT_FALSE(write_lookaside_signature("https://sigs.example.com", r, d, "x"));
}

}  // namespace
}  // namespace kiste::registry
