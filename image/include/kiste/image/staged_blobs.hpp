#pragma once
// Blobs a command adds to the store before it names them (load, copy into the store). Unless the
// command commits, they are removed again, except those a name reaches by then (another command
// may have named the same blob meanwhile), so a rejected image leaves nothing behind.
#include <mutex>
#include <optional>
#include <vector>

#include <kiste/base/error.hpp>
#include <kiste/image/store.hpp>

namespace kiste::image {

class StagedBlobs {
 public:
  explicit StagedBlobs(const Store& store) : store_(store) {}
  // roll_back() unless committed; a rollback that fails is logged (the blobs stay, unnamed, until
  // `kiste prune` removes them): a destructor has no caller to report to.
  ~StagedBlobs();
  StagedBlobs(const StagedBlobs&) = delete;
  StagedBlobs& operator=(const StagedBlobs&) = delete;

  // Records a blob this command added (not one that was there before). Thread-safe.
  void add(const Digest& d);
  // The staged blobs are named now: keep them.
  void commit();
  // Removes every staged blob that no name reaches. When the store's names cannot be read,
  // nothing is removed (removing a blob a name reaches would break that image) and that is the
  // error; a blob already gone is not one.
  [[nodiscard]] Status roll_back();
  [[nodiscard]] std::vector<Digest> staged() const;

 private:
  const Store& store_;
  mutable std::mutex mu_;
  std::vector<Digest> added_;
  bool done_ = false;
};

// A StoreSink whose new blobs are staged: copying into the store (`kiste copy … NAME`) leaves
// nothing behind when the copy fails before commit().
class StagedStoreSink final : public ImageSink {
 public:
  StagedStoreSink(const Store& store, std::optional<Reference> name)
      : store_(store), inner_(store, std::move(name)), staged_(store) {}
  void commit() { staged_.commit(); }
  [[nodiscard]] Result<bool> has_blob(const Descriptor& d) override { return inner_.has_blob(d); }
  [[nodiscard]] Status put_blob(const Descriptor& d, BlobReader& r) override;
  [[nodiscard]] Status put_manifest(const ManifestBlob& m, bool top) override;
  [[nodiscard]] std::string describe() const override { return inner_.describe(); }

 private:
  const Store& store_;
  StoreSink inner_;
  StagedBlobs staged_;
};

}  // namespace kiste::image
