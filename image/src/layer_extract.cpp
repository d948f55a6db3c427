#include <kiste/image/layer_extract.hpp>

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include <kiste/base/interrupt.hpp>
#include <kiste/base/sys.hpp>
#include <kiste/base/user_namespace.hpp>
#include <kiste/image/compression.hpp>

#include "archive_ptr.hpp"

namespace kiste::image {

using detail::la;

namespace {

constexpr std::string_view kWhiteoutPrefix = ".wh.";
constexpr std::string_view kOpaqueMarker = ".wh..wh..opq";
constexpr size_t kReadBuf = 256 * 1024;

// ---- the tar byte source: decompressed stream, hashed as libarchive pulls it ------------------

// The last kRing chunks stay readable (no copies): libarchive hides what it parsed from PAX and
// GNU extension headers (it cuts values at NUL bytes), so the extractor re-reads those raw
// headers from here to refuse names with embedded NULs.
constexpr size_t kRing = 16;  // 16 x 256 KiB: extension headers up to ~3 MiB are checked

struct Source {
  BlobReader* reader = nullptr;
  Hasher hasher;
  std::vector<std::vector<char>> ring = std::vector<std::vector<char>>(kRing, std::vector<char>(kReadBuf));
  std::vector<uint64_t> ring_off = std::vector<uint64_t>(kRing, 0);
  std::vector<size_t> ring_len = std::vector<size_t>(kRing, 0);
  size_t next = 0;
  uint64_t pos = 0;  // stream offset of the next byte to read
  std::optional<Error> error;

