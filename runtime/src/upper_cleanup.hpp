#pragma once
// Hands back an upper dir that holds only what the container's processes wrote (RootSpec::
// clean_upper): the mount points the runtime made there go, and so do its own /etc files.
#include <filesystem>
#include <string>
#include <vector>

#include <kiste/base/error.hpp>
#include <kiste/runtime/mount_plan.hpp>

namespace kiste::runtime::detail {

// The container paths whose mount points the runtime may have created in the upper dir (every
// op of `plan` that creates its target), and the runtime's files (/etc/hosts, …).
struct UpperLeftovers {
  std::vector<std::string> mount_points;
  std::vector<std::string> runtime_files;
};
[[nodiscard]] UpperLeftovers upper_leftovers(const MountPlan& plan);

// Run once every process of the container has ended (its mounts are gone with it):
// - the runtime files are removed from `upper` whatever the container did to them (a copy-up, an
//   edit, a whiteout): as under docker build, where they are bind mounts, none reaches a layer;
// - each mount point, deepest first, is removed when it exists in no lower layer and is an
//   empty directory or an empty file, or when it is a directory only copied up for a mount point
//   below it (empty, not opaque, mode and owner as the lower's). Whatever else is there stays.
// Everything is resolved inside `upper`: a symlink the container made never redirects this to a
// host path (CVE-2024-23652).
[[nodiscard]] Status clean_upper(const std::filesystem::path& upper,
                                 const std::vector<std::filesystem::path>& lowers,
                                 const UpperLeftovers& leftovers);

}  // namespace kiste::runtime::detail
