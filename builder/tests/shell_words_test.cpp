#include <kiste/builder/shell_words.hpp>

#include <gtest/gtest.h>

namespace kiste::builder {
namespace {

const VarMap kVars{{"A", "apple"}, {"E", ""}, {"SP", "x y"}, {"P", "/usr/local"}};

struct Case {
  std::string in;
  std::string out;
};

TEST(ShellWords, ExpandWord) {
  const Case cases[] = {
      {"$A", "apple"},
      {"${A}", "apple"},
      {"${A}s", "apples"},
      {"$As", ""},  // the name is "As", unset
      {"${MISSING}", ""},
      {"${MISSING:-def}", "def"},
      {"${E:-def}", "def"},
      {"${E-def}", ""},
      {"${A:-def}", "apple"},
      {"${A:+alt}", "alt"},
      {"${E:+alt}", ""},
      {"${E+alt}", "alt"},
      {"${MISSING+alt}", ""},
      {"${MISSING:-${A}}", "apple"},
      {"'$A'", "$A"},
      {"\"$A\"", "apple"},
      {"\"a b\"", "a b"},
      {"\\$A", "$A"},
      {"a\\ b", "a b"},
      {"\"\\$A\"", "$A"},
      {"\"a\\nb\"", "a\\nb"},
      {"$", "$"},
      {"$/", "$/"},
      {"${P}/bin", "/usr/local/bin"},
      {"pre${A}post", "preapplepost"},
      {"''", ""},
  };
  for (const auto& c : cases) {
    auto r = expand_word(c.in, kVars);
    ASSERT_TRUE(r) << c.in << ": " << r.error().to_string();
    EXPECT_EQ(*r, c.out) << c.in;
  }
}

TEST(ShellWords, ExpandWordsSplits) {
  auto r = expand_words("a $SP \"$SP\" 'q r' ''", kVars);
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, (std::vector<std::string>{"a", "x", "y", "x y", "q r", ""}));
}

TEST(ShellWords, EscapeBacktick) {
  auto r = expand_word("a`$A", kVars, '`');
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, "a$A");
  auto w = expand_word("C:\\dir", kVars, '`');
  ASSERT_TRUE(w);
  EXPECT_EQ(*w, "C:\\dir");
}

TEST(ShellWords, Errors) {
  for (const char* bad : {"${A", "${A:-x", "\"open", "'open", "${A%x}", "${}", "${E:?must be set}",
                          "${MISSING?}"}) {
    auto r = expand_word(bad, kVars);
    EXPECT_FALSE(r) << bad;
  }
  auto r = expand_word("${E:?must be set}", kVars);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("must be set"), std::string::npos);
}

TEST(ShellWords, NestingIsBounded) {
  // `${X:-${X:-…v…}}` recursed once per level: 5000 levels overflowed the stack under ASan
  // (fuzz/corpus/containerfile/regress_nested_substitution).
  auto nested = [](int n) {
    std::string s;
    for (int i = 0; i < n; ++i) s += "${X:-";
    return s + "v" + std::string(n, '}');
  };
  EXPECT_EQ(expand_word(nested(64), kVars).value(), "v");
  EXPECT_EQ(expand_words(nested(64), kVars).value(), std::vector<std::string>{"v"});
  auto deep = expand_word(nested(1000), kVars);
  ASSERT_FALSE(deep);
  EXPECT_EQ(deep.error().message, "variable substitutions nested deeper than 64 levels");
  EXPECT_FALSE(expand_vars_only(nested(65), kVars));
}

TEST(ShellWords, VarsOnlyKeepsQuotes) {
  auto r = expand_vars_only("echo '$A' \"${A}\"", kVars);
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, "echo 'apple' \"apple\"");
}

TEST(ShellWords, SplitRaw) {
  EXPECT_EQ(split_raw_words(" a  \"b c\" d\\ e 'f g'"),
            (std::vector<std::string>{"a", "\"b c\"", "d\\ e", "'f g'"}));
  EXPECT_TRUE(split_raw_words("   ").empty());
}

}  // namespace
}  // namespace kiste::builder
