#pragma once
// ContainerSpec: what one container is, close to the OCI runtime config.json. Plain values only:
// make_spec() (run_options.hpp) derives one from docker-style options and the image config, the
// plans (MountPlan, CgroupPlan) and Container::run() consume it.
#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <kiste/runtime/device_filter.hpp>

namespace kiste::runtime {

struct Rlimit {
  int resource = 0;  // RLIMIT_*
  uint64_t soft = 0;
  uint64_t hard = 0;
};

// A program run at a point of a container's life (an OCI config's hooks): path (absolute) with
// args (args[0] is its argv[0]; empty: the path) and env, the runtime-spec state on its stdin,
// killed after `timeout` seconds.
struct Hook {
  std::string path;
  std::vector<std::string> args;
  std::vector<std::string> env;
  std::optional<int> timeout;  // seconds
  bool operator==(const Hook&) const = default;
};

// Capability sets as bit masks (bit N = capability N, as in /proc/self/status).
struct CapabilitySets {
  uint64_t bounding = 0;
  uint64_t effective = 0;
  uint64_t permitted = 0;
  uint64_t inheritable = 0;
  uint64_t ambient = 0;
};

struct ProcessSpec {
  std::vector<std::string> args;  // args[0] is looked up in PATH (execvp semantics) if not absolute
  std::vector<std::string> env;   // "KEY=VALUE"
  std::string cwd = "/";
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> additional_gids;
  bool terminal = false;
  bool interactive = false;  // stdin stays connected (else /dev/null)
  std::vector<Rlimit> rlimits;
  bool no_new_privileges = false;
  CapabilitySets capabilities;
  std::optional<int> oom_score_adj;  // written to /proc/self/oom_score_adj (-1000..1000)
};

// The root: an overlay of read-only lower dirs (bottom first, the image layer order) with an
// upper/work dir, or, with an empty upper, a read-only overlay of the lowers.
struct RootSpec {
  std::vector<std::filesystem::path> lower_dirs;
  // Holds upper/, work/ and lower/ (short links, with 100+ layers); the root is mounted on it.
  std::filesystem::path container_dir;
  bool readonly = false;
  // The upper dir dies with the container (--rm, a build step): overlay's `volatile` skips the
  // sync of the whole host filesystem that unmounting the root would otherwise wait for (podman
  // does the same for --rm, CRI-O for every container).
  bool volatile_upper = false;
  // Hand back an upper dir that holds only what the container wrote (a build step's layer): once
  // the container has ended, the mount points the runtime made there (absent from the lowers,
  // or directories copied up only for them) are removed, and so are the runtime's own files
  // (/etc/hosts, /etc/hostname, /etc/resolv.conf) whatever the container did to them, as under
  // docker build, where they are bind mounts.
  bool clean_upper = false;
  // Set: the root is this directory itself, bound (recursively) in the container's mount
  // namespace instead of an overlay of lower_dirs (an OCI bundle's `root.path`, prepared by the
  // engine). There is no upper dir and the runtime provides no /etc files: the engine binds them.
  std::filesystem::path rootfs;
};

enum class MountKind { Bind, Tmpfs };
enum class Propagation { Private, RPrivate, Slave, RSlave };

struct MountSpec {
  MountKind kind = MountKind::Bind;
  std::filesystem::path source;  // host path for Bind
  std::string destination;       // absolute path inside the container
  bool readonly = false;
  std::string tmpfs_options;  // "size=64m,mode=1777" for Tmpfs
  // Bind: how mounts below it propagate (Docker's default: rprivate). Slave modes make the
  // container's root an rslave of the host's so host mounts below the source appear inside.
  Propagation propagation = Propagation::RPrivate;
  // Bind in a user namespace: an idmapped mount (podman's `:idmap`): host ids appear as the
  // container's (host root as its root) and what it writes is stored with host ids, so a volume
  // serves containers of any id range.
  bool idmap = false;
  // MS_NOSUID, MS_NODEV, MS_NOEXEC (and for Tmpfs the atime flags) on the mount itself.
  unsigned long flags = 0;
};

struct Namespaces {
  bool network = true;  // false: share the host's network namespace (--network host)
  bool time = true;     // when the kernel has it
  bool cgroup = true;
  // Existing namespaces to join instead of making new ones (an OCI config's `path`), e.g.
  // "/proc/123/ns/net" or a bind-mounted nsfs file. Empty: a new one (or the host's, above).
  std::filesystem::path network_path;
  std::filesystem::path ipc_path;
  std::filesystem::path uts_path;
  std::filesystem::path cgroup_path;  // joined after the container's cgroup (instead of unshare)
  // The container's process is made in this pid namespace (the runtime enters it just for the
  // clone: a pid namespace holds only processes made after the join); it is not its init.
  std::filesystem::path pid_path;
  // The container's process enters this mount namespace instead of a new one and sets its root up
  // there (as runc does): the root's path and bind sources are resolved in it, and pivot_root
  // changes the root of every process in it.
  std::filesystem::path mount_path;
};

struct Resources {
  std::optional<int64_t> memory;       // bytes
  std::optional<int64_t> memory_swap;  // bytes of memory+swap, -1 unlimited
  std::optional<int64_t> cpu_quota;    // microseconds per period
  std::optional<uint64_t> cpu_period;  // microseconds
  std::optional<uint64_t> cpu_shares;  // v1 shares (2..262144); mapped to cpu.weight on v2
  std::optional<int64_t> pids;         // max tasks, -1 unlimited
  // Device cgroup allow rules added to Docker's defaults (an OCI config's linux.resources
  // .devices).
  std::vector<DeviceRule> device_rules;
};

struct SeccompSpec {
  bool unconfined = false;
  std::string profile_json;  // Docker's JSON profile format; empty: the built-in default
};

// None: a namespace with only `lo`. Host: the host's. Bridge and Pasta (user-mode networking,
// network/pasta.hpp): a namespace of its own that the caller connects (RunHooks::network_ready)
// before the command runs. Container: another
// container's (`--network container:NAME`), entered by path (Namespaces::network_path:
// "/proc/self/fd/N" of an fd the caller holds, so a reused pid cannot change it).
enum class NetworkMode { None, Host, Bridge, Container, Pasta };

// Whether the caller connects the container's network namespace before the command runs.
[[nodiscard]] constexpr bool attached_by_caller(NetworkMode m) {
  return m == NetworkMode::Bridge || m == NetworkMode::Pasta;
}

// One line of /proc/<pid>/uid_map: container ids [container_id, container_id+size) are host ids
// [host_id, host_id+size).
struct IdMapping {
  uint32_t container_id = 0;
  uint32_t host_id = 0;
  uint32_t size = 0;
  bool operator==(const IdMapping&) const = default;
};

// Host: no user namespace (Docker's default). Auto: a free 65536-wide range is leased when the
// container starts (id_map.hpp). Private: the maps given (--uidmap/--gidmap). KeepId (rootless
// only, podman's --userns=keep-id): the maps of keep_id_maps() (rootless.hpp), nested in kiste's
// namespace; the image is seen through a copy of its layers with the owners moved accordingly
// (no idmapped mount is open to an ordinary user: overlayfs takes none, the layers' filesystem
// belongs to the host's root).
enum class UsernsMode { Host, Auto, Private, KeepId };

struct UserNamespaceSpec {
  UsernsMode mode = UsernsMode::Host;
  std::vector<IdMapping> uid_map, gid_map;  // Private (Auto: filled in by run_container)
};

// A device node made in the container (an OCI config's linux.devices; docker --device).
enum class DeviceType { Char, Block, Fifo };

struct DeviceNode {
  std::string path;  // absolute, inside the container
  DeviceType type = DeviceType::Char;
  uint32_t major = 0, minor = 0;
  uint32_t mode = 0666;  // permission bits
  uint32_t uid = 0, gid = 0;
  bool operator==(const DeviceNode&) const = default;
};

struct ContainerSpec {
  std::string id;
  ProcessSpec process;
  std::string hostname;
  RootSpec root;
  std::vector<MountSpec> mounts;
  Namespaces namespaces;
  Resources resources;
  SeccompSpec seccomp;
  NetworkMode network = NetworkMode::None;
  std::string network_name;  // Bridge: the network (`kiste` by default); Container: the container
  // Lines added to the container's /etc/hosts ("10.88.0.5\tweb"), and its /etc/resolv.conf
  // when set (else the host's).
  std::vector<std::string> extra_hosts;
  std::optional<std::string> resolv_conf;
  UserNamespaceSpec userns;
  bool privileged = false;  // no masked/readonly paths, all devices allowed
  bool init = false;        // process.args start with kiste-init (--init; see make_spec)
  std::vector<std::string> masked_paths;
  std::vector<std::string> readonly_paths;
  // Namespaced kernel parameters ("net.ipv4.ip_forward", "1"), written under /proc/sys once
  // /proc is mounted.
  std::vector<std::pair<std::string, std::string>> sysctls;
  // Device nodes beyond Docker's defaults (the device cgroup must allow them too).
  std::vector<DeviceNode> devices;
};

// Docker's defaults (moby daemon/pkg/oci/defaults.go).
[[nodiscard]] const std::vector<std::string>& docker_masked_paths();
[[nodiscard]] const std::vector<std::string>& docker_readonly_paths();
// The 14 default capabilities as a mask: 0x00000000a80425fb.
inline constexpr uint64_t kDockerDefaultCaps = 0x00000000a80425fbULL;

}  // namespace kiste::runtime
