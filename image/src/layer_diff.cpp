#include <kiste/image/layer_diff.hpp>

#include <fcntl.h>
#include <sys/xattr.h>

#include <cerrno>
#include <optional>

#include <kiste/base/sys.hpp>

#include "tar_stream.hpp"

namespace kiste::image {

namespace {

// Reads an xattr of `name` in `dirfd` without following a final symlink; nullopt when absent.
std::optional<std::string> get_xattr(int dirfd, const std::string& name, const char* key) {
  std::string p = "/proc/self/fd/" + std::to_string(dirfd) + (name.empty() ? "" : "/" + name);
  char buf[4096];
  ssize_t n = name.empty() ? ::getxattr(p.c_str(), key, buf, sizeof buf)
                           : ::lgetxattr(p.c_str(), key, buf, sizeof buf);
  if (n < 0) return std::nullopt;
  return std::string(buf, static_cast<size_t>(n));
}

std::optional<std::string> overlay_xattr(int dirfd, const std::string& name, std::string_view what) {
  std::string t = "trusted.overlay." + std::string(what);
  if (auto v = get_xattr(dirfd, name, t.c_str())) return v;
  std::string u = "user.overlay." + std::string(what);
  return get_xattr(dirfd, name, u.c_str());
}

std::string whiteout_path(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".wh." + path;
  return path.substr(0, slash + 1) + ".wh." + path.substr(slash + 1);
}

}  // namespace

Result<LayerResult> diff_overlay_upper(const std::filesystem::path& upper_dir, ByteSink& out,
                                       const DiffOptions& options) {
  auto context = fmt::format("diff overlay upper {}", quote(upper_dir.native()));
  KISTE_ASSIGN_OR_RETURN(UniqueFd root, sys::open(upper_dir, O_RDONLY | O_DIRECTORY));
  std::vector<UniqueFd> lowers;
  for (const auto& l : options.lowerdirs) {
    KISTE_ASSIGN_OR_RETURN(UniqueFd fd, sys::open(l, O_PATH | O_DIRECTORY));
    lowers.push_back(std::move(fd));
  }
  KISTE_ASSIGN_OR_RETURN(auto tar, detail::TarStream::open(out, options.pack));

  detail::WalkHooks hooks;
  hooks.special = [&](detail::TarStream& t, int dirfd, const std::string& name,
                      const std::string& path, const struct stat& st) -> Result<bool> {
    if (S_ISCHR(st.st_mode) && st.st_rdev == 0) {  // overlay whiteout
      KISTE_TRY(t.add_marker(whiteout_path(path), st.st_mtim.tv_sec));
      return true;
    }
    if (S_ISDIR(st.st_mode) && overlay_xattr(dirfd, name, "redirect")) {
      return failf(Errc::Unsupported, "directory {} was renamed (redirect_dir); not supported",
                   quote(path));
    }
    if (S_ISREG(st.st_mode) && overlay_xattr(dirfd, name, "metacopy")) {
      // Metadata-only copy-up: the data is still in a lower layer.
      std::string src = path;
      if (auto redirect = overlay_xattr(dirfd, name, "redirect"); redirect && !redirect->empty()) {
        src = redirect->front() == '/' ? redirect->substr(1) : redirect->c_str();
      }
      for (const auto& lower : lowers) {
        auto fd = sys::open_regular_in_root(lower.get(), src);
        if (!fd) {
          if (fd.error().sys_errno == ENOENT) continue;
          return std::unexpected(std::move(fd).error());
        }
        KISTE_TRY(t.add(dirfd, name, path, st, fd->get()));
        return true;
      }
      return failf(Errc::NotFound, "metacopy file {}: data not found in the lower layers",
                   quote(path));
    }
    return false;
  };
  hooks.after_dir = [&](detail::TarStream& t, int dirfd, const std::string& path,
                        const struct stat& st) -> Status {
    if (auto v = overlay_xattr(dirfd, "", "opaque"); v && *v == "y") {
      return t.add_marker(path + "/.wh..wh..opq", st.st_mtim.tv_sec);
    }
    return {};
  };
  auto r = detail::walk_tree(root.get(), *tar, hooks);
  if (!r) return std::unexpected(std::move(r).error().with_context(context));
  return with_context(tar->finish(), context);
}

}  // namespace kiste::image
