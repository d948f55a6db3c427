#include <fcntl.h>
#include <sys/file.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <kiste/base/sys.hpp>
#include <kiste/base/temp_dir.hpp>
#include <kiste/runtime/live_marker.hpp>

namespace kiste::runtime {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

class LiveMarkerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_.emplace(std::move(TempDir::create(fs::temp_directory_path(), "kiste-lm-").value()));
    running_ = dir_->path() / "running";
    containers_ = dir_->path() / "containers";
    ASSERT_TRUE(sys::mkdir_all(containers_));
  }
  std::optional<TempDir> dir_;
  fs::path running_, containers_;
};

TEST_F(LiveMarkerTest, HeldMarkersAreLeftAloneReleasedOnesAreCleanedUp) {
  fs::path c1 = containers_ / "aaaa";
  ASSERT_TRUE(sys::mkdir_all(c1 / "upper"));
  {
    auto live = LiveMarker::create(running_, "aaaa", c1);
    ASSERT_TRUE(live) << live.error().to_string();
    auto r = clean_stale_containers(running_, containers_);
    ASSERT_TRUE(r);
    EXPECT_TRUE(r->containers.empty());
    EXPECT_TRUE(fs::exists(c1));
  }
  // A clean end removes the marker: the (stopped) container dir is not stale.
  EXPECT_FALSE(fs::exists(running_ / "aaaa"));
  auto r = clean_stale_containers(running_, containers_);
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->containers.empty());
  EXPECT_TRUE(fs::exists(c1));

  // A marker nobody holds (its kiste died): the dir goes.
  ASSERT_TRUE(sys::mkdir_all(running_));
  ASSERT_TRUE(sys::write_file_atomic(running_ / "aaaa", "dir " + c1.native() + "\n"));
  r = clean_stale_containers(running_, containers_);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->containers, std::vector<std::string>{"aaaa"});
  EXPECT_FALSE(fs::exists(c1));
  EXPECT_FALSE(fs::exists(running_ / "aaaa"));
}

// A second marker for the same id never replaces the first: a live one means the container
// runs, a dead one is the only record of what its killed run left (cgroups, mounts).
TEST_F(LiveMarkerTest, AnEarlierMarkerIsNeverWrittenOver) {
  fs::path c1 = containers_ / "abab";
  ASSERT_TRUE(sys::mkdir_all(c1));
  {
    auto live = LiveMarker::create(running_, "abab", c1);
    ASSERT_TRUE(live) << live.error().to_string();
    auto again = LiveMarker::create(running_, "abab", c1);
    ASSERT_FALSE(again);
    EXPECT_THAT(again.error().to_string(), HasSubstr("is running"));
  }
  const std::string dead = "dir " + c1.native() + "\ncgroup /sys/fs/cgroup/pids/kiste-abab\n";
  ASSERT_TRUE(sys::write_file_atomic(running_ / "abab", dead));
  auto again = LiveMarker::create(running_, "abab", c1);
  ASSERT_FALSE(again);
  EXPECT_THAT(again.error().to_string(), HasSubstr("kiste prune"));
  EXPECT_EQ(sys::read_file(running_ / "abab").value_or(""), dead);
}

TEST_F(LiveMarkerTest, HostileMarkersRemoveNothingOutside) {
  fs::path outside = dir_->path() / "precious";
  ASSERT_TRUE(sys::mkdir_all(outside / "data"));
  fs::path other = containers_ / "cccc";
  ASSERT_TRUE(sys::mkdir_all(other));
  ASSERT_TRUE(sys::mkdir_all(running_));
  ASSERT_TRUE(sys::write_file_atomic(running_ / "bbbb",
                                     "dir " + outside.native() + "\ncgroup /sys/fs/cgroup/memory\n"
                                     "cgroup /sys/fs/cgroup/../../etc/kiste-bbbb\n"));
  ASSERT_TRUE(sys::write_file_atomic(running_ / "dddd", "dir " + other.native() + "\n"));  // not its own
  ASSERT_TRUE(sys::write_file_atomic(running_ / "eeee", "dir " + containers_.native() + "/../precious\n"));
  auto r = clean_stale_containers(running_, containers_);
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->containers.empty());
  EXPECT_EQ(r->problems.size(), 5u);
  EXPECT_THAT(r->problems, ::testing::Contains(HasSubstr("is not a container cgroup")));
  EXPECT_THAT(r->problems, ::testing::Contains(HasSubstr("is not a container dir")));
  EXPECT_TRUE(fs::exists(outside / "data"));
  EXPECT_TRUE(fs::exists(other));
  EXPECT_TRUE(fs::exists("/sys/fs/cgroup/memory") || !fs::exists("/sys/fs/cgroup"));
}

