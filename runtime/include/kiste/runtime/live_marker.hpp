#pragma once
// What a SIGKILLed kiste leaves behind, and how the next kiste finds it.
//
// While a container runs, its kiste holds an flock on <running_dir>/<id>, a small file that
// names the container dir and the container's cgroup dirs. A clean exit removes the file. A
// file nobody holds locked therefore belongs to a kiste that died: its container processes died
// with it (PDEATHSIG), and clean_stale_containers() removes the cgroup dirs and the container
// dir it names. Only running containers have a file, so looking costs one readdir of a short
// directory: `kiste run` does it on every start, `kiste prune` too.
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include <kiste/base/error.hpp>
#include <kiste/base/unique_fd.hpp>

namespace kiste::runtime {

class LiveMarker {
 public:
  // Creates <running_dir>/<id> already locked (made under a temporary name, locked, renamed:
  // a sweeper never sees it unlocked).
  [[nodiscard]] static Result<LiveMarker> create(const std::filesystem::path& running_dir,
                                                 std::string_view id,
                                                 const std::filesystem::path& container_dir);
  LiveMarker(LiveMarker&&) noexcept = default;
  LiveMarker& operator=(LiveMarker&&) noexcept = default;
  ~LiveMarker();  // the container ended normally: the marker goes

  // Records the container's cgroup directories (as soon as they exist).
  [[nodiscard]] Status record_cgroups(const std::vector<std::filesystem::path>& dirs);
  [[nodiscard]] const std::filesystem::path& path() const { return path_; }

 private:
  LiveMarker(std::filesystem::path p, UniqueFd fd) : path_(std::move(p)), fd_(std::move(fd)) {}
  std::filesystem::path path_;
  UniqueFd fd_;
};

struct StaleCleanup {
  std::vector<std::string> containers;               // ids whose leftovers were removed
  std::vector<std::filesystem::path> cgroups;        // cgroup dirs removed
  std::vector<std::string> problems;                 // what could not be removed (and why)
};

// Removes the leftovers of every container whose kiste is gone. `containers_dir` bounds which
// container dirs may be removed (a marker naming anything else is not trusted).
[[nodiscard]] Result<StaleCleanup> clean_stale_containers(
    const std::filesystem::path& running_dir, const std::filesystem::path& containers_dir);

}  // namespace kiste::runtime
