#pragma once
// Image archives: `kiste import` (a rootfs tarball → a one-layer image), `kiste save`
// (docker-archive as `docker save` writes it, or oci-archive) and `kiste load` (both formats,
// including archives from docker save, podman save and skopeo copy).
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <kiste/image/image_config.hpp>
#include <kiste/image/store.hpp>

namespace kiste::image {

struct ImportOptions {
  // Dockerfile-style changes: "CMD [\"sh\"]", "ENV A=1", "WORKDIR /w", "ENTRYPOINT …", "USER u",
  // "EXPOSE 80/tcp", "LABEL k=v".
  std::vector<std::string> changes;
  std::optional<Platform> platform;  // default: the host
  // Created time (seconds); default SOURCE_DATE_EPOCH if set, else now.
  std::optional<int64_t> created;
  std::string message;  // history comment
  // Told as the input is read, twice: phase "checking" (is it a tar?) then "packing" (hash and
  // compress); `done` and `total` are bytes of the file as stored (compressed if it is).
  std::function<void(std::string_view phase, uint64_t done, uint64_t total)> on_progress;
};

// Imports a tar (optionally gzip/zstd/xz/bzip2 compressed; "-" reads stdin) as one gzip layer
// with a minimal config, and names it. Returns the manifest descriptor.
[[nodiscard]] Result<Descriptor> import_rootfs(const Store& store, const std::filesystem::path& tar,
                                               const Reference& name, const ImportOptions& opts);

// Applies one `--change` instruction to a config.
[[nodiscard]] Status apply_change(ContainerDefaults& cfg, std::string_view change);

enum class ArchiveFormat { DockerArchive, OciArchive };

struct SaveResult {
  // The images' store-side referrers (attestations, signatures; of the top manifest and of an
  // index's children) written as index.json entries of their own (oci-archive), or left out
  // because the format cannot hold them (docker-archive).
  int referrers_saved = 0;
  int referrers_left_out = 0;
};
// Writes `images` into one archive at `out` ("-" = stdout), atomically for files. An
// oci-archive also holds the images' store-side referrers, as skopeo and oras keep referrers in
// an OCI layout: their manifests as unnamed index.json entries (with artifactType), each
// manifest's `subject` naming its image.
[[nodiscard]] Result<SaveResult> save_archive(const Store& store,
                                              const std::vector<StoreEntry>& images,
                                              const std::filesystem::path& out,
                                              ArchiveFormat format);

struct LoadedImage {
  std::optional<Reference> name;  // none when the archive names none (kept by digest)
  Descriptor manifest;
  // Unnamed index.json entries whose `subject` is this image (or one of its platform images):
  // stored as its store-side referrers.
  int referrers = 0;
};
// Loads every image of an archive ("-" = stdin; compressed archives are fine). On failure the
// store is left as it was (blobs this load added are removed again).
[[nodiscard]] Result<std::vector<LoadedImage>> load_archive(const Store& store,
                                                            const std::filesystem::path& in);

}  // namespace kiste::image
