#pragma once
// The layout of a kiste root (DESIGN.md "On disk"), named once. Every part that reaches into the
// root asks this type for the path instead of joining a literal:
//
//   oci-layout, index.json, blobs/sha256/…   the content store (an OCI image layout)
//   snapshots/<diff-id>/                     unpacked layers, read-only overlay lowers
//   containers/<id>/                         a container's state, upper/work dirs
//   container-names/<name>                   the name index of detached containers
//   running/<id>                             live markers of running containers
//   volumes/<name>/_data                     named volumes
//   cache/{build,context,mounts,seccomp}/    build cache records, context hashes, RUN --mount
//                                            type=cache dirs, compiled seccomp filters
//   tmp/                                     in-flight downloads and builds (same fs as blobs)
//   userns/                                  locks of the id ranges lent to user namespaces
//   networks/<name>.json, <name>.leases      bridge networks and their address leases
#include <filesystem>
#include <span>
#include <string_view>

namespace kiste::image {

class RootLayout {
 public:
  explicit RootLayout(std::filesystem::path root) : root_(std::move(root)) {}

  static constexpr std::string_view kBlobs = "blobs";
  static constexpr std::string_view kSnapshots = "snapshots";
  static constexpr std::string_view kContainers = "containers";
  static constexpr std::string_view kRunning = "running";
  static constexpr std::string_view kVolumes = "volumes";
  static constexpr std::string_view kCache = "cache";
  static constexpr std::string_view kTmp = "tmp";
  static constexpr std::string_view kUserns = "userns";
  static constexpr std::string_view kContainerNames = "container-names";
  static constexpr std::string_view kNetworks = "networks";

  // The directories that hold unpacked image content or container state (setuid files, device
  // nodes, a container's writes): only the root's owner may enter them (CVE-2021-41091).
  [[nodiscard]] static std::span<const std::string_view> private_dirs();
  // A name kiste itself creates at the top of a root (a root holding only these may be
  // initialised as a store).
  [[nodiscard]] static bool is_kiste_entry(std::string_view name);

  [[nodiscard]] const std::filesystem::path& root() const { return root_; }
  [[nodiscard]] std::filesystem::path blobs() const { return root_ / kBlobs; }
  [[nodiscard]] std::filesystem::path snapshots() const { return root_ / kSnapshots; }
  [[nodiscard]] std::filesystem::path containers() const { return root_ / kContainers; }
  [[nodiscard]] std::filesystem::path container(std::string_view id) const {
    return containers() / id;
  }
  [[nodiscard]] std::filesystem::path running() const { return root_ / kRunning; }
  [[nodiscard]] std::filesystem::path volumes() const { return root_ / kVolumes; }
  [[nodiscard]] std::filesystem::path cache() const { return root_ / kCache; }
  [[nodiscard]] std::filesystem::path build_cache() const { return cache() / "build"; }
  [[nodiscard]] std::filesystem::path context_cache() const { return cache() / "context"; }
  [[nodiscard]] std::filesystem::path mount_cache() const { return cache() / "mounts"; }
  [[nodiscard]] std::filesystem::path seccomp_cache() const { return cache() / "seccomp"; }
  [[nodiscard]] std::filesystem::path tmp() const { return root_ / kTmp; }
  [[nodiscard]] std::filesystem::path userns() const { return root_ / kUserns; }
  [[nodiscard]] std::filesystem::path container_names() const { return root_ / kContainerNames; }
  [[nodiscard]] std::filesystem::path networks() const { return root_ / kNetworks; }
  [[nodiscard]] std::filesystem::path oci_layout_file() const { return root_ / "oci-layout"; }
  [[nodiscard]] std::filesystem::path index_file() const { return root_ / "index.json"; }

 private:
  std::filesystem::path root_;
};

}  // namespace kiste::image
