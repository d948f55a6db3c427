#pragma once
// How much a directory tree holds, as `du -sb` counts it: the apparent size of every entry
// (files, symlinks, directories), each hard-linked inode once, never crossing into another
// filesystem and never following symlinks.
#include <cstdint>
#include <filesystem>

#include <kiste/base/error.hpp>

namespace kiste {

struct TreeUsage {
  int64_t entries = 0;  // everything below the top (files, links, dirs)
  int64_t bytes = 0;    // including the top directory itself
};

// A missing `path` is an empty tree. Entries that vanish meanwhile are skipped.
[[nodiscard]] Result<TreeUsage> tree_usage(const std::filesystem::path& path);

}  // namespace kiste
