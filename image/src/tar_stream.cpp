#include "tar_stream.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include <kiste/base/sys.hpp>

namespace kiste::image::detail {

namespace {
constexpr size_t kChunk = 256 * 1024;

bool keep_xattr(std::string_view name) {
  if (name.starts_with("trusted.overlay.") || name.starts_with("user.overlay.")) return false;
  // ACLs live in system.*; libarchive would need them decoded. Not recorded (like docker).
  return name.starts_with("user.") || name.starts_with("security.") || name.starts_with("trusted.");
}

std::string media_type_for(media_type::Compression c) {
  switch (c) {
    case media_type::Compression::Gzip:
      return std::string(media_type::kOciLayerGzip);
    case media_type::Compression::Zstd:
      return std::string(media_type::kOciLayerZstd);
    case media_type::Compression::None:
      break;
  }
  return std::string(media_type::kOciLayerTar);
}
}  // namespace

TarStream::TarStream(ByteSink& out, const PackOptions& o)
    : options_(o), compressed_(out), buf_(new char[kChunk]) {}

TarStream::~TarStream() = default;

Result<std::unique_ptr<TarStream>> TarStream::open(ByteSink& out, const PackOptions& options) {
  std::unique_ptr<TarStream> t(new TarStream(out, options));
  KISTE_ASSIGN_OR_RETURN(t->compressor_, CompressingSink::create(t->compressed_, options.compress));
  t->tar_ = std::make_unique<HashingSink>(*t->compressor_);
  KISTE_TRY(load_libarchive());
  t->a_.reset(la().archive_write_new());
  if (!t->a_) return fail(Errc::System, "archive_write_new failed");
  archive* a = t->a_.get();
  if (la().archive_write_set_format_pax_restricted(a) != ARCHIVE_OK ||
      la().archive_write_set_bytes_per_block(a, 10240) != ARCHIVE_OK ||
      la().archive_write_set_bytes_in_last_block(a, 1) != ARCHIVE_OK) {
    return failf(Errc::System, "tar writer: {}", la().archive_error_string(a));
  }
  if (la().archive_write_open(a, t.get(), nullptr, &TarStream::write_cb, nullptr) != ARCHIVE_OK) {
    return failf(Errc::System, "tar writer: {}", la().archive_error_string(a));
  }
  return t;
}

la_ssize_t TarStream::write_cb(archive* a, void* self, const void* buf, size_t n) {
  auto* t = static_cast<TarStream*>(self);
  auto r = t->tar_->write(std::string_view(static_cast<const char*>(buf), n));
  if (!r) {
    t->sink_error_ = r.error();
    la().archive_set_error(a, EIO, "%s", r.error().message.c_str());
    return -1;
  }
  return static_cast<la_ssize_t>(n);
}

Status TarStream::check(int rc, std::string_view what) {
  if (rc >= ARCHIVE_WARN) return {};
  if (sink_error_) return std::unexpected(*sink_error_);
  return failf(Errc::System, "write tar entry {}: {}", quote(what), la().archive_error_string(a_.get()));
}

Status TarStream::write_data(int fd, int64_t size, const std::string& path) {
  int64_t left = size;
  while (left > 0) {
    size_t want = static_cast<size_t>(std::min<int64_t>(left, kChunk));
    KISTE_ASSIGN_OR_RETURN(size_t n, sys::read_some(fd, buf_.get(), want, path));
    if (n == 0) {
      // The file shrank while being packed: keep the header's size, pad with zeros.
      std::memset(buf_.get(), 0, want);
      n = want;
    }
    la_ssize_t w = la().archive_write_data(a_.get(), buf_.get(), n);
    if (w < 0) KISTE_TRY(check(static_cast<int>(w), path));
    left -= static_cast<int64_t>(n);
  }
  return {};
}

Status TarStream::add(int dirfd, const std::string& name, const std::string& path,
                      const struct stat& st, int data_fd) {
  ArchiveEntryPtr e(la().archive_entry_new());
  la().archive_entry_copy_pathname(e.get(), path.c_str());
  la().archive_entry_set_perm(e.get(), st.st_mode & 07777);
  la().archive_entry_set_uid(e.get(), options_.keep_owners ? st.st_uid : 0);
  la().archive_entry_set_gid(e.get(), options_.keep_owners ? st.st_gid : 0);
  la().archive_entry_set_mtime(e.get(), clamp_mtime(st.st_mtim.tv_sec), 0);

  UniqueFd fd;
  if (!S_ISDIR(st.st_mode) && st.st_nlink > 1) {
    auto [it, inserted] = links_.emplace(std::pair{st.st_dev, st.st_ino}, path);
    if (!inserted) {
      la().archive_entry_set_filetype(e.get(), AE_IFREG);
      la().archive_entry_copy_hardlink(e.get(), it->second.c_str());
      la().archive_entry_set_size(e.get(), 0);
      return check(la().archive_write_header(a_.get(), e.get()), path);
    }
  }
  int64_t size = 0;
  if (S_ISREG(st.st_mode)) {
    la().archive_entry_set_filetype(e.get(), AE_IFREG);
    // Checked again at open: what a container left in its upper dir may change under us.
    KISTE_ASSIGN_OR_RETURN(fd, sys::open_regular_in_root(dirfd, name));
    size = st.st_size;
    la().archive_entry_set_size(e.get(), size);
  } else if (S_ISDIR(st.st_mode)) {
    la().archive_entry_set_filetype(e.get(), AE_IFDIR);
    KISTE_ASSIGN_OR_RETURN(fd, sys::openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
  } else if (S_ISLNK(st.st_mode)) {
    la().archive_entry_set_filetype(e.get(), AE_IFLNK);
    KISTE_ASSIGN_OR_RETURN(std::string target, sys::readlinkat(dirfd, name));
    la().archive_entry_copy_symlink(e.get(), target.c_str());
  } else if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)) {
    la().archive_entry_set_filetype(e.get(), S_ISCHR(st.st_mode) ? AE_IFCHR : AE_IFBLK);
    la().archive_entry_set_rdevmajor(e.get(), major(st.st_rdev));
    la().archive_entry_set_rdevminor(e.get(), minor(st.st_rdev));
  } else if (S_ISFIFO(st.st_mode)) {
    la().archive_entry_set_filetype(e.get(), AE_IFIFO);
  } else {
    return {};  // sockets cannot be archived
  }
  if (options_.xattrs && fd) {
    ssize_t n = ::flistxattr(fd.get(), nullptr, 0);
    if (n > 0) {
      std::string names(static_cast<size_t>(n), '\0');
      n = ::flistxattr(fd.get(), names.data(), names.size());
      std::vector<std::string> keys;
      for (size_t i = 0; n > 0 && i < static_cast<size_t>(n);) {
        std::string k(names.c_str() + i);
        i += k.size() + 1;
        if (keep_xattr(k)) keys.push_back(std::move(k));
      }
      std::sort(keys.begin(), keys.end());
      for (const auto& k : keys) {
        ssize_t vn = ::fgetxattr(fd.get(), k.c_str(), nullptr, 0);
        if (vn < 0) continue;
        std::string v(static_cast<size_t>(vn), '\0');
        vn = ::fgetxattr(fd.get(), k.c_str(), v.data(), v.size());
        if (vn < 0) continue;
        la().archive_entry_xattr_add_entry(e.get(), k.c_str(), v.data(), static_cast<size_t>(vn));
      }
    }
  }
  KISTE_TRY(check(la().archive_write_header(a_.get(), e.get()), path));
  if (S_ISREG(st.st_mode) && size > 0) {
    KISTE_TRY(write_data(data_fd >= 0 ? data_fd : fd.get(), size, path));
  }
  return check(la().archive_write_finish_entry(a_.get()), path);
}

