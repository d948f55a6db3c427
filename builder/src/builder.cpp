#include <kiste/builder/builder.hpp>

#include <kiste/builder/attestation.hpp>
#include <kiste/image/image_index.hpp>

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <deque>
#include <set>

#include <kiste/base/interrupt.hpp>
#include <kiste/base/sys.hpp>
#include <kiste/base/user_namespace.hpp>
#include <kiste/base/temp_dir.hpp>
#include <kiste/base/unique_fd.hpp>
#include <kiste/builder/build_context.hpp>
#include <kiste/builder/copy_flags.hpp>
#include <kiste/builder/stage_config.hpp>
#include <kiste/image/compression.hpp>
#include <kiste/image/layer_diff.hpp>
#include <kiste/image/layer_writer.hpp>
#include <kiste/image/media_type.hpp>
#include <kiste/image/snapshot.hpp>
#include <kiste/runtime/container.hpp>

#include "copy_files.hpp"
#include <kiste/builder/run_mount.hpp>

namespace kiste::builder {

namespace fs = std::filesystem;
namespace mt = image::media_type;
using Clock = std::chrono::steady_clock;

std::string_view to_string(BuildNetwork n) {
  switch (n) {
    case BuildNetwork::None: return "none";
    case BuildNetwork::Default: return "default";
    case BuildNetwork::Host: return "host";
  }
  return "none";
}

Result<image::ManifestBlob> StoreImageProvider::resolve(const image::Reference& ref,
                                                        const image::Platform& platform) {
  auto entry = store_.resolve(ref.str());
  if (!entry) entry = store_.resolve(ref.familiar());
  if (!entry) {
    return failf(Errc::NotFound, "image {} is not in the local store (pull it or import it first)",
                 quote(ref.familiar()));
  }
  KISTE_ASSIGN_OR_RETURN(auto top, image::read_manifest(store_, entry->manifest));
  if (!top.is_index()) return top;
  auto d = image::select_platform(top.index(), platform);
  if (!d) {  // the image goes into the message: FROM's error keeps the message, not the context
    return failf(d.error().code, "image {}: {}", quote(ref.familiar()), d.error().message);
  }
  return image::read_manifest(store_, *d);
}

namespace {

struct StageOut {
  StageConfig st;
  std::vector<image::Descriptor> layers;
  image::Digest key = image::Digest::of("");
  std::optional<fs::path> rootfs;  // flattened, made on demand (bind mounts)
  std::optional<fs::path> view;    // read-only overlay of its snapshots (COPY --from, --chown)
};

runtime::MountSpec bind_mount(fs::path source, std::string destination, bool readonly) {
  return {.kind = runtime::MountKind::Bind,
          .source = std::move(source),
          .destination = std::move(destination),
          .readonly = readonly};
}

std::string lines_join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& l : v) s += l + "\n";
  return s;
}

bool has_glob(std::string_view s) { return s.find_first_of("*?[") != std::string_view::npos; }

// A COPY/ADD with its flags and words expanded: what its cache key and its copy are made of.
struct CopyRequest {
  bool add = false;
  CopyFlags flags;
  IgnoreMatcher exclude;           // --exclude, applied below each source
  std::vector<std::string> words;  // the sources ("<<EOF" for a heredoc)
  std::string dest;                // absolute; ends in "/" when written as a directory
  VarMap scope;                    // for heredoc bodies
};

class BuildRun {
 public:
  BuildRun(const image::Store& store, BaseImageProvider& provider, RunExecutor* exec,
           const BuildOptions& opts)
      : store_(store), provider_(provider), exec_(exec), opts_(opts) {}
  BuildRun(const BuildRun&) = delete;
  BuildRun& operator=(const BuildRun&) = delete;
  ~BuildRun() {
    for (const auto& p : view_mounts_) (void)sys::umount2(p, MNT_DETACH);
  }

  Result<BuildResult> run();

 private:
  void emit(BuildEvent::Kind k, std::string text, double secs = 0) {
    if (!opts_.progress) return;
    BuildEvent e{.kind = k, .stage = cur_stage_, .stage_count = stage_count_,
                 .stage_name = cur_name_, .step = cur_step_, .step_count = cur_steps_,
                 .text = std::move(text), .seconds = secs};
    opts_.progress(e);
  }
  std::unexpected<Error> at(const Instruction& ins, const Error& e) const {
    Error out = e;
    out.message = fmt::format("{}:{}:{}: {}: {}", cf_.name, ins.pos.line, ins.pos.column,
                              keyword(ins.kind), e.message);
    out.context.clear();
    return std::unexpected(std::move(out));
  }

  Result<StageOut> start_stage(const Stage& s);
  Status run_step(const Stage& s, StageOut& out, const Instruction& ins);
  Status layer_step(StageOut& out, const Instruction& ins);
  Result<fs::path> rootfs_of(StageOut& out);
  Result<fs::path> rootfs_of_ref(const std::string& word, int before);
  // The stage's filesystem as a mounted container would see it (whiteouts and opaque dirs
  // applied by overlayfs), for reading: an overlay of the layer snapshots RUN steps share, so
  // nothing of the stage is written out again. Unmounted when the build ends.
  Result<fs::path> view_of(StageOut& out);
  Result<fs::path> view_of_ref(const std::string& word, int before);
  // `--from=IMAGE` (a word that names no earlier stage): the image as a stage's result.
  Result<StageOut> image_as_stage(const std::string& word);
  Result<std::vector<fs::path>> lowers_of(const StageOut& out);
  // WORKDIR creates its directory (as docker build does) when no layer has it: a small layer,
  // cached like the others ("none" recorded when the directory already exists).
  Status workdir_layer(StageOut& out);
  // Snapshots as lowers and a fresh container dir: only on a cache miss.
  Status prepare_run(const StageOut& out, RunRequest& req);

  // Cache.
  std::string pack_input() const {
    return fmt::format("pack epoch={} compression={} level={}", opts_.timestamp,
                       static_cast<int>(opts_.compress.compression), opts_.compress.level);
  }
  fs::path cache_dir() const { return store_.layout().build_cache(); }
  Result<std::optional<image::LayerResult>> cache_lookup(const image::Digest& key);
  // A local miss whose key the --cache-from records know: fetch the layer instead of running.
  Result<std::optional<image::LayerResult>> import_lookup(const image::Digest& key);
  // The imported document's diff_id claim, checked against the blob before it names an image.
  Status verify_diff_id(const image::LayerResult& l);
  void note(std::string text) { result_.notes.push_back(std::move(text)); }
  Status cache_store(const image::Digest& key, const image::LayerResult& l);
  void explain_miss(const std::string& slot, const std::vector<std::string>& inputs);

  Result<image::LayerResult> pack_dir(const fs::path& dir);
  Result<image::LayerResult> pack_upper(const fs::path& upper, const std::vector<fs::path>& lowers);
  Status append_layer(StageOut& out, const image::LayerResult& l, std::string created_by);
  Result<image::Descriptor> finish(const StageOut& out);
  // --sbom/--provenance: the attestations of `image`, stored as its referrers.
  Status attest(const image::Descriptor& image, const std::string& manifest_bytes);
  // An image named in FROM or COPY --from (pinned to its recorded digest when the options say
  // so), recorded for the provenance.
  Result<image::ManifestBlob> resolve_image(const std::string& word, const image::Platform& platform);

  // Steps.
  // COPY/ADD: the request (flags and words expanded), then its cache key, which for sources in
  // the context also plans the copy (the walk that hashes them finds what to copy). A `--from`
  // source is keyed by its stage's key or image digest and planned only on a miss.
  Result<CopyRequest> copy_request(const StageOut& out, const Instruction& ins, CopyJob& job);
  Result<std::vector<std::string>> copy_key(const CopyRequest& r, const Instruction& ins, CopyJob& job);
  // Fills `job` with what the sources under `root` match; with `key`, records their hashes.
  Status plan_copy(const CopyRequest& r, const Instruction& ins, const fs::path& root,
                   const IgnoreMatcher& matcher, CopyJob& job, std::vector<std::string>* key);
  Result<std::vector<std::string>> run_inputs(StageOut& out, const Instruction& ins,
                                              RunRequest& req, std::string& created_by);
  // ADD URL: downloads into the build's work dir (mode 0600, mtime from Last-Modified) and
  // verifies `checksum`; returns the copy item and the content digest.
  Result<std::pair<CopyItem, image::Digest>> download(const std::string& url,
                                                      const std::string& target,
                                                      const std::optional<image::Digest>& checksum);
  // On a miss, before CopyJob::apply: pending downloads, and single files whose destination
  // is an existing directory of the stage.
  Status resolve_copy_targets(StageOut& out, CopyJob& job);
  Result<bool> dir_in_stage(const StageOut& out, const std::string& path);

