#include <kiste/runtime/runner.hpp>

#include <kiste/base/sys.hpp>
#include <kiste/image/root_layout.hpp>

namespace kiste::runtime {

namespace fs = std::filesystem;

std::string Runner::new_id() { return sys::random_hex(32); }

fs::path Runner::container_dir(std::string_view id) const {
  return image::RootLayout(o_.root).container(id);
}

Result<StaleCleanup> Runner::sweep() const {
  return clean_stale_containers(running_dir(), image::RootLayout(o_.root).containers());
}

Result<ContainerExit> Runner::run(const ContainerSpec& spec, const StartOptions& opts) const {
  const fs::path& dir = spec.root.container_dir;
  const bool own_dir = dir == container_dir(spec.id);
  auto result = [&]() -> Result<ContainerExit> {
    if (own_dir) KISTE_TRY(sys::mkdir_all(dir, 0700));  // containers/ too, also 0700
    KISTE_ASSIGN_OR_RETURN(LiveMarker marker,
                           LiveMarker::create(running_dir(), spec.id,
                                              own_dir && !opts.keep_container_dir ? dir : fs::path{},
                                              spec.root.lower_dirs));
    if (opts.store_lease != nullptr) opts.store_lease->release();  // the marker protects them now
    RunContext ctx{.cgroup_mode = o_.cgroup_mode,
                   .cgroups = o_.cgroups,
                   .cgroup_v2_mount = o_.cgroup_v2_mount,
                   .seccomp_cache_dir = image::RootLayout(o_.root).seccomp_cache(),
                   .remove_container_dir = opts.remove,
                   .userns_lock_dir = image::RootLayout(o_.root).userns()};
    ctx.hooks.started = opts.started;
    ctx.hooks.network_ready = opts.network_ready;
    ctx.hooks.exited = opts.exited;
    ctx.hooks.cgroup_created = [&marker](const std::vector<fs::path>& dirs, const std::string& unit) {
      return marker.record_cgroups(dirs, unit);
    };
    return run_container(spec, ctx);
  }();
  if (opts.remove && (!result || own_dir)) {
    // run_container removed it unless the container never ran; a removal that fails is
    // reported unless the run itself failed (that error comes first).
    auto rm = remove_container_dir(dir);
    if (!rm && result) return std::unexpected(std::move(rm).error());
  }
  return result;
}

}  // namespace kiste::runtime
