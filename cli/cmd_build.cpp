// kiste build: wiring only; the work is in kiste::builder (builder.hpp).
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>

#include <fcntl.h>
#include <unistd.h>

#include <kiste/base/split.hpp>
#include <kiste/base/sys.hpp>
#include <kiste/builder/build_cache.hpp>
#include <kiste/builder/builder.hpp>
#include <kiste/image/archive.hpp>
#include <kiste/image/layer_writer.hpp>

#include <kiste/image/compression.hpp>
#include <kiste/registry/fetch_url.hpp>
#include <kiste/registry/remote_image.hpp>
#include <kiste/registry/transport.hpp>

#include "build_wiring.hpp"
#include "globals.hpp"
#include "registry_flags.hpp"
#include "run_network.hpp"

namespace kiste::cli {

namespace {

// ADD URL through the registry client's HTTP stack.
class HttpFetcher final : public builder::UrlFetcher {
 public:
  Result<builder::UrlFetch> fetch(std::string_view url, image::ByteSink& out) override {
    KISTE_ASSIGN_OR_RETURN(auto r, registry::fetch_url(url, out));
    return builder::UrlFetch{.last_modified = r.last_modified, .size = r.size};
  }
};

// --cache-to: the cache image into the registry.
Status export_registry_cache(const image::Store& store,
                             const std::vector<builder::CacheRecord>& records,
                             const image::Reference& ref, const RegistryFlags& rf) {
  KISTE_ASSIGN_OR_RETURN(registry::Remote remote, registry::connect(rf.access(), ref.registry()));
  registry::RemoteSink sink(*remote.client, ref);
  return builder::export_cache(store, records, sink);
}

struct BuildFlags {
  std::string context = ".", file, target, platform, timestamp, format = "oci",
              compression = "gzip", network = "default", progress = "auto", iidfile;
  std::string cgroup_manager, cgroup_parent, memory, memory_swap, cpus;
  std::optional<int64_t> pids_limit;
  std::vector<std::string> tags, build_args, secrets, outputs, cache_from, cache_to, ssh;
  bool no_cache = false, quiet = false, push = false, sbom = false, provenance = false;
  RegistryFlags registry;
};

// "k=v,k2=v2" → map.
std::map<std::string, std::string> csv_map(std::string_view s) {
  std::map<std::string, std::string> m;
  for (const KeyValue& kv : split_kv(s)) {
    if (!kv.empty()) m[std::string(kv.key)] = kv.value;
  }
  return m;
}

// After `build --platform a,b`: the cache export, --push of the index (every image, then the
// index), and the index digest on stdout.
void finish_multi_platform(const builder::BuildOptions& o, const BuildFlags& f,
                           const image::Store& store, const builder::MultiPlatformResult& mr,
                           std::chrono::steady_clock::time_point t0) {
  std::vector<builder::CacheRecord> records;
  int run = 0, cached = 0;
  for (const auto& r : mr.images) {
    records.insert(records.end(), r.cache_records.begin(), r.cache_records.end());
    run += r.steps_run;
    cached += r.steps_cached;
  }
  for (const auto& c : f.cache_to) {
    auto ref = value_or_exit(builder::parse_cache_ref(c, "--cache-to"));
    exit_on_error(with_context(export_registry_cache(store, records, ref, f.registry),
                               fmt::format("--cache-to {}", ref.str())));
  }
  if (f.push) {
    for (const auto& t : o.tags) {
      image::StoreEntry e{.name = t.str(), .manifest = mr.index};
      auto pushed = value_or_exit(registry::push_image(store, e, t, f.registry.access(), {.all = true}));
      if (!f.quiet) {
        std::fprintf(stderr, "pushed %s@%s (%d blobs copied, %d already there)\n", t.str().c_str(),
                     pushed.top.digest.str().c_str(), pushed.blobs_copied, pushed.blobs_existing);
      }
    }
  }
  if (!f.quiet) {
    // One per platform image: its subject is that image's manifest, not the index.
    for (const auto& r : mr.images) {
      for (const auto& a : r.attestations) {
        std::fprintf(stderr, "attached %s %s to %s (%s)\n", a.artifact_type.c_str(),
                     a.digest.str().c_str(), r.manifest.digest.str().c_str(),
                     r.provenance.platform.c_str());
      }
    }
    double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::fprintf(stderr, "built index %s of %zu images in %.2fs (%d steps run, %d cached)\n",
                 mr.index.digest.str().c_str(), mr.images.size(), total, run, cached);
  }
  std::printf("%s\n", mr.index.digest.str().c_str());
}

void cmd_build(const Globals& g, const BuildFlags& f) {
  auto t0 = std::chrono::steady_clock::now();
  image::Store store = open_store(g);
  builder::BuildOptions o;
  o.context_dir = f.context;
  o.containerfile = f.file;
  for (const auto& t : f.tags) {
    o.tags.push_back(value_or_exit(with_context(image::Reference::parse(t), "-t " + t)));
  }
  for (const auto& a : f.build_args) {
    size_t eq = a.find('=');
    if (eq == std::string::npos) {
      const char* v = std::getenv(a.c_str());
      if (v) o.plan.build_args[a] = v;
    } else {
      o.plan.build_args[a.substr(0, eq)] = a.substr(eq + 1);
    }
  }
  o.plan.target = f.target;
  o.plan.build_platform = image::Platform::host();
  // --platform a,b,…: one image per platform and an index over them.
  std::vector<image::Platform> platforms;
  for (std::string_view p : split(f.platform, ',')) {
    if (f.platform.empty()) break;
    platforms.push_back(value_or_exit(with_context(image::Platform::parse(p), "--platform")));
  }
  o.plan.platform = platforms.empty() ? o.plan.build_platform : platforms.front();
  const bool multi = platforms.size() > 1;
  if (multi && !f.outputs.empty()) {
    exit_on_error(fail(Errc::Unsupported, "-o/--output with several --platform values: push the index, or save it with `kiste save`"));
  }
  o.sbom = f.sbom;
  o.provenance = f.provenance;
  o.builder_version = kVersion;
  if (multi && !f.iidfile.empty()) {
    exit_on_error(fail(Errc::Unsupported, "--iidfile with several --platform values: an index has no image ID"));
  }
  o.no_cache = f.no_cache;
  if (f.timestamp == "now") {
    o.timestamp = static_cast<int64_t>(std::time(nullptr));
  } else if (!f.timestamp.empty()) {
    char* end = nullptr;
    long long v = std::strtoll(f.timestamp.c_str(), &end, 10);
    if (end == f.timestamp.c_str() || *end != '\0' || v < 0) {
      exit_on_error(fail(Errc::InvalidArgument, "--timestamp: expected seconds since the epoch"));
    }
    o.timestamp = v;
  } else {
    auto env = value_or_exit(image::source_date_epoch_from_env());
    o.timestamp = env.value_or(0);
  }
  o.docker_format = f.format == "docker";
  o.compress.compression = f.compression == "zstd" ? image::media_type::Compression::Zstd
                                                   : image::media_type::Compression::Gzip;
  for (const auto& s : f.secrets) {
    auto m = csv_map(s);
    std::string id = m.count("id") ? m["id"] : "";
    std::string src = m.count("src") ? m["src"] : (m.count("source") ? m["source"] : "");
    if (id.empty() || src.empty()) {
      exit_on_error(failf(Errc::InvalidArgument, "--secret {}: expected id=ID,src=PATH", s));
    }
    o.secrets[id] = src;
  }
  o.network = f.network == "host"   ? builder::BuildNetwork::Host
              : f.network == "none" ? builder::BuildNetwork::None
                                    : builder::BuildNetwork::Default;
  // Rootless, RUN steps get pasta instead of the bridge (build_step_networks), or loopback
  // with one note where pasta cannot start.
  bool plain = f.progress == "plain";
  o.explain_misses = plain;
  if (f.push && o.tags.empty()) {
    exit_on_error(fail(Errc::InvalidArgument, "--push needs at least one -t NAME to push to"));
  }
  for (const auto& s : f.ssh) {
    // default | default=/path | id=/path (no path: $SSH_AUTH_SOCK)
    size_t eq = s.find('=');
    std::string id = s.substr(0, eq);
    std::string path = eq == std::string::npos ? "" : s.substr(eq + 1);
    if (path.empty()) {
      const char* env = std::getenv("SSH_AUTH_SOCK");
      if (env == nullptr || *env == '\0') {
        exit_on_error(failf(Errc::InvalidArgument, "--ssh {}: no socket given and $SSH_AUTH_SOCK is not set", s));
      }
      path = env;
    }
    if (id.empty()) exit_on_error(failf(Errc::InvalidArgument, "--ssh {}: expected ID[=SOCKET]", s));
    o.ssh[id] = path;
  }
  std::vector<image::Reference> cache_to;
  for (const auto& c : f.cache_to) {
    cache_to.push_back(value_or_exit(builder::parse_cache_ref(c, "--cache-to")));
  }
  // --cache-from: a missing cache is a note, not an error (as with BuildKit), so the first build
  // of a branch works.
  std::vector<std::unique_ptr<builder::SourceCache>> caches;
  std::vector<builder::CacheImporter*> importers;
  for (const auto& c : f.cache_from) {
    auto ref = value_or_exit(builder::parse_cache_ref(c, "--cache-from"));
    std::string ctx = fmt::format("--cache-from {}", ref.str());
    auto src = value_or_exit(
        with_context(registry::open_remote_if_present(ref, f.registry.access()), ctx));
    if (!src) {
      if (!f.quiet) std::fprintf(stderr, "note: no build cache at %s\n", ref.str().c_str());
      continue;
    }
    auto cache = std::make_unique<builder::SourceCache>(std::move(src), store);
    auto recs = value_or_exit(with_context(cache->records(), ctx));
    if (recs.empty() && !f.quiet) std::fprintf(stderr, "note: no build cache at %s\n", ref.str().c_str());
    o.cache_from.insert(o.cache_from.end(), recs.begin(), recs.end());
    importers.push_back(cache.get());
    caches.push_back(std::move(cache));
  }
  builder::FirstCache first_cache(importers);
  if (!caches.empty()) o.cache_importer = &first_cache;
  int seq = 0;
  if (!f.quiet) {
    o.progress = [&seq](const builder::BuildEvent& e) {
      using K = builder::BuildEvent::Kind;
      switch (e.kind) {
        case K::Step:
          ++seq;
          std::fprintf(stderr, "#%d [%s %d/%d] %s\n", seq, e.stage_name.c_str(), e.step,
                       e.step_count, e.text.c_str());
          break;
        case K::Cached: std::fprintf(stderr, "#%d %s\n", seq, e.text.c_str()); break;
        case K::Done: std::fprintf(stderr, "#%d DONE %.2fs\n", seq, e.seconds); break;
        case K::Miss: std::fprintf(stderr, "#%d %s\n", seq, e.text.c_str()); break;
        case K::Note: std::fprintf(stderr, "note: %s\n", e.text.c_str()); break;
      }
      std::fflush(stderr);
    };
  }
  PullingImageProvider provider(g, f.registry, store);
  std::unique_ptr<builder::StepNetworks> step_networks = build_step_networks(g);
  auto executor = builder::make_runtime_executor(
      {.root = g.root,
       .networks = step_networks.get(),
       .cgroups = value_or_exit(cgroup_placement(
           f.cgroup_manager, f.cgroup_parent,
           !f.memory.empty() || !f.memory_swap.empty() || !f.cpus.empty() || f.pids_limit)),
       .memory = f.memory,
       .memory_swap = f.memory_swap,
       .cpus = f.cpus,
       .pids_limit = f.pids_limit});
  std::optional<OutputRedirect> redirect;
  if (executor) redirect.emplace(*executor, f.quiet);
  HttpFetcher fetcher;
  o.url_fetcher = &fetcher;
  builder::Builder b(store, provider, redirect ? &*redirect : nullptr);
  if (multi) {
    auto mr = value_or_exit(with_context(b.build_platforms(o, platforms), "build"));
    finish_multi_platform(o, f, store, mr, t0);
    return;
  }
  auto r = value_or_exit(with_context(b.build(o), "build"));
  for (const auto& out : f.outputs) {
    auto m = csv_map(out);
    std::string type = m["type"];
    std::string dest = m.count("dest") ? m["dest"] : "";
    if (dest.empty()) exit_on_error(failf(Errc::InvalidArgument, "--output {}: dest= is required", out));
    image::StoreEntry e{.name = r.manifest.digest.str(), .manifest = r.manifest};
    if (!o.tags.empty()) e.name = o.tags.front().str();
    if (type == "oci" || type == "docker-archive" || type == "docker") {
      auto saved = value_or_exit(image::save_archive(
          store, {e}, dest,
          type == "oci" ? image::ArchiveFormat::OciArchive : image::ArchiveFormat::DockerArchive));
      note_referrers_left_out(saved, dest);
    } else {
      exit_on_error(failf(Errc::InvalidArgument, "--output type={}: expected oci or docker-archive", type));
    }
  }
  for (const auto& ref : cache_to) {
    exit_on_error(with_context(export_registry_cache(store, r.cache_records, ref, f.registry),
                               fmt::format("--cache-to {}", ref.str())));
    if (!f.quiet) std::fprintf(stderr, "exported build cache to %s\n", ref.str().c_str());
  }
  if (f.push) {
    for (const auto& t : o.tags) {
      image::StoreEntry e{.name = t.str(), .manifest = r.manifest};
      auto pushed = value_or_exit(registry::push_image(store, e, t, f.registry.access(), {}));
      if (!f.quiet) {
        std::fprintf(stderr, "pushed %s@%s (%d blobs copied, %d already there)\n", t.str().c_str(),
                     pushed.top.digest.str().c_str(), pushed.blobs_copied, pushed.blobs_existing);
      }
    }
  }
  if (!f.iidfile.empty()) {
    exit_on_error(with_context(sys::write_file_atomic(f.iidfile, r.config_digest.str()), "--iidfile"));
  }
  // Docker's rule: the image ID is the config digest (`images` shows it; `--digests` and
  // `inspect` show the manifest digest, which push and pull print).
  if (f.quiet) {
    std::printf("%s\n", r.config_digest.str().c_str());
    return;
  }
  for (const auto& n : r.notes) std::fprintf(stderr, "note: %s\n", n.c_str());
  for (const auto& a : r.attestations) {
    std::fprintf(stderr, "attached %s %s\n", a.artifact_type.c_str(), a.digest.str().c_str());
  }
  double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::fprintf(stderr, "built %s in %.2fs (%d steps run, %d cached)\n",
               r.config_digest.str().c_str(), total, r.steps_run, r.steps_cached);
  // Reproducible by default: say so where users see the date, and how to stamp the real time.
  if (o.timestamp == 0) {
    std::fprintf(stderr, "created 1970-01-01 (reproducible: SOURCE_DATE_EPOCH=0; --timestamp now "
                         "to stamp the build time)\n");
  } else {
    std::fprintf(stderr, "created %s\n", image::rfc3339(o.timestamp).c_str());
  }
  std::printf("%s\n", r.config_digest.str().c_str());
}

}  // namespace

void register_build_commands(CLI::App& app, Globals& g) {
  auto f = std::make_shared<BuildFlags>();
  auto* b = app.add_subcommand("build", "Build an image from a Containerfile");
  b->alias("bud");
  b->add_option("CONTEXT", f->context, "build context directory (default .)");
  b->add_option("-f,--file", f->file, "Containerfile (default CONTEXT/Containerfile or Dockerfile)");
  b->add_option("-t,--tag", f->tags, "name the image NAME[:TAG] (repeatable)")->allow_extra_args(false);
  b->add_option("--build-arg", f->build_args, "KEY=VALUE for an ARG (repeatable)")->allow_extra_args(false);
  b->add_option("--target", f->target, "build up to this stage");
  b->add_option("--platform", f->platform,
                "target platform os/arch[/variant]; several, comma-separated, build an image index");
  b->add_flag("--no-cache", f->no_cache, "do not use the build cache");
  b->add_option("--timestamp", f->timestamp, "created time: seconds since the epoch, or now (default $SOURCE_DATE_EPOCH, else 0 for reproducible builds)");
  b->add_option("--format", f->format, "oci or docker")->check(CLI::IsMember({"oci", "docker"}));
  b->add_option("--compression", f->compression, "gzip or zstd")->check(CLI::IsMember({"gzip", "zstd"}));
  b->add_option("--secret", f->secrets, "id=ID,src=PATH for RUN --mount=type=secret (repeatable)")->allow_extra_args(false);
  b->add_option("--network", f->network,
                "network for RUN: default (each step on the default bridge `kiste`: NAT out, no host "
                "loopback), none (loopback only) or host (also allows RUN --network=host)")
      ->check(CLI::IsMember({"host", "none", "default"}));
  b->add_option("--progress", f->progress, "auto, plain (explains cache misses) or quiet")
      ->check(CLI::IsMember({"auto", "plain", "tty", "quiet"}));
  b->add_option("-o,--output", f->outputs, "type=oci|docker-archive,dest=FILE (repeatable)")->allow_extra_args(false);
  b->add_option("--cache-from", f->cache_from,
                "registry cache to reuse layers from: REPO[:TAG] or type=registry,ref=REPO[:TAG] (tag default buildcache)")
      ->allow_extra_args(false);
  b->add_option("--cache-to", f->cache_to, "registry cache to export this build's layers to (same forms)")
      ->allow_extra_args(false);
  b->add_option("--ssh", f->ssh, "ID[=SOCKET] agent for RUN --mount=type=ssh (default: $SSH_AUTH_SOCK)")
      ->allow_extra_args(false);
  b->add_flag("--push", f->push, "push every -t name to its registry after the build (with its attestations)");
  b->add_flag("--sbom", f->sbom,
              "attach an SPDX 2.3 SBOM (dpkg/apk packages and the files COPY/ADD put in) as a referrer");
  b->add_flag("--provenance", f->provenance,
              "attach SLSA v1 provenance (Containerfile digest, build args, base image digests) as a referrer");
  add_registry_flags(b, f->registry);
  add_policy_flag(b, f->registry);
  b->add_option("--cgroup-manager", f->cgroup_manager, "RUN steps' cgroups: systemd or cgroupfs");
  b->add_option("--cgroup-parent", f->cgroup_parent, "RUN steps' parent slice (systemd) or cgroup (cgroupfs)");
  b->add_option("-m,--memory", f->memory, "memory limit for each RUN step (e.g. 512m)");
  b->add_option("--memory-swap", f->memory_swap, "memory plus swap limit for each RUN step");
  b->add_option("--cpus", f->cpus, "CPU limit for each RUN step (e.g. 1.5)");
  b->add_option("--pids-limit", f->pids_limit, "task limit for each RUN step");
  b->add_option("--iidfile", f->iidfile, "write the image ID (config digest) to this file");
  b->add_flag("-q,--quiet", f->quiet, "print only the image ID (the config digest)");
  b->callback([&g, f] {
    if (f->progress == "quiet") f->quiet = true;
    cmd_build(g, *f);
  });
}

}  // namespace kiste::cli
