#pragma once
// RAII for libarchive handles (private to image/).
#include "libarchive.hpp"

#include <memory>

namespace kiste::image::detail {

struct ArchiveReadFree {
  void operator()(archive* a) const { la().archive_read_free(a); }
};
struct ArchiveWriteFree {
  void operator()(archive* a) const { la().archive_write_free(a); }
};
struct ArchiveEntryFree {
  void operator()(archive_entry* e) const { la().archive_entry_free(e); }
};
using ArchiveReadPtr = std::unique_ptr<archive, ArchiveReadFree>;
using ArchiveWritePtr = std::unique_ptr<archive, ArchiveWriteFree>;
using ArchiveEntryPtr = std::unique_ptr<archive_entry, ArchiveEntryFree>;

inline const char* archive_message(archive* a) {
  const char* m = la().archive_error_string(a);
  return m != nullptr ? m : "unknown libarchive error";
}

}  // namespace kiste::image::detail