TEST_F(LiveMarkerTest, AHalfMadeMarkerOfADeadKisteGoesAHeldOneStays) {
  ASSERT_TRUE(sys::mkdir_all(running_));
  ASSERT_TRUE(sys::write_file_atomic(running_ / ".ffff.tmp", "dir x\n"));
  auto held = sys::open(running_ / ".abcd.tmp", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  ASSERT_TRUE(held);
  ASSERT_EQ(::flock(held->get(), LOCK_EX), 0);
  auto r = clean_stale_containers(running_, containers_);
  ASSERT_TRUE(r);
  EXPECT_FALSE(fs::exists(running_ / ".ffff.tmp"));
  EXPECT_TRUE(fs::exists(running_ / ".abcd.tmp"));
}

TEST_F(LiveMarkerTest, BadIdsAreRefused) {
  EXPECT_FALSE(LiveMarker::create(running_, "../x", containers_ / "x"));
  EXPECT_FALSE(LiveMarker::create(running_, "", containers_));
}

}  // namespace
}  // namespace kiste::runtime

namespace kiste::runtime {
namespace {

// Prune asks which snapshots live containers use: the markers held by a live kiste name them,
// a marker whose kiste is gone does not count.
TEST(LiveLowerDirs, OnlyLiveMarkersCount) {
  auto dir = TempDir::create(std::filesystem::temp_directory_path(), "kiste-lm-");
  ASSERT_TRUE(dir);
  const auto running = dir->path() / "running";
  const auto snaps = dir->path() / "snapshots";
  EXPECT_TRUE(live_lower_dirs(running).value().empty());  // no running/ yet
  {
    auto live = LiveMarker::create(running, "bbbb", {}, {snaps / "aa", snaps / "bb"});
    ASSERT_TRUE(live) << live.error().to_string();
    EXPECT_EQ(live_lower_dirs(running).value(),
              (std::vector<std::filesystem::path>{snaps / "aa", snaps / "bb"}));
    ASSERT_TRUE(live->record_cgroups({"/sys/fs/cgroup/kiste.slice/kiste-bbbb.scope"}, "kiste-bbbb.scope"));
    auto text = sys::read_file(running / "bbbb").value();
    EXPECT_THAT(text, HasSubstr("unit kiste-bbbb.scope\n"));
    EXPECT_THAT(text, HasSubstr("lower " + (snaps / "aa").native() + "\n"));
  }
  ASSERT_TRUE(sys::write_file_atomic(running / "cccc", "lower " + (snaps / "cc").native() + "\n"));
  EXPECT_TRUE(live_lower_dirs(running).value().empty());
  // A newline in a path would forge a line of the marker.
  EXPECT_FALSE(LiveMarker::create(running, "dddd", {}, {snaps / "x\ncgroup /sys/fs/cgroup/y"}));
}

// A marker may name a unit only as the container's own scope.
TEST(LiveMarkerUnits, AForeignUnitIsNotStopped) {
  auto dir = TempDir::create(std::filesystem::temp_directory_path(), "kiste-lm-");
  ASSERT_TRUE(dir);
  const auto running = dir->path() / "running";
  ASSERT_TRUE(sys::mkdir_all(running));
  ASSERT_TRUE(sys::write_file_atomic(running / "eeee", "unit sshd.service\n"));
  auto r = clean_stale_containers(running, dir->path() / "containers");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->problems.size(), 1u);
  EXPECT_THAT(r->problems[0], HasSubstr("unit `sshd.service` is not a container scope"));
  EXPECT_TRUE(r->units.empty());
}

}  // namespace
}  // namespace kiste::runtime
