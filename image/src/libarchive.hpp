#pragma once
// libarchive, loaded on first use (dlopen) instead of at program start. Debian's libarchive
// pulls in libxml2, ICU, nettle, acl, lzma, lz4 and bz2: ~1.5 ms of loading and relocation on
// every kiste command (measured: an empty program linked against it starts in 1.94 ms instead
// of 0.42 ms), while `kiste run` and a cached `build` never read or write a tar.
//
// Call sites use la().archive_xxx(...) with libarchive's own names and types; load_libarchive()
// must have succeeded first (it is called where handles are created).
#include <archive.h>
#include <archive_entry.h>

#include <kiste/base/error.hpp>

#define KISTE_LIBARCHIVE_FUNCTIONS(X) \
  X(archive_entry_atime) \
  X(archive_entry_atime_is_set) \
  X(archive_entry_atime_nsec) \
  X(archive_entry_copy_hardlink) \
  X(archive_entry_copy_pathname) \
  X(archive_entry_copy_symlink) \
  X(archive_entry_filetype) \
  X(archive_entry_free) \
  X(archive_entry_gid) \
  X(archive_entry_hardlink) \
  X(archive_entry_mtime) \
  X(archive_entry_mtime_nsec) \
  X(archive_entry_new) \
  X(archive_entry_pathname) \
  X(archive_entry_perm) \
  X(archive_entry_rdev) \
  X(archive_entry_set_filetype) \
  X(archive_entry_set_gid) \
  X(archive_entry_set_mtime) \
  X(archive_entry_set_pathname) \
  X(archive_entry_set_perm) \
  X(archive_entry_set_rdevmajor) \
  X(archive_entry_set_rdevminor) \
  X(archive_entry_set_size) \
  X(archive_entry_set_uid) \
  X(archive_entry_size) \
  X(archive_entry_symlink) \
  X(archive_entry_uid) \
  X(archive_entry_xattr_add_entry) \
  X(archive_entry_xattr_next) \
  X(archive_entry_xattr_reset) \
  X(archive_error_string) \
  X(archive_filter_bytes) \
  X(archive_read_data) \
  X(archive_read_data_block) \
  X(archive_read_data_skip) \
  X(archive_read_free) \
  X(archive_read_header_position) \
  X(archive_read_new) \
  X(archive_read_next_header) \
  X(archive_read_open) \
  X(archive_read_open_fd) \
  X(archive_read_open_filename) \
  X(archive_read_support_filter_all) \
  X(archive_read_support_format_gnutar) \
  X(archive_read_support_format_raw) \
  X(archive_read_support_format_tar) \
  X(archive_set_error) \
  X(archive_write_close) \
  X(archive_write_data) \
  X(archive_write_finish_entry) \
  X(archive_write_free) \
  X(archive_write_header) \
  X(archive_write_new) \
  X(archive_write_open) \
  X(archive_write_open_fd) \
  X(archive_write_set_bytes_in_last_block) \
  X(archive_write_set_bytes_per_block) \
  X(archive_write_set_format_pax_restricted)

namespace kiste::image::detail {

struct LibArchive {
#define KISTE_LIBARCHIVE_MEMBER(name) decltype(&::name) name = nullptr;
  KISTE_LIBARCHIVE_FUNCTIONS(KISTE_LIBARCHIVE_MEMBER)
#undef KISTE_LIBARCHIVE_MEMBER
};

// Loads libarchive.so.13 once; an error names the library and the reason.
[[nodiscard]] Status load_libarchive();
// The loaded functions; only valid after load_libarchive() succeeded (checked).
[[nodiscard]] const LibArchive& la();

}  // namespace kiste::image::detail
