#pragma once
// The flags of COPY and ADD as a typed struct. Values may name build args (`--chown=$UID`), so the
// builder expands them first; a value that names none is checked when the Containerfile is parsed,
// so `--chmod=9` fails at its line and column before anything is built.
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <kiste/base/error.hpp>
#include <kiste/builder/containerfile.hpp>
#include <kiste/image/digest.hpp>

namespace kiste::builder {

struct CopyFlags {
  std::optional<std::string> from;  // --from: a stage name or index, or an image reference
  std::optional<std::string> chown;  // user[:group], names resolved against the stage on a miss
  std::optional<uint32_t> chmod;
  bool parents = false;
  std::optional<image::Digest> checksum;  // ADD --checksum of an http(s) source
  std::vector<std::string> exclude;
  // The flags as the cache key records them ("flag --chmod=0755"); --link changes no content.
  std::vector<std::string> key_lines;
};

// Sets one flag (name without `--`, value already expanded; "" for a bare flag) in `out`.
[[nodiscard]] Status apply_copy_flag(CopyFlags& out, std::string_view name, std::string_view value);

// All of an instruction's flags, each value through `expand` first.
using ExpandWord = std::function<Result<std::string>(std::string_view raw)>;
[[nodiscard]] Result<CopyFlags> parse_copy_flags(const Instruction& ins, const ExpandWord& expand);

// An octal mode as `--chmod` takes it ("0755").
[[nodiscard]] Result<uint32_t> parse_chmod(std::string_view v);

}  // namespace kiste::builder
