#include "rebuild_gate.hpp"

#include <cstdio>
#include <optional>

#include <kiste/base/sys.hpp>
#include <kiste/base/temp_dir.hpp>
#include <kiste/builder/attestation.hpp>
#include <kiste/builder/builder.hpp>
#include <kiste/image/copy.hpp>
#include <kiste/image/image_config.hpp>
#include <kiste/image/image_files.hpp>
#include <kiste/image/layer_writer.hpp>
#include <kiste/image/media_type.hpp>
#include <kiste/registry/attachments.hpp>
#include <kiste/registry/remote_image.hpp>

#include "build_wiring.hpp"
#include "run_network.hpp"

namespace kiste::cli {

namespace {

namespace mt = image::media_type;
constexpr size_t kMaxProvenanceBytes = 1 << 20;

// Base images for the scratch store: found (or pulled) in the user's store, then copied in, so
// the rebuild shares nothing else with it (no build cache, no snapshots).
class ScratchProvider final : public builder::BaseImageProvider {
 public:
  ScratchProvider(const Globals& g, const RegistryFlags& rf, const image::Store& main,
                  const image::Store& scratch)
      : main_(main), scratch_(scratch), outer_(g, rf, main) {}
  Result<image::ManifestBlob> resolve(const image::Reference& ref,
                                      const image::Platform& platform) override {
    KISTE_ASSIGN_OR_RETURN(image::ManifestBlob m, outer_.resolve(ref, platform));
    auto src = main_.open_unstored(m, ref.str());
    image::StoreSink sink(scratch_, std::nullopt);
    KISTE_TRY(image::copy_image(*src, sink, {}));
    return m;
  }

 private:
  const image::Store& main_;
  const image::Store& scratch_;
  PullingImageProvider outer_;
};

struct FoundProvenance {
  builder::ProvenanceInputs inputs;
  image::Digest artifact;
};

// The source's kiste provenance, if it carries one (the first that parses; other in-toto
// statements, a rebuilder's among them, are passed over).
Result<std::optional<FoundProvenance>> find_provenance(registry::Client& sc,
                                                       const image::Reference& src,
                                                       const image::Digest& digest) {
  KISTE_ASSIGN_OR_RETURN(auto refs, registry::list_referrers(sc, src.repository(), digest,
                                                             builder::kInTotoMediaType));
  for (const auto& d : refs) {
    KISTE_ASSIGN_OR_RETURN(std::string doc,
                           registry::fetch_artifact_document(sc, src.repository(), d.digest,
                                                             digest, kMaxProvenanceBytes));
    if (auto p = builder::parse_provenance(doc)) {
      return std::optional(FoundProvenance{std::move(*p), d.digest});
    }
  }
  return std::nullopt;
}

Result<builder::BuildOptions> rebuild_options(const RebuildFlags& f,
                                              const builder::ProvenanceInputs* p) {
  builder::BuildOptions o;
  o.builder_version = kVersion;
  o.context_dir = f.context;
  o.plan.build_platform = image::Platform::host();
  o.plan.platform = o.plan.build_platform;
  o.progress = [](const builder::BuildEvent& e) {
    if (e.kind == builder::BuildEvent::Kind::Step) {
      std::fprintf(stderr, "rebuild [%s %d/%d] %s\n", e.stage_name.c_str(), e.step, e.step_count,
                   e.text.c_str());
    }
  };
  o.context_hash_cache = false;  // nothing of the user's store: hash every file
  if (p) {
    o.plan.build_args = p->build_args;
    o.plan.target = p->target;
    o.timestamp = p->source_date_epoch;
    if (!p->platform.empty()) {
      KISTE_ASSIGN_OR_RETURN(o.plan.platform,
                             with_context(image::Platform::parse(p->platform), "provenance"));
    }
    for (const auto& b : p->base_images) o.pinned_images.emplace(b.ref, b.digest);
    if (f.file.empty()) o.containerfile = std::filesystem::path(f.context) / p->containerfile;
  } else {
    KISTE_ASSIGN_OR_RETURN(auto env, image::source_date_epoch_from_env());
    o.timestamp = env.value_or(0);
  }
  if (!f.file.empty()) o.containerfile = f.file;
  for (const auto& a : f.build_args) {
    size_t eq = a.find('=');
    if (eq == std::string::npos) {
      return failf(Errc::InvalidArgument, "--build-arg {}: expected KEY=VALUE", quote(a));
    }
    o.plan.build_args[a.substr(0, eq)] = a.substr(eq + 1);
  }
  return o;
}

// Why the rebuilt image is not the source: the first layer that differs and its first file.
Result<std::string> explain_difference(image::ImageSource& source, const image::Store& scratch,
                                       const image::Descriptor& rebuilt) {
  KISTE_ASSIGN_OR_RETURN(image::ManifestBlob mine, image::read_manifest(scratch, rebuilt));
  const image::ManifestBlob& theirs = source.top();
  if (theirs.is_index() || mine.is_index()) return std::string("one side is an image index");
  const auto& a = theirs.manifest().layers;
  const auto& b = mine.manifest().layers;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
    if (a[i].digest == b[i].digest) continue;
    std::string head = fmt::format("layer {} differs first (source {}, rebuilt {})", i, a[i].digest,
                                   b[i].digest);
    KISTE_ASSIGN_OR_RETURN(auto ra, source.open_blob(a[i]));
    KISTE_ASSIGN_OR_RETURN(auto rb, scratch.open_blob(b[i].digest));
    KISTE_ASSIGN_OR_RETURN(auto diff, image::first_entry_difference(
                                          *ra, mt::layer_compression(a[i].media_type), *rb,
                                          mt::layer_compression(b[i].media_type)));
    if (!diff) return head + ": the same entries, packed differently";
    return fmt::format("{}: {}: {}", head, quote(diff->path), diff->what);
  }
  if (a.size() != b.size()) {
    return fmt::format("the source has {} layers, the rebuild {}", a.size(), b.size());
  }
  return fmt::format("the layers are the same; the config differs (source {}, rebuilt {})",
                     theirs.manifest().config.digest, mine.manifest().config.digest);
}

}  // namespace

