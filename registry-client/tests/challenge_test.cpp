#include <gtest/gtest.h>

#include <kiste/registry/auth.hpp>

using namespace kiste::registry;

TEST(Challenge, DockerHubBearer) {
  auto r = parse_www_authenticate(
      R"(Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull")");
  ASSERT_TRUE(r) << r.error().to_string();
  ASSERT_EQ(r->size(), 1u);
  EXPECT_EQ((*r)[0].scheme, "bearer");
  EXPECT_EQ((*r)[0].param("realm"), "https://auth.docker.io/token");
  EXPECT_EQ((*r)[0].param("service"), "registry.docker.io");
  EXPECT_EQ((*r)[0].param("scope"), "repository:library/busybox:pull");
}

TEST(Challenge, ScopeWithCommaInsideQuotesAndEscapes) {
  auto r = parse_www_authenticate(
      R"(Bearer realm="https://t/x",scope="repository:a/b:pull,push",error="a \"q\"")");
  ASSERT_TRUE(r);
  EXPECT_EQ((*r)[0].param("scope"), "repository:a/b:pull,push");
  EXPECT_EQ((*r)[0].param("error"), "a \"q\"");
}

TEST(Challenge, SeveralChallengesAndCaseInsensitiveNames) {
  auto r = parse_www_authenticate(R"(Basic realm="Registry Realm", BEARER Realm=https://t/tok)");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ((*r)[0].scheme, "basic");
  EXPECT_EQ((*r)[0].param("realm"), "Registry Realm");
  EXPECT_EQ((*r)[1].scheme, "bearer");
  EXPECT_EQ((*r)[1].param("realm"), "https://t/tok");
}

TEST(Challenge, SchemeWithoutParams) {
  auto r = parse_www_authenticate("Basic");
  ASSERT_TRUE(r);
  EXPECT_EQ((*r)[0].scheme, "basic");
}

TEST(Challenge, MalformedIsRejected) {
  EXPECT_FALSE(parse_www_authenticate(""));
  EXPECT_FALSE(parse_www_authenticate(R"(Bearer realm="unterminated)"));
  EXPECT_FALSE(parse_www_authenticate(R"(Bearer ="x")"));
}

TEST(Challenge, RepositoryScope) {
  EXPECT_EQ(repository_scope("a/b", false), "repository:a/b:pull");
  EXPECT_EQ(repository_scope("a/b", true), "repository:a/b:pull,push");
}
