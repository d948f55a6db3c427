#pragma once
// Private helpers shared by the cgroup drivers.
#include <sys/types.h>

#include <filesystem>
#include <string_view>
#include <vector>

#include <kiste/base/error.hpp>

namespace kiste::runtime::detail {

[[nodiscard]] Status write_cgroup_file(const std::filesystem::path& file, std::string_view value);
[[nodiscard]] std::vector<pid_t> cgroup_pids(const std::filesystem::path& dir);
// Sends SIGKILL to every pid in `dir` until it is empty, then rmdir (retrying on EBUSY briefly).
[[nodiscard]] Status kill_and_remove(const std::filesystem::path& dir);
// "key value" lines (memory.events, memory.oom_control): the value of `key`, or -1.
[[nodiscard]] int64_t read_keyed(const std::filesystem::path& file, std::string_view key);

}  // namespace kiste::runtime::detail
