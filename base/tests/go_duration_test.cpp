#include <kiste/base/go_duration.hpp>

#include <gtest/gtest.h>

namespace kiste {
namespace {

TEST(GoDuration, SumsDecimalNumbersWithUnits) {
  EXPECT_EQ(*parse_go_duration("1h2m3s"), 3'723'000'000'000);
  EXPECT_EQ(*parse_go_duration("1.5h"), 5'400'000'000'000);
  EXPECT_EQ(*parse_go_duration("500ms"), 500'000'000);
  EXPECT_EQ(*parse_go_duration("2us"), 2'000);
  EXPECT_EQ(*parse_go_duration("0"), 0);
  for (const char* bad : {"", "1", "-1s", "5x", "s", "1s2", "1e3s", "1..5s"}) EXPECT_FALSE(parse_go_duration(bad)) << bad;
}

// Out of int64 nanoseconds (fuzz/containerfile_fuzzer seeds regress_duration_*): an error, not a
// float-to-int conversion or a signed overflow (UBSan).
TEST(GoDuration, WhatDoesNotFitInt64NanosecondsIsAnError) {
  EXPECT_EQ(*parse_go_duration("2562047h"), 9'223'369'200'000'000'000);
  EXPECT_FALSE(parse_go_duration("99999999999999h"));
  EXPECT_FALSE(parse_go_duration("2562047h2562047h"));
}

}  // namespace
}  // namespace kiste
