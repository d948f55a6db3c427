#pragma once
// What a SIGKILLed kiste leaves behind, and how the next kiste finds it.
//
// While a container runs, its kiste holds an flock on <running_dir>/<id>, a small file that
// names the container dir, the layer snapshots it runs on, and the container's cgroup dirs (and
// systemd scope). A clean exit removes the file. A file nobody holds locked therefore belongs to
// a kiste that died: clean_stale_containers() kills whatever of its container still runs (a PID
// 1 may have cleared PDEATHSIG: cgroup.kill on v2, freeze + kill on v1), stops its scope, and
// removes the cgroup dirs and the container dir it names. Only running containers have a file,
// so looking costs one readdir of a short directory: `kiste run` does it on every start, `kiste
// prune` too. Prune keeps every snapshot a live marker names (live_lower_dirs).
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
  [[nodiscard]] static Result<LiveMarker> create(
      const std::filesystem::path& running_dir, std::string_view id,
      const std::filesystem::path& container_dir,
      const std::vector<std::filesystem::path>& lower_dirs = {});
  LiveMarker(LiveMarker&&) noexcept = default;
  LiveMarker& operator=(LiveMarker&&) noexcept = default;
  ~LiveMarker();  // the container ended normally: the marker goes

  // Records the container's cgroup directories and systemd unit (as soon as they exist).
  [[nodiscard]] Status record_cgroups(const std::vector<std::filesystem::path>& dirs,
                                      const std::string& unit = {});
  [[nodiscard]] const std::filesystem::path& path() const { return path_; }

 private:
  LiveMarker(std::filesystem::path p, UniqueFd fd) : path_(std::move(p)), fd_(std::move(fd)) {}
  std::filesystem::path path_;
  UniqueFd fd_;
};

struct StaleCleanup {
  std::vector<std::string> containers;               // ids whose leftovers were removed
  std::vector<std::filesystem::path> cgroups;        // cgroup dirs removed
  std::vector<std::string> units;                    // systemd scopes stopped
  std::vector<std::string> problems;                 // what could not be removed (and why)
};

// Removes the leftovers of every container whose kiste is gone. `containers_dir` bounds which
// container dirs may be removed (a marker naming anything else is not trusted).
[[nodiscard]] Result<StaleCleanup> clean_stale_containers(
    const std::filesystem::path& running_dir, const std::filesystem::path& containers_dir);

// Whether the kiste running container `id` is alive (it holds the lock on its marker).
[[nodiscard]] bool container_running(const std::filesystem::path& running_dir, std::string_view id);

// The lower dirs (layer snapshots) named by the markers of containers whose kiste is alive.
[[nodiscard]] Result<std::vector<std::filesystem::path>> live_lower_dirs(
    const std::filesystem::path& running_dir);

}  // namespace kiste::runtime
