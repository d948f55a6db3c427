#include "upper_cleanup.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <optional>

#include <kiste/base/split.hpp>
#include <kiste/base/sys.hpp>
#include <kiste/base/unique_fd.hpp>

namespace kiste::runtime::detail {

namespace fs = std::filesystem;

namespace {

std::vector<std::string> components(std::string_view p) {
  std::vector<std::string> out;
  for (std::string_view c : split(p, '/')) {
    if (!c.empty() && c != ".") out.emplace_back(c);
  }
  return out;
}

std::string join(const std::vector<std::string>& comps, size_t n) {
  std::string out;
  for (size_t i = 0; i < n; ++i) {
    if (i) out += '/';
    out += comps[i];
  }
  return out;
}

std::optional<struct stat> lower_stat(const std::vector<fs::path>& lowers, const std::string& rel) {
  std::optional<struct stat> found;
  for (const auto& l : lowers) {
    auto lfd = sys::open(l, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (!lfd) continue;
    auto f = sys::open_in_root(lfd->get(), rel, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    if (!f) continue;
    if (auto st = sys::fstat(f->get(), rel)) found = *st;
  }
  return found;
}

Result<UniqueFd> open_parent(int upper_fd, const std::string& parent_rel) {
  return parent_rel.empty()
             ? sys::openat(upper_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
             : sys::open_in_root(upper_fd, parent_rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

// Removes the stubs of one mount point, deepest first; stops at the first that stays.
void remove_mount_point(int upper_fd, const std::vector<fs::path>& lowers, std::string_view target) {
  const auto comps = components(target);
  for (size_t n = comps.size(); n > 0; --n) {
    const std::string rel = join(comps, n), parent_rel = join(comps, n - 1);
    const char* name = comps[n - 1].c_str();
    if (auto lower_st = lower_stat(lowers, rel)) {
      // A directory the runtime only copied up to create the mount point below it.
      auto dfd = sys::open_in_root(upper_fd, rel, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (!dfd || !S_ISDIR(lower_st->st_mode)) return;
      auto ust = sys::fstat(dfd->get(), rel);
      char v[4];
      const bool opaque = ::fgetxattr(dfd->get(), "trusted.overlay.opaque", v, sizeof v) > 0 ||
                          ::fgetxattr(dfd->get(), "user.overlay.opaque", v, sizeof v) > 0;
      if (!ust || opaque || ust->st_mode != lower_st->st_mode ||
          ust->st_uid != lower_st->st_uid || ust->st_gid != lower_st->st_gid) {
        return;
      }
      auto pfd = open_parent(upper_fd, parent_rel);
      if (!pfd || ::unlinkat(pfd->get(), name, AT_REMOVEDIR) != 0) return;
      continue;
    }
    auto pfd = open_parent(upper_fd, parent_rel);
    if (!pfd) continue;
    struct stat st {};
    if (::fstatat(pfd->get(), name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    if (S_ISDIR(st.st_mode)) {
      if (::unlinkat(pfd->get(), name, AT_REMOVEDIR) != 0) return;  // not empty: keep
    } else if (S_ISREG(st.st_mode) && st.st_size == 0) {
      if (::unlinkat(pfd->get(), name, 0) != 0) return;
    } else {
      return;
    }
  }
}

}  // namespace

UpperLeftovers upper_leftovers(const MountPlan& plan) {
  UpperLeftovers out;
  for (const MountOp& op : plan.ops) {
    if (op.create != CreateKind::None && !op.target.empty()) out.mount_points.push_back(op.target);
    if (op.kind == MountOpKind::RuntimeFile) out.runtime_files.push_back(op.target);
  }
  if (plan.runtime_layer) {
    for (const auto& [name, data] : plan.runtime_layer->files) {
      out.runtime_files.push_back("/etc/" + name);
    }
  }
  return out;
}

Status clean_upper(const fs::path& upper, const std::vector<fs::path>& lowers,
                   const UpperLeftovers& leftovers) {
  KISTE_ASSIGN_OR_RETURN(UniqueFd upper_fd, sys::open(upper, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  for (const std::string& f : leftovers.runtime_files) {
    const auto comps = components(f);
    if (comps.empty()) continue;
    // O_NOFOLLOW inside the root: an /etc the command turned into a symlink is not followed.
    auto pfd = open_parent(upper_fd.get(), join(comps, comps.size() - 1));
    if (pfd) (void)::unlinkat(pfd->get(), comps.back().c_str(), 0);
  }
  // The runtime files' directory (/etc) goes too when it was only copied up for them.
  for (const std::string& f : leftovers.runtime_files) remove_mount_point(upper_fd.get(), lowers, f);
  for (const std::string& t : leftovers.mount_points) remove_mount_point(upper_fd.get(), lowers, t);
  return {};
}

}  // namespace kiste::runtime::detail
