#pragma once
// Options every command sees, and the one way commands report results and errors.
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include <kiste/base/error.hpp>
#include <kiste/image/store.hpp>
#include <kiste/base/file_lock.hpp>
#include <kiste/runtime/cgroup.hpp>
#include <kiste/runtime/container_store.hpp>

namespace kiste::image {
struct SaveResult;
}

namespace kiste::cli {

// `kiste version`, and the builder id in build provenance.
inline constexpr const char* kVersion = "0.1.0";

struct Globals {
  std::filesystem::path root;  // --root / KISTE_ROOT / /var/lib/kiste
  std::string log_level = "warn";
};

// Exit codes (docker/podman convention): 125 kiste failed, 126 cannot run, 127 not found.
inline constexpr int kExitFailure = 125;

// Prints "kiste: error: <context…>: <message>" on one line to stderr; returns kExitFailure.
int report(const Error& e);

// Throws CLI::RuntimeError(kExitFailure) after printing the error; the command's exit.
void exit_on_error(const Status& s);
template <class T>
T value_or_exit(Result<T>&& r) {
  if (!r) exit_on_error(std::unexpected(std::move(r).error()));
  return std::move(*r);
}

// The store at --root, created on first use: for commands that write (pull, load, build, …).
[[nodiscard]] image::Store open_store(const Globals& g);
// The store at --root for commands that only read or change what is there (images, inspect,
// save, push, tag, rmi, prune, fsck): a missing one is `no kiste store at DIR`, never created.
[[nodiscard]] image::Store open_existing_store(const Globals& g);

// --cgroup-manager (or $KISTE_CGROUP_MANAGER) and --cgroup-parent, for run and build. Rootless
// without a delegated cgroup it warns once, unless a limit is asked for (that is refused).
[[nodiscard]] Result<runtime::CgroupPlacement> cgroup_placement(const std::string& manager,
                                                              const std::string& parent,
                                                              bool limits_asked);

// "4.2MB" as docker prints sizes (SI units).
[[nodiscard]] std::string human_size(int64_t bytes);

// Each command group registers its subcommands.
void register_image_commands(CLI::App& app, Globals& g);    // images inspect tag rmi prune fsck
void register_archive_commands(CLI::App& app, Globals& g);  // import save load
// The one note line when a docker-archive at `out` left referrers (attestations) behind.
void note_referrers_left_out(const image::SaveResult& r, const std::string& out);
void register_build_commands(CLI::App& app, Globals& g);    // build
void register_run_commands(CLI::App& app, Globals& g);  // run volume ps logs stop kill wait rm
void register_container_commands(CLI::App& app, Globals& g);  // ps logs stop kill wait rm
// `kiste container inspect` (under the `container` group).
void add_container_subcommands(CLI::App& ctr, Globals& g);
// Removes every detached container that no longer runs (`container prune`).
void prune_stopped_containers(const Globals& g);
// Starts the monitor of the detached container with id `id` (its record exists and says it does
// not run); 0 once its command runs, else the start error printed and its exit status.
int start_monitor(const Globals& g, const std::string& id, const std::vector<std::string>& run_args);
// The layer dirs (bottom first) a detached container's root is made of (its --rootfs dir, or its
// image's snapshots), kept from prune by `lease` while it is held.
[[nodiscard]] Result<std::vector<std::filesystem::path>> container_lower_dirs(
    const Globals& g, const runtime::ContainerState& s, std::optional<FileLock>& lease);
// `kiste cp` (cmd_cp.cpp).
void register_cp_command(CLI::App& app, Globals& g);
// Top-level `inspect`: containers first, as docker's inspect looks; true when every ref named a
// container (and their JSON was printed).
bool inspect_if_containers(const Globals& g, const std::vector<std::string>& refs,
                           const std::string& format);
// manifest create add remove inspect push rm
void register_manifest_commands(CLI::App& app, Globals& g);
// version info system container
void register_system_commands(CLI::App& app, Globals& g);
// runc's command line (`kiste-runc ARGS`, `kiste oci ARGS`): argv holds ARGS only.
int oci_main(int argc, char** argv);
// `run` under `app` (the top, or the `container` group).
CLI::App* add_run_command(CLI::App& app, Globals& g);
// `kiste container prune`: the leftovers of containers whose kiste was killed.
void prune_containers(const Globals& g);
// `kiste prune`: those leftovers, then blobs, snapshots and tmp/ files nothing uses.
void prune_all(const Globals& g);
// pull push copy promote tags delete login logout
void register_registry_commands(CLI::App& app, Globals& g);


struct RegistryFlags;
// `kiste inspect docker://REF`: the remote image as JSON (like skopeo inspect), without pulling,
// reached with the registry flags given to inspect.
[[nodiscard]] Result<std::string> inspect_remote_json(const RegistryFlags& rf, std::string_view ref);

}  // namespace kiste::cli
