#include <kiste/runtime/json_log.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <ctime>
#include <limits>

#include <kiste/base/sys.hpp>
#include <kiste/runtime/cgroup.hpp>
#include <kiste/runtime/health.hpp>

namespace kiste::runtime {

namespace fs = std::filesystem;

Result<int64_t> parse_log_time(std::string_view text, int64_t now_ns) {
  auto bad = [&] {
    return failf(Errc::InvalidArgument,
                 "time {}: expected RFC 3339 (2026-12-07T18:57:08Z), a Unix time or a duration (10m)", quote(text));
  };
  if (text.empty()) return bad();
  if (auto d = parse_go_duration_ms(text); d && text.find_first_not_of("0123456789.") != std::string_view::npos) {
    return now_ns - *d * 1'000'000;
  }
  auto digits = [](std::string_view s) { return !s.empty() && s.find_first_not_of("0123456789") == std::string_view::npos; };
  auto fraction_ns = [&](std::string_view f) -> int64_t {  // ".123" -> 123000000
    std::string nine(f.substr(0, 9));
    nine.resize(9, '0');
    return std::stoll(nine);
  };
  if (const size_t dot = text.find('.'); text.find_first_not_of("0123456789.") == std::string_view::npos) {
    std::string_view whole = text.substr(0, dot), frac = dot == std::string_view::npos ? "" : text.substr(dot + 1);
    if (!digits(whole) || (dot != std::string_view::npos && !digits(frac)) || whole.size() > 10) return bad();
    const int64_t secs = std::stoll(std::string(whole));
    if (secs > std::numeric_limits<int64_t>::max() / 1'000'000'000 - 1) return std::numeric_limits<int64_t>::max();
    return secs * 1'000'000'000 + (frac.empty() ? 0 : fraction_ns(frac));
  }
  std::tm tm{};
  std::string t(text);
  int consumed = 0;
  if (std::sscanf(t.c_str(), "%4d-%2d-%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &consumed) != 3 || consumed != 10) {
    return bad();
  }
  std::string_view rest = text.substr(10);
  int64_t frac = 0;
  if (!rest.empty()) {
    if (rest.size() < 9 || rest[0] != 'T') return bad();
    std::string hms(rest.substr(1, 8));
    if (std::sscanf(hms.c_str(), "%2d:%2d:%2d%n", &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &consumed) != 3 || consumed != 8) {
      return bad();
    }
    rest.remove_prefix(9);
    if (rest.starts_with('.')) {
      const size_t end = rest.find_first_not_of("0123456789", 1);
      std::string_view f = rest.substr(1, end == std::string_view::npos ? std::string_view::npos : end - 1);
      if (!digits(f)) return bad();
      frac = fraction_ns(f);
      rest.remove_prefix(1 + f.size());
    }
  }
  if (tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 ||
      tm.tm_min > 59 || tm.tm_sec > 60) {
    return bad();
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  int64_t seconds = 0;
  if (rest.empty()) {  // no zone: local time
    tm.tm_isdst = -1;
    seconds = std::mktime(&tm);
  } else if (rest == "Z") {
    seconds = ::timegm(&tm);
  } else {
    int oh = 0, om = 0;
    std::string z(rest);
    if ((z[0] != '+' && z[0] != '-') || std::sscanf(z.c_str() + 1, "%2d:%2d%n", &oh, &om, &consumed) != 2 ||
        consumed != 5) {
      return bad();
    }
    seconds = ::timegm(&tm) - (z[0] == '+' ? 1 : -1) * (oh * 3600 + om * 60);
  }
  // Nanoseconds end in 2262: later times are "never" (the largest value), earlier ones "always".
  constexpr int64_t kMaxSeconds = std::numeric_limits<int64_t>::max() / 1'000'000'000 - 1;
  if (seconds > kMaxSeconds) return std::numeric_limits<int64_t>::max();
  if (seconds < -kMaxSeconds) return std::numeric_limits<int64_t>::min();
  return seconds * 1'000'000'000 + frac;
}

Result<LogOptions> parse_log_options(const std::vector<std::string>& opts) {
  LogOptions o;
  bool max_file_given = false;
  for (const auto& opt : opts) {
    std::string_view rest = opt;
    while (!rest.empty()) {
      const size_t comma = rest.find(',');
      std::string_view kv = rest.substr(0, comma);
      rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
      const size_t eq = kv.find('=');
      const std::string_view key = kv.substr(0, eq);
      const std::string_view value = eq == std::string_view::npos ? std::string_view{} : kv.substr(eq + 1);
      if (key == "max-size") {
        auto n = parse_memory_size(value);
        if (!n || *n <= 0) {
          return failf(Errc::InvalidArgument, "--log-opt max-size={}: want a size such as 10m or 1k", value);
        }
        o.max_size = *n;
      } else if (key == "max-file") {
        int n = 0;
        auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
        if (value.empty() || ec != std::errc{} || p != value.data() + value.size() || n < 1) {
          return failf(Errc::InvalidArgument, "--log-opt max-file={}: want a number of files, at least 1", value);
        }
        o.max_file = n;
        max_file_given = true;
      } else {
        return failf(Errc::InvalidArgument, "--log-opt {}: unknown option for the json-file log (max-size, max-file)",
                     quote(kv));
      }
    }
  }
  if (max_file_given && o.max_file > 1 && o.max_size == 0) {
    return fail(Errc::InvalidArgument, "--log-opt max-file: needs max-size too");
  }
  return o;
}

namespace {

fs::path rotated(const fs::path& path, int n) {
  fs::path p = path;
  p += "." + std::to_string(n);
  return p;
}

}  // namespace

Result<LogWriter> LogWriter::open(fs::path path, LogOptions opts) {
  KISTE_ASSIGN_OR_RETURN(UniqueFd fd, sys::open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return std::unexpected(sys_error("stat", path.native()));
  return LogWriter(std::move(path), opts, std::move(fd), st.st_size);
}

Status LogWriter::rotate() {
  // The live file is complete before it is renamed: a reader that sees a newer file may finish it.
  fd_.reset();
  if (opts_.max_file <= 1) {
    KISTE_ASSIGN_OR_RETURN(fd_, sys::open(path_, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600));
    size_ = 0;
    return {};
  }
  (void)::unlink(rotated(path_, opts_.max_file - 1).c_str());
  for (int i = opts_.max_file - 2; i >= 1; --i) (void)::rename(rotated(path_, i).c_str(), rotated(path_, i + 1).c_str());
  KISTE_TRY(sys::rename(path_, rotated(path_, 1)));
  KISTE_ASSIGN_OR_RETURN(fd_, sys::open(path_, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0600));
  size_ = 0;
  return {};
}

Status LogWriter::write(std::string_view record) {
  if (opts_.max_size > 0 && size_ > 0 && size_ + static_cast<int64_t>(record.size()) > opts_.max_size) {
    KISTE_TRY(rotate());
  }
  if (!fd_) return fail(Errc::System, "write the container's log: it could not be reopened");
  KISTE_TRY(sys::write_all(fd_.get(), record, path_.native()));
  size_ += static_cast<int64_t>(record.size());
  return {};
}

void LogReader::drain(std::vector<LogEntry>& out) {
  char buf[64 * 1024];
  while (true) {
    ssize_t n = ::read(fd_.get(), buf, sizeof buf);
    if (n <= 0) break;
    pending_.append(buf, static_cast<size_t>(n));
  }
  size_t start = 0;
  for (size_t nl; (nl = pending_.find('\n', start)) != std::string::npos; start = nl + 1) {
    if (auto e = decode_log_entry(std::string_view(pending_).substr(start, nl - start))) out.push_back(std::move(*e));
  }
  pending_.erase(0, start);
}

Status LogReader::read(std::vector<LogEntry>& out) {
  while (true) {
    if (fd_) drain(out);
    // The files there are now, oldest first, with their inodes.
    std::vector<std::pair<fs::path, ino_t>> files;
    for (int i = 1;; ++i) {
      struct stat st {};
      if (::stat(rotated(path_, i).c_str(), &st) != 0) break;
      files.emplace(files.begin(), rotated(path_, i), st.st_ino);
    }
    if (struct stat st {}; ::stat(path_.c_str(), &st) == 0) files.emplace_back(path_, st.st_ino);
    // Ours is the live one (or the live one is being made): nothing more for now. A file that
    // went while we read it is finished; the oldest one there is next.
    size_t next = 0;
    if (fd_) {
      auto it = std::find_if(files.begin(), files.end(), [&](const auto& f) { return f.second == ino_; });
      if (it != files.end()) next = static_cast<size_t>(it - files.begin()) + 1;
    }
    if (next >= files.size()) return {};
    UniqueFd fd(::open(files[next].first.c_str(), O_RDONLY | O_CLOEXEC));
    struct stat st {};
    if (!fd || ::fstat(fd.get(), &st) != 0 || st.st_ino != files[next].second) continue;  // it moved: look again
    if (fd_) drain(out);  // finished: what it still had
    pending_.clear();
    fd_ = std::move(fd);
    ino_ = st.st_ino;
  }
}

}  // namespace kiste::runtime
