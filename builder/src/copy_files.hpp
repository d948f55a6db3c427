#pragma once
// COPY/ADD into a fresh layer directory. All writes are fd-relative below the layer dir with
// O_NOFOLLOW on every component, so a symlink copied earlier can never redirect a later write.
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <kiste/base/error.hpp>
#include <kiste/builder/build_context.hpp>
#include <kiste/builder/builder.hpp>
#include <kiste/image/digest.hpp>

namespace kiste::builder {

struct CopyItem {
  std::filesystem::path src_root;  // the context, or a stage's / image's rootfs
  std::string src_rel;             // the matched source below src_root
  std::string dest;                // absolute path in the image for src_rel itself
  std::vector<ContextEntry> entries;  // src_rel and everything below it, sorted
  // A single file whose dest had no trailing '/': it lands inside `dest` when the stage already
  // has a directory there (Docker's `COPY file /existingdir`), decided on a cache miss.
  bool into_existing_dir = false;
  std::optional<int64_t> mtime;  // ADD URL: the file's mtime from Last-Modified
};

// ADD URL --checksum: downloaded only on a cache miss (the checksum is the cache input).
struct UrlSource {
  std::string url;
  std::string dest;
  image::Digest checksum = image::Digest::of("");
  bool into_existing_dir = false;
};

struct HeredocFile {
  std::string dest;
  std::string content;
};

struct CopyJob {
  std::vector<CopyItem> items;
  std::vector<HeredocFile> heredocs;
  std::vector<UrlSource> urls;  // pending downloads; fetched into `items` before apply()
  std::optional<uint32_t> chmod;
  std::string chown;  // --chown as written (expanded); resolved into uid/gid before apply()
  uint32_t uid = 0, gid = 0;
  std::string desc;  // for history: "a.txt /app/"

  [[nodiscard]] const std::string& describe() const { return desc; }
  [[nodiscard]] Status apply(const std::filesystem::path& layer_dir) const;
};

// The file name `ADD URL dir/` gives a download: the URL path's last segment ("" when none).
[[nodiscard]] std::string url_file_name(std::string_view url);

// True when `spec` is "uid" or "uid:gid" (no lookup needed).
[[nodiscard]] bool numeric_owner(std::string_view spec);

// Resolves --chown "user[:group]" (names or numbers) against `rootfs`/etc/passwd and /etc/group
// (read inside the rootfs; symlinks cannot leave it). A user without group takes its primary gid.
[[nodiscard]] Result<std::pair<uint32_t, uint32_t>> resolve_owner(
    const std::optional<std::filesystem::path>& rootfs, std::string_view spec);

}  // namespace kiste::builder
