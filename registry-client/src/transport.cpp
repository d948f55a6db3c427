#include <kiste/registry/transport.hpp>

#include <array>
#include <functional>

#include <kiste/image/archive.hpp>
#include <kiste/image/dir_image.hpp>
#include <kiste/image/oci_layout.hpp>
#include <kiste/image/store_ops.hpp>
#include <kiste/registry/attachments.hpp>
#include <kiste/registry/remote_image.hpp>

namespace kiste::registry {

namespace {

using image::Reference;
using Kind = Location::Kind;

Result<ScratchStore> scratch_store() {
  KISTE_ASSIGN_OR_RETURN(TempDir dir,
                         TempDir::create(std::filesystem::temp_directory_path(), "kiste-copy-"));
  KISTE_ASSIGN_OR_RETURN(image::Store store, image::Store::open(dir.path()));
  return ScratchStore{std::move(dir), std::make_unique<image::Store>(std::move(store))};
}

Result<std::unique_ptr<image::Store>> open_store(const std::filesystem::path& root, bool create) {
  KISTE_ASSIGN_OR_RETURN(image::Store store, image::Store::open(root, {.create = create}));
  return std::make_unique<image::Store>(std::move(store));
}

// A RemoteImage together with the client it borrows.
class OwningRemoteImage final : public image::ImageSource {
 public:
  OwningRemoteImage(Remote remote, std::unique_ptr<RemoteImage> image)
      : remote_(std::move(remote)), image_(std::move(image)) {}
  const image::ManifestBlob& top() const override { return image_->top(); }
  Result<image::ManifestBlob> fetch_manifest(const image::Descriptor& d) override {
    return image_->fetch_manifest(d);
  }
  Result<std::unique_ptr<image::BlobReader>> open_blob(const image::Descriptor& d) override {
    return image_->open_blob(d);
  }
  std::string describe() const override { return image_->describe(); }
  std::optional<std::pair<std::string, std::string>> registry_location() const override {
    return image_->registry_location();
  }

