#pragma once
// The build cache as a registry artifact (`--cache-to` / `--cache-from REPO`, like BuildKit's
// `type=registry,ref=…`): an OCI image manifest with artifactType kCacheArtifactType whose layers
// are the cached layer blobs and whose config (kCacheConfigType, JSON) maps each step's cache key
// to the layer it produced (digest, size, media type, diff_id). A step that made no layer (a
// WORKDIR whose directory already existed) is recorded without one. The builder reads and writes
// these documents through image sources and sinks (cli/ opens a registry's through the
// transports); on a local miss whose key is in an imported map it asks a CacheImporter for the
// blob instead of running the step.
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <kiste/base/error.hpp>
#include <kiste/image/descriptor.hpp>
#include <kiste/image/layer_writer.hpp>
#include <kiste/image/image_source.hpp>
#include <kiste/image/manifest.hpp>
#include <kiste/image/reference.hpp>
#include <kiste/image/store.hpp>

namespace kiste::builder {

inline constexpr std::string_view kCacheArtifactType = "application/vnd.kiste.buildcache.v1";
inline constexpr std::string_view kCacheConfigType =
    "application/vnd.kiste.buildcache.config.v1+json";
inline constexpr std::string_view kDefaultCacheTag = "buildcache";

struct CacheRecord {
  image::Digest key = image::Digest::of("");
  std::optional<image::LayerResult> layer;  // nullopt: the step made no layer

  friend bool operator==(const CacheRecord& a, const CacheRecord& b) {
    auto same = [](const image::LayerResult& x, const image::LayerResult& y) {
      return x.digest == y.digest && x.size == y.size && x.diff_id == y.diff_id &&
             x.media_type == y.media_type;
    };
    return a.key == b.key && a.layer.has_value() == b.layer.has_value() &&
           (!a.layer || same(*a.layer, *b.layer));
  }
};

// The config document (records sorted by key, duplicates dropped: stable bytes).
[[nodiscard]] std::string serialize_cache_config(const std::vector<CacheRecord>& records);
// Parses a config document; hostile input (bad JSON, bad digests, sizes, media types) is an
// error naming the field.
[[nodiscard]] Result<std::vector<CacheRecord>> parse_cache_config(std::string_view bytes);

// Writes the config blob into `store` and returns the cache manifest (not stored) whose layers
// are the records' distinct layer blobs. Every layer blob must be in the store.
[[nodiscard]] Result<image::ManifestBlob> make_cache_manifest(
    const image::Store& store, const std::vector<CacheRecord>& records);

// Checks that `m` is a kiste build-cache manifest (artifact type and config media type).
[[nodiscard]] Status check_cache_manifest(const image::ManifestBlob& m);

// Fetches a layer blob of an imported cache into the builder's store (digest verified).
class CacheImporter {
 public:
  virtual ~CacheImporter() = default;
  [[nodiscard]] virtual Status fetch(const image::Descriptor& layer) = 0;
};

// `--cache-to` / `--cache-from` as BuildKit spells them: `host/repo[:tag]`, or
// `type=registry,ref=host/repo[:tag]` with other keys (mode=, oci-mediatypes=, compression=,
// ignore-error=) accepted and ignored (kiste exports every step). The tag defaults to
// kDefaultCacheTag; a digest is refused. `flag` names the option in errors.
[[nodiscard]] Result<image::Reference> parse_cache_ref(std::string_view s, std::string_view flag);

// An imported cache read from an image source (a registry's, opened by cli/).
class SourceCache final : public CacheImporter {
 public:
  SourceCache(std::unique_ptr<image::ImageSource> src, const image::Store& store)
      : src_(std::move(src)), store_(store) {}
  // Checks that the source is a build cache and returns its records (config digest verified).
  [[nodiscard]] Result<std::vector<CacheRecord>> records();
  // Copies the layer into the store with image::copy_blob (verified by the store).
  [[nodiscard]] Status fetch(const image::Descriptor& layer) override;

 private:
  std::unique_ptr<image::ImageSource> src_;
  const image::Store& store_;
};

// Several `--cache-from`: each layer comes from the first cache that serves it.
class FirstCache final : public CacheImporter {
 public:
  explicit FirstCache(std::vector<CacheImporter*> caches) : caches_(std::move(caches)) {}
  [[nodiscard]] Status fetch(const image::Descriptor& layer) override;

 private:
  std::vector<CacheImporter*> caches_;
};

// `--cache-to`: the cache manifest over `records`, its config and layers, into `dst` with
// image::copy_image (blobs the destination has are skipped).
[[nodiscard]] Status export_cache(const image::Store& store,
                                  const std::vector<CacheRecord>& records, image::ImageSink& dst);

}  // namespace kiste::builder
