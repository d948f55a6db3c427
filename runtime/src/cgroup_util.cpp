#include "cgroup_util.hpp"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <ctime>

#include <kiste/base/sys.hpp>

namespace kiste::runtime::detail {

namespace fs = std::filesystem;

Status write_cgroup_file(const fs::path& file, std::string_view value) {
  KISTE_ASSIGN_OR_RETURN(UniqueFd fd, sys::open(file, O_WRONLY | O_CLOEXEC));
  if (::write(fd.get(), value.data(), value.size()) != static_cast<ssize_t>(value.size())) {
    return std::unexpected(sys_error(fmt::format("write {} to", quote(value)), file.native()));
  }
  return {};
}

std::vector<pid_t> cgroup_pids(const fs::path& dir) {
  std::vector<pid_t> pids;
  auto text = sys::read_file(dir / "cgroup.procs");
  if (!text) return pids;
  std::string_view s = *text;
  while (!s.empty()) {
    size_t nl = s.find('\n');
    std::string_view line = s.substr(0, nl);
    pid_t p = 0;
    if (std::from_chars(line.data(), line.data() + line.size(), p).ec == std::errc{} && p > 0) {
      pids.push_back(p);
    }
    if (nl == std::string_view::npos) break;
    s.remove_prefix(nl + 1);
  }
  return pids;
}

Status kill_and_remove(const fs::path& dir) {
  const timespec pause{0, 5'000'000};
  for (int attempt = 0; attempt < 400; ++attempt) {
    for (pid_t p : cgroup_pids(dir)) ::kill(p, SIGKILL);
    if (::rmdir(dir.c_str()) == 0 || errno == ENOENT) return {};
    if (errno != EBUSY) return std::unexpected(sys_error("rmdir", dir.native()));
    ::nanosleep(&pause, nullptr);
  }
  return std::unexpected(sys_error_code(EBUSY, "rmdir", dir.native()));
}

int64_t read_keyed(const fs::path& file, std::string_view key) {
  auto text = sys::read_file(file, 1 << 16);
  if (!text) return -1;
  std::string_view s = *text;
  while (!s.empty()) {
    size_t nl = s.find('\n');
    std::string_view line = s.substr(0, nl);
    if (line.starts_with(key) && line.size() > key.size() && line[key.size()] == ' ') {
      std::string_view v = line.substr(key.size() + 1);
      int64_t out = -1;
      std::from_chars(v.data(), v.data() + v.size(), out);
      return out;
    }
    if (nl == std::string_view::npos) break;
    s.remove_prefix(nl + 1);
  }
  return -1;
}

}  // namespace kiste::runtime::detail
