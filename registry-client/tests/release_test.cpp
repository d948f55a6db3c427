// Release files (kiste promote --release): the JSON and the line form users write by hand, and
// the mistakes that must stop a release before it starts.
#include <gtest/gtest.h>

#include <kiste/registry/release.hpp>

namespace kiste::registry {
namespace {

const std::string kDigest = "sha256:" + std::string(64, 'a');

TEST(ReleaseFile, JsonListAndImagesObject) {
  auto a = parse_release(R"([
    {"source": "docker://r.io:5000/staging/api:1.4", "destination": "r.io:5000/prod/api:1.4",
     "expectDigest": ")" + kDigest + R"("},
    {"source": "r.io:5000/staging/web:2", "destination": "r.io:5000/prod/web:2"}
  ])");
  ASSERT_TRUE(a) << a.error().to_string();
  ASSERT_EQ(a->size(), 2u);
  EXPECT_EQ((*a)[0].source.str(), "r.io:5000/staging/api:1.4");
  EXPECT_EQ((*a)[0].destination.str(), "r.io:5000/prod/api:1.4");
  ASSERT_TRUE((*a)[0].expect_digest);
  EXPECT_EQ((*a)[0].expect_digest->str(), kDigest);
  EXPECT_FALSE((*a)[1].expect_digest);
  auto b = parse_release(R"({"images": [{"source": "r.io/a:1", "destination": "r.io/b:1"}]})");
  ASSERT_TRUE(b) << b.error().to_string();
  EXPECT_EQ(b->size(), 1u);
}

TEST(ReleaseFile, JsonRebuildInputs) {
  auto a = parse_release(R"([
    {"source": "r.io/staging/api:1", "destination": "r.io/prod/api:1", "context": "api",
     "containerfile": "api/Containerfile.prod", "buildArgs": {"B": "2", "A": "x=y"}},
    {"source": "r.io/staging/web:1", "destination": "r.io/prod/web:1"}
  ])");
  ASSERT_TRUE(a) << a.error().to_string();
  EXPECT_EQ((*a)[0].context, "api");
  EXPECT_EQ((*a)[0].containerfile, "api/Containerfile.prod");
  EXPECT_EQ((*a)[0].build_args, (std::vector<std::string>{"A=x=y", "B=2"}));
  EXPECT_TRUE((*a)[1].context.empty());
  EXPECT_TRUE((*a)[1].build_args.empty());
}

TEST(ReleaseFile, LinesWithCommentsAndOptionalDigest) {
  auto a = parse_release("# release 7\n\n  r.io/staging/api:1  r.io/prod/api:1   " + kDigest +
                         "  # pinned\nr.io/staging/web:2\tr.io/prod/web:2\r\n");
  ASSERT_TRUE(a) << a.error().to_string();
  ASSERT_EQ(a->size(), 2u);
  EXPECT_EQ((*a)[0].expect_digest->str(), kDigest);
  EXPECT_EQ((*a)[1].destination.str(), "r.io/prod/web:2");
}

TEST(ReleaseFile, MistakesNameTheEntry) {
  struct Case {
    std::string text, want;
  };
  for (const auto& c : std::vector<Case>{
           {"", "names no image"},
           {"# only a comment\n", "names no image"},
           {"[]", "names no image"},
           {R"([{"source": "r.io/a:1", "destinaton": "r.io/b:1"}])", "image 1: unknown key `destinaton`"},
           {R"([{"source": "r.io/a:1"}])", "image 1: needs `source` and `destination`"},
           {R"([{"source": 1, "destination": "r.io/b:1"}])", "`source` is not a string"},
           {R"({"images": {}})", "not a list"},
           {R"({"images": [], "x": 1})", "only `images`"},
           {"[{", "not valid JSON"},
           {R"([{"source": "r.io/a:1", "destination": "r.io/b:1", "buildArgs": ["A=1"]}])",
            "image 1: `buildArgs` is not an object"},
           {R"([{"source": "r.io/a:1", "destination": "r.io/b:1", "context": "c",
                 "buildArgs": {"A": 1}}])",
            "image 1: `buildArgs`: `A` is not a NAME with a string value"},
           {R"([{"source": "r.io/a:1", "destination": "r.io/b:1", "containerfile": "F"}])",
            "image 1: `containerfile` and `buildArgs` need a `context`"},
           {"r.io/a:1 r.io/b:1\nr.io/c:1\n", "line 2: expected `SOURCE DESTINATION"},
           {"r.io/a:1 r.io/b:1 sha256:zz\n", "line 1: expect-digest"},
           {"r.io/a:1 NOT/Valid:1\n", "line 1: destination"},
           {"r.io/a:1 r.io/b:1\nr.io/c:1 r.io/b:1\n", "destination `r.io/b:1` is named twice"},
       }) {
    auto r = parse_release(c.text);
    ASSERT_FALSE(r) << c.text;
    EXPECT_NE(r.error().to_string().find(c.want), std::string::npos)
        << c.text << " -> " << r.error().to_string();
    EXPECT_EQ(r.error().to_string().find('\n'), std::string::npos);
  }
}

TEST(ReleaseFile, CommandLinePairs) {
  auto a = release_from_pairs({"r.io/a:1", "r.io/b:1", "docker://r.io/c:1", "r.io/d:1"});
  ASSERT_TRUE(a) << a.error().to_string();
  EXPECT_EQ(a->size(), 2u);
  EXPECT_EQ((*a)[1].source.str(), "r.io/c:1");
  auto odd = release_from_pairs({"r.io/a:1", "r.io/b:1", "r.io/c:1"});
  ASSERT_FALSE(odd);
  EXPECT_NE(odd.error().to_string().find("got 3 arguments"), std::string::npos);
  EXPECT_FALSE(release_from_pairs({"r.io/a:1", "r.io/b:1", "r.io/a:2", "r.io/b:1"}));
}

}  // namespace
}  // namespace kiste::registry