  const image::Store& store_;
  BaseImageProvider& provider_;
  RunExecutor* exec_;
  const BuildOptions& opts_;
  Containerfile cf_;
  BuildPlan plan_;
  IgnoreMatcher ignore_;
  fs::path context_;
  std::string context_abs_;  // names this context's "last inputs" records (miss explanations)
  std::optional<TempDir> work_;
  std::map<int, StageOut> done_;
  std::map<std::string, fs::path> image_rootfs_;
  std::map<std::string, fs::path> image_view_;
  std::vector<fs::path> view_mounts_;  // unmounted by ~BuildRun, before work_ is removed
  std::optional<std::vector<ContextEntry>> context_all_;
  std::deque<Instruction> triggers_;  // parsed ONBUILD triggers (steps point into them)
  BuildResult result_;
  std::vector<image::Digest> copied_layers_;  // COPY/ADD layers of this build (for the SBOM)
  int cur_stage_ = 0, stage_count_ = 0, cur_step_ = 0, cur_steps_ = 0;
  std::string cur_name_;
  int counter_ = 0;
  std::optional<image::SnapshotStore> snapshots_;
  std::map<std::string, CacheRecord> imported_;  // --cache-from, by key
  std::optional<ContextHashCache> hash_cache_;   // content digests of context files by stat
  ContextHashCache* hash_cache() { return hash_cache_ ? &*hash_cache_ : nullptr; }
};

Result<BuildResult> BuildRun::run() {
  context_ = opts_.context_dir;
  for (const auto& r : opts_.cache_from) imported_.emplace(r.key.str(), r);
  std::error_code ec;
  context_abs_ = fs::absolute(context_, ec).string();
  fs::path file = opts_.containerfile;
  // The context's own Containerfile is read inside it; one given with -f where the user says.
  // Either way only a regular file (a FIFO would hang the build, a device read the host's).
  Result<UniqueFd> fd = std::unexpected(Error{});
  if (file.empty()) {
    KISTE_ASSIGN_OR_RETURN(UniqueFd ctx, sys::open(context_, O_PATH | O_DIRECTORY | O_CLOEXEC));
    file = context_ / "Containerfile";
    fd = sys::open_regular_in_root(ctx.get(), "Containerfile");
    if (!fd && fd.error().sys_errno == ENOENT) {
      file = context_ / "Dockerfile";
      fd = sys::open_regular_in_root(ctx.get(), "Dockerfile");
    }
  } else {
    fd = sys::open_regular(file);
  }
  if (!fd) return std::unexpected(std::move(fd).error().with_context("read Containerfile"));
  KISTE_ASSIGN_OR_RETURN(
      std::string text,
      with_context(sys::read_all(fd->get(), file.native(), 1 << 20), "read Containerfile"));
  KISTE_ASSIGN_OR_RETURN(cf_, parse_containerfile(text, file.filename().string()));
  result_.provenance = ProvenanceInputs{.containerfile = file.filename().string(),
                                        .containerfile_digest = image::Digest::of(text),
                                        .build_args = opts_.plan.build_args,
                                        .target = opts_.plan.target,
                                        .platform = opts_.plan.platform.str(),
                                        .source_date_epoch = opts_.timestamp,
                                        .builder_id = "https://kiste.dev/kiste@" + opts_.builder_version};
  for (const auto& n : cf_.notes) result_.notes.push_back(n);
  KISTE_ASSIGN_OR_RETURN(ignore_, IgnoreMatcher::load(context_));
  if (opts_.context_hash_cache) {
    hash_cache_.emplace(ContextHashCache::load(
        ContextHashCache::file_for(store_.layout().context_cache(), context_)));
  }
  KISTE_ASSIGN_OR_RETURN(plan_, make_plan(cf_, opts_.plan));
  for (const auto& a : plan_.unused_build_args) {
    result_.notes.push_back(fmt::format("build argument `{}` is not consumed by any ARG", a));
  }
  KISTE_TRY(sys::mkdir_all(store_.tmp_dir(), 0700));
  // Blobs this build adds are named only at the end: hold the writer lease so a concurrent
  // prune cannot collect them (or the snapshots RUN steps use) in between.
  KISTE_ASSIGN_OR_RETURN(FileLock lease, store_.writer_lease());
  KISTE_ASSIGN_OR_RETURN(auto w, TempDir::create(store_.tmp_dir(), "build-"));
  work_.emplace(std::move(w));
  KISTE_TRY(sys::mkdir_all(cache_dir() / "last", 0700));
  KISTE_ASSIGN_OR_RETURN(auto snaps, image::SnapshotStore::open(store_.root()));
  snapshots_.emplace(std::move(snaps));
  stage_count_ = static_cast<int>(plan_.stages.size());
  for (int si : plan_.order) {
    const Stage& s = plan_.stages[si];
    cur_stage_ = si;
    cur_name_ = s.name.empty() ? fmt::format("stage-{}", si) : s.name;
    cur_steps_ = static_cast<int>(s.steps.size()) + 1;
    cur_step_ = 1;
    auto t0 = Clock::now();
    emit(BuildEvent::Kind::Step, s.from->original);
    KISTE_ASSIGN_OR_RETURN(StageOut out, start_stage(s));
    emit(BuildEvent::Kind::Done, "", std::chrono::duration<double>(Clock::now() - t0).count());
    // ONBUILD triggers of the base run first.
    std::vector<std::string> trig = out.st.config.config.on_build;
    out.st.config.config.on_build.clear();
    for (const auto& t : trig) {
      KISTE_ASSIGN_OR_RETURN(Instruction ins, parse_instruction(t, "ONBUILD trigger", s.from->pos, cf_.escape));
      triggers_.push_back(std::move(ins));
      KISTE_TRY(run_step(s, out, triggers_.back()));
    }
    for (const Instruction* ins : s.steps) {
      ++cur_step_;
      KISTE_TRY(run_step(s, out, *ins));
    }
    done_.emplace(si, std::move(out));
  }
  KISTE_ASSIGN_OR_RETURN(auto desc, finish(done_.at(plan_.target)));
  result_.manifest = desc;
  if (hash_cache_) KISTE_TRY(with_context(hash_cache_->save(), "save the context hash cache"));
  return result_;
}

Result<StageOut> BuildRun::start_stage(const Stage& s) {
  StageOut out;
  out.st.escape = cf_.escape;
  image::Platform platform = s.platform.value_or(opts_.plan.platform);
  if (s.base_stage) {
    const StageOut& b = done_.at(*s.base_stage);
    out.st.config = b.st.config;
    out.layers = b.layers;
    out.key = b.key;
    out.rootfs = b.rootfs;
    return out;
  }
  if (s.base == "scratch") {
    out.st.config.os = platform.normalized().os;
    out.st.config.architecture = platform.normalized().architecture;
    out.st.config.variant = platform.normalized().variant;
    out.key = image::Digest::of("kiste-build-v1 scratch " + platform.str());
    return out;
  }
  auto m = resolve_image(s.base, platform);
  if (!m) return at(*s.from, m.error());
  if (m->is_index()) return failf(Errc::InvalidArgument, "FROM {}: provider returned an index", s.base);
  const auto& man = m->manifest();
  KISTE_ASSIGN_OR_RETURN(std::string cfg_bytes, store_.read_blob(man.config.digest));
  KISTE_ASSIGN_OR_RETURN(out.st.config, with_context(image::ImageConfig::parse(cfg_bytes),
                                                     fmt::format("config of {}", quote(s.base))));
  // A platform asked for (--platform, FROM --platform) that the base is not: refused, so no
  // image is labelled with an architecture its binaries are not. Without one, a foreign base
  // keeps its own platform in the config (a COPY-only cross build stays honest).
  if (s.platform || !(opts_.plan.platform == opts_.plan.build_platform)) {
    const image::Platform have{.os = out.st.config.os,
                               .architecture = out.st.config.architecture,
                               .variant = out.st.config.variant};
    if (auto ok = image::check_platform(have, platform); !ok) {
      return at(*s.from, Error{.code = ok.error().code,
                               .message = fmt::format("image {}: {}", quote(s.base),
                                                      ok.error().message)});
    }
  }
  out.layers = man.layers;
  if (out.layers.size() != out.st.config.diff_ids.size()) {
    return failf(Errc::Corrupt, "image {}: {} layers but {} diff_ids", s.base, out.layers.size(),
                 out.st.config.diff_ids.size());
  }
  out.key = image::Digest::of("kiste-build-v1 image " + m->digest.str());
  return out;
}

