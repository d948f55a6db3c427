#include <kiste/runtime/volume.hpp>

#include <fcntl.h>

#include <algorithm>

#include <kiste/base/sys.hpp>

namespace kiste::runtime {

namespace fs = std::filesystem;

Status validate_volume_name(std::string_view name) {
  auto alnum = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
  };
  bool ok = !name.empty() && name.size() <= 255 && alnum(name.front()) &&
            std::all_of(name.begin(), name.end(),
                        [&](char c) { return alnum(c) || c == '_' || c == '.' || c == '-'; });
  if (!ok) {
    return failf(Errc::InvalidArgument,
                 "volume name {}: must match [a-zA-Z0-9][a-zA-Z0-9_.-]* (or give an absolute host path)",
                 quote(name));
  }
  return {};
}

Result<fs::path> ensure_volume(const fs::path& volumes_dir, std::string_view name) {
  KISTE_TRY(validate_volume_name(name));
  if (volumes_dir.empty()) return failf(Errc::InvalidArgument, "volume {}: no volume directory", quote(name));
  fs::path data = volumes_dir / std::string(name) / "_data";
  // volumes/ and volumes/NAME are private (a container may plant setuid files in _data); _data
  // itself is the mount point the container sees.
  KISTE_TRY(sys::mkdir_all(data.parent_path(), 0700));
  KISTE_TRY(sys::mkdir_all(data, 0755));
  return data;
}

Result<std::vector<std::string>> list_volumes(const fs::path& volumes_dir) {
  auto dfd = sys::open(volumes_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (!dfd) {
    if (dfd.error().sys_errno == ENOENT) return std::vector<std::string>{};
    return std::unexpected(std::move(dfd).error());
  }
  KISTE_ASSIGN_OR_RETURN(auto names, sys::list_dir(dfd->get(), volumes_dir.native()));
  std::erase_if(names, [](const std::string& n) { return !validate_volume_name(n); });
  std::sort(names.begin(), names.end());
  return names;
}

Status remove_volume(const fs::path& volumes_dir, std::string_view name) {
  KISTE_TRY(validate_volume_name(name));
  fs::path dir = volumes_dir / std::string(name);
  KISTE_ASSIGN_OR_RETURN(struct stat st, with_context(sys::lstat(dir), fmt::format("volume {}", quote(name))));
  if (!S_ISDIR(st.st_mode)) return failf(Errc::Corrupt, "volume {}: not a directory", quote(name));
  return sys::remove_tree(dir);
}

}  // namespace kiste::runtime
