#pragma once
// Reading and writing image files inside a directory that someone else wrote (oci:, dir:).
#include <filesystem>
#include <kiste/base/error.hpp>
#include <kiste/base/unique_fd.hpp>
#include <kiste/image/blob_io.hpp>
#include <kiste/image/manifest.hpp>
#include <string>
#include <string_view>

namespace kiste::image::detail {

[[nodiscard]] Result<UniqueFd> open_directory(const std::filesystem::path& dir);

// Opens `rel` below `rootfd` as if the directory were "/" (symlinks and ".." never leave it) and
// insists on a regular file. `what` names the image directory in errors.
[[nodiscard]] Result<UniqueFd> open_regular_in(int rootfd, std::string_view rel,
                                               std::string_view what);

// A file of at most `max` bytes below `rootfd`.
[[nodiscard]] Result<std::string> read_small_in(int rootfd, std::string_view rel, size_t max,
                                                std::string_view what);

// A manifest file below `rootfd` checked against `d` (size first, then digest) and parsed with
// d.media_type as the declared type.
[[nodiscard]] Result<ManifestBlob> read_manifest_in(int rootfd, std::string_view rel,
                                                    const Descriptor& d, std::string_view what);

// Streams `r` into `dir`/`name` through a temp file in `dir`: the digest and size are checked
// before the rename, so a mismatch leaves nothing under `name`.
[[nodiscard]] Status write_verified(const std::filesystem::path& dir, const std::string& name,
                                    const Descriptor& d, BlobReader& r);

// Whether `dir` is missing or an empty directory.
[[nodiscard]] Result<bool> missing_or_empty(const std::filesystem::path& dir);

}  // namespace kiste::image::detail
