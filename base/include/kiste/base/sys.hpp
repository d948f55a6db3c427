#pragma once
// Thin syscall wrappers: one function per call, typed arguments, a Result whose error names the
// call and the object. No policy here; callers decide.

#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include <kiste/base/error.hpp>
#include <kiste/base/unique_fd.hpp>

namespace kiste::sys {

// ---- files -----------------------------------------------------------------------------------
[[nodiscard]] Result<UniqueFd> open(const std::filesystem::path& path, int flags, mode_t mode = 0);
[[nodiscard]] Result<UniqueFd> openat(int dirfd, const std::filesystem::path& path, int flags,
                                      mode_t mode = 0);
// Opens `path` as if `dirfd` were "/": symlinks and ".." never leave it, magic links are refused.
// Uses openat2(RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS) and, where the kernel lacks it (ENOSYS),
// a component walk that resolves symlinks in userspace and opens each step O_NOFOLLOW.
[[nodiscard]] Result<UniqueFd> open_in_root(int dirfd, std::string_view path, int flags,
                                            mode_t mode = 0);
// Opens a regular file of an untrusted tree (an image, a build context) for reading: inside the
// root, O_NONBLOCK so a FIFO cannot hang the open, and anything but a regular file (FIFO, device
// node, socket, directory) refused (Errc::InvalidArgument) before a byte is read. A symlink as the
// last component is refused too, unless `last` says to resolve it (inside the root, as the
// container would see it: an image's /etc/passwd may be one). The fd returned reads blocking.
enum class LastLink { Refuse, FollowInRoot };
[[nodiscard]] Result<UniqueFd> open_regular_in_root(int dirfd, std::string_view path,
                                                    LastLink last = LastLink::Refuse);
// The same for one path the user named (a Containerfile given with -f): symlinks are followed.
[[nodiscard]] Result<UniqueFd> open_regular(const std::filesystem::path& path);
// Test hook: force the userspace fallback of open_in_root (as if openat2 returned ENOSYS).
void set_openat2_disabled(bool disabled);

[[nodiscard]] Result<struct stat> fstat(int fd, std::string_view what = {});
[[nodiscard]] Result<struct stat> fstatat(int dirfd, const std::filesystem::path& path, int flags);
[[nodiscard]] Result<struct stat> lstat(const std::filesystem::path& path);
[[nodiscard]] Result<struct statfs> statfs(const std::filesystem::path& path);
[[nodiscard]] Result<struct statfs> fstatfs(int fd, std::string_view what = {});
[[nodiscard]] Status mkdir(const std::filesystem::path& path, mode_t mode);
// mkdir -p: every missing component is made with `mode` (less the umask); existing directories
// are left as they are.
[[nodiscard]] Status mkdir_all(const std::filesystem::path& path, mode_t mode = 0755);
// Makes `path` with `mode`, or takes away from an existing directory every permission bit that
// `mode` lacks (an older, wider store directory is narrowed). A symlink at `path` is an error.
[[nodiscard]] Status restrict_dir(const std::filesystem::path& path, mode_t mode);
[[nodiscard]] Status mkdirat(int dirfd, const std::filesystem::path& path, mode_t mode);
[[nodiscard]] Status rename(const std::filesystem::path& from, const std::filesystem::path& to);
[[nodiscard]] Status renameat(int olddirfd, const std::filesystem::path& from, int newdirfd,
                              const std::filesystem::path& to, unsigned flags = 0);
[[nodiscard]] Status unlink(const std::filesystem::path& path);
[[nodiscard]] Status unlinkat(int dirfd, const std::filesystem::path& path, int flags);
[[nodiscard]] Status fsync(int fd, std::string_view what = {});
[[nodiscard]] Status fsync_dir(const std::filesystem::path& dir);
[[nodiscard]] Status ftruncate(int fd, off_t size, std::string_view what = {});
[[nodiscard]] Result<std::string> readlinkat(int dirfd, const std::filesystem::path& path);
// Path of an open fd as the kernel sees it (readlink /proc/self/fd/N).
[[nodiscard]] Result<std::string> fd_path(int fd);

// Names in the directory `dirfd` (without "." and ".."), unsorted. `what` names it in errors.
[[nodiscard]] Result<std::vector<std::string>> list_dir(int dirfd, std::string_view what);

// Writes everything, retrying short writes and EINTR.
[[nodiscard]] Status write_all(int fd, std::string_view data, std::string_view what = {});
// Reads up to `max_bytes` (error if the file is larger).
[[nodiscard]] Result<std::string> read_all(int fd, std::string_view what = {},
                                           size_t max_bytes = SIZE_MAX);
// Reads some bytes; 0 at EOF.
[[nodiscard]] Result<size_t> read_some(int fd, void* buf, size_t len, std::string_view what = {});
[[nodiscard]] Result<std::string> read_file(const std::filesystem::path& path,
                                            size_t max_bytes = SIZE_MAX);
// Writes `data` to a temp file beside `path`, fsyncs, renames over `path`, fsyncs the directory.
// Sync::No skips both fsyncs (~5 ms each on a discard-mounted ext4): for state that a power
// loss makes stale anyway (a lease or a record whose owner process is gone after a reboot);
// readers still see the old or the new content, never a mix.
enum class Sync { Yes, No };
[[nodiscard]] Status write_file_atomic(const std::filesystem::path& path, std::string_view data,
                                       mode_t mode = 0644, Sync sync = Sync::Yes);
// Removes a tree without following symlinks and without crossing into another filesystem
// (a mount point below `path` is an error, never emptied). Missing `path` is fine.
[[nodiscard]] Status remove_tree(const std::filesystem::path& path);
[[nodiscard]] Status remove_tree_at(int dirfd, std::string_view name);

// ---- mounts and processes (runtime) --------------------------------------------------------
[[nodiscard]] Status mount(const char* source, const std::filesystem::path& target,
                           const char* fstype, unsigned long flags, const char* data);
[[nodiscard]] Status umount2(const std::filesystem::path& target, int flags);
[[nodiscard]] Status pivot_root(const std::filesystem::path& new_root,
                                const std::filesystem::path& put_old);
// Whether process `pid` lives: it exists (or exists and is not ours to signal) and is not a
// zombie. An orphan's zombie stays until PID 1 reaps it, which a minimal init may do late.
[[nodiscard]] bool process_alive(pid_t pid);
// The first executable `dir/name` for the absolute directories of `path_list` (a $PATH value),
// in order; empty when there is none. Relative entries are skipped: a helper kiste runs as root
// is never found through the working directory.
[[nodiscard]] std::string find_on_path(std::string_view name, std::string_view path_list);

// ---- misc ------------------------------------------------------------------------------------
// Random hex string of `bytes` random bytes (getrandom).
[[nodiscard]] std::string random_hex(size_t bytes);

}  // namespace kiste::sys
