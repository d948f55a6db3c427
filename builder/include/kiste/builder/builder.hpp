#pragma once
// `kiste build`: executes a BuildPlan. Metadata-only instructions change the config and add
// history entries with empty_layer; COPY/ADD pack a layer with the deterministic layer writer;
// RUN runs through a RunExecutor (the runtime) on an overlay of the stage's snapshots and the
// upper dir becomes the layer. Each layer step has a cache key (parent chain + instruction with
// resolved args/env + content hashes of copied files); a hit reuses the layer and runs nothing.
// The image's config and manifest are written once at the end (ImageDraft-like).
#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <kiste/runtime/cgroup.hpp>
#include <kiste/runtime/spec.hpp>
#include <kiste/base/error.hpp>
#include <kiste/builder/attestation.hpp>
#include <kiste/builder/build_cache.hpp>
#include <kiste/builder/build_plan.hpp>
#include <kiste/image/compression.hpp>
#include <kiste/image/manifest.hpp>
#include <kiste/image/reference.hpp>
#include <kiste/image/store.hpp>

namespace kiste::builder {

// Base images (FROM, COPY --from=image) reach the builder only through this interface: the CLI
// wires it to the store and the registry client; tests to a store with an imported image.
class BaseImageProvider {
 public:
  virtual ~BaseImageProvider() = default;
  // Makes sure the image (manifest, config, layers) is in the builder's store and returns its
  // single-platform manifest.
  [[nodiscard]] virtual Result<image::ManifestBlob> resolve(const image::Reference& ref,
                                                            const image::Platform& platform) = 0;
};

// Resolves from the local store only (an index is narrowed to `platform`).
class StoreImageProvider final : public BaseImageProvider {
 public:
  explicit StoreImageProvider(const image::Store& store) : store_(store) {}
  [[nodiscard]] Result<image::ManifestBlob> resolve(const image::Reference& ref,
                                                    const image::Platform& platform) override;

 private:
  const image::Store& store_;
};

// Where a RUN step's network namespace goes: `kiste build --network default|none|host`, and per
// step `RUN --network=…`.
enum class BuildNetwork {
  None,     // a private namespace with only loopback
  Default,  // a private namespace on the default bridge network (docker's build default): NAT out,
            // no host loopback, no host abstract sockets
  Host,     // the host's namespace: only when the build opts in (BuildKit's network.host)
};
[[nodiscard]] std::string_view to_string(BuildNetwork n);

// One RUN step for the runtime.
struct RunRequest {
  std::vector<std::filesystem::path> lower_dirs;  // bottom first
  std::filesystem::path container_dir;            // upper/ work/ merged/ go here
  std::vector<std::string> argv;
  std::vector<std::string> env;
  std::string cwd = "/";
  std::string user;  // "" = root
  BuildNetwork network = BuildNetwork::None;
  // RUN --mount's binds (absolute host sources) and tmpfs mounts, typed as the runtime takes
  // them: any path works, `,` and `:` included.
  std::vector<runtime::MountSpec> mounts;
  // The stage's platform (its config's os/architecture/variant): a foreign one runs under
  // qemu-user through a binfmt_misc handler (runtime::check_execution), or the step fails.
  image::Platform platform;
};

class RunExecutor {
 public:
  virtual ~RunExecutor() = default;
  // Runs to completion; returns the exit status (0 = success). The upper dir holds the step's
  // changes only: no mount point, no runtime file (/etc/hosts, …) of the executor's own.
  [[nodiscard]] virtual Result<int> run(const RunRequest& req) = 0;
};

// `ADD URL` downloads through this interface: the CLI wires it to the registry client's HTTP
// stack (the builder links no network library).
struct UrlFetch {
  std::optional<int64_t> last_modified;  // seconds since the epoch, from Last-Modified
  uint64_t size = 0;
};
class UrlFetcher {
 public:
  virtual ~UrlFetcher() = default;
  // GETs `url` (http or https) into `out`; a non-2xx answer is an error naming the status.
  [[nodiscard]] virtual Result<UrlFetch> fetch(std::string_view url, image::ByteSink& out) = 0;
};

struct BuildEvent {
  enum class Kind { Step, Cached, Done, Note, Miss };
  Kind kind = Kind::Note;
  int stage = 0;         // index in the Containerfile
  int stage_count = 0;
  std::string stage_name;
  int step = 0;          // 1-based within the build
  int step_count = 0;
  std::string text;      // "RUN make", a note, or a missed-cache explanation line
  double seconds = 0;    // Done
};

struct BuildOptions {
  std::filesystem::path context_dir;
  std::filesystem::path containerfile;  // default: <context>/Containerfile, else Dockerfile
  std::vector<image::Reference> tags;
  PlanOptions plan;
  bool no_cache = false;
  int64_t timestamp = 0;  // SOURCE_DATE_EPOCH / --timestamp
  bool docker_format = false;
  image::CompressOptions compress;
  std::map<std::string, std::filesystem::path> secrets;  // --secret id=ID,src=PATH
  // RUN steps' network (`RUN --network=default` means this one): `kiste build` passes Default.
  // They share the host's network only when the build opts in (Host: `kiste build --network
  // host`, BuildKit's network.host entitlement); then `RUN --network=host` is allowed too,
  // otherwise it is an error.
  BuildNetwork network = BuildNetwork::None;
  bool explain_misses = false;
  std::function<void(const BuildEvent&)> progress;
  // --cache-from: records imported from a registry cache; on a local miss whose key is here,
  // the layer blob is fetched through `cache_importer` instead of running the step.
  std::vector<CacheRecord> cache_from;
  CacheImporter* cache_importer = nullptr;
  // ADD URL (null: ADD of a URL is an error).
  UrlFetcher* url_fetcher = nullptr;
  // --ssh ID=SOCKET for RUN --mount=type=ssh (the socket is bind-mounted into the step).
  std::map<std::string, std::filesystem::path> ssh;
  // The stat-keyed content-hash cache of context files (<root>/cache/context/…).
  bool context_hash_cache = true;
  // Whether the built image gets an entry in the store's index.json (the tags, else its digest).
  // A multi-platform build names only its index.
  bool name_image = true;
  // --sbom / --provenance: attestations stored as referrers of the image (attestation.hpp).
  bool sbom = false;
  bool provenance = false;
  std::string builder_version;  // kiste's version, for the provenance's builder id
  // FROM/COPY --from images resolved by digest instead of by name (as written → digest): a
  // rebuild from a provenance gets the base images the original build had.
  std::map<std::string, image::Digest> pinned_images;
};

struct BuildResult {
  image::Descriptor manifest;
  image::Digest config_digest = image::Digest::of("");
  int steps_run = 0;
  int steps_cached = 0;
  int steps_imported = 0;  // of steps_cached: layers fetched from --cache-from
  std::vector<std::string> notes;
  // Every cache key of this build and the layer it stands for (what --cache-to exports).
  std::vector<CacheRecord> cache_records;
  // What the provenance records (also without --provenance), and the attestations stored.
  ProvenanceInputs provenance;
  std::vector<image::Descriptor> attestations;
};

// A multi-platform build: one image per platform and the OCI image index that lists them.
struct MultiPlatformResult {
  image::Descriptor index;
  std::vector<BuildResult> images;  // in the order of the platforms
};

class Builder {
 public:
  // `executor` may be null: a RUN step then fails with a clear error.
  Builder(const image::Store& store, BaseImageProvider& provider, RunExecutor* executor)
      : store_(store), provider_(provider), executor_(executor) {}

