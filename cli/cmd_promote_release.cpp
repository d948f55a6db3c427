// `kiste promote --release FILE | SRC DEST SRC DEST …`: the release phases (verify, blobs,
// manifests by digest, tags) with one progress line per image and phase.
#include <chrono>
#include <filesystem>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>

#include <kiste/base/sys.hpp>
#include <kiste/registry/access.hpp>
#include <kiste/registry/release.hpp>
#include <kiste/trust/policy.hpp>

#include "progress.hpp"
#include "promote_release.hpp"
#include "trust_commands.hpp"
#include "trust_gate.hpp"

namespace kiste::cli {

Result<PromoteGate> promote_gate(const RegistryFlags& rf, const PromoteTrust& pt) {
  // The policy gates the image under the name it gets in the destination (production's rules);
  // --require-signed-by gates it under its source name. Both see the source's signatures.
  struct Gate {
    trust::Policy policy;
    bool as_destination;
  };
  auto gates = std::make_shared<std::vector<Gate>>();
  KISTE_ASSIGN_OR_RETURN(std::optional<trust::Policy> policy, trust::Policy::load(rf.policy));
  if (policy) gates->push_back({std::move(*policy), true});
  if (!pt.require_signed_by.empty()) {
    KISTE_ASSIGN_OR_RETURN(trust::Policy p, with_context(signed_by_policy(pt.require_signed_by),
                                                         "--require-signed-by"));
    gates->push_back({std::move(p), false});
  }
  if (gates->empty()) return PromoteGate{};
  return PromoteGate([gates, registries_d = rf.registries_d](
                         registry::Client& sc, const image::Reference& src,
                         const image::Reference& dst, const image::Digest& digest) -> Status {
    for (const auto& g : *gates) {
      KISTE_TRY(g.policy.check(g.as_destination ? dst : src, digest,
                               signature_source(sc, src, digest, registries_d)));
    }
    return {};
  });
}

bool wants_release(const ReleaseFlags& f, const std::vector<std::string>& args) {
  return !f.file.empty() || f.dry_run || !f.index.empty() || args.size() != 2;
}

namespace {

std::string short_digest(const image::Digest& d) { return d.str().substr(0, 19); }

Result<std::vector<registry::ReleaseItem>> release_items(const ReleaseFlags& f,
                                                         const std::vector<std::string>& args) {
  if (!f.file.empty() && !args.empty()) {
    return failf(Errc::InvalidArgument, "--release `{}` and SRC DEST arguments: give one of them",
                 f.file);
  }
  std::vector<registry::ReleaseItem> items;
  if (!f.file.empty()) {
    KISTE_ASSIGN_OR_RETURN(std::string text, with_context(sys::read_file(f.file, 4 * 1024 * 1024),
                                                          fmt::format("--release `{}`", f.file)));
    KISTE_ASSIGN_OR_RETURN(items, with_context(registry::parse_release(text),
                                               fmt::format("--release `{}`", f.file)));
  } else {
    KISTE_ASSIGN_OR_RETURN(items, registry::release_from_pairs(args));
  }
  if (!f.expect.empty()) {
    if (items.size() != 1) {
      return failf(Errc::InvalidArgument,
                   "--expect-digest names one image; for a release put expectDigest in the file");
    }
    KISTE_ASSIGN_OR_RETURN(items[0].expect_digest,
                           with_context(image::Digest::parse(f.expect), "--expect-digest"));
  }
  return items;
}

// The rebuild inputs of one release entry: its own from the release file (paths relative to the
// file's directory), over the command line's.
Result<RebuildFlags> item_rebuild_flags(const RebuildFlags& rb, const ReleaseFlags& f,
                                        const registry::ReleaseItem& it) {
  RebuildFlags out = rb;
  const std::filesystem::path base =
      f.file.empty() ? std::filesystem::path() : std::filesystem::path(f.file).parent_path();
  auto from_file = [&base](const std::string& p) {
    return std::filesystem::path(p).is_absolute() ? p : (base / p).native();
  };
  if (!it.context.empty()) {
    out.context = from_file(it.context);
    out.file = it.containerfile.empty() ? std::string() : from_file(it.containerfile);
  }
  out.build_args.insert(out.build_args.end(), it.build_args.begin(), it.build_args.end());
  if (out.context.empty()) {
    return failf(Errc::InvalidArgument,
                 "`{}`: --require-rebuild needs its context: give `context` in the release file "
                 "or --context",
                 it.source.str());
  }
  return out;
}

// The rebuild phase: every image of the plan, one after the other, stopping at the first that
// does not rebuild to its digest.
Result<std::vector<RebuildOutcome>> rebuild_release(const Globals& g, const RegistryFlags& rf,
                                                    const std::vector<RebuildFlags>& flags,
                                                    const std::vector<registry::PlannedImage>& plan,
                                                    const registry::ClientFor& client_for) {
  std::vector<RebuildOutcome> out;
  for (size_t i = 0; i < plan.size(); ++i) {
    const auto& p = plan[i];
    std::fprintf(stderr, "[%zu/%zu] rebuild   %s from %s\n", i + 1, plan.size(),
                 p.item.source.str().c_str(), flags[i].context.c_str());
    KISTE_ASSIGN_OR_RETURN(registry::Client * sc, client_for(p.item.source.registry()));
    KISTE_ASSIGN_OR_RETURN(
        RebuildOutcome o,
        with_context(check_rebuild(g, rf, flags[i], *sc, p.item.source, p.digest),
                     fmt::format("`{}` to `{}`", p.item.source.str(), p.item.destination.str())));
    out.push_back(std::move(o));
  }
  return out;
}

// One progress line per image and phase.
void print_event(const registry::ReleaseEvent& ev) {
  const int w = static_cast<int>(std::to_string(ev.count).size());
  std::string what;
  switch (ev.phase) {
    case registry::ReleasePhase::Verify:
      what = fmt::format("{} {}", ev.source->str(), short_digest(ev.digest));
      if (ev.artifacts > 0) what += fmt::format(" (+{} signatures/attestations)", ev.artifacts);
      break;
    case registry::ReleasePhase::Blobs:
      what = fmt::format("{}: {} mounted, {} copied ({}), {} already present",
                         ev.destination->name(), ev.blobs.blobs_mounted, ev.blobs.blobs_copied,
                         human(static_cast<double>(ev.blobs.bytes_copied)),
                         ev.blobs.blobs_existing);
      break;
    case registry::ReleasePhase::Manifests:
      what = fmt::format("{}@{}", ev.destination->name(), short_digest(ev.digest));
      break;
    case registry::ReleasePhase::Tags:
      what = ev.source == nullptr ? fmt::format("{} (release index) {}", ev.destination->str(),
                                                short_digest(ev.digest))
                                  : ev.destination->str();
      break;
  }
  std::string pos = ev.index < ev.count ? fmt::format("{:>{}}/{}", ev.index + 1, w, ev.count)
                                        : std::string("index");
  std::fprintf(stderr, "[%s] %-9s %s\n", pos.c_str(),
               std::string(registry::phase_name(ev.phase)).c_str(), what.c_str());
}

}  // namespace

Status do_promote_release(const Globals& g, const RegistryFlags& rf, const ReleaseFlags& f,
                          const PromoteTrust& pt, const RebuildFlags& rb,
                          const std::vector<std::string>& args) {
  auto t0 = std::chrono::steady_clock::now();
  KISTE_ASSIGN_OR_RETURN(auto items, release_items(f, args));
  const std::string ctx = "promote release";
  std::vector<RebuildFlags> rebuild_flags;
  if (rb.require) {
    for (const auto& it : items) {
      KISTE_ASSIGN_OR_RETURN(RebuildFlags one, with_context(item_rebuild_flags(rb, f, it), ctx));
      rebuild_flags.push_back(std::move(one));
    }
  }
  // Everything that can refuse is settled before a byte moves: the key (and its passphrase), the
  // policy, the required signer.
  std::optional<trust::PrivateKey> key;
  if (!pt.sign_by.empty()) {
    if (!pt.sign_identity.empty() && items.size() > 1) {
      return failf(Errc::InvalidArgument,
                   "--sign-identity names one image; a release signs each for its destination");
    }
    // Loaded for a dry run too: a wrong passphrase shows before the real run.
    KISTE_ASSIGN_OR_RETURN(key, with_context(load_private_key(pt.sign_by), "--sign-by"));
  }
  KISTE_ASSIGN_OR_RETURN(PromoteGate gate, with_context(promote_gate(rf, pt), ctx));
  registry::ReleaseOptions opts{.copy_signatures = !f.no_signatures,
                                .jobs = std::max(f.jobs, 8),
                                .blob_jobs = 4,
                                .gate = {},
                                .sign = {},
                                .index = std::nullopt,
                                .on_event = {}};
  if (gate) {
    opts.gate = [gate](registry::Client& sc, const registry::ReleaseItem& it,
                       const image::Digest& d) { return gate(sc, it.source, it.destination, d); };
  }
  std::optional<image::Reference> index_ref;
  if (!f.index.empty()) {
    KISTE_ASSIGN_OR_RETURN(index_ref, with_context(registry::parse_docker_ref(f.index),
                                                   "--release-index"));
    if (index_ref->digest()) {
      return failf(Errc::InvalidArgument,
                   "--release-index `{}`: name a tag; the index's digest is known only once written",
                   f.index);
    }
    opts.index = index_ref;
  }
  if (key) {
    opts.sign = [&key, &pt](registry::Client& dc, const image::Reference& dst,
                            const image::Digest& d) -> Status {
      KISTE_ASSIGN_OR_RETURN(std::string identity, checked_identity(pt.sign_identity, dst));
      KISTE_TRY(with_context(sign_in_registry(dc, dst, d, *key, identity),
                             fmt::format("--sign-by `{}`", dst.str())));
      return {};
    };
  }
  if (!f.quiet) opts.on_event = print_event;

  // One client per registry, for the whole release.
  std::map<std::string, registry::Remote> remotes;
  registry::ClientFor client_for = [&](const std::string& host) -> Result<registry::Client*> {
    auto it = remotes.find(host);
    if (it == remotes.end()) {
      KISTE_ASSIGN_OR_RETURN(registry::Remote r, registry::connect(rf.access(), host));
      it = remotes.emplace(host, std::move(r)).first;
    }
    return it->second.client.get();
  };

  KISTE_ASSIGN_OR_RETURN(registry::Release release,
                         with_context(registry::Release::prepare(std::move(items), client_for,
                                                                 std::move(opts)),
                                      ctx + " (verify phase: nothing was copied or tagged)"));
  std::vector<RebuildOutcome> rebuilt;
  if (rb.require) {
    KISTE_ASSIGN_OR_RETURN(
        rebuilt, with_context(rebuild_release(g, rf, rebuild_flags, release.plan(), client_for),
                              ctx + " (rebuild phase: nothing was copied or tagged)"));
  }
  if (f.dry_run) {
    std::printf("Release plan (--dry-run: nothing copied, pushed or tagged):\n");
    for (const auto& p : release.plan()) {
      std::printf("  %s -> %s  %s", p.item.source.str().c_str(),
                  p.item.destination.str().c_str(), p.digest.str().c_str());
      if (!p.artifact_tags.empty() || p.referrers > 0) {
        std::printf("  (+%zu signature/attestation tags, %d referrers)", p.artifact_tags.size(),
                    p.referrers);
      }
      std::printf("\n");
    }
    if (index_ref) std::printf("  release index -> %s\n", index_ref->str().c_str());
    if (!pt.sign_by.empty()) std::printf("  each destination signed with `%s`\n", pt.sign_by.c_str());
    return {};
  }
  KISTE_ASSIGN_OR_RETURN(registry::ReleaseResult r, with_context(release.run(), ctx));
  if (!f.quiet) {
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::fprintf(stderr,
                 "Promoted %zu images in %.2f s: %d blobs mounted, %d copied (%s), %d already "
                 "present; %d signature/attestation artifacts; %d tags moved (and %d artifact tags)\n",
                 r.images.size(), s, r.blobs.blobs_mounted, r.blobs.blobs_copied,
                 human(static_cast<double>(r.blobs.bytes_copied)).c_str(),
                 r.blobs.blobs_existing, r.artifacts, r.tags_moved, r.artifact_tags_moved);
  }
  // The rebuilder's statements, once every image is in place (plan order is the items' order).
  for (size_t i = 0; rb.attest && i < rebuilt.size(); ++i) {
    const auto& p = r.images[i];
    KISTE_ASSIGN_OR_RETURN(registry::Client * dc, client_for(p.item.destination.registry()));
    KISTE_TRY(with_context(attest_rebuild(*dc, p.item.destination, p.digest, rebuilt[i]),
                           fmt::format("{}: `{}`: --attest-rebuild", ctx,
                                       p.item.destination.str())));
  }
  if (!f.quiet && rb.attest) {
    std::fprintf(stderr, "Attached %zu rebuild attestations\n", rebuilt.size());
  }
  for (const auto& p : r.images) {
    std::printf("%s@%s\n", p.item.destination.without_digest().str().c_str(), p.digest.str().c_str());
  }
  if (r.index_digest) {
    std::printf("%s@%s\n", index_ref->without_digest().str().c_str(), r.index_digest->str().c_str());
  }
  return {};
}

}  // namespace kiste::cli
