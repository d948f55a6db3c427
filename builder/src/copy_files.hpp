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

namespace kiste::builder {

struct CopyItem {
  std::filesystem::path src_root;  // the context, or a stage's / image's rootfs
  std::string src_rel;             // the matched source below src_root
  std::string dest;                // absolute path in the image for src_rel itself
  std::vector<ContextEntry> entries;  // src_rel and everything below it, sorted
};

struct HeredocFile {
  std::string dest;
  std::string content;
};

struct CopyJob {
  std::vector<CopyItem> items;
  std::vector<HeredocFile> heredocs;
  std::optional<uint32_t> chmod;
  uint32_t uid = 0, gid = 0;
  std::string desc;  // for history: "a.txt /app/"

  [[nodiscard]] const std::string& describe() const { return desc; }
  [[nodiscard]] Status apply(const std::filesystem::path& layer_dir) const;
};

// Removes mount-point stubs the runtime created in the upper dir for `req.mounts` (empty files
// or dirs that exist in no lower), so secrets' and caches' mount points never reach a layer.
[[nodiscard]] Status remove_mount_stubs(const RunRequest& req);

}  // namespace kiste::builder
