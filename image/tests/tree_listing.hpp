#pragma once
// Test-only: a canonical listing of a directory tree (type, mode, owner, size, content hash,
// symlink target, rdev, overlay xattrs), for comparing trees and for "nothing changed" checks.

#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include <fmt/format.h>

#include <kiste/base/sys.hpp>
#include <kiste/image/digest.hpp>

namespace kiste::image::testing {

struct ListingOptions {
  bool mtimes = false;
  bool owners = true;
};

inline std::string list_tree(const std::filesystem::path& root, ListingOptions o = {}) {
  namespace fs = std::filesystem;
  std::vector<std::string> lines;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(root, fs::directory_options::none, ec);
       it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) break;
    const fs::path& p = it->path();
    struct stat st {};
    if (::lstat(p.c_str(), &st) != 0) continue;
    std::string rel = fs::relative(p, root).native();
    std::string extra;
    if (S_ISREG(st.st_mode)) {
      auto data = sys::read_file(p);
      extra = data ? Digest::of(*data).str().substr(7, 16) : "unreadable";
    } else if (S_ISLNK(st.st_mode)) {
      extra = "-> " + fs::read_symlink(p, ec).native();
    } else if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
      extra = fmt::format("dev {}:{}", major(st.st_rdev), minor(st.st_rdev));
    }
    char buf[8];
    if (S_ISDIR(st.st_mode) && ::lgetxattr(p.c_str(), "trusted.overlay.opaque", buf, sizeof buf) > 0) {
      extra += " opaque";
    }
    std::string line = fmt::format("{} {:06o} {} {}", rel, st.st_mode, S_ISDIR(st.st_mode) ? 0 : st.st_size, extra);
    if (o.owners) line += fmt::format(" {}:{}", st.st_uid, st.st_gid);
    if (o.mtimes && !S_ISLNK(st.st_mode) && !S_ISDIR(st.st_mode)) line += fmt::format(" t={}", st.st_mtim.tv_sec);
    lines.push_back(std::move(line));
  }
  std::sort(lines.begin(), lines.end());
  std::string out;
  for (auto& l : lines) out += l + "\n";
  return out;
}

}  // namespace kiste::image::testing
