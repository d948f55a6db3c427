#pragma once
// Whole-store operations behind `kiste images`, `inspect`, `prune` and `fsck`.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include <kiste/image/store.hpp>

namespace kiste::image {

struct ImageSummary {
  std::string name;        // full normalised reference, or the digest for unnamed images
  std::string repository;  // familiar form ("busybox"), "<none>" if unnamed
  std::string tag;         // "<none>" if untagged
  Digest manifest_digest = Digest::of("");
  Digest image_id = Digest::of("");  // config digest (docker's IMAGE ID); manifest for indexes
  std::string created;               // from the config, RFC 3339
  int64_t size = 0;             // the layers unpacked, as `du -sb` counts them (docker's SIZE)
  int64_t compressed_size = 0;  // manifest + config + layers as stored
};

[[nodiscard]] Result<std::vector<ImageSummary>> list_images(const Store& store);

// Docker's image ID of a stored image: its config digest (an index's own digest, since an
// index has no single config). What build, import and load print and `images` shows.
[[nodiscard]] Result<Digest> image_id(const Store& store, const Descriptor& manifest);
// The store-side referrers of the image `top` (of its manifest and, for an index, of each of its
// manifests) as {subject, artifact}: what save, push and copy carry with it.
[[nodiscard]] Result<std::vector<std::pair<Digest, Descriptor>>> image_referrers(
    const Store& store, const Descriptor& top);
// `kiste images --format json`: a list of {name, repository, tag, id, digest, created, size}.
[[nodiscard]] std::string images_json(const std::vector<ImageSummary>& list);

// `kiste inspect`: one JSON object in docker's shape (see inspect.hpp). For an index, the
// host platform's image (the index is described under Index).
[[nodiscard]] Result<std::string> inspect_image(const Store& store, const StoreEntry& entry);

struct PruneReport {
  int blobs_removed = 0;
  int64_t bytes_freed = 0;
  int tmp_removed = 0;
  int snapshots_removed = 0;
};
struct PruneOptions {
  // Called under the exclusive gc lock (no container can start meanwhile): the snapshot dirs
  // that running containers use (runtime::live_lower_dirs). They are kept even when no named
  // image uses their layer any more.
  std::function<Result<std::vector<std::filesystem::path>>()> snapshots_in_use;
  // Called first under the same lock: the caller's cleanup that must not race with a starting
  // container (removing exited containers' dirs).
  std::function<Status()> while_locked;
};
// Deletes every blob no named image reaches, snapshots of layers no image (and no running
// container) uses, and stale tmp/ files of crashed writers.
[[nodiscard]] Result<PruneReport> prune(const Store& store, const PruneOptions& opts = {});

struct FsckReport {
  int blobs_checked = 0;
  std::vector<std::string> problems;  // one line each
  std::vector<Digest> moved_aside;    // corrupt blobs moved to <root>/corrupt/
  int tmp_removed = 0;
  [[nodiscard]] bool clean() const { return problems.empty(); }
};
// Re-hashes every blob (corrupt ones are moved aside), checks that every named image's
// manifests, configs and layers are present, and removes stale tmp/ files.
[[nodiscard]] Result<FsckReport> fsck(const Store& store);

// Digests reachable from index.json (manifests, indexes, configs, layers). Missing manifests
// are reported through `missing` instead of failing.
[[nodiscard]] Result<std::vector<Digest>> reachable_blobs(const Store& store,
                                                          std::vector<std::string>* missing);

// `kiste system df`: what each part of a root holds.
struct StoreUsage {
  struct Part {
    int64_t count = 0;
    int64_t bytes = 0;
  };
  Part images;        // distinct images index.json names; bytes: the blobs they reach
  Part unused_blobs;  // blobs no image reaches (`kiste prune` deletes them)
  Part snapshots;     // unpacked layers (snapshots/)
  Part build_cache;   // cache/: build cache records, context hashes, RUN cache mounts
  Part containers;    // containers/: state and writable layers
  Part volumes;       // volumes/
  Part tmp;           // tmp/: in-flight downloads and builds, or leftovers of killed commands
};
[[nodiscard]] Result<StoreUsage> store_usage(const Store& store);

// Removes tmp/ files and directories (staging files, build and snapshot work dirs) that no
// live process holds (their owner was killed). Returns the count.
[[nodiscard]] Result<int> remove_stale_tmp(const Store& store);

}  // namespace kiste::image
