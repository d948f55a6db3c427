#pragma once
// An OCI runtime bundle's config.json (runtime-spec 1.x) as kiste's ContainerSpec, plus what only
// the OCI verbs need (hooks, annotations, cgroupsPath). config.json is hostile input: every field
// is type-checked, and a field kiste cannot honour is refused with one line naming it (never
// ignored); only AppArmor/SELinux labels are ignored, with a warning, as the task allows. Unknown
// properties are ignored, as the runtime-spec requires.
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <kiste/base/error.hpp>
#include <kiste/runtime/spec.hpp>

namespace kiste::runtime::oci {

// The runtime-spec version kiste writes and reports (runc 1.1's).
inline constexpr std::string_view kOciVersion = "1.0.2";

using Hook = runtime::Hook;

struct Hooks {
  std::vector<Hook> prestart, create_runtime, create_container, start_container, poststart,
      poststop;
  bool operator==(const Hooks&) const = default;
};

struct BundleConfig {
  std::string oci_version;
  ContainerSpec spec;  // root.rootfs is the bundle's root.path made absolute
  std::vector<std::pair<std::string, std::string>> annotations;
  Hooks hooks;
  std::string cgroups_path;  // as given ("/a/b", "a/b" or "slice:prefix:name")
  std::vector<std::string> warnings;  // one line each (labels that are ignored)
};

// Parses config.json text. `bundle` (absolute) resolves a relative root.path.
[[nodiscard]] Result<BundleConfig> parse_config(std::string_view json,
                                                const std::filesystem::path& bundle);

// A runtime-spec LinuxResources object alone (`update --resources`), checked as config.json's
// linux.resources is (a field kiste cannot set is refused, naming it).
[[nodiscard]] Result<Resources> parse_linux_resources(std::string_view json);

// Hooks as their JSON object (kept in the container's state for `start` and `delete`), and back.
[[nodiscard]] std::string hooks_to_json(const Hooks& hooks);
[[nodiscard]] Result<Hooks> parse_hooks(std::string_view json);

// Where a container's cgroup goes: its parent (a cgroupfs path below each hierarchy's root) and
// its own directory name. cgroupsPath "/a/b/c" -> {"/a/b", "c"}; relative "a/b" is below the
// parent kiste's default ("/kiste-runc/a", "b"); systemd's "slice:prefix:name" -> the slice's
// path and "prefix-name.scope", where systemd itself would put it; empty -> {"/kiste-runc", id}.
struct CgroupLocation {
  std::string parent;
  std::string name;
  bool operator==(const CgroupLocation&) const = default;
};
[[nodiscard]] Result<CgroupLocation> cgroup_location(std::string_view cgroups_path,
                                                     std::string_view id);

// A default config.json with Docker's defaults (capabilities, masked and read-only paths,
// mounts, devices, no_new_privs off), from kiste's own runtime defaults: what `spec` writes.
// `rootless` is not supported.
[[nodiscard]] std::string default_config_json();

// The runtime-spec features document (`features`).
[[nodiscard]] std::string features_json();

}  // namespace kiste::runtime::oci
