#include <algorithm>
#include <future>
#include <kiste/registry/promote.hpp>
#include <kiste/registry/remote_image.hpp>

namespace kiste::registry {

namespace {

Result<image::Reference> by_digest(const image::Reference& r, const image::Digest& d) {
  return image::Reference::parse(fmt::format("{}/{}@{}", r.registry(), r.repository(), d.str()));
}

// Copies one artifact (a signature tag or a referrer) unchanged.
Status copy_artifact(Client& sc, const image::Reference& from, Client& dc,
                     const image::Reference& to, const PromoteOptions& opts) {
  KISTE_ASSIGN_OR_RETURN(auto img, RemoteImage::open(sc, from));
  RemoteSink sink(dc, to);
  KISTE_TRY(image::copy_image(*img, sink, {.all = true, .jobs = opts.jobs}));
  return {};
}

}  // namespace

Result<PromoteResult> promote(Client& sc, const image::Reference& src, Client& dc,
                              const image::Reference& dst, const PromoteOptions& opts) {
  std::string ctx = fmt::format("promote `{}` to `{}`", src.str(), dst.str());
  KISTE_ASSIGN_OR_RETURN(auto img, with_context(RemoteImage::open(sc, src), ctx));
  const image::Digest digest = img->top().digest;
  if (opts.expect_digest && *opts.expect_digest != digest) {
    return failf(Errc::InvalidArgument,
                 "{}: source has digest {}, expected {}; nothing was copied or tagged", ctx, digest,
                 *opts.expect_digest);
  }
  if (dst.digest() && *dst.digest() != digest) {
    return failf(Errc::InvalidArgument, "{}: source has digest {}", ctx, digest);
  }
  if (opts.gate) KISTE_TRY(with_context(opts.gate(sc, digest), ctx));
  // Signatures and referrers of the image are looked up while it is copied (two round trips
  // off the critical path); they are copied after it.
  std::future<Result<Client::NameList>> tags_f;
  std::future<Result<std::optional<image::ManifestBlob>>> refs_f;
  if (opts.copy_signatures) {
    tags_f = std::async(std::launch::async, [&] { return sc.list_tags(src.repository()); });
    refs_f = std::async(std::launch::async,
                        [&] { return sc.try_referrers(src.repository(), digest); });
  }
  RemoteSink sink(dc, dst);
  sink.set_mount_first(&sc == &dc || sc.registry() == dc.registry());
  KISTE_ASSIGN_OR_RETURN(
      image::CopyResult copy,
      with_context(image::copy_image(*img, sink,
                                     {.all = true, .jobs = opts.jobs, .progress = opts.progress}),
                   ctx));

  // The destination must now serve exactly the source's bytes.
  std::string id = dst.tag() ? *dst.tag() : digest.str();
  KISTE_ASSIGN_OR_RETURN(auto served,
                         with_context(dc.try_head_manifest(dst.repository(), id), ctx));
  if (!served || served->digest != digest) {
    return failf(Errc::Corrupt, "{}: destination serves {} instead of {}", ctx,
                 served ? served->digest.str() : std::string("nothing"), digest);
  }

  PromoteResult res{.digest = digest, .copy = std::move(copy)};
  if (!opts.copy_signatures) return res;

  // Of the image and, for an index, of each platform image (their attestations).
  std::vector<image::Digest> subjects{digest};
  if (img->top().is_index()) {
    for (const auto& c : img->top().index().manifests) subjects.push_back(c.digest);
  }
  // cosign-style tags and the referrers tag schema: sha256-<hex>[.sig|.att|.sbom]
  // One tags list instead of a HEAD per suffix; HEADs when the registry will not list tags.
  auto tags = tags_f.get();
  for (const auto& subject : subjects) {
    std::string base = fmt::format("{}-{}", subject.algorithm_name(), subject.hex());
    for (std::string_view suffix : {"", ".sig", ".att", ".sbom"}) {
      std::string tag = base + std::string(suffix);
      if (tags) {
        if (std::find(tags->names.begin(), tags->names.end(), tag) == tags->names.end()) continue;
      } else {
        KISTE_ASSIGN_OR_RETURN(auto h,
                               with_context(sc.try_head_manifest(src.repository(), tag), ctx));
        if (!h) continue;
      }
      KISTE_TRY(with_context(copy_artifact(sc, src.without_digest().with_tag(tag), dc,
                                           dst.without_digest().with_tag(tag), opts),
                             ctx + ": copy " + tag));
      ++res.artifacts_copied;
    }
  }
  // OCI referrers API (the platform images' asked only when the registry has it).
  for (size_t i = 0; i < subjects.size(); ++i) {
    std::optional<image::ManifestBlob> refs;
    if (i == 0) {
      KISTE_ASSIGN_OR_RETURN(refs, with_context(refs_f.get(), ctx));
      if (!refs) break;
    } else {
      KISTE_ASSIGN_OR_RETURN(refs, with_context(sc.try_referrers(src.repository(), subjects[i]),
                                                ctx));
    }
    if (!refs) continue;
    for (const auto& d : refs->index().manifests) {
      KISTE_ASSIGN_OR_RETURN(auto from, by_digest(src, d.digest));
      KISTE_ASSIGN_OR_RETURN(auto to, by_digest(dst, d.digest));
      KISTE_TRY(with_context(copy_artifact(sc, from, dc, to, opts),
                             ctx + ": copy referrer " + d.digest.str()));
      ++res.artifacts_copied;
    }
  }
  return res;
}

}  // namespace kiste::registry