 private:
  Remote remote_;
  std::unique_ptr<RemoteImage> image_;
};

}  // namespace

Result<Location> parse_location(std::string_view s) {
  struct Prefix {
    std::string_view text;
    Kind kind;
  };
  static constexpr std::array<Prefix, 6> kPrefixes{{{"docker://", Kind::Registry},
                                                    {"oci:", Kind::OciLayout},
                                                    {"dir:", Kind::Dir},
                                                    {"oci-archive:", Kind::OciArchive},
                                                    {"docker-archive:", Kind::DockerArchive},
                                                    {"store:", Kind::Store}}};
  Location l{.kind = Kind::Store, .value = std::string(s), .text = std::string(s)};
  for (const auto& p : kPrefixes) {
    if (!s.starts_with(p.text)) continue;
    l.kind = p.kind;
    l.value = std::string(s.substr(p.text.size()));
    break;
  }
  if (l.value.empty()) {
    return failf(Errc::InvalidArgument, "parse location {}: {}", quote(l.text),
                 l.kind == Kind::Store || l.kind == Kind::Registry ? "no image name" : "no path");
  }
  if (l.kind == Kind::Registry) {
    KISTE_TRY(with_context(Reference::parse(l.value), fmt::format("parse location {}", quote(l.text))));
  }
  return l;
}

Result<OpenedSource> open_source(const Location& l, const TransportOptions& t) {
  OpenedSource s;
  switch (l.kind) {
    case Kind::Registry: {
      KISTE_ASSIGN_OR_RETURN(Reference ref, Reference::parse(l.value));
      KISTE_ASSIGN_OR_RETURN(s.remote, connect(t.access, ref.registry()));
      KISTE_ASSIGN_OR_RETURN(s.image, RemoteImage::open(*s.remote.client, ref));
      s.name = std::move(ref);
      return s;
    }
    case Kind::OciLayout: {
      KISTE_ASSIGN_OR_RETURN(image::LayoutRef ref, image::parse_layout_ref(l.value));
      KISTE_ASSIGN_OR_RETURN(s.image, image::OciLayoutImage::open(ref));
      return s;
    }
    case Kind::Dir: {
      KISTE_ASSIGN_OR_RETURN(s.image, image::DirImage::open(l.value));
      return s;
    }
    case Kind::OciArchive:
    case Kind::DockerArchive: {
      KISTE_ASSIGN_OR_RETURN(s.scratch, scratch_store());
      KISTE_ASSIGN_OR_RETURN(auto loaded, image::load_archive(*s.scratch->store, l.value));
      if (loaded.size() != 1) {
        return failf(Errc::InvalidArgument, "archive {} holds {} images; copy needs exactly one",
                     quote(l.value), loaded.size());
      }
      image::StoreEntry e{.name = loaded[0].name ? loaded[0].name->str() : std::string(),
                          .manifest = loaded[0].manifest};
      s.name = loaded[0].name;
      KISTE_ASSIGN_OR_RETURN(s.image, s.scratch->store->open_image(e));
      return s;
    }
    case Kind::Store: {
      KISTE_ASSIGN_OR_RETURN(s.store, open_store(t.store_root, false));
      KISTE_ASSIGN_OR_RETURN(image::StoreEntry e, s.store->resolve(l.value));
      if (auto r = Reference::parse(e.name)) s.name = std::move(*r);
      KISTE_ASSIGN_OR_RETURN(s.image, s.store->open_image(e));
      return s;
    }
  }
  return fail(Errc::InvalidArgument, "copy: unknown source");
}

Status OpenedSink::finish(const image::CopyResult& r) {
  if (staged != nullptr) staged->commit();
  if (!where.is_archive()) return {};
  image::StoreEntry e{.name = r.top.digest.str(), .manifest = r.top.descriptor()};
  if (name) {
    KISTE_TRY(scratch->store->set_name(*name, e.manifest));
    e.name = name->str();
  } else {
    KISTE_TRY(scratch->store->keep_unnamed(e.manifest));
  }
  // The scratch store holds the copied image and the referrers copy_referrers put there.
  KISTE_TRY(image::save_archive(*scratch->store, {e}, where.value,
                                where.kind == Kind::OciArchive ? image::ArchiveFormat::OciArchive
                                                               : image::ArchiveFormat::DockerArchive));
  return {};
}

namespace {

// The store a source or destination keeps its images in, where referrers live: the store, or
// an archive's scratch store. None for registries, OCI layouts and dir:.
const image::Store* referrer_store(const std::unique_ptr<image::Store>& store,
                                   const std::optional<ScratchStore>& scratch) {
  if (store) return store.get();
  if (scratch) return scratch->store.get();
  return nullptr;
}

// The referrers of the copied image (`refs`: {subject, artifact}, each opened with `open`) to a
// destination that can hold them: a store or an oci-archive (as store-side referrers;
// save_archive writes the archive's), an OCI layout (as unnamed index.json entries with their
// artifactType). Registries get theirs from push/promote, not here. What the destination cannot
// hold is counted.
using OpenArtifact =
    std::function<Result<std::unique_ptr<image::ImageSource>>(const image::Descriptor&)>;
Status copy_referrers(const std::vector<std::pair<image::Digest, image::Descriptor>>& refs,
                      const OpenArtifact& open, OpenedSink& d, image::CopyResult& r) {
  if (refs.empty() || d.where.kind == Kind::Registry) return {};
  const image::Store* to = referrer_store(d.store, d.scratch);
  const bool layout = d.where.kind == Kind::OciLayout;
  if ((to == nullptr && !layout) || d.where.kind == Kind::DockerArchive) {
    r.referrers_left_out = static_cast<int>(refs.size());
    return {};
  }
  for (const auto& [subject, art] : refs) {
    std::string what = fmt::format("referrer {}", art.digest);
    KISTE_ASSIGN_OR_RETURN(auto src, with_context(open(art), what));
    if (layout) {
      KISTE_ASSIGN_OR_RETURN(image::LayoutRef ref, image::parse_layout_ref(d.where.value));
      ref.name.clear();  // an unnamed entry: the artifact is no image of its own
      KISTE_ASSIGN_OR_RETURN(auto sink, image::OciLayoutSink::create(ref));
      KISTE_TRY(with_context(image::copy_image(*src, *sink, {}), what));
    } else {
      image::StoreSink sink(*to, std::nullopt);
      KISTE_TRY(with_context(image::copy_image(*src, sink, {}), what));
      KISTE_TRY(with_context(to->add_referrer(art, subject), what));
    }
    ++r.referrers_copied;
  }
  return {};
}

// The copied image's referrers where the source keeps them: a store (or an archive's scratch
// store) or an OCI layout; none from registries and dir:.
Status copy_source_referrers(OpenedSource& s, OpenedSink& d, image::CopyResult& r) {
  if (const image::Store* from = referrer_store(s.store, s.scratch)) {
    KISTE_ASSIGN_OR_RETURN(auto refs, image::image_referrers(*from, s.image->top().descriptor()));
    return copy_referrers(
        refs,
        [from](const image::Descriptor& a) -> Result<std::unique_ptr<image::ImageSource>> {
          KISTE_ASSIGN_OR_RETURN(image::ManifestBlob m, image::read_manifest(*from, a));
          return from->open_unstored(std::move(m), a.digest.str());
        },
        d, r);
  }
  if (auto* layout = dynamic_cast<image::OciLayoutImage*>(s.image.get())) {
    KISTE_ASSIGN_OR_RETURN(auto refs, layout->referrers());
    return copy_referrers(
        refs,
        [layout](const image::Descriptor& a) -> Result<std::unique_ptr<image::ImageSource>> {
          KISTE_ASSIGN_OR_RETURN(auto img, layout->open_artifact(a));
          return std::unique_ptr<image::ImageSource>(std::move(img));
        },
        d, r);
  }
  return {};
}

}  // namespace

Result<OpenedSink> open_sink(const Location& l, const TransportOptions& t,
                             const std::optional<Reference>& src_name) {
  OpenedSink s{.where = l};
  switch (l.kind) {
    case Kind::Registry: {
      KISTE_ASSIGN_OR_RETURN(Reference ref, Reference::parse(l.value));
      KISTE_ASSIGN_OR_RETURN(s.remote, connect(t.access, ref.registry()));
      s.sink = std::make_unique<RemoteSink>(*s.remote.client, ref);
      return s;
    }
    case Kind::OciLayout: {
      KISTE_ASSIGN_OR_RETURN(image::LayoutRef ref, image::parse_layout_ref(l.value));
      KISTE_ASSIGN_OR_RETURN(s.sink, image::OciLayoutSink::create(ref));
      return s;
    }
    case Kind::Dir: {
      KISTE_ASSIGN_OR_RETURN(s.sink, image::DirSink::create(l.value));
      return s;
    }
    case Kind::OciArchive:
    case Kind::DockerArchive: {
      KISTE_ASSIGN_OR_RETURN(s.scratch, scratch_store());
      s.name = src_name;
      s.sink = std::make_unique<image::StoreSink>(*s.scratch->store, std::nullopt);
      return s;
    }
    case Kind::Store: {
      KISTE_ASSIGN_OR_RETURN(Reference ref, with_context(Reference::parse(l.value),
                                                         "copy: destination image name"));
      KISTE_ASSIGN_OR_RETURN(s.store, open_store(t.store_root, true));
      KISTE_ASSIGN_OR_RETURN(s.lease, s.store->writer_lease());
      auto sink = std::make_unique<image::StagedStoreSink>(*s.store, ref);
      s.staged = sink.get();
      s.sink = std::move(sink);
      return s;
    }
  }
  return fail(Errc::InvalidArgument, "copy: unknown destination");
}

Result<image::CopyResult> copy(const Location& src, const Location& dst, const TransportOptions& t,
                               image::CopyOptions opts) {
  if (src.kind == Kind::Store && dst.kind == Kind::Store) {
    return fail(Errc::InvalidArgument,
                "copy: both sides are stored images (use `kiste tag` to name an image again)");
  }
  std::string ctx = fmt::format("copy {} to {}", quote(src.text), quote(dst.text));
  KISTE_ASSIGN_OR_RETURN(OpenedSource s, with_context(open_source(src, t), ctx));
  if (src.kind == Kind::Registry && t.access.gate && s.remote.client && s.name) {
    KISTE_TRY(with_context(t.access.gate(*s.remote.client, *s.name, s.image->top().digest), ctx));
  }
  KISTE_ASSIGN_OR_RETURN(OpenedSink d, with_context(open_sink(dst, t, s.name), ctx));
  if (src.kind == Kind::Store || src.is_archive()) opts.all = true;
  KISTE_ASSIGN_OR_RETURN(image::CopyResult r, image::copy_image(*s.image, *d.sink, opts));
  KISTE_TRY(with_context(copy_source_referrers(s, d, r), ctx));
  KISTE_TRY(with_context(d.finish(r), ctx));
  return r;
}

Result<std::unique_ptr<image::ImageSource>> open_remote_if_present(const Reference& ref,
                                                                  const AccessOptions& access) {
  KISTE_ASSIGN_OR_RETURN(Remote remote, connect(access, ref.registry()));
  KISTE_ASSIGN_OR_RETURN(auto head,
                         remote.client->try_head_manifest(ref.repository(), ref.identifier()));
  if (!head) return nullptr;
  KISTE_ASSIGN_OR_RETURN(auto image, RemoteImage::open(*remote.client, ref));
  return std::make_unique<OwningRemoteImage>(std::move(remote), std::move(image));
}

Result<image::CopyResult> pull_image(const image::Store& store, const Reference& ref,
                                     const AccessOptions& access, const image::CopyOptions& opts) {
  KISTE_ASSIGN_OR_RETURN(FileLock lease, store.writer_lease());
  KISTE_ASSIGN_OR_RETURN(Remote remote, connect(access, ref.registry()));
  KISTE_ASSIGN_OR_RETURN(auto src, with_context(RemoteImage::open(*remote.client, ref),
                                                fmt::format("pull `{}`", ref.str())));
  if (access.gate) {
    KISTE_TRY(with_context(access.gate(*remote.client, ref, src->top().digest),
                           fmt::format("pull `{}`", ref.str())));
  }
  image::StoreSink sink(store, ref);
  return image::copy_image(*src, sink, opts);
}

Result<image::CopyResult> push_image(const image::Store& store, const image::StoreEntry& entry,
                                     const Reference& dest, const AccessOptions& access,
                                     image::CopyOptions opts) {
  KISTE_ASSIGN_OR_RETURN(auto src, store.open_image(entry));
  KISTE_ASSIGN_OR_RETURN(Remote remote, connect(access, dest.registry()));
  opts.all = true;  // a push sends what the store has, index and all
  RemoteSink sink(*remote.client, dest);
  std::string ctx = fmt::format("push `{}`", dest.str());
  KISTE_ASSIGN_OR_RETURN(image::CopyResult r,
                         with_context(image::copy_image(*src, sink, opts), ctx));
  // The image's store-side referrers (attestations) follow it, pushed by digest: those of its
  // manifest and, for an index, those of each platform image.
  std::vector<image::Digest> subjects{src->top().digest};
  if (src->top().is_index()) {
    for (const auto& c : src->top().index().manifests) subjects.push_back(c.digest);
  }
  for (const auto& subject : subjects) {
    KISTE_ASSIGN_OR_RETURN(auto refs, store.referrers(subject));
    for (const auto& d : refs) {
      std::string what = fmt::format("{}: referrer {}", ctx, d.digest);
      KISTE_ASSIGN_OR_RETURN(image::ManifestBlob m,
                             with_context(image::read_manifest(store, d), what));
      auto art = store.open_unstored(std::move(m), d.digest.str());
      KISTE_ASSIGN_OR_RETURN(auto at, Reference::parse(fmt::format("{}/{}@{}", dest.registry(),
                                                                   dest.repository(),
                                                                   d.digest.str())));
      RemoteSink art_sink(*remote.client, at);
      KISTE_TRY(with_context(image::copy_image(*art, art_sink, opts), what));
      KISTE_TRY(with_context(register_referrer(*remote.client, dest.repository(), subject, d),
                             what));
    }
  }
  return r;
}

}  // namespace kiste::registry
