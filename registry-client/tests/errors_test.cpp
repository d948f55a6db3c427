#include <gtest/gtest.h>

#include <kiste/registry/errors.hpp>

using namespace kiste;
using namespace kiste::registry;

TEST(RegistryError, ParsesDistributionErrorJson) {
  Error e = registry_error(
      "get manifest `localhost:5000/a:1`", 404,
      R"({"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"1"}}]})");
  EXPECT_EQ(e.http_status, 404);
  ASSERT_EQ(e.registry_codes.size(), 1u);
  EXPECT_EQ(e.registry_codes[0], "MANIFEST_UNKNOWN");
  EXPECT_EQ(e.message,
            "get manifest `localhost:5000/a:1`: 404 Not Found: MANIFEST_UNKNOWN: manifest unknown");
  EXPECT_TRUE(is_not_found(e));
  EXPECT_FALSE(is_retryable(e));
}

TEST(RegistryError, SeveralCodesAndNonJsonBody) {
  Error e = registry_error(
      "x", 403, R"({"errors":[{"code":"DENIED"},{"code":"UNAUTHORIZED","message":"m"}]})");
  EXPECT_EQ(e.registry_codes, (std::vector<std::string>{"DENIED", "UNAUTHORIZED"}));
  EXPECT_EQ(e.code, Errc::PermissionDenied);
  Error h = registry_error("x", 502, "<html>bad gateway</html>");
  EXPECT_TRUE(h.registry_codes.empty());
  EXPECT_EQ(h.message, "x: 502 Bad Gateway");
  EXPECT_TRUE(is_retryable(h));
}

TEST(RegistryError, HostileBodyStaysOneLine) {
  std::string evil = R"({"errors":[{"code":"DENIED","message":"a\nb\r\u001b[31mred)" +
                     std::string(1000, 'x') + R"("}]})";
  Error e = registry_error("x", 403, evil);
  EXPECT_EQ(e.message.find('\n'), std::string::npos);
  EXPECT_EQ(e.message.find('\x1b'), std::string::npos);
  EXPECT_LT(e.message.size(), 400u);
  // Not an object / wrong shapes: no crash, no codes.
  EXPECT_TRUE(registry_error("x", 400, R"({"errors":"nope"})").registry_codes.empty());
  EXPECT_TRUE(registry_error("x", 400, R"([1,2])").registry_codes.empty());
  EXPECT_TRUE(registry_error("x", 400, R"({"errors":[1,{"code":5}]})").registry_codes.empty());
}

TEST(RegistryError, Retryable) {
  EXPECT_TRUE(is_retryable(registry_error("x", 429, "")));
  EXPECT_TRUE(is_retryable(registry_error("x", 408, "")));
  EXPECT_TRUE(is_retryable(registry_error("x", 503, "")));
  EXPECT_FALSE(is_retryable(registry_error("x", 401, "")));
  EXPECT_FALSE(is_retryable(registry_error("x", 400, "")));
  EXPECT_TRUE(is_retryable(Error{.code = Errc::Unavailable, .message = "connection reset"}));
  EXPECT_FALSE(is_retryable(Error{.code = Errc::Corrupt, .message = "digest"}));
}
