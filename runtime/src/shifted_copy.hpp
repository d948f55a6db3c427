#pragma once
// A copy of an unpacked layer with every owner moved through an id map: how a rootless
// --userns=keep-id container sees the image with its real owners (see UsernsMode::KeepId). An
// ordinary user has no idmapped mount to do it with: overlayfs takes none and the layers'
// filesystem belongs to the host's root.
#include <filesystem>
#include <vector>

#include <kiste/base/error.hpp>
#include <kiste/runtime/spec.hpp>

namespace kiste::runtime::detail {

// Copies the tree `src` to `dst` (which must not exist) keeping types, modes, times, hard links
// within the tree, overlay whiteouts (0/0 character devices) and xattrs; a file owned by id x
// (in this process's namespace) is owned by map_to_host(map, x) in the copy (x itself where the
// map has none). Nothing is followed: symlinks are copied as links, every open is O_NOFOLLOW.
// Other device nodes and sockets are refused (a rootless unpack makes none).
[[nodiscard]] Status copy_tree_shifted(const std::filesystem::path& src,
                                       const std::filesystem::path& dst,
                                       const std::vector<IdMapping>& uid_map,
                                       const std::vector<IdMapping>& gid_map);

}  // namespace kiste::runtime::detail
