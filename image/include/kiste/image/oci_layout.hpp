#pragma once
// An OCI image layout directory (oci-layout, index.json, blobs/<alg>/<hex>) as a copy_image source
// and sink: skopeo's oci:DIR[:NAME] transport, NAME being the org.opencontainers.image.ref.name
// annotation of an index.json entry. (dir_image.hpp has the containers/image "dir" format.)
// Everything read is hostile: files are opened inside DIR only (symlinks and `..` never leave
// it), must be regular files, manifests are bounded and checked against their descriptors, and
// blob contents are verified by the sink that receives them. Writers verify every blob before
// it becomes visible (temp file, digest check, rename) and replace index.json atomically.
#include <filesystem>
#include <kiste/base/error.hpp>
#include <kiste/base/unique_fd.hpp>
#include <kiste/image/image_source.hpp>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kiste::image {

// "DIR[:NAME]" as skopeo splits it: the directory ends at the first ':'.
struct LayoutRef {
  std::filesystem::path dir;
  std::string name;  // "" = the layout's only image (read) / no name annotation (write)
};
[[nodiscard]] Result<LayoutRef> parse_layout_ref(std::string_view s);

class OciLayoutImage final : public ImageSource {
 public:
  // Eager: reads index.json, picks the entry named `name` (or the only entry when `name` is
  // empty) and reads and verifies its manifest.
  [[nodiscard]] static Result<std::unique_ptr<OciLayoutImage>> open(const LayoutRef& ref);
  [[nodiscard]] const ManifestBlob& top() const override { return top_; }
  [[nodiscard]] Result<ManifestBlob> fetch_manifest(const Descriptor& d) override;
  [[nodiscard]] Result<std::unique_ptr<BlobReader>> open_blob(const Descriptor& d) override;
  [[nodiscard]] std::string describe() const override;

  // The unnamed entries of the layout whose manifest's `subject` is this image or one of its
  // platform manifests (its attestations, as `kiste copy` and oras write them), as
  // {subject, artifact}.
  [[nodiscard]] Result<std::vector<std::pair<Digest, Descriptor>>> referrers();
  // One of those artifacts as an image of its own (its manifest read and checked).
  [[nodiscard]] Result<std::unique_ptr<OciLayoutImage>> open_artifact(const Descriptor& d);

 private:
  OciLayoutImage(LayoutRef ref, UniqueFd root) : ref_(std::move(ref)), root_(std::move(root)) {}
  LayoutRef ref_;
  UniqueFd root_;
  ManifestBlob top_;
};

class OciLayoutSink final : public ImageSink {
 public:
  // Creates the layout when DIR is missing or empty; an existing layout gets the image added
  // (an entry with the same name is replaced). A non-empty directory that is not a layout is
  // refused.
  [[nodiscard]] static Result<std::unique_ptr<OciLayoutSink>> create(const LayoutRef& ref);
  [[nodiscard]] Result<bool> has_blob(const Descriptor& d) override;
  [[nodiscard]] Status put_blob(const Descriptor& d, BlobReader& r) override;
  [[nodiscard]] Status put_manifest(const ManifestBlob& m, bool top) override;
  [[nodiscard]] std::string describe() const override;

 private:
  explicit OciLayoutSink(LayoutRef ref) : ref_(std::move(ref)) {}
  LayoutRef ref_;
};

}  // namespace kiste::image