  [[nodiscard]] Result<BuildResult> build(const BuildOptions& opts);
  // `build --platform a,b,…`: `opts` built once for each platform (opts.plan.platform is each in
  // turn; RUN steps of a foreign one run under qemu-user), then one OCI image index with an entry
  // per platform, in the order given, named by opts.tags. The same inputs give the same index.
  [[nodiscard]] Result<MultiPlatformResult> build_platforms(
      const BuildOptions& opts, const std::vector<image::Platform>& platforms);

 private:
  const image::Store& store_;
  BaseImageProvider& provider_;
  RunExecutor* executor_;
};

}  // namespace kiste::builder

namespace kiste::builder {

// A RUN step's place on the default bridge network (BuildNetwork::Default), for one step.
struct StepAttachment {
  std::vector<std::string> hosts;  // /etc/hosts lines naming the step's address
  std::string resolv_conf;
  // The runtime's network_ready hook: connects the step's new network namespace.
  std::function<Status(int netns_fd)> connect;
  // The runtime's exited hook: gives the veth and the lease back while the step's cgroup goes.
  std::function<void()> disconnect;
  // The lease and the veth: given back when the last copy goes (the step ended, also on error).
  std::shared_ptr<void> held;
};

// Bridge networks reach the builder only through this interface (the builder does not link
// network/): the CLI wires it to the same lease/veth code as `kiste run --network`.
class StepNetworks {
 public:
  virtual ~StepNetworks() = default;
  // Leases an address for the step `container_id` (named `hostname` in /etc/hosts).
  [[nodiscard]] virtual Result<StepAttachment> attach(std::string_view container_id,
                                                      std::string_view hostname) = 0;
};

struct RuntimeExecutorOptions {
  std::filesystem::path root;  // the kiste root (running/ markers, seccomp cache under cache/)
  // BuildNetwork::Default steps go here; without it such a step is an error.
  StepNetworks* networks = nullptr;
  runtime::CgroupPlacement cgroups;  // where RUN steps' cgroups go (--cgroup-manager/-parent)
  // Limits for every RUN step (buildah's --memory, --memory-swap, --cpus, --pids-limit).
  std::string memory, memory_swap, cpus;
  std::optional<int64_t> pids_limit;
};

// RUN through kiste's runtime (namespaces, overlay root, seccomp, default caps).
[[nodiscard]] std::unique_ptr<RunExecutor> make_runtime_executor(const RuntimeExecutorOptions& o);

}  // namespace kiste::builder
