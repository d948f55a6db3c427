#pragma once
// MountPlan: every mount of a container as a flat list of operations, decided and validated in
// the parent (testable without root), applied in the child by one loop (child.cpp).
#include <sys/mount.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <kiste/base/error.hpp>
#include <kiste/runtime/spec.hpp>

namespace kiste::runtime {

enum class MountOpKind {
  Mount,          // mount(source, target, fstype, flags, data)
  Bind,           // bind (recursive) source onto target; remounted read-only when flags has MS_RDONLY
  Mknod,          // character device `dev` at target (mode 0666)
  Symlink,        // symlink source -> target
  Mask,           // /dev/null over a file, read-only empty tmpfs over a directory; absent: skip
  ReadonlyPath,   // bind target onto itself, read-only; absent: skip
  RemountReadonly,  // the mount at target becomes read-only (flags: extra MS_ flags to keep)
  // Move into the container's cgroup (made before clone), then enter a new cgroup namespace.
  // Late on purpose: what the setup before it allocates in the kernel (mounts, the runtime
  // layer) is charged to the runtime's cgroup, not to the container's memory limit.
  JoinCgroup,
  // A file the runtime provides (/etc/hosts, …): `data`, written by the child to a small tmpfs
  // that the overlay root then covers, bound onto target. Nothing of it touches the host's disk.
  // Only where the runtime layer (MountPlan::runtime_layer) cannot be used.
  RuntimeFile,
  // Writes `data` to the existing file at target (a sysctl under /proc/sys).
  WriteFile,
};

enum class CreateKind { None, Dir, File };

struct MountOp {
  MountOpKind kind = MountOpKind::Mount;
  std::string source;
  std::string target;  // absolute path inside the container root
  std::string fstype;
  unsigned long flags = 0;
  std::string data;
  CreateKind create = CreateKind::None;
  uint64_t dev = 0;  // Mknod: makedev(major, minor)
  uint32_t mode = 0666;           // Mknod: permission bits
  uint32_t uid = 0, gid = 0;      // Mknod: owner
  DeviceType node = DeviceType::Char;  // Mknod: what to make
  unsigned long propagation = 0;  // Bind: MS_PRIVATE/MS_SLAVE (| MS_REC) applied after mounting
  bool idmap = false;             // Bind: idmapped to the container's user namespace