Result<RebuildOutcome> check_rebuild(const Globals& g, const RegistryFlags& rf,
                                     const RebuildFlags& f, registry::Client& sc,
                                     const image::Reference& src, const image::Digest& digest) {
  std::string ctx = fmt::format("--require-rebuild of {}", digest);
  if (f.context.empty()) return failf(Errc::InvalidArgument, "{}: --context DIR is required", ctx);
  KISTE_ASSIGN_OR_RETURN(auto provenance, with_context(find_provenance(sc, src, digest), ctx));
  if (!provenance) {
    std::fprintf(stderr, "note: %s carries no kiste provenance: rebuilding with the given inputs\n",
                 src.str().c_str());
  }
  KISTE_ASSIGN_OR_RETURN(
      builder::BuildOptions o,
      with_context(rebuild_options(f, provenance ? &provenance->inputs : nullptr), ctx));
  image::Store main = open_store(g);
  KISTE_TRY(sys::mkdir_all(main.tmp_dir(), 0700));
  KISTE_ASSIGN_OR_RETURN(TempDir dir, TempDir::create(main.tmp_dir(), "rebuild-"));
  KISTE_ASSIGN_OR_RETURN(image::Store scratch, image::Store::open(dir.path() / "root"));
  ScratchProvider provider(g, rf, main, scratch);
  KISTE_ASSIGN_OR_RETURN(auto placement, cgroup_placement("", "", false));
  // RUN steps get what `kiste build` gives them by default (the default bridge; pasta when
  // rootless), on the user's own networks: the rebuild must be able to do what the build did.
  o.network = builder::BuildNetwork::Default;
  std::unique_ptr<builder::StepNetworks> step_networks = build_step_networks(g);
  auto executor = builder::make_runtime_executor(
      {.root = scratch.root(), .networks = step_networks.get(), .cgroups = placement});
  std::optional<OutputRedirect> redirect;
  if (executor) redirect.emplace(*executor, false);
  builder::Builder b(scratch, provider, redirect ? &*redirect : nullptr);
  KISTE_ASSIGN_OR_RETURN(builder::BuildResult r, with_context(b.build(o), ctx + ": rebuild"));
  if (r.manifest.digest == digest) {
    std::fprintf(stderr, "rebuilt %s from %s: the same digest\n", digest.str().c_str(),
                 f.context.c_str());
    return RebuildOutcome{.inputs = std::move(r.provenance),
                          .provenance = provenance ? std::optional(provenance->artifact)
                                                   : std::nullopt};
  }
  KISTE_ASSIGN_OR_RETURN(auto by_digest, image::Reference::parse(fmt::format(
                                             "{}/{}@{}", src.registry(), src.repository(), digest.str())));
  KISTE_ASSIGN_OR_RETURN(auto source, registry::RemoteImage::open(sc, by_digest));
  KISTE_ASSIGN_OR_RETURN(std::string why, with_context(explain_difference(*source, scratch, r.manifest), ctx));
  return failf(Errc::InvalidArgument, "{}: the rebuild from {} gives {}: {}; nothing was promoted",
               ctx, quote(f.context), r.manifest.digest, why);
}

Status attest_rebuild(registry::Client& dc, const image::Reference& dest,
                      const image::Digest& digest, const RebuildOutcome& outcome) {
  KISTE_ASSIGN_OR_RETURN(auto subject, dc.try_head_manifest(dest.repository(), digest.str()));
  if (!subject) return failf(Errc::NotFound, "{} is not in `{}`", digest, dest.repository());
  std::string doc = builder::rebuild_statement_json(dest.without_digest().str(), digest,
                                                    outcome.provenance, outcome.inputs);
  KISTE_TRY(registry::push_artifact(
      dc, dest.repository(), *subject, builder::kInTotoMediaType, doc,
      {{"org.opencontainers.image.created", image::rfc3339(outcome.inputs.source_date_epoch)}}));
  return {};
}

}  // namespace kiste::cli
