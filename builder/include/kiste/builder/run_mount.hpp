#pragma once
// `RUN --mount=type=cache|secret|bind|tmpfs|ssh,…` as BuildKit spells it.
#include <string>
#include <string_view>

#include <kiste/base/error.hpp>

namespace kiste::builder {

struct RunMount {
  enum class Type { Bind, Cache, Secret, Tmpfs, Ssh };
  Type type = Type::Bind;
  std::string target;  // absolute path in the container
  std::string id;      // cache id (default: target) / secret id (default: basename of target) /
                       // ssh id (default: "default")
  std::string source;  // bind: path in the context or the `from` rootfs
  std::string from;    // bind/cache: a stage or image
  bool rw = false;     // bind: writable (changes are discarded)
  bool required = false;  // secret, ssh
  std::string size;       // tmpfs: "64m" ("" = the kernel's default)
};

// Parses "type=cache,target=/root/.cache,id=x". Unknown keys and types are errors.
[[nodiscard]] Result<RunMount> parse_run_mount(std::string_view spec);

}  // namespace kiste::builder
