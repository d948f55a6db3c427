// cgroup v1: one directory per hierarchy that holds a needed controller, created under the
// caller's own cgroup in that hierarchy (e.g. memory:/process_api/<id>/kiste-<cid>).
#include <fcntl.h>
#include <signal.h>

#include <algorithm>
#include <sstream>

#include <kiste/base/sys.hpp>
#include <kiste/runtime/cgroup.hpp>

#include "cgroup_util.hpp"

namespace kiste::runtime {

namespace fs = std::filesystem;

namespace {

struct Hierarchy {
  std::vector<std::string> controllers;  // "cpu","cpuacct" or "name=systemd"
  fs::path mount_point;
  std::string mount_root;  // the cgroup shown at the mount point (usually "/")
  std::string self;        // the caller's cgroup in this hierarchy
  std::string options;     // "cpu,cpuacct"
  std::string name;        // basename of the mount point
};

std::vector<std::string> split(std::string_view s, char sep) {
  std::vector<std::string> out;
  while (true) {
    size_t p = s.find(sep);
    out.emplace_back(s.substr(0, p));
    if (p == std::string_view::npos) break;
    s.remove_prefix(p + 1);
  }
  return out;
}

bool is_controller_option(const std::string& o) {
  static const char* kNotControllers[] = {"rw", "ro", "xattr", "noprefix", "clone_children",
                                          "cpuset_v2_mode", "favordynmods"};
  for (const char* n : kNotControllers) {
    if (o == n) return false;
  }
  return !o.starts_with("release_agent=");
}

class CgroupV1Driver final : public CgroupDriver {
 public:
  explicit CgroupV1Driver(std::vector<Hierarchy> h) : hierarchies_(std::move(h)) {}
  ~CgroupV1Driver() override { (void)destroy(); }

  Status create(std::string_view name, const CgroupPlan& plan) override {
    for (const std::string& c : plan.controllers) {
      const Hierarchy* h = find(c);
      if (h == nullptr) {
        return failf(Errc::Unsupported, "cgroup v1 controller {}: not mounted", quote(c));
      }
      if (dir_of(*h)) continue;
      std::string rel = h->self;
      if (h->mount_root != "/" && rel.starts_with(h->mount_root)) rel.erase(0, h->mount_root.size());
      fs::path dir = h->mount_point / fs::path(rel).relative_path() / std::string(name);
      if (::mkdir(dir.c_str(), 0755) != 0) {
        return std::unexpected(sys_error("create cgroup", dir.native()));
      }
      created_.emplace_back(h, dir);
    }
    return {};
  }

  Status apply(const CgroupPlan& plan) override {
    // Consecutive writes to one file (Docker's device rules: a dozen) share one open file; the
    // kernel takes each write() as one value.
    UniqueFd fd;
    fs::path open_path;
    for (const CgroupWrite& w : plan.writes) {
      const Hierarchy* h = find(w.controller);
      const fs::path* dir = h ? dir_of(*h) : nullptr;
      if (dir == nullptr) {
        return failf(Errc::InvalidArgument, "cgroup: no {} cgroup was created for {}",
                     quote(w.controller), quote(w.file));
      }
      fs::path path = *dir / w.file;
      if (path != open_path || !fd) {
        auto f = sys::open(path, O_WRONLY | O_CLOEXEC);
        if (!f) {
          if (w.optional && f.error().sys_errno == ENOENT) continue;
          return std::unexpected(std::move(f).error());
        }
        fd = std::move(*f);
        open_path = std::move(path);
      }
      if (::write(fd.get(), w.value.data(), w.value.size()) != static_cast<ssize_t>(w.value.size())) {
        return std::unexpected(sys_error(fmt::format("write {} to", quote(w.value)), open_path.native()));
      }
    }
    return {};
  }

  Status add_process(pid_t pid) override {
    const std::string s = std::to_string(pid);
    for (const auto& [h, dir] : created_) {
      KISTE_TRY(detail::write_cgroup_file(dir / "cgroup.procs", s));
    }
    return {};
  }

  Result<std::vector<UniqueFd>> open_self_join() override {
    std::vector<UniqueFd> fds;
    for (const auto& [h, dir] : created_) {
      KISTE_ASSIGN_OR_RETURN(UniqueFd fd, sys::open(dir / "tasks", O_WRONLY | O_CLOEXEC));
      fds.push_back(std::move(fd));
    }
    return fds;
  }

  Result<CgroupStats> stats() override {
    CgroupStats st;
    const Hierarchy* h = find("memory");
    const fs::path* dir = h ? dir_of(*h) : nullptr;
    if (dir == nullptr) return st;
    st.oom_killed = detail::read_keyed(*dir / "memory.oom_control", "oom_kill") > 0;
    auto lim = sys::read_file(*dir / "memory.limit_in_bytes", 64);
    if (lim) {
      int64_t v = std::stoll(*lim);
      if (v < (int64_t{1} << 62)) st.memory_limit = v;
    }
    auto peak = sys::read_file(*dir / "memory.max_usage_in_bytes", 64);
    if (peak) st.memory_peak = std::stoull(*peak);
    return st;
  }