Status BuildRun::run_step(const Stage& s, StageOut& out, const Instruction& ins) {
  (void)s;
  KISTE_TRY(check_interrupted());
  using K = InstructionKind;
  if (ins.kind == K::Run || ins.kind == K::Copy || ins.kind == K::Add) {
    auto r = layer_step(out, ins);
    if (!r) return at(ins, r.error());
    return {};
  }
  auto t0 = Clock::now();
  emit(BuildEvent::Kind::Step, ins.original);
  ArgSources src{.build_args = &opts_.plan.build_args, .global_args = &plan_.global_args,
                 .predefined = &plan_.predefined};
  auto text = apply_metadata(out.st, ins, src);
  if (!text) return at(ins, text.error());
  out.st.config.history.push_back({.created = image::rfc3339(opts_.timestamp),
                                   .created_by = *text,
                                   .comment = "buildkit.dockerfile.v0",
                                   .empty_layer = true});
  // ARG values are part of the chain: a different --build-arg changes later steps' keys.
  std::string arg_state;
  for (const auto& [k, v] : out.st.args) arg_state += " " + k + "=" + v;
  out.key = image::Digest::of(out.key.str() + "\nmeta " + *text + "\nargs" + arg_state);
  if (ins.kind == K::Workdir) {
    auto w = workdir_layer(out);
    if (!w) return at(ins, w.error());
  }
  emit(BuildEvent::Kind::Done, "", std::chrono::duration<double>(Clock::now() - t0).count());
  return {};
}

Status BuildRun::layer_step(StageOut& out, const Instruction& ins) {
  auto t0 = Clock::now();
  emit(BuildEvent::Kind::Step, ins.original);
  std::vector<std::string> inputs;
  std::string created_by;
  CopyJob job;
  CopyRequest copy;
  RunRequest req;
  bool is_run = ins.kind == InstructionKind::Run;
  if (is_run) {
    KISTE_ASSIGN_OR_RETURN(inputs, run_inputs(out, ins, req, created_by));
  } else {
    KISTE_ASSIGN_OR_RETURN(copy, copy_request(out, ins, job));
    KISTE_ASSIGN_OR_RETURN(inputs, copy_key(copy, ins, job));
    created_by = fmt::format("{} {} # buildkit", keyword(ins.kind), job.describe());
  }
  inputs.insert(inputs.begin(), "parent " + out.key.str());
  // How layers are packed is part of what a cached layer is (mtimes clamp to the timestamp).
  inputs.push_back(pack_input());
  image::Digest key = image::Digest::of(lines_join(inputs));
  std::string slot = std::string(image::Digest::of(fmt::format("{}\n{}\n{}", context_abs_, cf_.name, cur_name_) + "\n" + std::to_string(cur_step_)).hex());
  std::optional<image::LayerResult> hit;
  bool imported = false;
  if (!opts_.no_cache) {
    KISTE_ASSIGN_OR_RETURN(hit, cache_lookup(key));
    if (!hit) {
      KISTE_ASSIGN_OR_RETURN(hit, import_lookup(key));
      imported = hit.has_value();
    }
  }
  std::optional<image::LayerResult> layer;
  if (hit) {
    layer = hit;
    emit(BuildEvent::Kind::Cached, imported ? "CACHED (imported)" : "CACHED");
    ++result_.steps_cached;
  } else {
    if (opts_.explain_misses && !opts_.no_cache) explain_miss(slot, inputs);
    if (is_run) {
      if (exec_ == nullptr) {
        return fail(Errc::Unsupported, "RUN needs the container runtime, which this kiste build was not given");
      }
      KISTE_TRY(prepare_run(out, req));
      KISTE_ASSIGN_OR_RETURN(auto status, exec_->run(req));
      if (status != 0) {
        return failf(Errc::InvalidArgument, "`{}` returned a non-zero code: {}",
                     fmt::join(req.argv, " "), status);
      }
      // The runtime handed back an upper that holds only what the step wrote.
      KISTE_ASSIGN_OR_RETURN(auto packed, pack_upper(req.container_dir / "upper", req.lower_dirs));
      layer = packed;
      (void)runtime::remove_container_dir(req.container_dir);
    } else {
      if (copy.flags.from) {
        KISTE_ASSIGN_OR_RETURN(auto root, view_of_ref(*copy.flags.from, cur_stage_));
        KISTE_TRY(plan_copy(copy, ins, root, IgnoreMatcher{}, job, nullptr));
      }
      if (!job.chown.empty()) {
        std::optional<fs::path> rootfs;
        if (!numeric_owner(job.chown)) {
          KISTE_ASSIGN_OR_RETURN(rootfs, view_of(out));
        }
        KISTE_ASSIGN_OR_RETURN(auto ug, resolve_owner(rootfs, job.chown));
        job.uid = ug.first;
        job.gid = ug.second;
      }
      KISTE_TRY(resolve_copy_targets(out, job));
      fs::path dir = work_->path() / fmt::format("layer-{}", ++counter_);
      KISTE_TRY(sys::mkdir_all(dir, 0755));
      KISTE_TRY(job.apply(dir));
      KISTE_ASSIGN_OR_RETURN(auto packed, pack_dir(dir));
      layer = packed;
      (void)sys::remove_tree(dir);
    }
    KISTE_TRY(cache_store(key, *layer));
    ++result_.steps_run;
  }
  (void)sys::write_file_atomic(cache_dir() / "last" / slot, lines_join(inputs));
  result_.cache_records.push_back({.key = key, .layer = *layer});
  out.key = key;
  if (!is_run) copied_layers_.push_back(layer->digest);
  KISTE_TRY(append_layer(out, *layer, created_by));
  emit(BuildEvent::Kind::Done, "", std::chrono::duration<double>(Clock::now() - t0).count());
  return {};
}

void BuildRun::explain_miss(const std::string& slot, const std::vector<std::string>& inputs) {
  auto prev = sys::read_file(cache_dir() / "last" / slot, 1 << 20);
  if (!prev) {
    emit(BuildEvent::Kind::Miss, "cache miss: no earlier build of this step");
    return;
  }
  std::set<std::string> old_lines;
  size_t i = 0;
  while (i < prev->size()) {
    size_t j = prev->find('\n', i);
    if (j == std::string::npos) j = prev->size();
    old_lines.insert(prev->substr(i, j - i));
    i = j + 1;
  }
  std::set<std::string> now(inputs.begin(), inputs.end());
  for (const auto& l : inputs) {
    if (!old_lines.contains(l)) emit(BuildEvent::Kind::Miss, "cache miss: now   " + l);
  }
  for (const auto& l : old_lines) {
    if (!now.contains(l)) emit(BuildEvent::Kind::Miss, "cache miss: was   " + l);
  }
}

Result<std::optional<image::LayerResult>> BuildRun::cache_lookup(const image::Digest& key) {
  auto text = sys::read_file(cache_dir() / std::string(key.hex()), 4096);
  if (!text) return std::optional<image::LayerResult>{};
  std::vector<std::string> f = split_raw_words(*text);
  if (f.size() != 4) return std::optional<image::LayerResult>{};
  auto d = image::Digest::parse(f[1]);
  auto diff = image::Digest::parse(f[3]);
  if (!d || !diff || !store_.has_blob(*d)) return std::optional<image::LayerResult>{};
  uint64_t size = 0;
  auto [end, ec] = std::from_chars(f[2].data(), f[2].data() + f[2].size(), size);
  if (ec != std::errc() || end != f[2].data() + f[2].size()) return std::optional<image::LayerResult>{};
  image::LayerResult l{.digest = *d, .size = size, .diff_id = *diff, .media_type = f[0]};
  return std::optional<image::LayerResult>{l};
}