Status TarStream::add_marker(const std::string& path, int64_t mtime) {
  ArchiveEntryPtr e(la().archive_entry_new());
  la().archive_entry_copy_pathname(e.get(), path.c_str());
  la().archive_entry_set_filetype(e.get(), AE_IFREG);
  la().archive_entry_set_perm(e.get(), 0644);
  la().archive_entry_set_mtime(e.get(), clamp_mtime(mtime), 0);
  la().archive_entry_set_size(e.get(), 0);
  return check(la().archive_write_header(a_.get(), e.get()), path);
}

Result<LayerResult> TarStream::finish() {
  KISTE_TRY(check(la().archive_write_close(a_.get()), "end of archive"));
  KISTE_TRY(compressor_->finish());
  LayerResult r{.digest = compressed_.finish(), .diff_id = tar_->finish()};
  r.size = compressed_.bytes();
  r.tar_size = tar_->bytes();
  r.media_type = media_type_for(options_.compress.compression);
  return r;
}

namespace {

Status walk_dir(int dirfd, const std::string& dir, dev_t dev, TarStream& tar,
                const WalkHooks& hooks) {
  KISTE_ASSIGN_OR_RETURN(std::vector<std::string> names,
                         sys::list_dir(dirfd, dir.empty() ? "." : dir));
  std::sort(names.begin(), names.end());
  for (const auto& name : names) {
    std::string path = dir.empty() ? name : dir + "/" + name;
    KISTE_ASSIGN_OR_RETURN(struct stat st, sys::fstatat(dirfd, name, AT_SYMLINK_NOFOLLOW));
    if (hooks.special) {
      KISTE_ASSIGN_OR_RETURN(bool handled, hooks.special(tar, dirfd, name, path, st));
      if (handled) continue;
    }
    KISTE_TRY(tar.add(dirfd, name, path, st));
    if (S_ISDIR(st.st_mode)) {
      if (st.st_dev != dev) {
        return failf(Errc::Unsupported, "pack {}: a filesystem is mounted there", quote(path));
      }
      KISTE_ASSIGN_OR_RETURN(UniqueFd sub, sys::openat(dirfd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW));
      if (hooks.after_dir) KISTE_TRY(hooks.after_dir(tar, sub.get(), path, st));
      KISTE_TRY(walk_dir(sub.get(), path, dev, tar, hooks));
    }
  }
  return {};
}

}  // namespace

Status walk_tree(int rootfd, TarStream& tar, const WalkHooks& hooks) {
  KISTE_ASSIGN_OR_RETURN(struct stat st, sys::fstat(rootfd, "layer root"));
  return walk_dir(rootfd, "", st.st_dev, tar, hooks);
}

}  // namespace kiste::image::detail
