#pragma once
// containers/image's "dir" format (skopeo's dir:DIR transport) as a copy_image source and sink:
// `version`, manifest.json (the top manifest or index), <hex>.manifest.json for the children of
// an index, and one file per blob named by the hex of its digest. Read as hostile input and
// written verified, like the OCI layout (oci_layout.hpp).
#include <filesystem>
#include <kiste/base/error.hpp>
#include <kiste/base/unique_fd.hpp>
#include <kiste/image/image_source.hpp>
#include <memory>

namespace kiste::image {

class DirImage final : public ImageSource {
 public:
  [[nodiscard]] static Result<std::unique_ptr<DirImage>> open(const std::filesystem::path& dir);
  [[nodiscard]] const ManifestBlob& top() const override { return top_; }
  [[nodiscard]] Result<ManifestBlob> fetch_manifest(const Descriptor& d) override;
  [[nodiscard]] Result<std::unique_ptr<BlobReader>> open_blob(const Descriptor& d) override;
  [[nodiscard]] std::string describe() const override;

 private:
  DirImage(std::filesystem::path dir, UniqueFd root)
      : dir_(std::move(dir)), root_(std::move(root)) {}
  std::filesystem::path dir_;
  UniqueFd root_;
  ManifestBlob top_;
};

class DirSink final : public ImageSink {
 public:
  // Creates DIR when missing or empty; an existing dir-format directory (it has the `version`
  // file) is written over. Anything else non-empty is refused.
  [[nodiscard]] static Result<std::unique_ptr<DirSink>> create(const std::filesystem::path& dir);
  [[nodiscard]] Result<bool> has_blob(const Descriptor& d) override;
  [[nodiscard]] Status put_blob(const Descriptor& d, BlobReader& r) override;
  [[nodiscard]] Status put_manifest(const ManifestBlob& m, bool top) override;
  [[nodiscard]] std::string describe() const override;

 private:
  explicit DirSink(std::filesystem::path dir) : dir_(std::move(dir)) {}
  std::filesystem::path dir_;
};

}  // namespace kiste::image
