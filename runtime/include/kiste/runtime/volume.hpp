#pragma once
// Named volumes, as docker keeps them: <root>/volumes/<name>/_data, created on first use
// (`-v NAME:/path`, `--mount type=volume,source=NAME,…`, `kiste volume create NAME`).
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include <kiste/base/error.hpp>

namespace kiste::runtime {

// Docker's rule: [a-zA-Z0-9][a-zA-Z0-9_.-]*, at most 255 characters.
[[nodiscard]] Status validate_volume_name(std::string_view name);
// The volume's data dir (created with its parents when missing).
[[nodiscard]] Result<std::filesystem::path> ensure_volume(const std::filesystem::path& volumes_dir,
                                                          std::string_view name);
// Names, sorted.
[[nodiscard]] Result<std::vector<std::string>> list_volumes(const std::filesystem::path& volumes_dir);
[[nodiscard]] Status remove_volume(const std::filesystem::path& volumes_dir, std::string_view name);

}  // namespace kiste::runtime
