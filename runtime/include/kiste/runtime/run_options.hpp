#pragma once
// Docker-level `run` options + the image's process defaults -> ContainerSpec. All decisions of
// `kiste run` live here (unit-tested); the CLI only fills RunOptions.
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <kiste/base/error.hpp>
#include <kiste/runtime/spec.hpp>

namespace kiste::runtime {

// From the image config (Entrypoint, Cmd, Env, WorkingDir, User).
struct ImageProcessDefaults {
  std::vector<std::string> entrypoint;
  std::vector<std::string> cmd;
  std::vector<std::string> env;
  std::string working_dir;
  std::string user;
};

struct RunOptions {
  std::optional<std::string> entrypoint;  // --entrypoint ("" clears the image's)
  std::vector<std::string> command;       // COMMAND [ARG…]
  std::vector<std::string> env;           // -e KEY=VALUE or -e KEY (taken from `host_env`)
  std::vector<std::filesystem::path> env_files;
  std::string workdir;  // -w
  std::string user;     // -u name|uid[:gid|group]
  std::vector<std::string> cap_add, cap_drop;
  bool privileged = false;
  // -v HOST|NAME:CTR[:OPTS], OPTS comma-separated: ro|rw, rprivate|private|rslave|slave, z|Z
  std::vector<std::string> volumes;
  // --mount type=bind|volume|tmpfs,source=…,target=…[,readonly][,bind-propagation=…]
  std::vector<std::string> mounts;
  std::vector<std::string> security_opts; // seccomp=PATH|unconfined, no-new-privileges[=true|false]
  std::vector<std::string> ulimits;       // --ulimit nofile=1024:2048
  std::optional<int64_t> pids_limit;
  std::string memory, memory_swap, cpus;
  std::optional<uint64_t> cpu_shares;
  bool read_only = false;
  std::string hostname;
  bool init = false;
  std::string network = "none";
  bool interactive = false;
  bool tty = false;
  std::string userns;                    // --userns host (default) | auto
  std::vector<std::string> uidmap, gidmap;  // --uidmap/--gidmap CONTAINER_ID:HOST_ID:SIZE
};

struct MakeSpecInput {
  std::string id;                                 // container id (default hostname: its first 12)
  std::vector<std::filesystem::path> lower_dirs;  // bottom first
  std::filesystem::path container_dir;
  ImageProcessDefaults image;
  const char* const* host_env = nullptr;  // for `-e KEY` without a value
  // Named volumes (`-v NAME:/path`) live here (<root>/volumes); empty: only host paths.
  std::filesystem::path volumes_dir;
  // --init: the kiste-init binary to run as PID 1 (default_init_binary()).
  std::filesystem::path init_binary;
  // Mounts of a library caller (the builder's RUN --mount), typed: added after --volume and
  // --mount and checked like them. Bind sources must be absolute.
  std::vector<MountSpec> mounts;
};

// Where --init's PID 1 appears in the container (read-only; like docker's /sbin/docker-init).
inline constexpr std::string_view kInitPath = "/dev/init";

// The smallest --memory docker (and kiste) accept: 6 MiB.
inline constexpr int64_t kMinMemoryLimit = 6 << 20;

[[nodiscard]] Result<ContainerSpec> make_spec(const RunOptions& opts, const MakeSpecInput& in);

// kiste-init: $KISTE_INIT (an absolute path), else beside the running binary (or in
// ../libexec/kiste/); empty when there is none.
[[nodiscard]] std::filesystem::path default_init_binary();

// Capability names ("CAP_NET_ADMIN", "net_admin", "ALL") -> mask.
[[nodiscard]] Result<uint64_t> parse_capability(std::string_view name);
[[nodiscard]] uint64_t all_capabilities();

struct ResolvedUser {
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> additional_gids;
  std::string home;
};
// Resolves "name", "uid", "name:group", "uid:gid" against /etc/passwd and /etc/group of the
// image (the top-most layer that has the file; read in-root, symlinks cannot leave the layer).
[[nodiscard]] Result<ResolvedUser> resolve_user(std::string_view user,
                                                const std::vector<std::filesystem::path>& lower_dirs);

// One line when the container gets CAP_SYS_ADMIN (--cap-add, not --privileged, which says what
// it is) and no Linux security module (AppArmor, SELinux, Smack, TOMOYO) is active to confine
// it, as Docker relies on AppArmor to; empty otherwise. `lsm_list` is /sys/kernel/security/lsm.
[[nodiscard]] std::string sys_admin_warning(
    const ContainerSpec& spec,
    const std::filesystem::path& lsm_list = "/sys/kernel/security/lsm");

// Parses one env-file (KEY=VALUE lines, `#` comments, bare KEY taken from host_env).
[[nodiscard]] Result<std::vector<std::string>> read_env_file(const std::filesystem::path& file,
                                                             const char* const* host_env);

}  // namespace kiste::runtime
