#include <kiste/base/split.hpp>

#include <string>

#include <gtest/gtest.h>

namespace kiste {
namespace {

using V = std::vector<std::string_view>;

TEST(SplitTest, KeepsEveryFieldIncludingEmptyOnes) {
  EXPECT_EQ(split("a,b,c", ','), (V{"a", "b", "c"}));
  EXPECT_EQ(split("a,,b", ','), (V{"a", "", "b"}));
  EXPECT_EQ(split("", ','), (V{""}));
  EXPECT_EQ(split(",", ','), (V{"", ""}));
  EXPECT_EQ(split("a,", ','), (V{"a", ""}));
  EXPECT_EQ(split("/a:/b:ro", ':'), (V{"/a", "/b", "ro"}));
  // /proc/self/cgroup on a hybrid host: the v2 line has an empty controller field.
  EXPECT_EQ(split("0::/user.slice", ':'), (V{"0", "", "/user.slice"}));
}

TEST(SplitTest, ViewsPointIntoTheInput) {
  const std::string s = "key=value,x";
  auto f = split(s, ',');
  ASSERT_EQ(f.size(), 2u);
  EXPECT_EQ(f[0].data(), s.data());
  EXPECT_EQ(f[1].data(), s.data() + 10);
}

TEST(SplitKvTest, KeysValuesAndFlags) {
  auto kv = split_kv("type=bind,source=/a=b,readonly,target=");
  ASSERT_EQ(kv.size(), 4u);
  EXPECT_EQ(kv[0].key, "type");
  EXPECT_EQ(kv[0].value, "bind");
  EXPECT_TRUE(kv[0].has_value);
  EXPECT_EQ(kv[1].key, "source");
  EXPECT_EQ(kv[1].value, "/a=b");  // only the first `=` separates
  EXPECT_EQ(kv[2].key, "readonly");
  EXPECT_FALSE(kv[2].has_value);
  EXPECT_TRUE(kv[2].value.empty());
  EXPECT_EQ(kv[3].key, "target");
  EXPECT_TRUE(kv[3].has_value);
  EXPECT_TRUE(kv[3].value.empty());
  for (const auto& f : kv) EXPECT_FALSE(f.empty());
}

TEST(SplitKvTest, EmptyFieldsAreReportedNotDropped) {
  auto kv = split_kv("a=1,,b");
  ASSERT_EQ(kv.size(), 3u);
  EXPECT_TRUE(kv[1].empty());
  EXPECT_FALSE(split_kv("=x")[0].empty());  // an empty key with a value is not an empty field
  EXPECT_EQ(split_kv("=x")[0].value, "x");
  auto none = split_kv("");
  ASSERT_EQ(none.size(), 1u);
  EXPECT_TRUE(none[0].empty());
  auto colon = split_kv("size=1:mode=0755", ':');
  ASSERT_EQ(colon.size(), 2u);
  EXPECT_EQ(colon[1].key, "mode");
}

}  // namespace
}  // namespace kiste