Result<std::optional<image::LayerResult>> BuildRun::import_lookup(const image::Digest& key) {
  auto it = imported_.find(key.str());
  if (it == imported_.end() || !it->second.layer) return std::optional<image::LayerResult>{};
  const image::LayerResult& l = *it->second.layer;
  if (!store_.has_blob(l.digest)) {
    if (opts_.cache_importer == nullptr) return std::optional<image::LayerResult>{};
    auto f = opts_.cache_importer->fetch({.media_type = l.media_type, .digest = l.digest,
                                          .size = static_cast<int64_t>(l.size)});
    if (!f) {
      note(fmt::format("cache import of {} failed, running the step: {}", l.digest.str(),
                       f.error().to_string()));
      return std::optional<image::LayerResult>{};
    }
  }
  if (auto v = verify_diff_id(l); !v) {
    note(fmt::format("imported cache layer {} rejected, running the step: {}", l.digest.str(),
                     v.error().to_string()));
    return std::optional<image::LayerResult>{};
  }
  KISTE_TRY(cache_store(key, l));
  ++result_.steps_imported;
  return std::optional<image::LayerResult>{l};
}

Status BuildRun::verify_diff_id(const image::LayerResult& l) {
  KISTE_ASSIGN_OR_RETURN(auto blob, store_.open_blob(l.digest));
  auto dec = image::make_decompressor(*blob, mt::layer_compression(l.media_type));
  image::Hasher h;
  std::vector<char> buf(1 << 16);
  for (;;) {
    KISTE_ASSIGN_OR_RETURN(size_t n, dec->read(buf.data(), buf.size()));
    if (n == 0) break;
    h.update(std::string_view(buf.data(), n));
  }
  image::Digest got = h.finish();
  if (got != l.diff_id) {
    return failf(Errc::Corrupt, "diff_id is {}, the cache claims {}", got.str(), l.diff_id.str());
  }
  return {};
}

Status BuildRun::cache_store(const image::Digest& key, const image::LayerResult& l) {
  return sys::write_file_atomic(cache_dir() / std::string(key.hex()),
                                fmt::format("{} {} {} {}\n", l.media_type, l.digest.str(), l.size,
                                            l.diff_id.str()));
}

Result<image::LayerResult> BuildRun::pack_dir(const fs::path& dir) {
  KISTE_ASSIGN_OR_RETURN(auto w, store_.blob_writer());
  image::PackOptions po{.compress = opts_.compress, .source_date_epoch = opts_.timestamp,
                        .keep_owners = true};
  KISTE_ASSIGN_OR_RETURN(auto l, image::write_layer(dir, w, po));
  KISTE_TRY(w.commit(l.digest, static_cast<int64_t>(l.size)));
  return l;
}

Result<image::LayerResult> BuildRun::pack_upper(const fs::path& upper,
                                                const std::vector<fs::path>& lowers) {
  KISTE_ASSIGN_OR_RETURN(auto w, store_.blob_writer());
  image::DiffOptions d;
  d.pack = {.compress = opts_.compress, .source_date_epoch = opts_.timestamp, .keep_owners = true};
  d.lowerdirs.assign(lowers.rbegin(), lowers.rend());
  KISTE_ASSIGN_OR_RETURN(auto l, image::diff_overlay_upper(upper, w, d));
  KISTE_TRY(w.commit(l.digest, static_cast<int64_t>(l.size)));
  return l;
}

Status BuildRun::append_layer(StageOut& out, const image::LayerResult& l, std::string created_by) {
  std::string media = l.media_type;
  if (opts_.docker_format) media = std::string(mt::kDockerLayerGzip);
  out.layers.push_back({.media_type = media, .digest = l.digest, .size = static_cast<int64_t>(l.size)});
  out.st.config.diff_ids.push_back(l.diff_id);
  out.st.config.history.push_back({.created = image::rfc3339(opts_.timestamp),
                                   .created_by = std::move(created_by),
                                   .comment = "buildkit.dockerfile.v0"});
  out.rootfs.reset();
  out.view.reset();
  return {};
}

Result<image::Descriptor> BuildRun::finish(const StageOut& out) {
  image::ImageConfig cfg = out.st.config;
  cfg.created = image::rfc3339(opts_.timestamp);
  std::string cfg_bytes = cfg.serialize();
  auto cfg_type = opts_.docker_format ? mt::kDockerConfig : mt::kOciConfig;
  KISTE_ASSIGN_OR_RETURN(auto cfg_desc, store_.put_blob(cfg_bytes, cfg_type));
  result_.config_digest = cfg_desc.digest;
  image::Manifest m;
  m.media_type = std::string(opts_.docker_format ? mt::kDockerManifest : mt::kOciManifest);
  m.config = cfg_desc;
  m.layers = out.layers;
  for (auto& l : m.layers) {
    if (opts_.docker_format && l.media_type == mt::kOciLayerGzip) l.media_type = std::string(mt::kDockerLayerGzip);
    if (!opts_.docker_format && l.media_type == mt::kDockerLayerGzip) l.media_type = std::string(mt::kOciLayerGzip);
  }
  std::string bytes = image::serialize_manifest(m);
  KISTE_ASSIGN_OR_RETURN(auto desc, store_.put_blob(bytes, m.media_type));
  // Attestations refer to the image; they are stored before it is named, so a failure names
  // nothing.
  KISTE_TRY(with_context(attest(desc, bytes), "attestations"));
  if (!opts_.name_image) return desc;
  if (opts_.tags.empty()) {
    KISTE_TRY(store_.keep_unnamed(desc));
  }
  for (const auto& t : opts_.tags) KISTE_TRY(store_.set_name(t, desc));
  return desc;
}

Status BuildRun::attest(const image::Descriptor& image, const std::string& manifest_bytes) {
  if (!opts_.sbom && !opts_.provenance) return {};
  const std::string name = opts_.tags.empty() ? image.digest.str() : opts_.tags.front().str();
  if (opts_.provenance) {
    KISTE_ASSIGN_OR_RETURN(auto d, attach_attestation(store_, image, kInTotoMediaType,
                                                      provenance_json(name, image.digest,
                                                                      result_.provenance),
                                                      opts_.timestamp));
    result_.attestations.push_back(std::move(d));
  }
  if (opts_.sbom) {
    KISTE_ASSIGN_OR_RETURN(image::ManifestBlob blob,
                           image::parse_manifest(manifest_bytes, image.media_type));
    KISTE_ASSIGN_OR_RETURN(std::string doc,
                           sbom_json(store_, blob,
                                     {.name = name,
                                      .source_date_epoch = opts_.timestamp,
                                      .tool = "kiste-" + opts_.builder_version,
                                      .copied_layers = copied_layers_}));
    KISTE_ASSIGN_OR_RETURN(auto d, attach_attestation(store_, image, kSpdxMediaType, doc,
                                                      opts_.timestamp));
    result_.attestations.push_back(std::move(d));
  }
  return {};
}

Result<image::ManifestBlob> BuildRun::resolve_image(const std::string& word,
                                                    const image::Platform& platform) {
  KISTE_ASSIGN_OR_RETURN(auto ref, image::Reference::parse(word));
  if (auto pin = opts_.pinned_images.find(word); pin != opts_.pinned_images.end()) {
    ref = ref.with_digest(pin->second);
  }
  KISTE_ASSIGN_OR_RETURN(auto m, provider_.resolve(ref, platform));
  BaseImageUse use{.ref = word, .digest = m.digest};
  auto& bases = result_.provenance.base_images;
  if (std::find(bases.begin(), bases.end(), use) == bases.end()) bases.push_back(std::move(use));
  return m;
}

