#include <kiste/runtime/live_marker.hpp>

#include <kiste/runtime/container_store.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <set>

#include <kiste/base/sys.hpp>
#include <kiste/runtime/cgroup.hpp>
#include <kiste/runtime/rootless.hpp>

#include "cgroup_util.hpp"

namespace kiste::runtime {

namespace fs = std::filesystem;

namespace {

bool is_id(std::string_view s) {
  if (s.empty() || s.size() > 128) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z'))) return false;
  }
  return true;
}

// "dir PATH", "lower PATH", "cgroup PATH" and "unit NAME" lines.
struct MarkerContent {
  fs::path dir;
  std::vector<fs::path> lowers;
  std::vector<fs::path> cgroups;
  std::string unit;
};

MarkerContent parse_marker(std::string_view text) {
  MarkerContent m;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    if (line.starts_with("dir ")) m.dir = std::string(line.substr(4));
    if (line.starts_with("lower ")) m.lowers.emplace_back(std::string(line.substr(6)));
    if (line.starts_with("cgroup ")) m.cgroups.emplace_back(std::string(line.substr(7)));
    if (line.starts_with("unit ")) m.unit = std::string(line.substr(5));
  }
  return m;
}

// The entries of running/ (none when it does not exist yet).
Result<std::vector<std::string>> marker_names(const fs::path& running_dir) {
  auto dfd = sys::open(running_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (!dfd) {
    if (dfd.error().sys_errno == ENOENT) return std::vector<std::string>{};
    return std::unexpected(std::move(dfd).error());
  }
  return sys::list_dir(dfd->get(), running_dir.native());
}

// A path in a marker is one line: a newline in it would forge the next line.
bool one_line(const fs::path& p) { return p.native().find('\n') == std::string::npos; }

// Kills every process of a container whose kiste is gone, however it tried to survive: v2 kills
// the whole subtree at once; on v1 the freezer stops a fork bomb from outrunning the kills.
// (kill_and_remove then kills what is left, pid by pid, until each cgroup is empty.)
void kill_container(const std::vector<fs::path>& cgroups) {
  for (const fs::path& cg : cgroups) {
    if (::access((cg / "cgroup.kill").c_str(), F_OK) == 0) {
      (void)detail::write_cgroup_file(cg / "cgroup.kill", "1");
    } else if (::access((cg / "freezer.state").c_str(), F_OK) == 0) {
      (void)detail::write_cgroup_file(cg / "freezer.state", "FROZEN");
      for (pid_t p : detail::cgroup_pids(cg)) ::kill(p, SIGKILL);
      (void)detail::write_cgroup_file(cg / "freezer.state", "THAWED");
    }
  }
}

bool below(const fs::path& p, const fs::path& dir) {
  if (!p.is_absolute() || p.lexically_normal() != p) return false;
  auto rel = p.lexically_relative(dir);
  return !rel.empty() && *rel.begin() != ".." && rel != ".";
}

}  // namespace

