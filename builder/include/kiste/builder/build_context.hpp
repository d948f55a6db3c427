#pragma once
// The build context: `.containerignore` / `.dockerignore` patterns with Docker's semantics
// (moby/patternmatcher: last match wins, `!` re-includes, `**` spans directories, a pattern that
// matches a directory excludes everything below it), and content hashing of context files
// (by content, mode and type, never by mtime) for the build cache.
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <kiste/base/error.hpp>
#include <kiste/builder/context_hash_cache.hpp>
#include <kiste/image/digest.hpp>

namespace kiste::builder {

// One glob against a slash-separated relative path: `*` and `?` stop at `/`, `**` spans
// directories (`**/x` also matches `x`), `[a-z]` / `[^a]` classes, `\` escapes.
[[nodiscard]] Result<bool> glob_match(std::string_view pattern, std::string_view path);

class IgnoreMatcher {
 public:
  struct Pattern {
    std::string glob;  // cleaned, no leading '/'
    bool exclusion = false;  // written with a leading '!'
  };

  // Parses the file text: one pattern a line, `#` comments, blank lines ignored.
  [[nodiscard]] static Result<IgnoreMatcher> parse(std::string_view text);
  // Reads `.containerignore`, else `.dockerignore`, in `context_dir` (none: matches nothing).
  [[nodiscard]] static Result<IgnoreMatcher> load(const std::filesystem::path& context_dir);

  // True if the context-relative path (no leading "./" or "/") is ignored.
  [[nodiscard]] bool ignored(std::string_view rel_path) const;
  // True if some `!` pattern could re-include something below an ignored directory, so the
  // walker must still descend into it.
  [[nodiscard]] bool has_exclusions() const { return has_exclusions_; }
  [[nodiscard]] const std::vector<Pattern>& patterns() const { return patterns_; }

 private:
  std::vector<Pattern> patterns_;
  bool has_exclusions_ = false;
};

// Normalises a path like filepath.Clean and strips leading "/" and "./": "a//b/../c/" → "a/c".
// Returns "" for the context root.
[[nodiscard]] std::string clean_rel(std::string_view p);

struct ContextEntry {
  std::string path;  // relative to the context, '/'-separated
  enum class Type { File, Dir, Symlink } type = Type::File;
  uint32_t mode = 0;  // permission bits (07777)
  uint64_t size = 0;
  std::string link_target;  // symlinks
  FileStamp stamp;          // files: the lstat data the content-hash cache is keyed by
};

// Walks `root/rel` (rel "" = whole context) without following symlinks, skipping ignored paths;
// sorted by path. A missing `rel` is NotFound.
[[nodiscard]] Result<std::vector<ContextEntry>> walk_context(const std::filesystem::path& root,
                                                             std::string_view rel,
                                                             const IgnoreMatcher& ignore);

// sha256 over the sorted entries' (path relative to `rel`, type, mode, content digest or link
// target): the cache input of a COPY source. Depends on content only, not on mtimes. With a
// `cache`, a file whose stamp is unchanged is not read again (paths are keyed relative to root).
[[nodiscard]] Result<image::Digest> hash_entries(const std::filesystem::path& root,
                                                 std::string_view rel,
                                                 const std::vector<ContextEntry>& entries,
                                                 ContextHashCache* cache = nullptr);

}  // namespace kiste::builder