Result<std::vector<fs::path>> BuildRun::lowers_of(const StageOut& out) {
  std::vector<fs::path> lowers;
  for (size_t i = 0; i < out.layers.size(); ++i) {
    const auto& l = out.layers[i];
    image::Digest blob = l.digest;
    const image::Store& store = store_;
    KISTE_ASSIGN_OR_RETURN(
        auto p, snapshots_->ensure(out.st.config.diff_ids[i], mt::layer_compression(l.media_type),
                                   [&store, blob] { return store.open_blob(blob); }));
    lowers.push_back(p);
  }
  return lowers;
}

Result<fs::path> BuildRun::rootfs_of(StageOut& out) {
  if (out.rootfs) return *out.rootfs;
  fs::path dir = work_->path() / fmt::format("rootfs-{}", ++counter_);
  std::vector<image::LayerSource> src;
  for (size_t i = 0; i < out.layers.size(); ++i) {
    image::Digest blob = out.layers[i].digest;
    const image::Store& store = store_;
    src.push_back({.open_blob = [&store, blob] { return store.open_blob(blob); },
                   .compression = mt::layer_compression(out.layers[i].media_type),
                   .diff_id = out.st.config.diff_ids[i]});
  }
  KISTE_TRY(sys::mkdir_all(dir, 0755));
  KISTE_TRY(image::unpack_layers(src, dir));
  out.rootfs = dir;
  return dir;
}

