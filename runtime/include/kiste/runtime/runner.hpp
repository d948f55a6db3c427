#pragma once
// The runner owns a container from its id to its removal, for every caller (`kiste run`, the
// builder's RUN steps, and later detached containers and the OCI verbs): the container dir, the
// live marker that lets the next kiste clean up after a SIGKILLed one (and tells prune which
// snapshots are in use), the stale sweep, cgroup placement, the seccomp cache and `--rm`.
#include <sys/types.h>

#include <filesystem>
#include <functional>
#include <string>
#include <string_view>

#include <kiste/base/error.hpp>
#include <kiste/base/file_lock.hpp>
#include <kiste/image/root_layout.hpp>
#include <kiste/runtime/cgroup.hpp>
#include <kiste/runtime/container.hpp>
#include <kiste/runtime/live_marker.hpp>
#include <kiste/runtime/spec.hpp>

namespace kiste::runtime {

struct RunnerOptions {
  std::filesystem::path root;  // the kiste root: containers/, running/, cache/seccomp, userns/
  CgroupPlacement cgroups;     // --cgroup-manager, --cgroup-parent
  // Tests on a hybrid host: run on this cgroup2 mount as if the host were pure v2.
  std::optional<CgroupMode> cgroup_mode;
  std::filesystem::path cgroup_v2_mount;
};

struct StartOptions {
  // --rm: the container dir goes when the container ends, and also when it never started.
  bool remove = false;
  // Held by the caller since it resolved the image's snapshots (a shared store lease, so prune
  // cannot delete them); released once the live marker names them.
  FileLock* store_lease = nullptr;
  std::function<void(pid_t)> started;  // the container's process runs
  std::function<Status(int netns_fd)> network_ready;  // RunHooks::network_ready
  std::function<void()> exited;                       // RunHooks::exited
  // A detached container's dir holds its record (container_store.hpp): the live marker does not
  // name it, so the stale sweep after a killed monitor leaves it for `ps -a`, `rm` and prune.
  bool keep_container_dir = false;
};

class Runner {
 public:
  explicit Runner(RunnerOptions o) : o_(std::move(o)) {}

  [[nodiscard]] static std::string new_id();  // 32 lowercase hex
  [[nodiscard]] std::filesystem::path container_dir(std::string_view id) const;
  [[nodiscard]] std::filesystem::path running_dir() const {
    return image::RootLayout(o_.root).running();
  }

  // Removes what containers whose kiste was killed left behind (live_marker.hpp).
  [[nodiscard]] Result<StaleCleanup> sweep() const;

  // Runs `spec` to completion under a live marker named by spec.id. The marker names the
  // container dir for stale cleanup only when it is this root's containers/<id> (a build step's
  // dir belongs to its build). No error is dropped: one that would leave a SIGKILLed run
  // uncleanable ends the run before the container starts.
  [[nodiscard]] Result<ContainerExit> run(const ContainerSpec& spec, const StartOptions& opts) const;

 private:
  RunnerOptions o_;
};

}  // namespace kiste::runtime
