#pragma once
// A detached container's json-file log with docker's rotation: `<id>-json.log` is written, and
// once the next record would take it past max-size it becomes `<id>-json.log.1` (the older ones
// move up one, and the one past max-file - 1 goes). LogReader reads the files oldest first and
// follows the live one across rotations by inode, so no line is lost or read twice while the
// reader keeps up with max-file rotations.
#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <kiste/base/error.hpp>
#include <kiste/base/unique_fd.hpp>
#include <kiste/runtime/monitor.hpp>

namespace kiste::runtime {

// docker's --log-opt values ("max-size=10m", "max-file=3"), each given once or comma-separated.
[[nodiscard]] Result<LogOptions> parse_log_options(const std::vector<std::string>& opts);

// A time as `logs --since/--until` take it (docker's forms), in nanoseconds since the epoch: an
// RFC 3339 time ("2026-12-07T18:57:08Z", fractions and ±HH:MM offsets too; a date or a time
// without a zone is local time), a Unix time ("1765130228[.5]"), or a Go duration before `now`
// ("10m", "1h30m"). A log entry's own time is the first form. Times past 2262 are the largest
// value ("never"), times before 1678 the smallest.
[[nodiscard]] Result<int64_t> parse_log_time(std::string_view text, int64_t now_ns);

// The monitor's side: appends records, rotating first when one would pass max-size.
class LogWriter {
 public:
  [[nodiscard]] static Result<LogWriter> open(std::filesystem::path path, LogOptions opts);
  Status write(std::string_view record);

 private:
  LogWriter(std::filesystem::path path, LogOptions opts, UniqueFd fd, int64_t size)
      : path_(std::move(path)), opts_(opts), fd_(std::move(fd)), size_(size) {}
  Status rotate();
  std::filesystem::path path_;
  LogOptions opts_;
  UniqueFd fd_;
  int64_t size_ = 0;
};

// `logs`' side: every complete record that can be read now, oldest file first.
class LogReader {
 public:
  explicit LogReader(std::filesystem::path path) : path_(std::move(path)) {}
  // Appends what was written since the last call (across rotations) to `out`.
  Status read(std::vector<LogEntry>& out);

 private:
  void drain(std::vector<LogEntry>& out);
  std::filesystem::path path_;
  UniqueFd fd_;
  ino_t ino_ = 0;
  std::string pending_;
};

}  // namespace kiste::runtime
