#pragma once
// The local content store. Its root IS an OCI image layout (oci-layout, index.json, blobs/), so
// skopeo, umoci and oci-image-tool read it; kiste adds snapshots/, containers/, cache/, tmp/.
//
// Rules: a blob appears under blobs/ only verified and by atomic rename (BlobWriter); index.json
// changes under `index.json.lock` by atomic replace; commands that add blobs hold a shared
// `gc.lock` lease so a concurrent prune (exclusive) never deletes what they are about to name.
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <kiste/base/error.hpp>
#include <kiste/base/file_lock.hpp>
#include <kiste/image/blob_writer.hpp>
#include <kiste/image/descriptor.hpp>
#include <kiste/image/image_source.hpp>
#include <kiste/image/reference.hpp>
#include <kiste/image/root_layout.hpp>

namespace kiste::image {

struct StoreOptions {
  // Initialise an empty or missing directory as a store. An existing non-empty directory that
  // is not an OCI layout is always refused.
  bool create = true;
};

// One named image in index.json.
struct StoreEntry {
  std::string name;  // the org.opencontainers.image.ref.name annotation (full normalised ref)
  Descriptor manifest;
};

class Store {
 public:
  [[nodiscard]] static Result<Store> open(const std::filesystem::path& root,
                                          StoreOptions opts = {});

  [[nodiscard]] const std::filesystem::path& root() const { return root_; }
  [[nodiscard]] RootLayout layout() const { return RootLayout(root_); }
  [[nodiscard]] std::filesystem::path blobs_dir() const { return layout().blobs(); }
  [[nodiscard]] std::filesystem::path tmp_dir() const { return layout().tmp(); }
  [[nodiscard]] std::filesystem::path blob_path(const Digest& d) const;

  // ---- blobs ---------------------------------------------------------------------------------
  [[nodiscard]] bool has_blob(const Digest& d) const;
  [[nodiscard]] Result<std::unique_ptr<BlobReader>> open_blob(const Digest& d) const;
  // Reads a small blob (manifest, config) and verifies its digest.
  [[nodiscard]] Result<std::string> read_blob(const Digest& d,
                                              size_t max_bytes = kMaxManifestBytes) const;
  [[nodiscard]] Result<BlobWriter> blob_writer() const;
  // Writes a small blob (manifest, config) from memory.
  [[nodiscard]] Result<Descriptor> put_blob(std::string_view bytes, std::string_view media_type) const;
  // All blob digests present.
  [[nodiscard]] Result<std::vector<Digest>> list_blobs() const;

  // ---- names (index.json) --------------------------------------------------------------------
  [[nodiscard]] Result<std::vector<StoreEntry>> entries() const;
  // Points `name` at `manifest` (replacing what it named). The manifest blob must exist.
  [[nodiscard]] Status set_name(const Reference& name, const Descriptor& manifest) const;
  // Keeps an image that has no name (loaded from an archive that names none): its entry is
  // named by its manifest digest, so it is listed and protected from prune.
  [[nodiscard]] Status keep_unnamed(const Descriptor& manifest) const;
  // Removes `name`; NotFound if absent.
  [[nodiscard]] Status remove_name(const Reference& name) const;
  // Removes an entry by its exact index.json name (also unnamed images' digest names).
  [[nodiscard]] Status remove_entry(const std::string& name) const;
  // Finds an image by name ("busybox", "localhost:5000/a:1"), by manifest digest, or by a
  // unique prefix (≥ 4 hex) of its image id (config digest) or manifest digest. Names come
  // before prefixes, as in docker: an image named `cafe` is found as `cafe`; only a whole
  // 64-hex id is never a name.
  [[nodiscard]] Result<StoreEntry> resolve(std::string_view name_or_id) const;

  // ---- referrers (store-side) ----------------------------------------------------------------
  // Artifacts whose `subject` is a stored manifest (build --sbom/--provenance): index.json entries
  // without a ref.name, marked with kSubjectAnnotation, so `images` does not list them as images
  // but prune keeps them as long as their subject is kept, and push carries them.
  [[nodiscard]] Status add_referrer(const Descriptor& artifact, const Digest& subject) const;
  // The artifacts referring to `subject`, sorted by digest (without the marker annotation).
  [[nodiscard]] Result<std::vector<Descriptor>> referrers(const Digest& subject) const;
  // Every referrer as {subject, artifact} (the artifact keeps its marker annotation).
  [[nodiscard]] Result<std::vector<std::pair<Digest, Descriptor>>> all_referrers() const;
  // Drops the entries of referrers whose subject `keep` refuses; returns how many.
  [[nodiscard]] Result<int> remove_referrers_unless(
      const std::function<bool(const Digest&)>& keep) const;

  // ---- leases --------------------------------------------------------------------------------
  // Held by commands that add blobs before naming them; prune takes it exclusively.
  [[nodiscard]] Result<FileLock> writer_lease() const;
  [[nodiscard]] Result<FileLock> gc_lock() const;

  // Opens a named image as an ImageSource (eager: manifest and config verified).
  [[nodiscard]] Result<std::unique_ptr<ImageSource>> open_image(const StoreEntry& e) const;
  // An ImageSource whose top is `top`, a manifest not stored itself (a build-cache manifest made
  // to be pushed), with its blobs from the store.
  [[nodiscard]] std::unique_ptr<ImageSource> open_unstored(ManifestBlob top, std::string name) const;

 private:
  explicit Store(std::filesystem::path root) : root_(std::move(root)) {}
  [[nodiscard]] Status set_entry(std::string name, const Descriptor& manifest) const;
  [[nodiscard]] Status update_index(
      const std::function<Status(std::vector<StoreEntry>&)>& edit) const;
  [[nodiscard]] Status update_index_doc(
      const std::function<Status(std::vector<StoreEntry>&, std::vector<Descriptor>&)>& edit) const;
  std::filesystem::path root_;
};

// An ImageSink writing into a store; the top manifest gets `name` (if any) in index.json.
class StoreSink final : public ImageSink {
 public:
  StoreSink(const Store& store, std::optional<Reference> name)
      : store_(store), name_(std::move(name)) {}
  [[nodiscard]] Result<bool> has_blob(const Descriptor& d) override;
  [[nodiscard]] Status put_blob(const Descriptor& d, BlobReader& r) override;
  [[nodiscard]] Result<uint64_t> resume_offset(const Descriptor& d) override;
  [[nodiscard]] Status put_manifest(const ManifestBlob& m, bool top) override;
  [[nodiscard]] std::string describe() const override;

 private:
  const Store& store_;
  std::optional<Reference> name_;
};

// Reads a manifest blob from the store and checks it against `d` (digest, size, type).
[[nodiscard]] Result<ManifestBlob> read_manifest(const Store& store, const Descriptor& d);

// Copies a whole blob stream into `sink`, counting bytes; used by every ImageSink.
[[nodiscard]] Result<uint64_t> pump(BlobReader& r, ByteSink& sink);

}  // namespace kiste::image