  // Copies [off, off+len) of the uncompressed stream if still in the ring.
  bool copy_range(uint64_t off, size_t len, std::string& out) const {
    out.clear();
    while (out.size() < len) {
      uint64_t want = off + out.size();
      bool found = false;
      for (size_t i = 0; i < kRing; ++i) {
        if (ring_len[i] > 0 && want >= ring_off[i] && want < ring_off[i] + ring_len[i]) {
          size_t from = static_cast<size_t>(want - ring_off[i]);
          size_t n = std::min(len - out.size(), ring_len[i] - from);
          out.append(ring[i].data() + from, n);
          found = true;
          break;
        }
      }
      if (!found) return false;
    }
    return true;
  }
};

la_ssize_t source_read(archive* a, void* client, const void** out) {
  auto* s = static_cast<Source*>(client);
  std::vector<char>& buf = s->ring[s->next];
  auto r = s->reader->read(buf.data(), buf.size());
  if (!r) {
    s->error = r.error();
    la().archive_set_error(a, EIO, "%s", r.error().message.c_str());
    return -1;
  }
  s->hasher.update(buf.data(), *r);
  s->ring_off[s->next] = s->pos;
  s->ring_len[s->next] = *r;
  s->pos += *r;
  s->next = (s->next + 1) % kRing;
  *out = buf.data();
  return static_cast<la_ssize_t>(*r);
}

uint64_t tar_number(std::string_view f) {
  if (!f.empty() && (static_cast<unsigned char>(f[0]) & 0x80)) {  // base-256
    uint64_t v = static_cast<unsigned char>(f[0]) & 0x7f;
    for (size_t i = 1; i < f.size(); ++i) {
      if (v > (UINT64_MAX >> 8)) return UINT64_MAX;
      v = (v << 8) | static_cast<unsigned char>(f[i]);
    }
    return v;
  }
  uint64_t v = 0;
  for (char c : f) {
    if (c == ' ' && v == 0) continue;
    if (c < '0' || c > '7') break;
    v = v * 8 + static_cast<uint64_t>(c - '0');
  }
  return v;
}

// Checks the extension headers (PAX 'x'/'g', GNU 'L'/'K') that precede the entry whose headers
// start at `header_pos`: a name or link target must not contain NUL.
Status check_extension_headers(const Source& src, uint64_t header_pos, std::string_view shown) {
  constexpr uint64_t kMaxExt = 2 << 20;
  std::string block;
  std::string data;
  uint64_t off = header_pos;
  for (int n = 0; n < 64; ++n) {
    if (!src.copy_range(off, 512, block)) {
      return failf(Errc::Corrupt, "entry {}: tar extension headers too large", quote(shown));
    }
    char type = block[156];
    if (type != 'x' && type != 'g' && type != 'L' && type != 'K') return {};
    uint64_t size = tar_number(std::string_view(block).substr(124, 12));
    if (size > kMaxExt || !src.copy_range(off + 512, static_cast<size_t>(size), data)) {
      return failf(Errc::Corrupt, "entry {}: tar extension header too large", quote(shown));
    }
    if (type == 'L' || type == 'K') {
      std::string_view v(data);
      while (!v.empty() && v.back() == '\0') v.remove_suffix(1);
      if (v.find('\0') != std::string_view::npos) {
        return failf(Errc::Corrupt, "entry {}: name contains a NUL byte", quote(shown));
      }
    } else {
      // Records: "<len> <key>=<value>\n".
      std::string_view rest(data);
      while (!rest.empty()) {
        size_t sp = rest.find(' ');
        if (sp == std::string_view::npos) break;
        uint64_t len = 0;
        for (char c : rest.substr(0, sp)) {
          if (c < '0' || c > '9') break;
          len = len * 10 + static_cast<uint64_t>(c - '0');
        }
        if (len <= sp + 1 || len > rest.size()) break;
        std::string_view rec = rest.substr(sp + 1, len - sp - 1);
        size_t eq = rec.find('=');
        if (eq != std::string_view::npos) {
          std::string_view key = rec.substr(0, eq);
          std::string_view value = rec.substr(eq + 1);
          if (!value.empty() && value.back() == '\n') value.remove_suffix(1);
          if ((key == "path" || key == "linkpath" || key == "GNU.sparse.name") &&
              value.find('\0') != std::string_view::npos) {
            return failf(Errc::Corrupt, "entry {}: name contains a NUL byte", quote(shown));
          }
        }
        rest.remove_prefix(len);
      }
    }
    off += 512 + (size + 511) / 512 * 512;
  }
  return failf(Errc::Corrupt, "entry {}: too many tar extension headers", quote(shown));
}

// ---- names --------------------------------------------------------------------------------------

// Cleans a tar name as if the root were "/": drops "", "." and leading "/", resolves ".."
// lexically without ever going above the root. "" is the root itself.
std::string clean_path(std::string_view raw) {
  std::vector<std::string_view> parts;
  size_t i = 0;
  while (i <= raw.size()) {
    size_t j = raw.find('/', i);
    if (j == std::string_view::npos) j = raw.size();
    std::string_view c = raw.substr(i, j - i);
    if (c == "..") {
      if (!parts.empty()) parts.pop_back();
    } else if (!c.empty() && c != ".") {
      parts.push_back(c);
    }
    i = j + 1;
  }
  std::string out;
  for (auto c : parts) {
    if (!out.empty()) out += '/';
    out += c;
  }
  return out;
}

std::pair<std::string, std::string> split_parent(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return {"", path};
  return {path.substr(0, slash), path.substr(slash + 1)};
}

std::string join(const std::string& dir, std::string_view name) {
  return dir.empty() ? std::string(name) : dir + "/" + std::string(name);
}

// The overlay mounts of these snapshots are made in the same user namespace as this process:
// `userxattr` ones (user.overlay.*) outside the initial one (rootless kiste), else trusted.*.
const char* opaque_xattr() {
  return sys::in_initial_user_namespace() ? "trusted.overlay.opaque" : "user.overlay.opaque";
}

bool is_overlay_xattr(std::string_view name) {
  return name.starts_with("trusted.overlay.") || name.starts_with("user.overlay.");
}

// The process umask, read without changing it (umask(2) would race with other threads).
mode_t read_umask() {
  auto status = sys::read_file("/proc/self/status", 1 << 16);
  if (status) {
    size_t at = status->find("\nUmask:\t");
    if (at != std::string::npos) return static_cast<mode_t>(std::strtoul(status->c_str() + at + 8, nullptr, 8));
  }
  return 07777;  // unknown: always fchmod
}

// ---- the extractor --------------------------------------------------------------------------------

class Extractor {
 public:
  Extractor(int root, const ExtractOptions& o)
      : root_(root),
        opt_(o),
        allow_devices_(o.allow_devices.value_or(::geteuid() == 0)),
        same_owner_(o.same_owner.value_or(::geteuid() == 0)) {}

  Status entry(archive* a, archive_entry* e, ExtractStats& stats);
  Status finish();

 private:
  struct DeferredDir {
    std::string path;
    mode_t mode;
    struct timespec times[2];
  };

  Result<int> parent_fd(const std::string& parent, bool create);
  Status mkdir_all(const std::string& path, int depth);
  // Marks the cached parent stale; its fd stays open until the next parent_fd() call, so a
  // caller's borrowed fd remains usable for the rest of the current entry.
  void invalidate() { cached_valid_ = false; }
  Status remove_existing(int pfd, const std::string& name, const std::string& path);
  Status apply_whiteout(const std::string& parent, const std::string& name);
  Status apply_opaque(const std::string& dir);
  Status remove_lower_children(int dirfd, const std::string& dir);
  Status check_size(archive_entry* e, const std::string& path, const ExtractStats& stats) const;
  mode_t create_mode(archive_entry* e) const;
  Status write_file(archive* a, archive_entry* e, UniqueFd fd, mode_t created_mode,
                    const std::string& path, ExtractStats& stats);
  Status set_owner_at(int pfd, const std::string& name, archive_entry* e,
                      const std::string& path);
  Status set_xattrs(int fd, archive_entry* e, const std::string& path);

