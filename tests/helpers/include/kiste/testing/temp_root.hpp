#pragma once
#include <sys/types.h>

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include <kiste/base/temp_dir.hpp>

namespace kiste::testing {

// A fresh directory for one test (under $TMPDIR or /tmp), removed afterwards. Root tests check in
// their TearDown that no mount below it is left (see mounts_below()).
class TempRoot {
 public:
  explicit TempRoot(std::string_view prefix = "kiste-test-");
  [[nodiscard]] const std::filesystem::path& path() const { return dir_.path(); }
  [[nodiscard]] std::filesystem::path operator/(const std::filesystem::path& p) const {
    return dir_.path() / p;
  }

 private:
  TempDir dir_;
};

// Mount points at or below `dir` in /proc/self/mountinfo (empty when clean).
[[nodiscard]] std::vector<std::string> mounts_below(const std::filesystem::path& dir);

// The cgroup directories named `name` directly below a hierarchy root (/sys/fs/cgroup/<h>/name):
// what an engine's cgroupfs driver made (containerd's namespace, dockerd's `docker`).
[[nodiscard]] std::vector<std::filesystem::path> hierarchy_cgroups_named(std::string_view name);

// Pids whose command line mentions `needle` (a daemon's or its shims' socket or temp dir).
[[nodiscard]] std::vector<pid_t> pids_mentioning(std::string_view needle);

// Runs a shell command; returns its exit status (-1 if it could not run). Output goes to `out`
// when given (stdout and stderr together).
int run_shell(const std::string& command, std::string* out = nullptr);

// A TCP socket listening on 127.0.0.1 at a free port (written to `port`); -1 on failure. Test
// servers (token server, fault proxy, scripted registry) own and close it.
[[nodiscard]] int listen_on_loopback(int* port);

// Absolute path of the kiste binary built alongside the tests.
[[nodiscard]] std::filesystem::path kiste_binary();

}  // namespace kiste::testing
