#include <kiste/base/error.hpp>

#include <cerrno>

#include <gtest/gtest.h>

namespace kiste {
namespace {

Result<int> parse_positive(int v) {
  if (v <= 0) return failf(Errc::InvalidArgument, "value {} is not positive", v);
  return v;
}

Result<int> doubled(int v) {
  KISTE_ASSIGN_OR_RETURN(int p, parse_positive(v));
  return p * 2;
}

Status check(int v) {
  KISTE_TRY(parse_positive(v));
  return {};
}

TEST(Error, PropagatesThroughMacros) {
  EXPECT_EQ(doubled(4).value(), 8);
  auto r = doubled(-1);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::InvalidArgument);
  EXPECT_EQ(r.error().message, "value -1 is not positive");
  EXPECT_TRUE(check(1));
  EXPECT_FALSE(check(0));
}

TEST(Error, ContextIsPrintedOutermostFirstOnOneLine) {
  auto r = with_context(with_context(doubled(-2), "reading config"), "pulling `x`");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().to_string(), "pulling `x`: reading config: value -2 is not positive");
  Error e{.code = Errc::Registry, .message = "line1\nline2"};
  EXPECT_EQ(e.to_string(), "line1 line2");
}

TEST(Error, SysErrorNamesCallObjectAndReason) {
  errno = ENOENT;
  Error e = sys_error("open", "/nope");
  EXPECT_EQ(e.code, Errc::NotFound);
  EXPECT_EQ(e.sys_errno, ENOENT);
  EXPECT_EQ(e.to_string(), "open `/nope`: No such file or directory");
  EXPECT_EQ(sys_error_code(EACCES, "mkdir", "/x").code, Errc::PermissionDenied);
}

TEST(Error, QuoteEscapesControlCharacters) {
  EXPECT_EQ(quote("a\nb"), "`a\\x0ab`");
}

}  // namespace
}  // namespace kiste
