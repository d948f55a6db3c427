#include "listing.hpp"

#include <gtest/gtest.h>

namespace kiste::cli {
namespace {

TEST(HumanDuration, MatchesDockersWords) {
  EXPECT_EQ(human_duration(0), "Less than a second");
  EXPECT_EQ(human_duration(1), "1 second");
  EXPECT_EQ(human_duration(59), "59 seconds");
  EXPECT_EQ(human_duration(60), "About a minute");
  EXPECT_EQ(human_duration(119), "About a minute");  // never "1 minutes"
  EXPECT_EQ(human_duration(120), "2 minutes");
  EXPECT_EQ(human_duration(59 * 60), "59 minutes");
  EXPECT_EQ(human_duration(3600), "About an hour");
  EXPECT_EQ(human_duration(5 * 3600), "5 hours");
  EXPECT_EQ(human_duration(3 * 86400), "3 days");
  EXPECT_EQ(human_duration(20 * 86400), "2 weeks");
  EXPECT_EQ(human_duration(90 * 86400), "3 months");
  EXPECT_EQ(human_duration(3 * 365 * 86400), "3 years");
}

TEST(CreatedColumn, SaysReproducibleForTheEpochAndFitsTheColumn) {
  const int64_t now = 1'700'000'000;
  EXPECT_EQ(created_column("1970-01-01T00:00:00Z", now), "1970-01-01 (reproducible)");
  EXPECT_EQ(created_column("2023-11-14T22:13:20Z", now), "Less than a second ago");
  EXPECT_EQ(created_column("2023-11-14T22:12:20Z", now), "About a minute ago");
  EXPECT_EQ(created_column("", now), "N/A");
  // The widest value fits the 26-column CREATED field of `kiste images`.
  EXPECT_LT(created_column("1970-01-01T00:00:00Z", now).size(), 26u);
  EXPECT_LT(std::string("Less than a second ago").size(), 26u);
}

TEST(ImageSelection, NameDanglingAndReference) {
  ListedImage busybox{"busybox", "latest"}, app{"localhost:5000/team/app", "1"},
      untagged{"<none>", "<none>"};
  ImageSelection by_name{.name = "busybox"};
  EXPECT_TRUE(selected(by_name, busybox));
  EXPECT_FALSE(selected(by_name, app));
  EXPECT_FALSE(selected(by_name, untagged));
  EXPECT_TRUE(selected({.name = "docker.io/library/busybox:latest"}, busybox));
  EXPECT_FALSE(selected({.name = "busybox:1"}, busybox));
  EXPECT_TRUE(selected({.name = "localhost:5000/team/app:1"}, app));

  ImageSelection dangling;
  EXPECT_EQ(add_filter(dangling, "dangling=true"), std::nullopt);
  EXPECT_TRUE(selected(dangling, untagged));
  EXPECT_FALSE(selected(dangling, busybox));

  ImageSelection ref;
  EXPECT_EQ(add_filter(ref, "reference=localhost:5000/*/app"), std::nullopt);
  EXPECT_TRUE(selected(ref, app));
  EXPECT_FALSE(selected(ref, busybox));
  EXPECT_EQ(add_filter(ref, "reference=busy*:lat*"), std::nullopt);  // any pattern may match
  EXPECT_TRUE(selected(ref, busybox));

  ImageSelection bad;
  EXPECT_NE(add_filter(bad, "label=a"), std::nullopt);
  EXPECT_NE(add_filter(bad, "dangling=maybe"), std::nullopt);
  EXPECT_NE(add_filter(bad, "dangling"), std::nullopt);
}

}  // namespace
}  // namespace kiste::cli