  bool operator==(const MountOp&) const = default;
};

// The image's /etc as its top-most layer has it (the runtime layer sits on top of it).
struct ImageEtc {
  enum class Kind {
    Unknown,    // not looked at: the runtime files are bound over the image's
    Absent,     // no layer has /etc (or a whiteout hides it)
    Directory,  // mode/uid/gid are the directory's
    Other,      // a symlink or a file: a directory on top would hide it, so binds are used
  };
  Kind kind = Kind::Unknown;
  uint32_t mode = 0755;
  uint32_t uid = 0;
  uint32_t gid = 0;
};

// The runtime's files (/etc/hosts, /etc/hostname, /etc/resolv.conf) as the overlay's top lower
// layer: a small tmpfs the child fills before mounting the overlay. Nothing is bound, nothing is
// copied up unless the container writes the file, the upper dir stays empty, and nothing of it
// reaches the host's disk. Its `etc` carries the image's /etc mode and owner, so the merged /etc
// looks as the image's.
struct RuntimeLayer {
  uint32_t etc_mode = 0755;
  uint32_t etc_uid = 0;
  uint32_t etc_gid = 0;
  std::vector<std::pair<std::string, std::string>> files;  // name inside /etc -> content
};

// A cgroup v1 hierarchy as it will appear under /sys/fs/cgroup inside the container.
struct CgroupV1Hierarchy {
  std::string name;     // directory name: "memory", "cpu", "systemd"
  std::string options;  // mount data: "memory", "name=systemd"
};

struct MountPlanContext {
  // Empty: cgroup v2 (one cgroup2 mount). Otherwise one cgroup mount per hierarchy.
  std::vector<CgroupV1Hierarchy> cgroup_v1;
  bool cgroup_v2 = false;
  size_t page_size = 4096;  // the kernel's limit for the mount option string
  // Files to provide, e.g. {"/etc/hosts", "127.0.0.1 localhost…"}: on the runtime layer when
  // all are in /etc, image_etc is a directory or absent, the root is writable and there is no
  // user namespace; otherwise bound over the image's (RuntimeFile ops). Docker keeps these files
  // writable under --read-only; binds do that.
  std::vector<std::pair<std::string, std::string>> runtime_files;
  ImageEtc image_etc;
  // The container has its own user namespace: sysfs can only be mounted with a network namespace
  // of its own; with the host's network /sys is bound read-only instead.
  bool userns = false;
  // Extra masked paths found on the host (e.g. /sys/devices/system/cpu/cpu0/thermal_throttle).
  std::vector<std::string> extra_masked_paths;
  // O_PATH fds of <container>/upper and /work that the child inherits. Given, the overlay
  // options name them as /proc/self/fd/N and the root is mounted on the container dir itself,
  // which the child may cover first (the runtime layer's tmpfs): no `merged` dir to create
  // and remove. Not given (-1): <container>/merged is the mount point and the options name paths.
  int upper_fd = -1;
  int work_fd = -1;
  // The overlay is mounted outside the initial user namespace (rootless kiste): its opaque
  // dirs are user.overlay.* xattrs (image/layer_extract.hpp), so `userxattr`.
  bool userxattr = false;
};

class MountPlan {
 public:
  // Validates and orders everything: targets absolute, no "..", no NUL, overlay options within
  // one page (when the layer paths do not fit, they are named by short links "0", "1", …
  // relative to lower_link_dir).
  [[nodiscard]] static Result<MountPlan> from_spec(const ContainerSpec& spec,
                                                   const MountPlanContext& ctx);

  // The overlay root.
  // Mount point of the root (host path): the container dir, or <container>/merged (see
  // MountPlanContext::upper_fd).
  std::filesystem::path merged_dir;
  // MountPlanContext::upper_fd/work_fd when given: the child reopens <container>/upper and /work
  // in its own mount namespace onto these numbers (an fd opened in the runtime's namespace
  // names a mount overlayfs refuses to use there).
  int upper_fd = -1;
  int work_fd = -1;
  // Empty when the absolute layer paths fit the page; otherwise the child chdirs here so
  // lowerdir can name the layers by these short links.
  std::filesystem::path lower_link_dir;
  std::vector<std::pair<std::string, std::filesystem::path>> lower_links;  // name -> layer dir
  // "lowerdir=/top:…:/bottom,…" or "lowerdir=2:1:0,upperdir=…,…"; with a runtime layer the
  // mount point (where the child mounts that layer's tmpfs first) is the top lowerdir.
  std::string overlay_data;
  // With `volatile` (RootSpec::volatile_upper) the same without it, for kernels before 5.10.
  std::string overlay_data_plain;
  std::optional<RuntimeLayer> runtime_layer;
  // RootSpec::rootfs: the root is this directory bound onto itself (merged_dir is the same
  // path), not an overlay; overlay_data is empty.
  std::filesystem::path bind_root;
  bool readonly_root = false;
  // The first step in the child: "/" becomes MS_REC|<this> (MS_SLAVE when a volume asks for
  // slave propagation, so host mounts still reach it; never shared).
  unsigned long root_propagation = MS_PRIVATE;
  std::vector<MountOp> ops;  // in order, targets relative to the new root
};

// Checks a container path: absolute, no NUL, no ".." component, not "/". Normalises "//" and
// trailing slashes.
[[nodiscard]] Result<std::string> normalize_container_path(std::string_view path);

}  // namespace kiste::runtime
