#include <kiste/base/suggest.hpp>

#include <gtest/gtest.h>

namespace kiste {
namespace {

TEST(EditDistance, CountsSwapsAsOneEdit) {
  EXPECT_EQ(edit_distance("build", "build"), 0u);
  EXPECT_EQ(edit_distance("biuld", "build"), 1u);
  EXPECT_EQ(edit_distance("tga", "tag"), 1u);
  EXPECT_EQ(edit_distance("rn", "rm"), 1u);
  EXPECT_EQ(edit_distance("", "abc"), 3u);
  EXPECT_EQ(edit_distance("pul", "pull"), 1u);
  EXPECT_EQ(edit_distance("kitten", "sitting"), 3u);
}

TEST(ClosestMatch, SuggestsTheNearestCandidate) {
  std::vector<std::string> cmds{"build", "images", "inspect", "pull", "push", "run", "rmi"};
  EXPECT_EQ(closest_match("biuld", cmds), "build");
  EXPECT_EQ(closest_match("imgaes", cmds), "images");
  EXPECT_EQ(closest_match("puhs", cmds), "push");
  EXPECT_EQ(closest_match("rn", cmds), "run");  // first of the equally near ones
  EXPECT_EQ(closest_match("xyzzy", cmds), std::nullopt);
  EXPECT_EQ(closest_match("foo", std::vector<std::string>{"root"}), std::nullopt);  // 2 edits
  EXPECT_EQ(closest_match("imags", cmds), "images");
  EXPECT_EQ(closest_match("", cmds), std::nullopt);
}

TEST(ClosestMatch, IgnoresTheDashesOfFlags) {
  std::vector<std::string> flags{"--rm", "--rootfs", "--read-only", "-t", "--tag", "--target"};
  EXPECT_EQ(closest_match("--rn", flags), "--rm");
  EXPECT_EQ(closest_match("--tga", flags), "--tag");
  EXPECT_EQ(closest_match("--rootf", flags), "--rootfs");
  // One letter is one edit from every other letter: no guess.
  EXPECT_EQ(closest_match("-x", flags), std::nullopt);
  EXPECT_EQ(closest_match("--", flags), std::nullopt);
}

TEST(ClosestMatch, FallsBackToAUniquePrefix) {
  std::vector<std::string> flags{"--privileged", "--pids-limit", "--platform"};
  EXPECT_EQ(closest_match("--privi", flags), "--privileged");
  EXPECT_EQ(closest_match("--pi", flags), std::nullopt);   // too short to guess
  EXPECT_EQ(closest_match("--p", flags), std::nullopt);
  std::vector<std::string> two{"--memory", "--memory-swap"};
  EXPECT_EQ(closest_match("--memor", two), "--memory");
  EXPECT_EQ(closest_match("--memo", two), std::nullopt);  // two edits, short, and two prefixes
  EXPECT_EQ(closest_match("--me", two), std::nullopt);
}

}  // namespace
}  // namespace kiste
