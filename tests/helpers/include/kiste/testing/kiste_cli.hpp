#pragma once
// Drives the real kiste binary against one store root, for end-to-end tests.
#include <filesystem>
#include <string>
#include <string_view>

namespace kiste::testing {

struct CliResult {
  int status = -1;
  std::string output;  // stdout and stderr together
};

class KisteCli {
 public:
  explicit KisteCli(std::filesystem::path root) : root_(std::move(root)) {}
  // Runs `kiste --root ROOT <args>` through the shell (args are shell words).
  CliResult run(const std::string& args) const;
  [[nodiscard]] const std::filesystem::path& root() const { return root_; }

 private:
  std::filesystem::path root_;
};

// A listing of every file under `dir` (path, mode, size, sha256), sorted, skipping tmp/ and
// lock files: two equal listings mean the store did not change.
[[nodiscard]] std::string tree_listing(const std::filesystem::path& dir);

// The shell words that run the kiste binary against `root` with `args` (for run_shell pipelines
// that KisteCli::run does not cover: ptys, redirections, pipes).
[[nodiscard]] std::string kiste_command(const std::filesystem::path& root, const std::string& args);

// `s` without its trailing newlines and spaces (a command's output as one value).
[[nodiscard]] std::string trim(std::string s);
// How many lines `s` holds (its '\n's).
[[nodiscard]] size_t count_lines(std::string_view s);

// Writes the busybox rootfs tarball made from Debian's busybox-static (once per process).
[[nodiscard]] std::filesystem::path busybox_tar();
// The same rootfs with Debian's arm64 busybox-static (the .deb scripts/setup.sh downloads into
// /var/cache/kiste-test, unpacked with dpkg-deb -x): import it with --platform linux/arm64.
[[nodiscard]] std::filesystem::path busybox_tar_arm64();

}  // namespace kiste::testing
