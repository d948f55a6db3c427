#include "copy_files.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>

#include <kiste/base/interrupt.hpp>
#include <kiste/base/sys.hpp>
#include <kiste/base/unique_fd.hpp>
#include <kiste/runtime/passwd.hpp>

namespace kiste::builder {
namespace {

std::vector<std::string> components(std::string_view p) {
  std::vector<std::string> out;
  std::string c = clean_rel(p);
  size_t i = 0;
  while (i < c.size()) {
    size_t j = c.find('/', i);
    if (j == std::string::npos) j = c.size();
    out.push_back(c.substr(i, j - i));
    i = j + 1;
  }
  return out;
}

// Opens (creating with 0755, owner 0:0) each directory of `comps` below `rootfd`.
Result<UniqueFd> ensure_dirs(int rootfd, const std::vector<std::string>& comps, size_t n) {
  KISTE_ASSIGN_OR_RETURN(UniqueFd cur, sys::openat(rootfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  for (size_t i = 0; i < n; ++i) {
    int fd = ::openat(cur.get(), comps[i].c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) {
      if (::mkdirat(cur.get(), comps[i].c_str(), 0755) != 0 && errno != EEXIST) {
        return std::unexpected(sys_error("mkdirat", comps[i]));
      }
      fd = ::openat(cur.get(), comps[i].c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    }
    if (fd < 0) return std::unexpected(sys_error("open directory", comps[i]));
    cur = UniqueFd(fd);
  }
  return cur;
}

Status copy_content(int src_fd, int dst_fd, const std::string& what) {
  char buf[1 << 16];
  for (;;) {
    ssize_t n = ::read(src_fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return std::unexpected(sys_error("read", what));
    }
    if (n == 0) return {};
    KISTE_TRY(sys::write_all(dst_fd, std::string_view(buf, static_cast<size_t>(n)), what));
  }
}

Status place(int layer_fd, const std::string& dest, ContextEntry::Type type, uint32_t mode,
             uint32_t uid, uint32_t gid, int src_root_fd, const std::string& src_path,
             const std::string& link_target, const std::string* content) {
  auto comps = components(dest);
  if (comps.empty()) {
    // The root itself: only a directory can land there; nothing to record.
    if (type == ContextEntry::Type::Dir) return {};
    return failf(Errc::InvalidArgument, "cannot copy a file onto `/`");
  }
  KISTE_ASSIGN_OR_RETURN(UniqueFd parent, ensure_dirs(layer_fd, comps, comps.size() - 1));
  const std::string& name = comps.back();
  switch (type) {
    case ContextEntry::Type::Dir: {
      if (::mkdirat(parent.get(), name.c_str(), 0755) != 0 && errno != EEXIST) {
        return std::unexpected(sys_error("mkdirat", dest));
      }
      KISTE_ASSIGN_OR_RETURN(UniqueFd d, sys::openat(parent.get(), name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (::fchmod(d.get(), mode) != 0) return std::unexpected(sys_error("fchmod", dest));
      if (::fchown(d.get(), uid, gid) != 0) return std::unexpected(sys_error("fchown", dest));
      return {};
    }
    case ContextEntry::Type::Symlink: {
      (void)::unlinkat(parent.get(), name.c_str(), 0);
      if (::symlinkat(link_target.c_str(), parent.get(), name.c_str()) != 0) {
        return std::unexpected(sys_error("symlinkat", dest));
      }
      if (::fchownat(parent.get(), name.c_str(), uid, gid, AT_SYMLINK_NOFOLLOW) != 0) {
        return std::unexpected(sys_error("lchown", dest));
      }
      return {};
    }
    case ContextEntry::Type::File: {
      // Replace whatever an earlier source put here (never write through a symlink).
      struct stat st {};
      if (::fstatat(parent.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISDIR(st.st_mode)) {
        (void)::unlinkat(parent.get(), name.c_str(), 0);
      }
      int fd = ::openat(parent.get(), name.c_str(),
                        O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
      if (fd < 0) return std::unexpected(sys_error("create", dest));
      UniqueFd out(fd);
      if (content != nullptr) {
        KISTE_TRY(sys::write_all(out.get(), *content, dest));
      } else {
        KISTE_ASSIGN_OR_RETURN(UniqueFd in, sys::open_regular_in_root(src_root_fd, src_path));
        KISTE_TRY(copy_content(in.get(), out.get(), src_path));
      }
      if (::fchown(out.get(), uid, gid) != 0) return std::unexpected(sys_error("fchown", dest));
      if (::fchmod(out.get(), mode) != 0) return std::unexpected(sys_error("fchmod", dest));
      return {};
    }
  }
  return {};
}

}  // namespace

namespace {

std::optional<uint32_t> parse_id(std::string_view s) {
  if (s.empty() || s.size() > 10) return std::nullopt;
  uint64_t n = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + static_cast<uint64_t>(c - '0');
  }
  if (n > 0xfffffffeu) return std::nullopt;
  return static_cast<uint32_t>(n);
}

Result<std::string> read_in(const std::filesystem::path& rootfs, std::string_view rel) {
  KISTE_ASSIGN_OR_RETURN(UniqueFd root, sys::open(rootfs, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  auto fd = sys::open_regular_in_root(root.get(), rel, sys::LastLink::FollowInRoot);
  if (!fd) {
    if (fd.error().sys_errno == ENOENT) return std::string();
    return std::unexpected(std::move(fd).error());
  }
  return sys::read_all(fd->get(), rel, 4 << 20);
}

}  // namespace

std::string url_file_name(std::string_view url) {
  size_t scheme = url.find("://");
  if (scheme != std::string_view::npos) url.remove_prefix(scheme + 3);
  url = url.substr(0, url.find_first_of("?#"));
  size_t slash = url.find('/');
  if (slash == std::string_view::npos) return "";  // host only
  url.remove_prefix(slash);
  size_t last = url.rfind('/');
  std::string name(url.substr(last + 1));
  if (name == "." || name == "..") return "";
  return name;
}

bool numeric_owner(std::string_view spec) {
  size_t c = spec.find(':');
  return parse_id(spec.substr(0, c)).has_value() &&
         (c == std::string_view::npos || parse_id(spec.substr(c + 1)).has_value());
}

Result<std::pair<uint32_t, uint32_t>> resolve_owner(const std::optional<std::filesystem::path>& rootfs,
                                                    std::string_view spec) {
  size_t c = spec.find(':');
  std::string_view user = spec.substr(0, c);
  std::optional<std::string_view> group;
  if (c != std::string_view::npos) group = spec.substr(c + 1);
  std::string passwd, groups;
  if (rootfs) {
    KISTE_ASSIGN_OR_RETURN(passwd, read_in(*rootfs, "etc/passwd"));
    KISTE_ASSIGN_OR_RETURN(groups, read_in(*rootfs, "etc/group"));
  }
  const auto users = runtime::parse_passwd(passwd);
  const auto grps = runtime::parse_group(groups);
  uint32_t uid = 0, gid = 0;
  if (auto n = parse_id(user)) {
    uid = *n;
    gid = *n;
  } else if (auto e = std::find_if(users.begin(), users.end(),
                                   [&](const runtime::PasswdEntry& p) { return p.name == user; });
             e != users.end()) {
    uid = e->uid;
    gid = e->gid;
  } else {
    return failf(Errc::NotFound, "--chown={}: no user {} in the image's /etc/passwd", spec, quote(user));
  }
  if (group) {
    if (auto n = parse_id(*group)) {
      gid = *n;
    } else if (auto e = std::find_if(grps.begin(), grps.end(),
                                     [&](const runtime::GroupEntry& gr) { return gr.name == *group; });
               e != grps.end()) {
      gid = e->gid;
    } else {
      return failf(Errc::NotFound, "--chown={}: no group {} in the image's /etc/group", spec, quote(*group));
    }
  }
  return std::pair{uid, gid};
}

Status CopyJob::apply(const std::filesystem::path& layer_dir) const {
  KISTE_ASSIGN_OR_RETURN(UniqueFd layer, sys::open(layer_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  for (const auto& item : items) {
    KISTE_ASSIGN_OR_RETURN(UniqueFd src, sys::open(item.src_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    std::string base = clean_rel(item.src_rel);
    for (const auto& e : item.entries) {
      KISTE_TRY(check_interrupted());
      std::string rel = e.path;
      if (!base.empty()) rel = rel.size() > base.size() ? rel.substr(base.size() + 1) : "";
      std::string dest = rel.empty() ? item.dest : item.dest + "/" + rel;
      uint32_t mode = chmod.value_or(e.mode);
      KISTE_TRY(with_context(place(layer.get(), dest, e.type, mode, uid, gid, src.get(), e.path,
                                   e.link_target, nullptr),
                             fmt::format("copy {}", quote(e.path))));
    }
    if (item.mtime) {
      KISTE_ASSIGN_OR_RETURN(UniqueFd f, sys::open_in_root(layer.get(), clean_rel(item.dest),
                                                           O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
      const struct timespec ts[2] = {{.tv_sec = *item.mtime, .tv_nsec = 0},
                                     {.tv_sec = *item.mtime, .tv_nsec = 0}};
      if (::futimens(f.get(), ts) != 0) return std::unexpected(sys_error("futimens", item.dest));
    }
  }
  for (const auto& h : heredocs) {
    KISTE_TRY(place(layer.get(), h.dest, ContextEntry::Type::File, chmod.value_or(0644), uid, gid,
                    -1, "", "", &h.content));
  }
  return {};
}

}  // namespace kiste::builder