  Status destroy() override {
    // Freeze first so a fork bomb cannot outrun the killing, then kill, thaw and remove.
    const Hierarchy* fh = find("freezer");
    const fs::path* fdir = fh ? dir_of(*fh) : nullptr;
    if (fdir != nullptr && !detail::cgroup_pids(*fdir).empty()) {
      (void)detail::write_cgroup_file(*fdir / "freezer.state", "FROZEN");
      for (pid_t p : detail::cgroup_pids(*fdir)) ::kill(p, SIGKILL);
      (void)detail::write_cgroup_file(*fdir / "freezer.state", "THAWED");
    }
    Status first;
    for (auto it = created_.rbegin(); it != created_.rend(); ++it) {
      auto r = detail::kill_and_remove(it->second);
      if (!r && first) first = std::move(r);
    }
    created_.clear();
    return first;
  }

  std::vector<fs::path> paths() const override {
    std::vector<fs::path> out;
    for (const auto& [h, dir] : created_) out.push_back(dir);
    return out;
  }

  std::vector<std::pair<std::string, std::string>> v1_hierarchies() const override {
    std::vector<std::pair<std::string, std::string>> out;
    for (const Hierarchy& h : hierarchies_) out.emplace_back(h.name, h.options);
    return out;
  }

 private:
  const Hierarchy* find(std::string_view controller) const {
    for (const Hierarchy& h : hierarchies_) {
      if (std::find(h.controllers.begin(), h.controllers.end(), controller) != h.controllers.end()) {
        return &h;
      }
    }
    return nullptr;
  }
  const fs::path* dir_of(const Hierarchy& h) const {
    for (const auto& [hh, dir] : created_) {
      if (hh == &h) return &dir;
    }
    return nullptr;
  }

  std::vector<Hierarchy> hierarchies_;
  std::vector<std::pair<const Hierarchy*, fs::path>> created_;
};

}  // namespace

Result<std::unique_ptr<CgroupDriver>> make_cgroup_v1_driver(const fs::path& mountinfo,
                                                            const fs::path& self_cgroup) {
  KISTE_ASSIGN_OR_RETURN(std::string mi, sys::read_file(mountinfo, 1 << 22));
  KISTE_ASSIGN_OR_RETURN(std::string sc, sys::read_file(self_cgroup, 1 << 20));
  std::vector<Hierarchy> hs;
  std::istringstream in(mi);
  std::string line;
  while (std::getline(in, line)) {
    size_t dash = line.find(" - ");
    if (dash == std::string::npos) continue;
    std::istringstream pre(line.substr(0, dash)), post(line.substr(dash + 3));
    std::string id, parent, devno, root, mp, fstype, source, superopts;
    pre >> id >> parent >> devno >> root >> mp;
    post >> fstype >> source >> superopts;
    if (fstype != "cgroup") continue;
    Hierarchy h;
    for (std::string& o : split(superopts, ',')) {
      if (is_controller_option(o)) h.controllers.push_back(std::move(o));
    }
    if (h.controllers.empty()) continue;
    // Skip a second mount of the same hierarchy.
    bool dup = false;
    for (const Hierarchy& x : hs) dup = dup || x.controllers == h.controllers;
    if (dup) continue;
    h.mount_point = mp;
    h.mount_root = root;
    h.name = fs::path(mp).filename().native();
    for (size_t i = 0; i < h.controllers.size(); ++i) {
      if (i) h.options += ',';
      h.options += h.controllers[i];
    }
    hs.push_back(std::move(h));
  }
  // /proc/self/cgroup: "4:memory:/process_api/x", "2:cpu,cpuacct:/", "9:name=systemd:/".
  std::istringstream cin(sc);
  while (std::getline(cin, line)) {
    auto parts = split(line, ':');
    if (parts.size() < 3 || parts[1].empty()) continue;
    std::string path = line.substr(parts[0].size() + parts[1].size() + 2);
    auto ctrls = split(parts[1], ',');
    for (Hierarchy& h : hs) {
      for (const auto& c : ctrls) {
        if (std::find(h.controllers.begin(), h.controllers.end(), c) != h.controllers.end()) {
          h.self = path;
        }
      }
    }
  }
  for (Hierarchy& h : hs) {
    if (h.self.empty()) h.self = "/";
  }
  if (hs.empty()) return fail(Errc::Unsupported, "cgroup v1: no hierarchies are mounted");
  return std::unique_ptr<CgroupDriver>(new CgroupV1Driver(std::move(hs)));
}

}  // namespace kiste::runtime