Result<LiveMarker> LiveMarker::create(const fs::path& running_dir, std::string_view id,
                                      const fs::path& container_dir,
                                      const std::vector<fs::path>& lower_dirs) {
  if (!is_id(id)) return failf(Errc::InvalidArgument, "container id {}: invalid", quote(id));
  std::string text = fmt::format("dir {}\n", container_dir.native());
  for (const fs::path& l : lower_dirs) text += fmt::format("lower {}\n", l.native());
  std::vector<fs::path> named = lower_dirs;
  named.push_back(container_dir);
  for (const fs::path& p : named) {
    if (!one_line(p)) return failf(Errc::InvalidArgument, "path {}: has a newline", quote(p.native()));
  }
  KISTE_TRY(sys::mkdir_all(running_dir, 0700));
  fs::path final_path = running_dir / std::string(id);
  // An earlier run's marker is the only record of its cgroups and mounts: never write over it
  // (a start after a killed monitor sweeps first; anything else would orphan them).
  if (auto old = sys::open(final_path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW); old) {
    const bool live = ::flock(old->get(), LOCK_SH | LOCK_NB) != 0;
    return failf(Errc::AlreadyExists, "container {}: {}", id,
                 live ? "is running"
                      : "an earlier run of it was killed and left its cgroups (`kiste prune` "
                        "removes them)");
  }
  fs::path tmp = running_dir / fmt::format(".{}.tmp", id);
  // A parallel sweep takes an unlocked ".<id>.tmp" for a killed kiste's and unlinks it, and it
  // can do so between our open and our flock: hold the lock on the file the name still names.
  UniqueFd fd;
  for (int attempt = 0;; ++attempt) {
    KISTE_ASSIGN_OR_RETURN(fd, sys::open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    if (::flock(fd.get(), LOCK_EX) != 0) return std::unexpected(sys_error("flock", tmp.native()));
    struct stat held {}, named {};
    if (::fstat(fd.get(), &held) == 0 && ::stat(tmp.c_str(), &named) == 0 &&
        held.st_ino == named.st_ino && held.st_dev == named.st_dev) {
      break;
    }
    if (attempt == 8) return failf(Errc::Unavailable, "{}: removed while it was being made", tmp.native());
  }
  KISTE_TRY(sys::write_all(fd.get(), text, tmp.native()));
  KISTE_TRY(sys::rename(tmp, final_path));
  return LiveMarker(final_path, std::move(fd));
}

LiveMarker::~LiveMarker() {
  if (fd_) ::unlink(path_.c_str());  // before the lock goes: no sweeper takes a clean exit for a crash
}

Status LiveMarker::record_cgroups(const std::vector<fs::path>& dirs, const std::string& unit) {
  std::string text;
  for (const fs::path& d : dirs) text += fmt::format("cgroup {}\n", d.native());
  if (!unit.empty() && unit.find('\n') == std::string::npos) text += fmt::format("unit {}\n", unit);
  return with_context(sys::write_all(fd_.get(), text, path_.native()), "record the container's cgroup");
}

bool container_running(const fs::path& running_dir, std::string_view id) {
  if (!is_id(id)) return false;
  auto fd = sys::open(running_dir / std::string(id), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (!fd) return false;
  return ::flock(fd->get(), LOCK_SH | LOCK_NB) != 0;  // held: its kiste lives
}

Result<std::vector<fs::path>> live_lower_dirs(const fs::path& running_dir) {
  std::vector<fs::path> out;
  KISTE_ASSIGN_OR_RETURN(auto names, marker_names(running_dir));
  for (const std::string& id : names) {
    if (!is_id(id)) continue;
    auto fd = sys::open(running_dir / id, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (!fd) continue;
    if (::flock(fd->get(), LOCK_SH | LOCK_NB) == 0) continue;  // its kiste is gone
    MarkerContent m = parse_marker(sys::read_all(fd->get(), id, 1 << 16).value_or(""));
    for (auto& l : m.lowers) out.push_back(std::move(l));
  }
  return out;
}

Result<ExitedCleanup> remove_exited_containers(const fs::path& running_dir,
                                               const fs::path& containers_dir) {
  ExitedCleanup out;
  KISTE_ASSIGN_OR_RETURN(auto names, marker_names(running_dir));
  const std::set<std::string> running(names.begin(), names.end());
  std::error_code ec;
  for (auto it = fs::directory_iterator(containers_dir, ec); !ec && it != fs::directory_iterator();
       it.increment(ec)) {
    const std::string id = it->path().filename();
    if (!is_id(id) || running.contains(id) || !it->is_directory(ec) || it->is_symlink(ec)) continue;
    if (fs::exists(it->path() / kContainerRecord, ec)) continue;  // a detached container's
    if (auto r = sys::remove_tree(it->path()); !r) {
      out.problems.push_back(r.error().to_string());
      continue;
    }
    out.containers.push_back(id);
  }
  if (ec && ec != std::errc::no_such_file_or_directory) {
    return std::unexpected(sys_error_code(ec.value(), "read directory", containers_dir.native()));
  }
  return out;
}

Result<StaleCleanup> clean_stale_containers(const fs::path& running_dir, const fs::path& containers_dir) {
  StaleCleanup out;
  KISTE_ASSIGN_OR_RETURN(auto names, marker_names(running_dir));
  for (const std::string& id : names) {
    if (!is_id(id)) {
      // A marker being made (".<id>.tmp"), or the remains of a kiste killed while making it.
      if (id.starts_with(".") && id.ends_with(".tmp")) {
        auto tmp = sys::open(running_dir / id, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
        if (tmp && ::flock(tmp->get(), LOCK_EX | LOCK_NB) == 0) ::unlink((running_dir / id).c_str());
      }
      continue;
    }
    fs::path marker = running_dir / id;
    auto fd = sys::open(marker, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    if (!fd) continue;  // removed meanwhile
    if (::flock(fd->get(), LOCK_EX | LOCK_NB) != 0) continue;  // its kiste lives
    // Another sweeper may have finished it between our open and our lock.
    struct stat a {}, b {};
    if (::fstat(fd->get(), &a) != 0 || ::lstat(marker.c_str(), &b) != 0 || a.st_ino != b.st_ino) continue;
    MarkerContent m = parse_marker(sys::read_all(fd->get(), marker.native(), 1 << 16).value_or(""));
    bool ok = true;
    const std::string cgroup_name = "kiste-" + id;
    std::vector<fs::path> cgroups;
    for (const fs::path& cg : m.cgroups) {
      if (!below(cg, "/sys/fs/cgroup") ||
          (cg.filename() != cgroup_name && cg.filename() != cgroup_name + ".scope")) {
        out.problems.push_back(fmt::format("marker {}: cgroup {} is not a container cgroup",
                                           quote(marker.native()), quote(cg.native())));
        ok = false;
        continue;
      }
      if (::access(cg.c_str(), F_OK) == 0) cgroups.push_back(cg);
    }
    kill_container(cgroups);
    for (const fs::path& cg : cgroups) {
      auto r = detail::kill_and_remove(cg);
      if (r) {
        out.cgroups.push_back(cg);
      } else {
        out.problems.push_back(r.error().to_string());
        ok = false;
      }
    }
    if (!m.unit.empty()) {
      if (m.unit != cgroup_name + ".scope") {
        out.problems.push_back(fmt::format("marker {}: unit {} is not a container scope",
                                           quote(marker.native()), quote(m.unit)));
        ok = false;
      } else if (auto r = stop_systemd_unit(m.unit, running_rootless() ? SystemdInstance::User
                                                                         : SystemdInstance::System);
                 !r) {
        out.problems.push_back(r.error().to_string());
        ok = false;
      } else {
        out.units.push_back(m.unit);
      }
    }
    if (!m.dir.empty()) {
      if (!below(m.dir, containers_dir) || m.dir.filename() != id) {
        out.problems.push_back(fmt::format("marker {}: {} is not a container dir",
                                           quote(marker.native()), quote(m.dir.native())));
        ok = false;
      } else if (auto r = sys::remove_tree(m.dir); !r) {
        out.problems.push_back(r.error().to_string());
        ok = false;
      }
    }
    if (ok) {
      ::unlink(marker.c_str());
      out.containers.push_back(id);
    }
  }
  return out;
}

}  // namespace kiste::runtime
