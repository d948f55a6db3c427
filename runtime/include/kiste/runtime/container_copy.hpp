#pragma once
// kiste cp: files and directories between the host and a container's root, with docker's rules
// for what lands where. A path inside the container is resolved against a dirfd of the
// container's root with sys::open_in_root (openat2 RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS, or its
// checked fallback): a symlink or ".." resolves as the container would see it and never leaves
// the root, so an image's `/etc -> /` cannot make cp read or write the host's /etc. Below that
// start every step is relative to a directory fd and never follows a symlink (O_NOFOLLOW,
// AT_SYMLINK_NOFOLLOW): symlinks are copied as symlinks, as docker does, and a directory swapped
// for a symlink while the copy runs (CVE-2018-15664) is an error, not a way out.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include <kiste/base/error.hpp>

namespace kiste::runtime {

// One end of a copy: a path in the container whose root is the dirfd `root_fd` (borrowed), or,
// with root_fd -1, a path of the caller's own (the host's).
struct CopyEnd {
  int root_fd = -1;
  std::string path;
};

struct CopyStats {
  uint64_t files = 0;
  uint64_t dirs = 0;
  uint64_t links = 0;  // symlinks
  uint64_t bytes = 0;
};

// docker cp SRC DEST:
// - SRC a file (or symlink, copied as the link): DEST an existing directory -> DEST/NAME;
//   otherwise DEST names the file (replaced if it exists; its parent must exist). A DEST that
//   ends in '/' must be an existing directory.
// - SRC a directory: DEST an existing directory -> DEST/NAME, or only SRC's contents when SRC ends
//   in "/."; DEST missing -> made, with SRC's contents (its parent must exist); DEST a file ->
//   error.
// Files get SRC's mode and mtime and belong to the caller (docker's default, without -a).
// Sockets are skipped; FIFOs and device nodes are made anew.
[[nodiscard]] Result<CopyStats> copy_path(const CopyEnd& src, const CopyEnd& dest);

// `cp - CONTAINER:DIR`: the uncompressed tar stream on `tar_fd` (docker's format for `-`) is
// unpacked into the existing directory `dir` of the container by the layer unpacker
// (image/layer_extract.hpp): entries are cleaned as if `dir` were "/", parents are opened inside
// it and leaves never follow a symlink, so no entry lands outside `dir`. (Names starting `.wh.`
// are whiteouts to that unpacker, as in a layer.)
[[nodiscard]] Status extract_tar_into(int root_fd, const std::string& dir, int tar_fd);

// Runs `fn` in a child process with a dirfd of a stopped container's root: the overlay of
// `lower_dirs` (bottom first) and `container_dir`/upper, mounted in the child's own mount
// namespace, so it goes with the child (a SIGKILLed cp leaves no mount). The child's error comes
// back as this call's error. The overlay refuses an upper dir that a running start of the same
// container uses (EBUSY), so the two never share it.
[[nodiscard]] Status with_stopped_root(const std::filesystem::path& container_dir,
                                       const std::vector<std::filesystem::path>& lower_dirs,
                                       const std::function<Status(int root_fd)>& fn);

}  // namespace kiste::runtime
