#pragma once
// Shared by the image tests: a small tar made with libarchive.
#include <archive.h>
#include <archive_entry.h>

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace kiste::image {

// A small tar made with libarchive: {name -> content}.
inline std::string make_tar(const std::filesystem::path& dir, const std::vector<std::pair<std::string, std::string>>& files) {
  std::filesystem::path p = dir / "in.tar";
  archive* a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  archive_write_open_filename(a, p.c_str());
  for (const auto& [name, content] : files) {
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, name.c_str());
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    archive_entry_set_size(e, static_cast<la_int64_t>(content.size()));
    archive_write_header(a, e);
    archive_write_data(a, content.data(), content.size());
    archive_entry_free(e);
  }
  archive_write_close(a);
  archive_write_free(a);
  return p.native();
}

}  // namespace kiste::image
