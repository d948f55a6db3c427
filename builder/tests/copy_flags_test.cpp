#include <kiste/builder/copy_flags.hpp>

#include <gtest/gtest.h>

namespace kiste::builder {
namespace {

Instruction copy_with(std::vector<Flag> flags) {
  Instruction ins;
  ins.kind = InstructionKind::Copy;
  ins.flags = std::move(flags);
  return ins;
}

Result<std::string> as_is(std::string_view raw) { return std::string(raw); }

TEST(CopyFlagsTest, EveryFlagLandsTypedAndInTheKeyButLink) {
  auto f = parse_copy_flags(copy_with({{"from", "build", {}}, {"chown", "app:app", {}}, {"chmod", "0640", {}},
                                       {"parents", std::nullopt, {}}, {"exclude", "*.tmp", {}},
                                       {"exclude", "docs/", {}}, {"link", std::nullopt, {}}}),
                            as_is);
  ASSERT_TRUE(f) << f.error().message;
  EXPECT_EQ(f->from, "build");
  EXPECT_EQ(f->chown, "app:app");
  EXPECT_EQ(f->chmod, 0640u);
  EXPECT_TRUE(f->parents);
  EXPECT_EQ(f->exclude, (std::vector<std::string>{"*.tmp", "docs/"}));
  EXPECT_EQ(f->key_lines, (std::vector<std::string>{"flag --from=build", "flag --chown=app:app",
                                                    "flag --chmod=0640", "flag --parents=",
                                                    "flag --exclude=*.tmp", "flag --exclude=docs/"}));
}

TEST(CopyFlagsTest, ValuesAreExpandedBeforeTheyAreChecked) {
  auto expand = [](std::string_view raw) -> Result<std::string> {
    return raw == "$MODE" ? std::string("0700") : std::string("9");
  };
  auto f = parse_copy_flags(copy_with({{"chmod", "$MODE", {}}}), expand);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->chmod, 0700u);
  auto bad = parse_copy_flags(copy_with({{"chmod", "$OTHER", {}}}), expand);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message, "--chmod=9: expected octal mode like 0755");
}

TEST(CopyFlagsTest, BadValuesAreRefusedWithTheirReason) {
  struct Case {
    const char* name;
    const char* value;
    const char* error;
  };
  const Case cases[] = {
      {"chmod", "", "--chmod=: expected octal mode like 0755"},
      {"chmod", "077777", "--chmod=077777: expected octal mode like 0755"},
      {"chmod", "u+x", "--chmod=u+x: expected octal mode like 0755"},
      {"chown", "", "--chown needs user[:group]"},
      {"parents", "1", "--parents=1: expected true or false"},
      {"checksum", "md5:abc", "--checksum=md5:abc: expected sha256:<64 hex digits>"},
      {"exclude", "", "--exclude needs a pattern"},
      {"frobnicate", "x", "unknown flag --frobnicate"},
  };
  for (const auto& c : cases) {
    CopyFlags out;
    auto s = apply_copy_flag(out, c.name, c.value);
    ASSERT_FALSE(s) << c.name << "=" << c.value;
    EXPECT_EQ(s.error().message, c.error);
    EXPECT_TRUE(out.key_lines.empty());
  }
  CopyFlags out;
  EXPECT_TRUE(apply_copy_flag(out, "parents", "false"));
  EXPECT_FALSE(out.parents);
  EXPECT_TRUE(apply_copy_flag(out, "chmod", "7777"));
  EXPECT_EQ(out.chmod, 07777u);
}

}  // namespace
}  // namespace kiste::builder