namespace {
// overlayfs splits lowerdir at ':' and options at ',', and takes '\\' as the escape.
std::string overlay_escape(const std::string& p) {
  std::string out;
  for (char c : p) {
    if (c == ':' || c == ',' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}
}  // namespace

Result<fs::path> BuildRun::view_of(StageOut& out) {
  if (out.view) return *out.view;
  KISTE_ASSIGN_OR_RETURN(std::vector<fs::path> lowers, lowers_of(out));
  // An empty bottom layer: overlayfs without an upper dir wants two lowers at least.
  const fs::path empty = work_->path() / "empty";
  KISTE_TRY(sys::mkdir_all(empty, 0755));
  std::string data = "lowerdir=";
  for (auto it = lowers.rbegin(); it != lowers.rend(); ++it) data += overlay_escape(it->native()) + ":";
  data += overlay_escape(empty.native());
  if (!sys::in_initial_user_namespace()) data += ",userxattr";  // rootless: see layer_extract.hpp
  if (data.size() >= static_cast<size_t>(::sysconf(_SC_PAGESIZE))) {
    return rootfs_of(out);  // too many layers to name in one mount: flatten them instead
  }
  fs::path dir = work_->path() / fmt::format("view-{}", ++counter_);
  KISTE_TRY(sys::mkdir_all(dir, 0755));
  if (auto m = sys::mount("overlay", dir, "overlay", MS_RDONLY | MS_NODEV | MS_NOSUID, data.c_str());
      !m) {
    if (m.error().sys_errno != EPERM) return std::unexpected(std::move(m).error());
    return rootfs_of(out);  // no right to mount (rootless): flatten instead
  }
  view_mounts_.push_back(dir);
  out.view = dir;
  return dir;
}

Result<StageOut> BuildRun::image_as_stage(const std::string& word) {
  KISTE_ASSIGN_OR_RETURN(auto m, resolve_image(word, opts_.plan.platform));
  StageOut out;
  KISTE_ASSIGN_OR_RETURN(std::string cfg, store_.read_blob(m.manifest().config.digest));
  KISTE_ASSIGN_OR_RETURN(out.st.config, image::ImageConfig::parse(cfg));
  out.layers = m.manifest().layers;
  return out;
}

Result<fs::path> BuildRun::view_of_ref(const std::string& word, int before) {
  if (auto s = plan_.stage_ref(word, before)) return view_of(done_.at(*s));
  if (auto it = image_view_.find(word); it != image_view_.end()) return it->second;
  KISTE_ASSIGN_OR_RETURN(StageOut tmp, image_as_stage(word));
  KISTE_ASSIGN_OR_RETURN(auto dir, view_of(tmp));
  image_view_[word] = dir;
  return dir;
}

Result<fs::path> BuildRun::rootfs_of_ref(const std::string& word, int before) {
  if (auto s = plan_.stage_ref(word, before)) return rootfs_of(done_.at(*s));
  if (auto it = image_rootfs_.find(word); it != image_rootfs_.end()) return it->second;
  KISTE_ASSIGN_OR_RETURN(StageOut tmp, image_as_stage(word));
  KISTE_ASSIGN_OR_RETURN(auto dir, rootfs_of(tmp));
  image_rootfs_[word] = dir;
  return dir;
}


namespace {

std::string abs_dest(const std::string& workdir, const std::string& d) {
  bool dir = d.ends_with("/") || d == "." || d.ends_with("/.");
  std::string joined = d.starts_with("/") ? d : (workdir.empty() ? "/" : workdir) + "/" + d;
  std::string c = "/" + clean_rel(joined);
  if (dir && c != "/") c += "/";
  return c;
}

std::string base_name(std::string_view p) {
  size_t s = p.rfind('/');
  return std::string(s == std::string_view::npos ? p : p.substr(s + 1));
}

bool is_url(std::string_view s) {
  return s.starts_with("http://") || s.starts_with("https://") || s.starts_with("git@");
}

// A local archive ADD unpacks, recognised by content as Docker does: a tar (`ustar` magic), or
// gzip/zstd whose first block is a tar.
std::optional<image::media_type::Compression> tar_kind(const fs::path& root, const std::string& rel) {
  using C = image::media_type::Compression;
  auto rootfd = sys::open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (!rootfd) return std::nullopt;
  auto fd = sys::open_regular_in_root(rootfd->get(), rel);
  if (!fd) return std::nullopt;  // not a regular file: the copy itself says why
  char buf[512] = {};
  ssize_t n = ::pread(fd->get(), buf, sizeof buf, 0);
  auto is_tar = [](std::string_view b) { return b.size() >= 262 && b.substr(257, 5) == "ustar"; };
  if (n >= 262 && is_tar(std::string_view(buf, static_cast<size_t>(n)))) return C::None;
  C c;
  if (n >= 2 && static_cast<unsigned char>(buf[0]) == 0x1f && static_cast<unsigned char>(buf[1]) == 0x8b) {
    c = C::Gzip;
  } else if (n >= 4 && std::string_view(buf, 4) == std::string_view("\x28\xb5\x2f\xfd", 4)) {
    c = C::Zstd;
  } else {
    return std::nullopt;
  }
  auto in = sys::open_regular_in_root(rootfd->get(), rel);
  if (!in) return std::nullopt;
  image::FdReader raw(std::move(*in), rel);
  auto dec = image::make_decompressor(raw, c);
  std::string first;
  while (first.size() < 512) {
    auto got = dec->read(buf, sizeof buf);
    if (!got || *got == 0) break;
    first.append(buf, *got);
  }
  return is_tar(first) ? std::optional<C>(c) : std::nullopt;
}

}  // namespace

Result<CopyRequest> BuildRun::copy_request(const StageOut& out, const Instruction& ins, CopyJob& job) {
  VarMap scope = out.st.scope();
  CopyRequest r;
  r.add = ins.kind == InstructionKind::Add;
  KISTE_ASSIGN_OR_RETURN(r.flags, parse_copy_flags(ins, [&](std::string_view raw) {
    return expand_word(std::string(raw), scope, cf_.escape);
  }));
  job.chown = r.flags.chown.value_or("");  // names are resolved against the stage's /etc/passwd on a miss
  job.chmod = r.flags.chmod;
  std::string excl;
  for (const auto& e : r.flags.exclude) excl += e + "\n";
  KISTE_ASSIGN_OR_RETURN(r.exclude, IgnoreMatcher::parse(excl));
  for (const auto& a : ins.args) {
    if (a.starts_with("<<") && !ins.heredocs.empty()) {
      r.words.push_back(a);
      continue;
    }
    if (ins.exec_form) {
      KISTE_ASSIGN_OR_RETURN(std::string w, expand_vars_only(a, scope));
      r.words.push_back(w);
    } else {
      KISTE_ASSIGN_OR_RETURN(std::string w, expand_word(a, scope, cf_.escape));
      r.words.push_back(w);
    }
  }
  r.dest = abs_dest(out.st.config.config.working_dir, r.words.back());
  r.words.pop_back();
  r.scope = std::move(scope);
  job.desc = fmt::format("{} {}", fmt::join(r.words, " "), r.dest);
  return r;
}

Result<std::vector<std::string>> BuildRun::copy_key(const CopyRequest& r, const Instruction& ins,
                                                    CopyJob& job) {
  std::vector<std::string> inputs;
  inputs.push_back(r.add ? "add" : "copy");
  inputs.insert(inputs.end(), r.flags.key_lines.begin(), r.flags.key_lines.end());
  inputs.push_back("dest " + r.dest);
  if (const auto& from = r.flags.from) {
    // The source stage's key or image digest stands for its content: a hit never unpacks it.
    if (auto s = plan_.stage_ref(*from, cur_stage_)) {
      inputs.push_back("from stage " + done_.at(*s).key.str());
    } else {
      KISTE_ASSIGN_OR_RETURN(auto m, resolve_image(*from, opts_.plan.platform));
      inputs.push_back("from image " + m.digest.str());
    }
    for (const auto& w : r.words) inputs.push_back("src " + w);
    return inputs;
  }
  KISTE_TRY(plan_copy(r, ins, context_, ignore_, job, &inputs));
  return inputs;
}

Status BuildRun::plan_copy(const CopyRequest& r, const Instruction& ins, const fs::path& root,
                           const IgnoreMatcher& matcher, CopyJob& job, std::vector<std::string>* key) {
  const bool add = r.add;
  const bool parents = r.flags.parents;
  const auto& from = r.flags.from;
  const auto& checksum = r.flags.checksum;
  const std::string& dest = r.dest;
  const IgnoreMatcher empty_matcher;
  auto record = [&](std::string line) {
    if (key != nullptr) key->push_back(std::move(line));
  };
  // Collect the matches first: several sources (or a glob) make the destination a directory.
  struct Match {
    std::string rel;
    std::vector<ContextEntry> entries;
    std::string pivot;  // --parents: the leading part of rel not kept (BuildKit's `/./`)
  };
  std::vector<Match> matches;
  std::vector<std::string> urls;
  size_t heredoc_idx = 0;
  for (const auto& w : r.words) {
    if (w.starts_with("<<") && heredoc_idx < ins.heredocs.size()) {
      const Heredoc& h = ins.heredocs[heredoc_idx++];
      std::string content = h.content;
      if (h.expand) {
        KISTE_ASSIGN_OR_RETURN(content, expand_vars_only(content, r.scope));
      }
      bool dir = dest.ends_with("/");
      job.heredocs.push_back({dir ? dest + h.name : dest, content});
      record(fmt::format("heredoc {} {}", h.name, image::Digest::of(content).str()));
      continue;
    }
    if (is_url(w)) {
      if (!add) return failf(Errc::InvalidArgument, "COPY cannot fetch {}: use ADD", quote(w));
      if (w.starts_with("git@") || w.ends_with(".git") || w.find(".git#") != std::string::npos) {
        return failf(Errc::Unsupported, "{}: git sources are not supported (clone in the context or a RUN step)", quote(w));
      }
      urls.push_back(w);
      continue;
    }
    std::string pivot;
    if (size_t pv = w.find("/./"); parents && pv != std::string::npos) pivot = clean_rel(w.substr(0, pv));
    std::string pat = clean_rel(w);
    if (has_glob(pat)) {
      if (!from && !context_all_) {
        KISTE_ASSIGN_OR_RETURN(auto all, walk_context(root, "", matcher));
        context_all_ = std::move(all);
      }
      std::vector<ContextEntry> all_here;
      if (from) {
        KISTE_ASSIGN_OR_RETURN(all_here, walk_context(root, "", matcher));
      }
      const auto& all = from ? all_here : *context_all_;
      std::string last;
      size_t before = matches.size();
      for (const auto& e : all) {
        if (!last.empty() && e.path.starts_with(last + "/")) continue;
        KISTE_ASSIGN_OR_RETURN(bool ok, glob_match(pat, e.path));
        if (!ok) continue;
        last = e.path;
        matches.push_back({e.path, {}, pivot});
      }
      if (matches.size() == before) {
        return failf(Errc::NotFound, "no source files were specified: {} matches nothing", quote(w));
      }
    } else {
      matches.push_back({pat, {}, pivot});
    }
  }
  if (checksum && (urls.size() != 1 || !matches.empty())) {
    return fail(Errc::InvalidArgument, "--checksum needs exactly one http(s) source");
  }
  bool dest_dir = dest.ends_with("/") || parents ||
                  matches.size() + job.heredocs.size() + urls.size() > 1;
  const std::string dest_slash = dest.ends_with("/") ? dest : dest + "/";
  for (const auto& u : urls) {
    std::string name = url_file_name(u);
    if (dest_dir && name.empty()) {
      return failf(Errc::InvalidArgument, "{}: the URL names no file to create in {}", quote(u), quote(dest));
    }
    std::string target = dest_dir ? dest_slash + name : dest;
    if (checksum) {
      // The checksum stands for the content: a cache hit downloads nothing.
      record(fmt::format("url {} {}", u, checksum->str()));
      job.urls.push_back({.url = u, .dest = target, .checksum = *checksum, .into_existing_dir = !dest_dir});
      continue;
    }
    // Without a checksum the content is only known by downloading it (as docker build does).
    KISTE_ASSIGN_OR_RETURN(auto got, download(u, target, std::nullopt));
    got.first.into_existing_dir = !dest_dir;
    record(fmt::format("url {} {} mtime={}", u, got.second.str(),
                                 got.first.mtime ? std::to_string(*got.first.mtime) : "none"));
    job.items.push_back(std::move(got.first));
  }
  for (auto& m : matches) {
    auto entries = walk_context(root, m.rel, matcher);
    if (!entries) {
      if (entries.error().code == Errc::NotFound) {
        return failf(Errc::NotFound, "{} not found in the {}", quote(m.rel.empty() ? "." : m.rel),
                     from ? "source stage/image " + quote(*from) : std::string("build context"));
      }
      return std::unexpected(entries.error());
    }
    // --exclude patterns apply below the source.
    std::vector<ContextEntry> kept;
    for (auto& e : *entries) {
      std::string rel = m.rel.empty() ? e.path : (e.path == m.rel ? "" : e.path.substr(m.rel.size() + 1));
      if (!rel.empty() && r.exclude.ignored(rel)) continue;
      kept.push_back(std::move(e));
    }
    if (key != nullptr) {
      KISTE_ASSIGN_OR_RETURN(auto h, hash_entries(root, m.rel, kept, from ? nullptr : hash_cache()));
      key->push_back(fmt::format("src {} {}", m.rel, h.str()));
    }
    bool is_dir = !kept.empty() && kept.front().type == ContextEntry::Type::Dir && kept.front().path == m.rel;
    if (m.rel.empty()) is_dir = true;
    // --parents keeps the source's path (below a `/./` pivot) under the destination.
    std::string keep_path = m.rel;
    if (!m.pivot.empty() && keep_path.starts_with(m.pivot + "/")) keep_path = keep_path.substr(m.pivot.size() + 1);
    if (is_dir) {
      std::string d = parents && !keep_path.empty() ? dest_slash + keep_path : dest;
      if (d.size() > 1 && d.ends_with("/")) d.pop_back();
      // A directory's contents are copied, not the directory itself.
      std::vector<ContextEntry> below;
      for (auto& e : kept) {
        if (e.path != m.rel) below.push_back(std::move(e));
      }
      job.items.push_back({root, m.rel, d, std::move(below)});
      continue;
    }
    std::string target = parents ? dest_slash + keep_path : dest_dir ? dest_slash + base_name(m.rel) : dest;
    auto tk = add && !from && kept.front().type == ContextEntry::Type::File ? tar_kind(root, m.rel) : std::nullopt;
    if (tk) {
      // ADD auto-extracts local tar archives into the destination directory.
      fs::path x = work_->path() / fmt::format("add-{}", ++counter_);
      KISTE_TRY(sys::mkdir_all(x, 0755));
      KISTE_ASSIGN_OR_RETURN(UniqueFd rootfd, sys::open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
      KISTE_ASSIGN_OR_RETURN(UniqueFd in, sys::open_regular_in_root(rootfd.get(), m.rel));
      KISTE_ASSIGN_OR_RETURN(UniqueFd xfd, sys::open(x, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
      image::FdReader reader(std::move(in), m.rel);
      image::ExtractOptions eo;
      eo.same_owner = true;
      KISTE_TRY(with_context(image::extract_layer(reader, *tk, xfd.get(), eo),
                             fmt::format("extract {}", quote(m.rel))));
      KISTE_ASSIGN_OR_RETURN(auto xentries, walk_context(x, "", empty_matcher));
      std::string d = dest;
      if (d.size() > 1 && d.ends_with("/")) d.pop_back();
      job.items.push_back({x, "", d, std::move(xentries)});
      continue;
    }
    job.items.push_back({.src_root = root, .src_rel = m.rel, .dest = target, .entries = std::move(kept),
                         .into_existing_dir = !dest_dir});
  }
  return {};
}

Result<std::vector<std::string>> BuildRun::run_inputs(StageOut& out, const Instruction& ins,
                                                      RunRequest& req, std::string& created_by) {
  VarMap scope = out.st.scope();
  const auto& c = out.st.config.config;
  std::vector<std::string> inputs;
  if (ins.exec_form) {
    req.argv = ins.args;
  } else {
    std::string cmd = ins.args.empty() ? "" : ins.args[0];
    req.argv = out.st.shell();
    if (!ins.heredocs.empty()) {
      auto w = split_raw_words(cmd, cf_.escape);
      if (w.size() == 1 && ins.heredocs.size() == 1) {
        cmd = ins.heredocs[0].content;  // `RUN <<EOF`: the body is the script
      } else {
        for (const auto& h : ins.heredocs) cmd += "\n" + h.content + h.name;
      }
    }
    req.argv.push_back(cmd);
  }
  req.env = c.env;
  std::string args_used;
  for (const auto& [k, v] : out.st.args) {
    if (!out.st.env(k)) {
      req.env.push_back(k + "=" + v);
      args_used += " " + k + "=" + v;
    }
  }
  if (std::none_of(req.env.begin(), req.env.end(), [](const std::string& e) { return e.starts_with("PATH="); })) {
    req.env.push_back("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
  }
  req.cwd = c.working_dir.empty() ? "/" : c.working_dir;
  req.user = c.user;
  req.network = opts_.network;
  if (const Flag* f = ins.flag("network")) {
    std::string n = f->value.value_or("");
    if (n == "none") {
      req.network = BuildNetwork::None;
    } else if (n == "host") {
      if (opts_.network != BuildNetwork::Host) {
        return fail(Errc::PermissionDenied,
                    "RUN --network=host: the build was not given `--network host` (an untrusted "
                    "Containerfile does not get the host's network by itself)");
      }
      req.network = BuildNetwork::Host;
    } else if (n != "default") {
      return failf(Errc::InvalidArgument, "--network={}: expected none, host or default", n);
    }
  }
  if (ins.flag("security") && ins.flag("security")->value.value_or("") != "sandbox") {
    return fail(Errc::PermissionDenied, "RUN --security=insecure is not allowed in kiste builds");
  }
  inputs.push_back(fmt::format("run {}", fmt::join(req.argv, "\x1f")));
  inputs.push_back(fmt::format("env {}", fmt::join(req.env, "\x1f")));
  inputs.push_back("cwd " + req.cwd);
  inputs.push_back("user " + req.user);
  // As BuildKit's exec op (its NetMode is in the op it hashes), the mode is part of the key;
  // `none` keeps the key the builds before the default bridge had.
  inputs.push_back(fmt::format("network {}", to_string(req.network)));
  for (const auto& spec : ins.flag_values("mount")) {
    KISTE_ASSIGN_OR_RETURN(std::string v, expand_word(spec, scope, cf_.escape));
    KISTE_ASSIGN_OR_RETURN(RunMount m, parse_run_mount(v));
    switch (m.type) {
      case RunMount::Type::Cache: {
        std::string id = m.id.empty() ? m.target : m.id;
        fs::path src = store_.layout().mount_cache() / std::string(image::Digest::of(id).hex().substr(0, 32));
        KISTE_TRY(sys::mkdir_all(src, 0755));
        req.mounts.push_back(bind_mount(src, m.target, false));
        inputs.push_back(fmt::format("mount cache {} {}", id, m.target));
        break;
      }
      case RunMount::Type::Secret: {
        auto it = opts_.secrets.find(m.id);
        if (it == opts_.secrets.end()) {
          if (m.required) return failf(Errc::NotFound, "secret {} is required but was not given (--secret id={},src=…)", quote(m.id), m.id);
          break;
        }
        req.mounts.push_back(bind_mount(it->second, m.target, true));
        inputs.push_back(fmt::format("mount secret {} {}", m.id, m.target));  // never the content
        break;
      }
      case RunMount::Type::Bind: {
        fs::path root = context_;
        const IgnoreMatcher empty_matcher;
        const IgnoreMatcher* matcher = &ignore_;
        if (!m.from.empty()) {
          KISTE_ASSIGN_OR_RETURN(root, rootfs_of_ref(m.from, cur_stage_));
          matcher = &empty_matcher;
        }
        std::string rel = clean_rel(m.source);
        KISTE_ASSIGN_OR_RETURN(auto entries, walk_context(root, rel, *matcher));
        KISTE_ASSIGN_OR_RETURN(auto h, hash_entries(root, rel, entries, m.from.empty() ? hash_cache() : nullptr));
        // Bind the in-root resolution of the source, never a host path a symlink points to.
        KISTE_ASSIGN_OR_RETURN(UniqueFd rootfd, sys::open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        KISTE_ASSIGN_OR_RETURN(UniqueFd srcfd, rel.empty() ? sys::openat(rootfd.get(), ".", O_PATH | O_CLOEXEC)
                                                           : sys::open_in_root(rootfd.get(), rel, O_PATH | O_CLOEXEC));
        KISTE_ASSIGN_OR_RETURN(std::string real, sys::fd_path(srcfd.get()));
        req.mounts.push_back(bind_mount(real, m.target, !m.rw));
        inputs.push_back(fmt::format("mount bind {} {} {} {}", m.from, rel, m.target, h.str()));
        break;
      }
      case RunMount::Type::Tmpfs: {
        req.mounts.push_back({.kind = runtime::MountKind::Tmpfs,
                              .destination = m.target,
                              .tmpfs_options = m.size.empty() ? "" : "size=" + m.size});
        inputs.push_back(fmt::format("mount tmpfs {} size={}", m.target, m.size));
        break;
      }
      case RunMount::Type::Ssh: {
        auto it = opts_.ssh.find(m.id);
        if (it == opts_.ssh.end()) {
          if (m.required) {
            return failf(Errc::NotFound, "ssh agent {} is required but was not given (--ssh {}[=SOCKET])", quote(m.id), m.id);
          }
          break;
        }
        struct stat st {};
        if (::stat(it->second.c_str(), &st) != 0) return std::unexpected(sys_error("stat ssh agent socket", it->second.native()));
        if (!S_ISSOCK(st.st_mode)) {
          return failf(Errc::InvalidArgument, "--ssh {}: {} is not a socket", m.id, quote(it->second.native()));
        }
        req.mounts.push_back(bind_mount(it->second, m.target, false));
        req.env.push_back("SSH_AUTH_SOCK=" + m.target);
        // The socket's host path changes every session: only the id and target are inputs.
        inputs.push_back(fmt::format("mount ssh {} {}", m.id, m.target));
        break;
      }
    }
  }
  created_by = ins.exec_form ? fmt::format("RUN {} # buildkit", fmt::join(ins.args, " "))
                             : fmt::format("RUN {} # buildkit", fmt::join(req.argv, " "));
  if (!args_used.empty()) created_by = "RUN |" + std::to_string(std::count(args_used.begin(), args_used.end(), ' ')) + args_used + created_by.substr(3);
  return inputs;
}

Result<std::pair<CopyItem, image::Digest>> BuildRun::download(
    const std::string& url, const std::string& target, const std::optional<image::Digest>& checksum) {
  if (opts_.url_fetcher == nullptr) {
    return failf(Errc::Unsupported, "{}: this build was given no URL fetcher", quote(url));
  }
  fs::path dir = work_->path() / fmt::format("url-{}", ++counter_);
  KISTE_TRY(sys::mkdir_all(dir, 0755));
  std::string name = url_file_name(url);
  if (name.empty()) name = "download";
  KISTE_ASSIGN_OR_RETURN(UniqueFd fd, sys::open(dir / name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  image::FdSink file(fd.get(), (dir / name).string());
  image::HashingSink sink(file);
  KISTE_ASSIGN_OR_RETURN(UrlFetch got, with_context(opts_.url_fetcher->fetch(url, sink),
                                                    fmt::format("download {}", quote(url))));
  image::Digest digest = sink.finish();
  if (checksum && digest != *checksum) {
    return failf(Errc::Corrupt, "{}: checksum mismatch: expected {}, downloaded {}", quote(url),
                 checksum->str(), digest.str());
  }
  if (::fchmod(fd.get(), 0600) != 0) return std::unexpected(sys_error("fchmod", name));
  KISTE_ASSIGN_OR_RETURN(auto entries, walk_context(dir, name, IgnoreMatcher{}));
  CopyItem item{.src_root = dir, .src_rel = name, .dest = target, .entries = std::move(entries),
                .mtime = got.last_modified};
  return std::pair{std::move(item), digest};
}

Status BuildRun::resolve_copy_targets(StageOut& out, CopyJob& job) {
  for (const auto& u : job.urls) {
    KISTE_ASSIGN_OR_RETURN(auto got, download(u.url, u.dest, u.checksum));
    got.first.into_existing_dir = u.into_existing_dir;
    job.items.push_back(std::move(got.first));
  }
  job.urls.clear();
  for (auto& item : job.items) {
    if (!item.into_existing_dir || item.entries.size() != 1 ||
        item.entries.front().type == ContextEntry::Type::Dir) {
      continue;
    }
    KISTE_ASSIGN_OR_RETURN(bool is_dir, dir_in_stage(out, item.dest));
    if (is_dir) item.dest = (item.dest == "/" ? "" : item.dest) + "/" + base_name(item.src_rel);
  }
  return {};
}

Result<bool> BuildRun::dir_in_stage(const StageOut& out, const std::string& path) {
  std::string rel = clean_rel(path);
  if (rel.empty()) return true;
  KISTE_ASSIGN_OR_RETURN(auto lowers, lowers_of(out));
  for (auto it = lowers.rbegin(); it != lowers.rend(); ++it) {  // the top layer decides
    auto lfd = sys::open(*it, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (!lfd) continue;
    auto f = sys::open_in_root(lfd->get(), rel, O_PATH | O_CLOEXEC);
    if (!f) continue;
    KISTE_ASSIGN_OR_RETURN(struct stat st, sys::fstat(f->get(), rel));
    if (S_ISCHR(st.st_mode) && st.st_rdev == 0) return false;  // an overlay whiteout
    return S_ISDIR(st.st_mode);
  }
  return false;
}

Status BuildRun::workdir_layer(StageOut& out) {
  const std::string& wd = out.st.config.config.working_dir;
  std::string rel = clean_rel(wd);
  if (rel.empty()) return {};
  image::Digest key = image::Digest::of(out.key.str() + "\nworkdir-dir " + wd + "\n" + pack_input());
  fs::path record = cache_dir() / std::string(key.hex());
  std::optional<image::LayerResult> layer;
  auto text = sys::read_file(record, 4096);
  if (!opts_.no_cache) {
    auto imp = imported_.find(key.str());
    bool none = (text && *text == "none\n") || (imp != imported_.end() && !imp->second.layer);
    if (none) {
      if (!text) KISTE_TRY(sys::write_file_atomic(record, "none\n"));
      result_.cache_records.push_back({.key = key});
      return {};
    }
    KISTE_ASSIGN_OR_RETURN(layer, cache_lookup(key));
    if (!layer) {
      KISTE_ASSIGN_OR_RETURN(layer, import_lookup(key));
    }
  }
  if (!layer) {
    KISTE_ASSIGN_OR_RETURN(auto lowers, lowers_of(out));
    bool exists = false;
    for (const auto& l : lowers) {
      auto lfd = sys::open(l, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (lfd && sys::open_in_root(lfd->get(), rel, O_PATH | O_CLOEXEC)) exists = true;
    }
    if (exists) {
      result_.cache_records.push_back({.key = key});
      return sys::write_file_atomic(record, "none\n");
    }
    fs::path dir = work_->path() / fmt::format("layer-{}", ++counter_);
    KISTE_TRY(sys::mkdir_all(dir / rel, 0755));
    KISTE_ASSIGN_OR_RETURN(auto packed, pack_dir(dir));
    (void)sys::remove_tree(dir);
    KISTE_TRY(cache_store(key, packed));
    layer = packed;
  }
  std::string media = opts_.docker_format ? std::string(mt::kDockerLayerGzip) : layer->media_type;
  out.layers.push_back({.media_type = media, .digest = layer->digest, .size = static_cast<int64_t>(layer->size)});
  out.st.config.diff_ids.push_back(layer->diff_id);
  out.st.config.history.back().empty_layer = false;
  result_.cache_records.push_back({.key = key, .layer = *layer});
  out.key = key;
  out.rootfs.reset();
  out.view.reset();
  return {};
}

Status BuildRun::prepare_run(const StageOut& out, RunRequest& req) {
  KISTE_ASSIGN_OR_RETURN(req.lower_dirs, lowers_of(out));
  req.platform = {.os = out.st.config.os,
                  .architecture = out.st.config.architecture,
                  .variant = out.st.config.variant};
  req.container_dir = work_->path() / fmt::format("run-{}", ++counter_);
  KISTE_TRY(sys::mkdir_all(req.container_dir / "upper", 0755));
  // A WORKDIR that no layer has yet is created by this step (as docker build does).
  if (req.cwd != "/") {
    bool exists = false;
    for (const auto& l : req.lower_dirs) {
      auto lfd = sys::open(l, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (lfd && sys::open_in_root(lfd->get(), clean_rel(req.cwd), O_PATH | O_CLOEXEC)) exists = true;
    }
    if (!exists) KISTE_TRY(sys::mkdir_all(req.container_dir / "upper" / clean_rel(req.cwd), 0755));
  }
  return {};
}

}  // namespace

Result<BuildResult> Builder::build(const BuildOptions& opts) {
  BuildRun run(store_, provider_, executor_, opts);
  return run.run();
}

Result<MultiPlatformResult> Builder::build_platforms(const BuildOptions& opts,
                                                     const std::vector<image::Platform>& platforms) {
  if (platforms.empty()) return fail(Errc::InvalidArgument, "--platform: no platform given");
  for (size_t i = 0; i < platforms.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      if (platforms[i].normalized() == platforms[j].normalized()) {
        return failf(Errc::InvalidArgument, "--platform: {} is given twice", platforms[i].str());
      }
    }
  }
  // The images are named only through the index, at the end: the lease keeps a concurrent prune
  // from taking them before.
  KISTE_ASSIGN_OR_RETURN(FileLock lease, store_.writer_lease());
  MultiPlatformResult out;
  image::Index index;
  for (const image::Platform& p : platforms) {
    BuildOptions o = opts;
    o.plan.platform = p;
    o.tags.clear();
    o.name_image = false;
    if (opts.progress) {
      o.progress = [&opts, name = p.str()](const BuildEvent& e) {
        BuildEvent tagged = e;
        tagged.stage_name = tagged.stage_name.empty() ? name : name + " " + tagged.stage_name;
        opts.progress(tagged);
      };
    }
    KISTE_ASSIGN_OR_RETURN(BuildResult r, with_context(build(o), p.str()));
    KISTE_ASSIGN_OR_RETURN(image::Descriptor entry, image::index_entry(store_, r.manifest));
    index.manifests.push_back(std::move(entry));
    out.images.push_back(std::move(r));
  }
  KISTE_ASSIGN_OR_RETURN(out.index, image::put_index(store_, std::move(index)));
  if (opts.tags.empty()) KISTE_TRY(store_.keep_unnamed(out.index));
  for (const auto& t : opts.tags) KISTE_TRY(store_.set_name(t, out.index));
  return out;
}

}  // namespace kiste::builder