  int root_;
  const ExtractOptions& opt_;
  bool allow_devices_;
  bool same_owner_;
  std::unordered_set<std::string> seen_;       // paths this layer created or updated
  std::unordered_set<std::string> whiteouts_;  // overlay whiteouts this layer created
  std::vector<DeferredDir> dirs_;              // modes and times set last, deepest first
  std::string cached_path_;
  UniqueFd cached_fd_;
  bool cached_valid_ = false;
  bool cached_setgid_ = false;  // the cached parent has the setgid bit
  uid_t euid_ = ::geteuid();
  gid_t egid_ = ::getegid();
  mode_t umask_ = read_umask();
  std::string root_path_;  // the root as the kernel names it, for resolving dangling links
};

// Opens (O_PATH) the directory `parent` inside the root, creating missing components (0755) when
// `create`. The result is cached until anything is removed or a symlink is created.
Result<int> Extractor::parent_fd(const std::string& parent, bool create) {
  if (cached_valid_ && cached_path_ == parent) return cached_fd_.get();
  auto r = sys::open_in_root(root_, parent.empty() ? "." : parent, O_PATH | O_DIRECTORY);
  if (!r && create && r.error().sys_errno == ENOENT) {
    KISTE_TRY(mkdir_all(parent, 0));
    r = sys::open_in_root(root_, parent, O_PATH | O_DIRECTORY);
  }
  if (!r) return std::unexpected(std::move(r).error());
  cached_fd_ = std::move(*r);
  cached_path_ = parent;
  struct stat st {};
  cached_setgid_ = ::fstat(cached_fd_.get(), &st) != 0 || (st.st_mode & S_ISGID) != 0;
  cached_valid_ = true;
  return cached_fd_.get();
}

// mkdir -p inside the root. A dangling symlink on the way is followed the way the kernel would
// resolve it (inside the root), and its target directory is created, as containerd does.
Status Extractor::mkdir_all(const std::string& path, int depth) {
  if (depth > 16) return failf(Errc::Corrupt, "create {}: too many levels of symbolic links", quote(path));
  if (root_path_.empty()) {
    KISTE_ASSIGN_OR_RETURN(root_path_, sys::fd_path(root_));
  }
  KISTE_ASSIGN_OR_RETURN(UniqueFd cur, sys::open_in_root(root_, ".", O_PATH | O_DIRECTORY));
  std::string prefix;
  size_t i = 0;
  while (i < path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string::npos) j = path.size();
    std::string comp = path.substr(i, j - i);
    prefix = join(prefix, comp);
    i = j + 1;
    auto next = sys::open_in_root(root_, prefix, O_PATH | O_DIRECTORY);
    if (!next && next.error().sys_errno == ENOENT) {
      if (::mkdirat(cur.get(), comp.c_str(), 0755) == 0) {
        seen_.insert(prefix);
      } else if (errno == EEXIST) {
        struct stat st {};
        if (::fstatat(cur.get(), comp.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISLNK(st.st_mode)) {
          return failf(Errc::Corrupt, "create {}: exists and is not a directory", quote(prefix));
        }
        // Where does the dangling link point, inside the root?
        KISTE_ASSIGN_OR_RETURN(std::string target, sys::readlinkat(cur.get(), comp));
        KISTE_ASSIGN_OR_RETURN(std::string here, sys::fd_path(cur.get()));
        std::string base;
        if (here.size() > root_path_.size() && here.starts_with(root_path_ + "/")) {
          base = here.substr(root_path_.size() + 1);
        } else if (here != root_path_) {
          return failf(Errc::Corrupt, "create {}: resolved outside the root", quote(prefix));
        }
        std::string resolved = clean_path(target.starts_with('/') ? target : join(base, target));
        KISTE_TRY(mkdir_all(resolved, depth + 1));
      } else {
        return std::unexpected(sys_error("mkdir", prefix));
      }
      next = sys::open_in_root(root_, prefix, O_PATH | O_DIRECTORY);
    }
    if (!next) return std::unexpected(std::move(next).error());
    cur = std::move(*next);
  }
  return {};
}

Status Extractor::remove_existing(int pfd, const std::string& name, const std::string& path) {
  invalidate();
  auto r = sys::remove_tree_at(pfd, name);
  if (!r) return std::unexpected(std::move(r).error().with_context(fmt::format("replace {}", quote(path))));
  return {};
}

Status Extractor::remove_lower_children(int dirfd, const std::string& dir) {
  KISTE_ASSIGN_OR_RETURN(std::vector<std::string> names,
                         sys::list_dir(dirfd, dir.empty() ? "/" : dir));
  for (const auto& n : names) {
    std::string child = join(dir, n);
    if (seen_.contains(child)) {
      struct stat st {};
      if (::fstatat(dirfd, n.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode)) {
        int cfd = ::openat(dirfd, n.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (cfd < 0) return std::unexpected(sys_error("open", child));
        UniqueFd guard(cfd);
        KISTE_TRY(remove_lower_children(cfd, child));
      }
      continue;
    }
    KISTE_TRY(sys::remove_tree_at(dirfd, n));
  }
  return {};
}

Status Extractor::apply_opaque(const std::string& dir) {
  if (opt_.whiteouts == WhiteoutMode::Apply) {
    auto pfd = parent_fd(dir, false);
    if (!pfd) {
      int err = pfd.error().sys_errno;
      if (err == ENOENT || err == ENOTDIR) return {};  // nothing below to hide
      return std::unexpected(std::move(pfd).error());
    }
    UniqueFd keep(::dup(*pfd));
    if (!keep) return std::unexpected(sys_error("dup", dir));
    invalidate();  // nothing stays cached across removals
    return remove_lower_children(keep.get(), dir);
  }
  KISTE_ASSIGN_OR_RETURN(int pfd, parent_fd(dir, true));
  UniqueFd dfd(::openat(pfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dfd) return std::unexpected(sys_error("open", dir));
  if (::fsetxattr(dfd.get(), opaque_xattr(), "y", 1, 0) != 0) {
    return std::unexpected(sys_error("set opaque xattr on", dir.empty() ? "/" : dir));
  }
  return {};
}

Status Extractor::apply_whiteout(const std::string& parent, const std::string& name) {
  std::string target = join(parent, name);
  if (seen_.contains(target)) return {};  // a whiteout never hides its own layer's files
  if (opt_.whiteouts == WhiteoutMode::Apply) {
    auto pfd = parent_fd(parent, false);
    if (!pfd) {
      int err = pfd.error().sys_errno;
      if (err == ENOENT || err == ENOTDIR) return {};
      return std::unexpected(std::move(pfd).error());
    }
    return remove_existing(*pfd, name, target);
  }
  KISTE_ASSIGN_OR_RETURN(int pfd, parent_fd(parent, true));
  struct stat st {};
  if (::fstatat(pfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
    KISTE_TRY(remove_existing(pfd, name, target));
    KISTE_ASSIGN_OR_RETURN(pfd, parent_fd(parent, true));
  }
  if (::mknodat(pfd, name.c_str(), S_IFCHR | 0, makedev(0, 0)) != 0) {
    return std::unexpected(sys_error("create whiteout", target));
  }
  whiteouts_.insert(target);
  return {};
}

Status Extractor::set_owner_at(int pfd, const std::string& name, archive_entry* e,
                               const std::string& path) {
  if (!same_owner_) return {};
  la_int64_t uid = la().archive_entry_uid(e);
  la_int64_t gid = la().archive_entry_gid(e);
  if (uid < 0 || gid < 0 || uid >= UINT32_MAX || gid >= UINT32_MAX) {
    return failf(Errc::Corrupt, "entry {}: invalid owner {}:{}", quote(path), uid, gid);
  }
  if (::fchownat(pfd, name.c_str(), static_cast<uid_t>(uid), static_cast<gid_t>(gid),
                 AT_SYMLINK_NOFOLLOW | (name.empty() ? AT_EMPTY_PATH : 0)) != 0) {
    return std::unexpected(sys_error("chown", path));
  }
  return {};
}

Status Extractor::set_xattrs(int fd, archive_entry* e, const std::string& path) {
  if (la().archive_entry_xattr_reset(e) == 0) return {};
  const char* name = nullptr;
  const void* value = nullptr;
  size_t size = 0;
  while (la().archive_entry_xattr_next(e, &name, &value, &size) == ARCHIVE_OK) {
    if (name == nullptr || is_overlay_xattr(name)) continue;  // never let a layer forge overlay state
    if (::fsetxattr(fd, name, value, size, 0) != 0) {
      if (errno == ENOTSUP || errno == EPERM || errno == EACCES) continue;  // where possible
      return std::unexpected(sys_error(fmt::format("set xattr {} on", name), path));
    }
  }
  return {};
}

Status Extractor::check_size(archive_entry* e, const std::string& path,
                             const ExtractStats& stats) const {
  la_int64_t size = la().archive_entry_size(e);
  if (size < 0 || static_cast<uint64_t>(size) > opt_.limits.max_entry_size) {
    return failf(Errc::Corrupt, "entry {}: size {} exceeds the limit of {} bytes", quote(path),
                 size, opt_.limits.max_entry_size);
  }
  if (stats.bytes + static_cast<uint64_t>(size) > opt_.limits.max_total_bytes) {
    return failf(Errc::Corrupt, "entry {}: layer content exceeds the limit of {} bytes",
                 quote(path), opt_.limits.max_total_bytes);
  }
  return {};
}

// The mode to create a regular file with: its final mode when the umask keeps it intact (then
// no fchmod is needed), else 0600 until fchmod.
mode_t Extractor::create_mode(archive_entry* e) const {
  mode_t perm = la().archive_entry_perm(e) & 07777;
  if ((perm & 07000) == 0 && (perm & umask_) == 0) return perm;
  return 0600;
}

Status Extractor::write_file(archive* a, archive_entry* e, UniqueFd fd, mode_t created_mode,
                             const std::string& path, ExtractStats& stats) {
  la_int64_t size = la().archive_entry_size(e);
  la_int64_t end = 0;
  const void* buf = nullptr;
  size_t len = 0;
  la_int64_t offset = 0;
  for (;;) {
    KISTE_TRY(check_interrupted());
    int rc = la().archive_read_data_block(a, &buf, &len, &offset);
    if (rc == ARCHIVE_EOF) break;
    if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN) {
      return failf(Errc::Corrupt, "entry {}: {}", quote(path), la().archive_error_string(a));
    }
    if (offset < 0 || static_cast<uint64_t>(offset) + len > static_cast<uint64_t>(size)) {
      return failf(Errc::Corrupt, "entry {}: data beyond its declared size", quote(path));
    }
    const char* p = static_cast<const char*>(buf);
    while (len > 0) {
      ssize_t n = ::pwrite(fd.get(), p, len, offset);
      if (n < 0) {
        if (errno == EINTR) continue;
        return std::unexpected(sys_error("write", path));
      }
      p += n;
      len -= static_cast<size_t>(n);
      offset += n;
    }
    end = std::max(end, offset);
  }
  // Sparse entries end in a hole: the size comes from the header, not the last write.
  if (end != size) KISTE_TRY(sys::ftruncate(fd.get(), size, path));
  stats.bytes += static_cast<uint64_t>(size);
  if (same_owner_) {
    auto uid = static_cast<uid_t>(la().archive_entry_uid(e));
    auto gid = static_cast<gid_t>(la().archive_entry_gid(e));
    // A new file is ours already, unless a setgid parent gave it the parent's group.
    bool ours = uid == euid_ && gid == egid_ && !cached_setgid_;
    if (!ours && ::fchown(fd.get(), uid, gid) != 0) return std::unexpected(sys_error("chown", path));
  }
  mode_t perm = la().archive_entry_perm(e) & 07777;
  if (perm != created_mode) {  // special bits are always set here, after the chown
    if (::fchmod(fd.get(), perm) != 0) return std::unexpected(sys_error("chmod", path));
  }
  KISTE_TRY(set_xattrs(fd.get(), e, path));
  struct timespec ts[2];
  ts[1] = {la().archive_entry_mtime(e), la().archive_entry_mtime_nsec(e)};
  ts[0] = la().archive_entry_atime_is_set(e)
              ? timespec{la().archive_entry_atime(e), la().archive_entry_atime_nsec(e)}
              : ts[1];
  if (::futimens(fd.get(), ts) != 0) return std::unexpected(sys_error("set times of", path));
  return {};
}

Status Extractor::entry(archive* a, archive_entry* e, ExtractStats& stats) {
  const char* raw_c = la().archive_entry_pathname(e);
  if (raw_c == nullptr || *raw_c == '\0') return fail(Errc::Corrupt, "entry with an empty name");
  std::string_view raw = raw_c;
  std::string path = clean_path(raw);
  if (path.size() > opt_.limits.max_path_length) {
    return failf(Errc::Corrupt, "entry {}…: name longer than {} bytes", quote(raw.substr(0, 64)),
                 opt_.limits.max_path_length);
  }
  auto [parent, name] = split_parent(path);
  // A whiteout name must never be used as a directory (`.wh.etc/somefile`).
  for (size_t i = 0; i < parent.size();) {
    size_t j = parent.find('/', i);
    if (j == std::string::npos) j = parent.size();
    if (std::string_view(parent).substr(i, j - i).starts_with(kWhiteoutPrefix)) {
      return failf(Errc::Corrupt, "entry {}: whiteout used as a directory", quote(raw));
    }
    i = j + 1;
  }

  const char* hardlink = la().archive_entry_hardlink(e);
  mode_t type = la().archive_entry_filetype(e);

  // Whiteouts.
  if (std::string_view(name).starts_with(kWhiteoutPrefix)) {
    ++stats.whiteouts;
    if (name == kOpaqueMarker) return apply_opaque(parent);
    std::string victim = name.substr(kWhiteoutPrefix.size());
    if (victim.empty() || victim == "." || victim == "..") {
      return failf(Errc::Corrupt, "entry {}: invalid whiteout", quote(raw));
    }
    if (victim.starts_with(kWhiteoutPrefix)) {
      return failf(Errc::Corrupt, "entry {}: whiteout of a whiteout", quote(raw));
    }
    return apply_whiteout(parent, victim);
  }

  if (path.empty()) {
    // The root itself ("./"): only a directory may describe it; attributes apply to the root.
    if (hardlink != nullptr || type != AE_IFDIR) {
      return failf(Errc::Corrupt, "entry {}: cannot replace the root directory", quote(raw));
    }
    if (same_owner_) {
      KISTE_TRY(set_owner_at(root_, "", e, "/"));
    }
    dirs_.push_back({"", static_cast<mode_t>(la().archive_entry_perm(e) & 07777),
                     {{la().archive_entry_mtime(e), la().archive_entry_mtime_nsec(e)},
                      {la().archive_entry_mtime(e), la().archive_entry_mtime_nsec(e)}}});
    return {};
  }

  bool is_dir = hardlink == nullptr && type == AE_IFDIR;
  KISTE_ASSIGN_OR_RETURN(int pfd, parent_fd(parent, true));

  // Fast path for the common case, a new regular file: create it exclusively right away.
  if (hardlink == nullptr && type == AE_IFREG && !seen_.contains(path)) {
    KISTE_TRY(check_size(e, path, stats));
    mode_t mode = create_mode(e);
    UniqueFd fd(::openat(pfd, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                         mode));
    if (fd) {
      seen_.insert(path);
      return write_file(a, e, std::move(fd), mode, path, stats);
    }
    if (errno != EEXIST) return std::unexpected(sys_error("create", path));
  }

  // What is there already?
  struct stat st {};
  bool exists = ::fstatat(pfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0;
  if (!exists && errno != ENOENT) return std::unexpected(sys_error("stat", path));
  bool already_seen = seen_.contains(path);
  if (exists && already_seen && !(is_dir && S_ISDIR(st.st_mode))) {
    return failf(Errc::Corrupt, "entry {}: duplicate path in one layer", quote(raw));
  }
  if (exists && !(is_dir && S_ISDIR(st.st_mode))) {
    KISTE_TRY(remove_existing(pfd, name, path));
    KISTE_ASSIGN_OR_RETURN(pfd, parent_fd(parent, true));
    exists = false;
  }
  seen_.insert(path);

  struct timespec ts[2];
  ts[1] = {la().archive_entry_mtime(e), la().archive_entry_mtime_nsec(e)};
  ts[0] = ts[1];
  mode_t perm = la().archive_entry_perm(e) & 07777;

  if (hardlink != nullptr) {
    std::string target = clean_path(hardlink);
    if (target.empty()) return failf(Errc::Corrupt, "entry {}: hardlink to the root", quote(raw));
    auto [tparent, tname] = split_parent(target);
    auto tfd = sys::open_in_root(root_, tparent.empty() ? "." : tparent, O_PATH | O_DIRECTORY);
    if (!tfd) {
      return std::unexpected(std::move(tfd).error().with_context(
          fmt::format("hardlink {} to {}", quote(raw), quote(hardlink))));
    }
    // flags 0: a symlink target is linked itself, never followed.
    if (::linkat(tfd->get(), tname.c_str(), pfd, name.c_str(), 0) != 0) {
      Error err = sys_error("link", hardlink);
      err.message = fmt::format("hardlink {} to {}: {}", quote(raw), quote(hardlink),
                                std::strerror(err.sys_errno));
      return std::unexpected(std::move(err));
    }
    // No metadata for hardlinks: they share the target's inode (CVE-2021-32760).
    return {};
  }

  switch (type) {
    case AE_IFREG: {
      KISTE_TRY(check_size(e, path, stats));
      mode_t mode = create_mode(e);
      UniqueFd fd(::openat(pfd, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                           mode));
      if (!fd) return std::unexpected(sys_error("create", path));
      return write_file(a, e, std::move(fd), mode, path, stats);
    }
    case AE_IFDIR: {
      if (!exists) {
        if (::mkdirat(pfd, name.c_str(), 0700) != 0) return std::unexpected(sys_error("mkdir", path));
      }
      UniqueFd dfd(::openat(pfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!dfd) return std::unexpected(sys_error("open", path));
      if (same_owner_) {
        if (::fchown(dfd.get(), static_cast<uid_t>(la().archive_entry_uid(e)),
                     static_cast<gid_t>(la().archive_entry_gid(e))) != 0) {
          return std::unexpected(sys_error("chown", path));
        }
      }
      KISTE_TRY(set_xattrs(dfd.get(), e, path));
      if (opt_.whiteouts == WhiteoutMode::Overlay && whiteouts_.contains(path)) {
        // Deleted and recreated in one layer: nothing from below may show through.
        if (::fsetxattr(dfd.get(), opaque_xattr(), "y", 1, 0) != 0) {
          return std::unexpected(sys_error("set opaque xattr on", path));
        }
      }
      dirs_.push_back({path, perm, {ts[0], ts[1]}});
      return {};
    }
    case AE_IFLNK: {
      const char* target = la().archive_entry_symlink(e);
      if (target == nullptr) return failf(Errc::Corrupt, "entry {}: symlink without target", quote(raw));
      // The target is stored as is: kiste never follows it while extracting.
      if (::symlinkat(target, pfd, name.c_str()) != 0) return std::unexpected(sys_error("symlink", path));
      invalidate();
      KISTE_TRY(set_owner_at(pfd, name, e, path));
      if (::utimensat(pfd, name.c_str(), ts, AT_SYMLINK_NOFOLLOW) != 0) {
        return std::unexpected(sys_error("set times of", path));
      }
      return {};
    }
    case AE_IFCHR:
    case AE_IFBLK:
    case AE_IFIFO: {
      if (type != AE_IFIFO && !allow_devices_) {
        return failf(Errc::PermissionDenied, "entry {}: device nodes are not allowed", quote(raw));
      }
      dev_t dev = type == AE_IFIFO ? 0 : la().archive_entry_rdev(e);
      mode_t kind = type == AE_IFCHR ? S_IFCHR : type == AE_IFBLK ? S_IFBLK : S_IFIFO;
      if (::mknodat(pfd, name.c_str(), kind | 0600, dev) != 0) {
        return std::unexpected(sys_error("mknod", path));
      }
      KISTE_TRY(set_owner_at(pfd, name, e, path));
      if (::fchmodat(pfd, name.c_str(), perm, AT_SYMLINK_NOFOLLOW) != 0) {
        return std::unexpected(sys_error("chmod", path));
      }
      if (::utimensat(pfd, name.c_str(), ts, AT_SYMLINK_NOFOLLOW) != 0) {
        return std::unexpected(sys_error("set times of", path));
      }
      return {};
    }
    default:
      return failf(Errc::Unsupported, "entry {}: unsupported file type {:o}", quote(raw), type);
  }
}

Status Extractor::finish() {
  invalidate();
  for (auto it = dirs_.rbegin(); it != dirs_.rend(); ++it) {
    auto fd = sys::open_in_root(root_, it->path.empty() ? "." : it->path,
                                O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
    if (!fd) {
      int err = fd.error().sys_errno;
      if (err == ENOENT || err == ENOTDIR || err == ELOOP) continue;  // replaced later in the layer
      return std::unexpected(std::move(fd).error());
    }
    std::string shown = it->path.empty() ? "/" : it->path;
    if (::fchmod(fd->get(), it->mode) != 0) return std::unexpected(sys_error("chmod", shown));
    if (::futimens(fd->get(), it->times) != 0) return std::unexpected(sys_error("set times of", shown));
  }
  return {};
}

}  // namespace

Result<ExtractStats> extract_layer(BlobReader& compressed, media_type::Compression compression,
                                   int root_dirfd, const ExtractOptions& options) {
  auto plain = make_decompressor(compressed, compression);
  Source src;
  src.reader = plain.get();
  KISTE_TRY(detail::load_libarchive());
  detail::ArchiveReadPtr a(detail::la().archive_read_new());
  if (!a) return fail(Errc::System, "extract layer: archive_read_new failed");
  la().archive_read_support_format_tar(a.get());
  la().archive_read_support_format_gnutar(a.get());
  auto archive_failure = [&](std::string_view what) -> Error {
    if (src.error) return *src.error;
    const char* msg = la().archive_error_string(a.get());
    return Error{.code = Errc::Corrupt,
                 .message = fmt::format("{}: {}", what, msg ? msg : "invalid tar stream")};
  };
  if (la().archive_read_open(a.get(), &src, nullptr, source_read, nullptr) != ARCHIVE_OK) {
    return std::unexpected(archive_failure("read layer tar"));
  }
  Extractor ex(root_dirfd, options);
  ExtractStats stats{.diff_id = Digest::of("")};
  archive_entry* e = nullptr;
  for (;;) {
    KISTE_TRY(check_interrupted());
    int rc = la().archive_read_next_header(a.get(), &e);
    if (rc == ARCHIVE_EOF) break;
    if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN) {
      return std::unexpected(archive_failure("read layer tar"));
    }
    if (++stats.entries > options.limits.max_entries) {
      return failf(Errc::Corrupt, "layer has more than {} entries", options.limits.max_entries);
    }
    const char* shown = la().archive_entry_pathname(e);
    KISTE_TRY(check_extension_headers(src, static_cast<uint64_t>(la().archive_read_header_position(a.get())),
                                      shown ? shown : ""));
    if (auto r = ex.entry(a.get(), e, stats); !r) {
      if (src.error) return std::unexpected(*src.error);
      return std::unexpected(r.error());
    }
  }
  KISTE_TRY(ex.finish());
  // Whatever follows the end-of-archive blocks is still part of the diff_id.
  for (;;) {
    KISTE_ASSIGN_OR_RETURN(size_t n, plain->read(src.ring[0].data(), src.ring[0].size()));
    if (n == 0) break;
    src.hasher.update(src.ring[0].data(), n);
  }
  stats.diff_id = src.hasher.finish();
  if (options.expected_diff_id && *options.expected_diff_id != stats.diff_id) {
    return failf(Errc::Corrupt, "layer diff_id mismatch: expected {}, got {}",
                 *options.expected_diff_id, stats.diff_id);
  }
  return stats;
}

namespace {

// An entry's data as libarchive hands it out; what the visitor leaves unread is skipped.
class EntryData final : public BlobReader {
 public:
  EntryData(archive* a, Source& src) : a_(a), src_(src) {}
  [[nodiscard]] Result<size_t> read(void* buf, size_t len) override {
    la_ssize_t n = la().archive_read_data(a_, buf, len);
    if (n < 0) {
      if (src_.error) return std::unexpected(*src_.error);
      const char* msg = la().archive_error_string(a_);
      return failf(Errc::Corrupt, "read layer tar: {}", msg ? msg : "invalid tar stream");
    }
    return static_cast<size_t>(n);
  }

 private:
  archive* a_;
  Source& src_;
};

LayerEntry::Type entry_type(archive_entry* e) {
  if (la().archive_entry_hardlink(e) != nullptr) return LayerEntry::Type::Hardlink;
  switch (la().archive_entry_filetype(e)) {
    case AE_IFREG: return LayerEntry::Type::File;
    case AE_IFDIR: return LayerEntry::Type::Dir;
    case AE_IFLNK: return LayerEntry::Type::Symlink;
    default: return LayerEntry::Type::Other;
  }
}

}  // namespace

Result<Digest> read_layer_entries(BlobReader& compressed, media_type::Compression compression,
                                  const LayerEntryVisitor& visit, const ExtractLimits& limits) {
  auto plain = make_decompressor(compressed, compression);
  Source src;
  src.reader = plain.get();
  KISTE_TRY(detail::load_libarchive());
  detail::ArchiveReadPtr a(detail::la().archive_read_new());
  if (!a) return fail(Errc::System, "read layer: archive_read_new failed");
  la().archive_read_support_format_tar(a.get());
  la().archive_read_support_format_gnutar(a.get());
  auto archive_failure = [&]() -> Error {
    if (src.error) return *src.error;
    const char* msg = la().archive_error_string(a.get());
    return Error{.code = Errc::Corrupt,
                 .message = fmt::format("read layer tar: {}", msg ? msg : "invalid tar stream")};
  };
  if (la().archive_read_open(a.get(), &src, nullptr, source_read, nullptr) != ARCHIVE_OK) {
    return std::unexpected(archive_failure());
  }
  archive_entry* e = nullptr;
  uint64_t entries = 0;
  for (;;) {
    KISTE_TRY(check_interrupted());
    int rc = la().archive_read_next_header(a.get(), &e);
    if (rc == ARCHIVE_EOF) break;
    if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN) return std::unexpected(archive_failure());
    if (++entries > limits.max_entries) {
      return failf(Errc::Corrupt, "layer has more than {} entries", limits.max_entries);
    }
    const char* name = la().archive_entry_pathname(e);
    LayerEntry entry{.path = clean_path(name != nullptr ? name : ""), .type = entry_type(e)};
    if (entry.path.size() > limits.max_path_length) {
      return failf(Errc::Corrupt, "layer entry name is over {} bytes", limits.max_path_length);
    }
    entry.mode = static_cast<uint32_t>(la().archive_entry_perm(e));
    entry.uid = la().archive_entry_uid(e);
    entry.gid = la().archive_entry_gid(e);
    entry.mtime = la().archive_entry_mtime(e);
    entry.size = entry.type == LayerEntry::Type::File ? la().archive_entry_size(e) : 0;
    const char* link = entry.type == LayerEntry::Type::Hardlink ? la().archive_entry_hardlink(e)
                       : entry.type == LayerEntry::Type::Symlink ? la().archive_entry_symlink(e)
                                                                 : nullptr;
    if (link != nullptr) entry.link = link;
    EntryData data(a.get(), src);
    KISTE_TRY(visit(entry, data));
    if (la().archive_read_data_skip(a.get()) != ARCHIVE_OK) return std::unexpected(archive_failure());
  }
  // Whatever follows the end-of-archive blocks is still part of the diff_id.
  for (;;) {
    KISTE_ASSIGN_OR_RETURN(size_t n, plain->read(src.ring[0].data(), src.ring[0].size()));
    if (n == 0) break;
    src.hasher.update(src.ring[0].data(), n);
  }
  return src.hasher.finish();
}

Result<int64_t> measure_layer(BlobReader& compressed, media_type::Compression compression) {
  // As `du -sb` counts the unpacked tree: file sizes (a hard link once), symlink target lengths,
  // and a directory block per directory (the top one included).
  constexpr int64_t kDirBytes = 4096;
  int64_t bytes = kDirBytes;
  auto counted = read_layer_entries(
      compressed, compression, [&](const LayerEntry& e, BlobReader&) -> Status {
        switch (e.type) {
          case LayerEntry::Type::Dir: bytes += kDirBytes; break;
          case LayerEntry::Type::Symlink: bytes += static_cast<int64_t>(e.link.size()); break;
          case LayerEntry::Type::File: bytes += e.size; break;
          default: break;  // a hard link is counted with its first name
        }
        return {};
      });
  if (!counted) return std::unexpected(std::move(counted).error().with_context("measure layer"));
  return bytes;
}

}  // namespace kiste::image
