#include <gtest/gtest.h>

#include <filesystem>
#include <limits>
#include <string>

#include <kiste/runtime/json_log.hpp>
#include <kiste/testing/temp_root.hpp>

namespace kiste::runtime {
namespace {

namespace fs = std::filesystem;

TEST(LogOptions, ParsesDockersKeys) {
  auto o = parse_log_options({"max-size=1k,max-file=2"});
  ASSERT_TRUE(o) << o.error().to_string();
  EXPECT_EQ(o->max_size, 1024);
  EXPECT_EQ(o->max_file, 2);
  o = parse_log_options({"max-size=10m", "max-file=3"});
  ASSERT_TRUE(o);
  EXPECT_EQ(o->max_size, 10 << 20);
  EXPECT_EQ(parse_log_options({}).value(), LogOptions{});
  for (const char* bad : {"max-size=lots", "max-size=0", "max-file=0", "max-file=x", "compress=true", "max-file=3"}) {
    auto r = parse_log_options({bad});
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().to_string().find('\n'), std::string::npos);
  }
}

TEST(LogTime, ReadsDockersSinceAndUntilForms) {
  constexpr int64_t kSec = 1'000'000'000;
  constexpr int64_t kAt = 1796669828;  // 2026-12-07T18:57:08Z
  const int64_t now = (kAt + 3600) * kSec;
  EXPECT_EQ(parse_log_time("2026-12-07T18:57:08Z", now).value(), kAt * kSec);
  EXPECT_EQ(parse_log_time("2026-12-07T18:57:08.25Z", now).value(), kAt * kSec + 250'000'000);
  EXPECT_EQ(parse_log_time("2026-12-07T18:57:08.123456789123Z", now).value(), kAt * kSec + 123'456'789);
  EXPECT_EQ(parse_log_time("2026-12-07T19:57:08+01:00", now).value(), kAt * kSec);
  EXPECT_EQ(parse_log_time("2026-12-07T17:27:08-01:30", now).value(), kAt * kSec);
  EXPECT_EQ(parse_log_time("1796669828", now).value(), kAt * kSec);
  EXPECT_EQ(parse_log_time("1796669828.5", now).value(), kAt * kSec + 500'000'000);
  EXPECT_EQ(parse_log_time("10m", now).value(), now - 600 * kSec);
  EXPECT_EQ(parse_log_time("1h30m", now).value(), now - 5400 * kSec);
  // Beyond int64 nanoseconds: "never" and "always", not an overflow.
  EXPECT_EQ(parse_log_time("9999-01-01T00:00:00Z", now).value(), std::numeric_limits<int64_t>::max());
  EXPECT_EQ(parse_log_time("1000-01-01T00:00:00Z", now).value(), std::numeric_limits<int64_t>::min());
  EXPECT_EQ(parse_log_time("9999999999", now).value(), std::numeric_limits<int64_t>::max());
}

TEST(LogTime, RefusesWhatIsNoTimeInOneLine) {
  for (const char* bad : {"", "yesterday", "2026-13-01", "2026-12-07T25:00:00Z", "2026-12-07T18:57Z",
                          "2026-12-07 18:57:08", "2026-12-07T18:57:08+0100", "2026-12-07T18:57:08.Z",
                          "12345678901", "1.2.3", "-5", "1e9"}) {
    auto r = parse_log_time(bad, 0);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code, Errc::InvalidArgument) << bad;
    EXPECT_EQ(r.error().to_string().find('\n'), std::string::npos) << bad;
  }
}

std::string record(int i) { return encode_log_entry({.log = std::to_string(i) + "\n", .stream = "stdout", .time = "t"}); }

// Reads after every `every` records while the writer rotates; every number exactly once, in order.
void write_and_follow(const fs::path& path, LogOptions opts, int every) {
  auto w = LogWriter::open(path, opts);
  ASSERT_TRUE(w);
  LogReader r(path);
  std::vector<LogEntry> got;
  for (int i = 1; i <= 200; ++i) {
    ASSERT_TRUE(w->write(record(i)));
    if (i % every == 0) {
      ASSERT_TRUE(r.read(got));
    }
  }
  ASSERT_TRUE(r.read(got));
  ASSERT_EQ(got.size(), 200u);
  for (int i = 1; i <= 200; ++i) EXPECT_EQ(got[static_cast<size_t>(i - 1)].log, std::to_string(i) + "\n");
}

TEST(JsonLog, ReaderFollowsAcrossRotationsWithoutLosingOrRepeating) {
  testing::TempRoot tmp("kiste-log-");
  const LogOptions opts{.max_size = 200, .max_file = 2};  // ~5 records a file
  write_and_follow(tmp.path() / "a-json.log", opts, 1);
  // Fewer reads than rotations: the files kept (max-file) still hold what the reader has not read.
  write_and_follow(tmp.path() / "b-json.log", {.max_size = 200, .max_file = 6}, 12);
  // Only max-file files are left, none past max-size.
  EXPECT_TRUE(fs::exists(tmp.path() / "a-json.log.1"));
  EXPECT_FALSE(fs::exists(tmp.path() / "a-json.log.2"));
  EXPECT_LE(fs::file_size(tmp.path() / "a-json.log"), 200u);
  EXPECT_LE(fs::file_size(tmp.path() / "a-json.log.1"), 200u);
}

TEST(JsonLog, ANewReaderStartsAtTheOldestFileKept) {
  testing::TempRoot tmp("kiste-log-");
  const fs::path path = tmp.path() / "c-json.log";
  auto w = LogWriter::open(path, {.max_size = 200, .max_file = 3});
  ASSERT_TRUE(w);
  for (int i = 1; i <= 50; ++i) ASSERT_TRUE(w->write(record(i)));
  LogReader r(path);
  std::vector<LogEntry> got;
  ASSERT_TRUE(r.read(got));
  ASSERT_FALSE(got.empty());
  EXPECT_EQ(got.back().log, "50\n");
  const int first = std::stoi(got.front().log);
  EXPECT_GT(first, 1);  // the oldest went
  EXPECT_EQ(got.size(), static_cast<size_t>(50 - first + 1));  // contiguous from there
}

}  // namespace
}  // namespace kiste::runtime
