// Moving a build cache: BuildKit's --cache-to/--cache-from grammar, reading a cache image from
// any image source and writing one into any sink, through image's one copy routine.
#include <kiste/builder/build_cache.hpp>

#include <kiste/image/blob_io.hpp>
#include <kiste/image/copy.hpp>

namespace kiste::builder {

Result<image::Reference> parse_cache_ref(std::string_view s, std::string_view flag) {
  std::string ref(s);
  if (s.find('=') != std::string_view::npos) {
    ref.clear();
    size_t i = 0;
    while (i <= s.size()) {
      size_t j = s.find(',', i);
      if (j == std::string_view::npos) j = s.size();
      std::string_view kv = s.substr(i, j - i);
      i = j + 1;
      size_t eq = kv.find('=');
      std::string_view k = kv.substr(0, eq);
      std::string_view v = eq == std::string_view::npos ? "" : kv.substr(eq + 1);
      if (k == "type" && v != "registry") {
        return failf(Errc::Unsupported, "{} {}: only type=registry is supported", flag, s);
      }
      if (k == "ref") ref = v;
    }
    if (ref.empty()) return failf(Errc::InvalidArgument, "{} {}: ref= is required", flag, s);
  }
  KISTE_ASSIGN_OR_RETURN(auto r, with_context(image::Reference::parse(ref, {.default_tag = false}),
                                              std::string(flag)));
  if (r.digest()) {
    return failf(Errc::InvalidArgument, "{} {}: a cache is named by a tag, not a digest", flag,
                 ref);
  }
  if (!r.tag()) r = r.with_tag(std::string(kDefaultCacheTag));
  return r;
}

Result<std::vector<CacheRecord>> SourceCache::records() {
  const image::ManifestBlob& m = src_->top();
  KISTE_TRY(check_cache_manifest(m));
  const image::Descriptor& cfg = m.manifest().config;
  KISTE_ASSIGN_OR_RETURN(auto r, src_->open_blob(cfg));
  KISTE_ASSIGN_OR_RETURN(std::string bytes,
                         image::read_bounded(*r, image::kMaxManifestBytes, "build cache config"));
  if (image::Digest::of(bytes) != cfg.digest) {
    return failf(Errc::Corrupt, "build cache config does not match {}", cfg.digest.str());
  }
  return parse_cache_config(bytes);
}

Status SourceCache::fetch(const image::Descriptor& layer) {
  image::StoreSink sink(store_, std::nullopt);
  KISTE_TRY(image::copy_blob(*src_, sink, layer));
  return {};
}

Status FirstCache::fetch(const image::Descriptor& layer) {
  Status last = fail(Errc::NotFound, "no --cache-from given");
  for (CacheImporter* c : caches_) {
    last = c->fetch(layer);
    if (last) return last;
  }
  return last;
}

Status export_cache(const image::Store& store, const std::vector<CacheRecord>& records,
                    image::ImageSink& dst) {
  KISTE_ASSIGN_OR_RETURN(image::ManifestBlob m, make_cache_manifest(store, records));
  auto src = store.open_unstored(std::move(m), "build cache");
  KISTE_TRY(image::copy_image(*src, dst));
  return {};
}

}  // namespace kiste::builder
