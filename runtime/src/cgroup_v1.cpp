// cgroup v1: one directory in EVERY mounted hierarchy, under the caller's own cgroup there
// (e.g. memory:/process_api/<id>/kiste-<cid>) or under --cgroup-parent. A hierarchy the container
// stayed at the root of would be the root of its cgroup namespace too, and with CAP_SYS_ADMIN a
// mount of it exposes the host's release_agent (CVE-2022-0492 class).
#include <fcntl.h>
#include <signal.h>

#include <algorithm>
#include <sstream>

#include <kiste/base/split.hpp>
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
  bool noprefix = false;   // cpuset's files are "cpus", not "cpuset.cpus"
  bool unified = false;    // a hybrid host's cgroup2 mount: no controllers, the "0::" cgroup
};

bool is_controller_option(std::string_view o) {
  static const char* kNotControllers[] = {"rw", "ro", "xattr", "noprefix", "clone_children",
                                          "cpuset_v2_mode", "favordynmods"};
  for (const char* n : kNotControllers) {
    if (o == n) return false;
  }
  return !o.starts_with("release_agent=");
}

class CgroupV1Driver final : public CgroupDriver {
 public:
  CgroupV1Driver(std::vector<Hierarchy> h, std::string parent)
      : hierarchies_(std::move(h)), parent_(std::move(parent)) {}
  ~CgroupV1Driver() override { (void)destroy(); }

  Status create(std::string_view name, const CgroupPlan& plan) override {
    for (const std::string& c : plan.controllers) {
      if (find(c) == nullptr) {
        return failf(Errc::Unsupported, "cgroup v1 controller {}: not mounted", quote(c));
      }
    }
    for (const Hierarchy& h : hierarchies_) {
      if (dir_of(h)) continue;
      std::string rel = parent_.empty() ? h.self : parent_;
      if (h.mount_root != "/" && rel.starts_with(h.mount_root)) rel.erase(0, h.mount_root.size());
      const fs::path parent_dir = h.mount_point / fs::path(rel).relative_path();
      if (!parent_.empty()) KISTE_TRY(make_parent(h, parent_dir));
      fs::path dir = parent_dir / std::string(name);
      if (::mkdir(dir.c_str(), 0755) != 0) {
        Error e = sys_error("create cgroup", dir.native());
        (void)destroy();
        return std::unexpected(std::move(e));
      }
      created_.emplace_back(&h, dir);
      if (auto r = inherit_cpuset(h, parent_dir, dir); !r) {
        (void)destroy();
        return r;
      }
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
      if (h->unified) continue;  // cloned into (open_clone_target)
      KISTE_ASSIGN_OR_RETURN(UniqueFd fd, sys::open(dir / "tasks", O_WRONLY | O_CLOEXEC));
      fds.push_back(std::move(fd));
    }
    return fds;
  }

  // A hybrid host's cgroup2 hierarchy: the child is cloned into it. Joining it by writing
  // cgroup.procs moves a whole thread group, which waits for an RCU grace period (12 ms
  // measured here under load); CLONE_INTO_CGROUP does not.
  Result<UniqueFd> open_clone_target() override {
    for (const auto& [h, dir] : created_) {
      if (h->unified) return sys::open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    }
    return UniqueFd{};
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
  void forget() override { created_.clear(); }

  std::vector<std::pair<std::string, std::string>> v1_hierarchies() const override {
    std::vector<std::pair<std::string, std::string>> out;
    for (const Hierarchy& h : hierarchies_) {
      if (!h.unified) out.emplace_back(h.name, h.options);
    }
    return out;
  }

 private:
  const Hierarchy* find(std::string_view controller) const {
    for (const Hierarchy& h : hierarchies_) {
      if (!h.unified &&
          std::find(h.controllers.begin(), h.controllers.end(), controller) != h.controllers.end()) {
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

  // --cgroup-parent's directories, each made like a container's (a cpuset gets its CPUs).
  static Status make_parent(const Hierarchy& h, const fs::path& parent_dir) {
    fs::path at = h.mount_point;
    for (const auto& part : parent_dir.lexically_relative(h.mount_point)) {
      fs::path next = at / part;
      if (::mkdir(next.c_str(), 0755) == 0) {
        KISTE_TRY(inherit_cpuset(h, at, next));
      } else if (errno != EEXIST) {
        return std::unexpected(sys_error("create cgroup", next.native()));
      }
      at = std::move(next);
    }
    return {};
  }

  // A new cpuset cgroup starts with no CPUs and no memory nodes, and nothing can join it until
  // both are set: it gets its parent's (as runc does), unless the kernel copied them already.
  static Status inherit_cpuset(const Hierarchy& h, const fs::path& parent, const fs::path& dir) {
    if (std::find(h.controllers.begin(), h.controllers.end(), "cpuset") == h.controllers.end()) {
      return {};
    }
    const std::string prefix = h.noprefix ? "" : "cpuset.";
    for (const char* f : {"cpus", "mems"}) {
      const std::string file = prefix + f;
      auto have = sys::read_file(dir / file, 4096);
      if (have && have->find_first_not_of(" \n") != std::string::npos) continue;
      KISTE_ASSIGN_OR_RETURN(std::string from, sys::read_file(parent / file, 4096));
      while (!from.empty() && from.back() == '\n') from.pop_back();
      KISTE_TRY(detail::write_cgroup_file(dir / file, from));
    }
    return {};
  }

  std::vector<Hierarchy> hierarchies_;
  std::string parent_;
  std::vector<std::pair<const Hierarchy*, fs::path>> created_;
};

}  // namespace

Result<std::unique_ptr<CgroupDriver>> make_cgroup_v1_driver(const fs::path& mountinfo,
                                                            const fs::path& self_cgroup,
                                                            std::string parent) {
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
    if (fstype == "cgroup2") {
      // Hybrid: the container gets a cgroup here too, so that this hierarchy's root is not its
      // cgroup namespace's root either.
      bool dup = false;
      for (const Hierarchy& x : hs) dup = dup || x.unified;
      if (dup) continue;
      Hierarchy h{.mount_point = mp, .mount_root = root, .name = fs::path(mp).filename().native()};
      h.unified = true;
      hs.push_back(std::move(h));
      continue;
    }
    if (fstype != "cgroup") continue;
    Hierarchy h;
    for (std::string_view o : split(superopts, ',')) {
      if (o == "noprefix") h.noprefix = true;
      if (is_controller_option(o)) h.controllers.emplace_back(o);
    }
    if (h.controllers.empty()) continue;
    // Skip a second mount of the same hierarchy.
    bool dup = false;
    for (const Hierarchy& x : hs) dup = dup || (!x.unified && x.controllers == h.controllers);
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
    if (parts.size() < 3) continue;
    std::string path = line.substr(parts[0].size() + parts[1].size() + 2);
    if (parts[0] == "0" && parts[1].empty()) {
      for (Hierarchy& h : hs) {
        if (h.unified) h.self = path;
      }
      continue;
    }
    if (parts[1].empty()) continue;
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
  bool any_v1 = false;
  for (const Hierarchy& h : hs) any_v1 = any_v1 || !h.unified;
  if (!any_v1) return fail(Errc::Unsupported, "cgroup v1: no hierarchies are mounted");
  return std::unique_ptr<CgroupDriver>(new CgroupV1Driver(std::move(hs), std::move(parent)));
}

}  // namespace kiste::runtime
