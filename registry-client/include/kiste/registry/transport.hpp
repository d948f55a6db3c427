#pragma once
// Transports: where an image is or goes, named as skopeo names them (docker://REF,
// oci:DIR[:NAME], dir:DIR, oci-archive:PATH, docker-archive:PATH) or a stored image (store:NAME,
// or a plain NAME), opened as the image::ImageSource and image::ImageSink that copy_image joins.
// `kiste copy`, pull and push are these plus copy_image; cli/ only parses flags and prints.
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <kiste/base/error.hpp>
#include <kiste/base/file_lock.hpp>
#include <kiste/base/temp_dir.hpp>
#include <kiste/image/copy.hpp>
#include <kiste/image/reference.hpp>
#include <kiste/image/staged_blobs.hpp>
#include <kiste/image/store.hpp>
#include <kiste/registry/access.hpp>

namespace kiste::registry {

struct Location {
  enum class Kind { Registry, OciLayout, Dir, OciArchive, DockerArchive, Store };
  Kind kind = Kind::Store;
  std::string value;  // what follows the prefix: a reference, a path, DIR[:NAME], a stored name
  std::string text;   // as the user wrote it (for messages)
  [[nodiscard]] bool is_archive() const {
    return kind == Kind::OciArchive || kind == Kind::DockerArchive;
  }
};

// Parses a location; a prefix with nothing after it, or a docker:// reference that does not
// parse, is an error that names the location.
[[nodiscard]] Result<Location> parse_location(std::string_view s);

struct TransportOptions {
  std::filesystem::path store_root;  // the store that Kind::Store means (--root)
  AccessOptions access;              // for docker://
};

// An archive's images pass through a scratch store in the temp directory, removed afterwards.
struct ScratchStore {
  TempDir dir;
  std::unique_ptr<image::Store> store;
};

// An opened source and everything it borrows (client, store, scratch store).
struct OpenedSource {
  Remote remote;
  std::optional<ScratchStore> scratch;
  std::unique_ptr<image::Store> store;
  std::optional<image::Reference> name;  // the source's reference, when it has one
  std::unique_ptr<image::ImageSource> image;
};

[[nodiscard]] Result<OpenedSource> open_source(const Location& l, const TransportOptions& t);

// An opened destination and what it borrows. Into the store, the blobs a failed copy added are
// removed again (image::StagedStoreSink); archives are written from a scratch store by finish().
struct OpenedSink {
  Location where;
  Remote remote;
  std::optional<ScratchStore> scratch;
  std::unique_ptr<image::Store> store;
  std::optional<FileLock> lease;
  std::optional<image::Reference> name;  // an archive's name for the image
  std::unique_ptr<image::ImageSink> sink;
  image::StagedStoreSink* staged = nullptr;

  // After a successful copy_image: names what was copied (store), writes the archive.
  [[nodiscard]] Status finish(const image::CopyResult& r);
};

// `src_name` names the image in an archive destination (an archive source's or a registry's
// reference).
[[nodiscard]] Result<OpenedSink> open_sink(const Location& l, const TransportOptions& t,
                                           const std::optional<image::Reference>& src_name);

// `kiste copy`: opens both ends and copies. What the store or an archive holds is copied as it
// is (index and all, opts.all), like push. Store to store is refused (that is `kiste tag`).
[[nodiscard]] Result<image::CopyResult> copy(const Location& src, const Location& dst,
                                             const TransportOptions& t, image::CopyOptions opts);

// The registry image `ref` as an ImageSource that owns its client; nullptr when the registry
// has no manifest under `ref` (a build cache not exported yet).
[[nodiscard]] Result<std::unique_ptr<image::ImageSource>> open_remote_if_present(
    const image::Reference& ref, const AccessOptions& access);

// `kiste pull`: `ref` (the manifest for opts.platform when it names an index) into `store`,
// named `ref`, under the store's writer lease.
[[nodiscard]] Result<image::CopyResult> pull_image(const image::Store& store,
                                                   const image::Reference& ref,
                                                   const AccessOptions& access,
                                                   const image::CopyOptions& opts);

// `kiste push` and `build --push`: the stored image `entry`, index and all, to `dest`.
[[nodiscard]] Result<image::CopyResult> push_image(const image::Store& store,
                                                   const image::StoreEntry& entry,
                                                   const image::Reference& dest,
                                                   const AccessOptions& access,
                                                   image::CopyOptions opts);

}  // namespace kiste::registry
