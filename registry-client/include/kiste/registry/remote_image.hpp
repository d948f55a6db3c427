#pragma once
// A registry repository as an image source and sink for image::copy_image.
#include <kiste/image/image_source.hpp>
#include <kiste/image/reference.hpp>
#include <kiste/registry/client.hpp>
#include <memory>
#include <optional>
#include <string>

namespace kiste::registry {

class RemoteImage final : public image::ImageSource {
 public:
  // Eager: fetches and verifies the manifest `ref` names. `client` must outlive the image and be
  // a client for ref.registry().
  [[nodiscard]] static Result<std::unique_ptr<RemoteImage>> open(Client& client,
                                                                 const image::Reference& ref);
  [[nodiscard]] const image::ManifestBlob& top() const override { return top_; }
  [[nodiscard]] Result<image::ManifestBlob> fetch_manifest(const image::Descriptor& d) override;
  [[nodiscard]] Result<std::unique_ptr<image::BlobReader>> open_blob(
      const image::Descriptor& d) override;
  [[nodiscard]] Result<std::unique_ptr<image::BlobReader>> open_blob_at(
      const image::Descriptor& d, uint64_t offset) override;
  [[nodiscard]] std::string describe() const override;
  [[nodiscard]] std::optional<std::pair<std::string, std::string>> registry_location()
      const override;
  [[nodiscard]] const image::Reference& reference() const { return ref_; }

 private:
  RemoteImage(Client& c, image::Reference ref, image::ManifestBlob top)
      : client_(c), ref_(std::move(ref)), top_(std::move(top)) {}
  Client& client_;
  image::Reference ref_;
  image::ManifestBlob top_;
};

// Pushes into `ref`'s repository. The top manifest is PUT under ref's tag (or its digest when it
// has no tag); children of an index by digest.
class RemoteSink final : public image::ImageSink {
 public:
  RemoteSink(Client& client, image::Reference ref) : client_(client), ref_(std::move(ref)) {}
  [[nodiscard]] Result<bool> has_blob(const image::Descriptor& d) override;
  [[nodiscard]] Status put_blob(const image::Descriptor& d, image::BlobReader& r) override;
  [[nodiscard]] Result<bool> mount_blob(const image::Descriptor& d,
                                        const image::ImageSource& from) override;
  [[nodiscard]] Status put_manifest(const image::ManifestBlob& m, bool top) override;
  [[nodiscard]] std::string describe() const override;
  // Promotion within one registry: skip the HEAD before a cross-repository mount (a mount of a
  // blob that is already there is a cheap 201 as well), saving a round trip per blob.
  void set_mount_first(bool on) { mount_first_ = on; }
  // The digest the top manifest was stored under (after copy_image).
  [[nodiscard]] const std::optional<image::Digest>& pushed_digest() const { return pushed_; }

 private:
  Client& client_;
  image::Reference ref_;
  std::optional<image::Digest> pushed_;
  bool mount_first_ = false;
};

}  // namespace kiste::registry
