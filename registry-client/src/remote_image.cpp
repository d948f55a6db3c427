#include <kiste/image/media_type.hpp>
#include <kiste/registry/remote_image.hpp>

namespace kiste::registry {

Result<std::unique_ptr<RemoteImage>> RemoteImage::open(Client& client,
                                                       const image::Reference& ref) {
  std::string id = ref.digest() ? ref.digest()->str() : ref.identifier();
  KISTE_ASSIGN_OR_RETURN(image::ManifestBlob top, client.get_manifest(ref.repository(), id));
  return std::unique_ptr<RemoteImage>(new RemoteImage(client, ref, std::move(top)));
}

Result<image::ManifestBlob> RemoteImage::fetch_manifest(const image::Descriptor& d) {
  KISTE_ASSIGN_OR_RETURN(image::ManifestBlob m,
                         client_.get_manifest(ref_.repository(), d.digest.str()));
  if (static_cast<int64_t>(m.bytes.size()) != d.size) {
    return failf(Errc::Corrupt, "manifest {}: {} bytes, descriptor says {}", d.digest,
                 m.bytes.size(), d.size);
  }
  return m;
}

Result<std::unique_ptr<image::BlobReader>> RemoteImage::open_blob(const image::Descriptor& d) {
  return client_.open_blob(ref_.repository(), d);
}

Result<std::unique_ptr<image::BlobReader>> RemoteImage::open_blob_at(const image::Descriptor& d,
                                                                     uint64_t offset) {
  return client_.open_blob(ref_.repository(), d, offset);
}

std::string RemoteImage::describe() const { return "docker://" + ref_.str(); }

std::optional<std::pair<std::string, std::string>> RemoteImage::registry_location() const {
  return std::make_pair(client_.registry(), ref_.repository());
}

Result<bool> RemoteSink::has_blob(const image::Descriptor& d) {
  if (mount_first_) return false;  // mount_blob decides (and uploads on a refused mount)
  return client_.has_blob(ref_.repository(), d);
}

Status RemoteSink::put_blob(const image::Descriptor& d, image::BlobReader& r) {
  return client_.upload_blob(ref_.repository(), d, r);
}

Result<bool> RemoteSink::mount_blob(const image::Descriptor& d, const image::ImageSource& from) {
  auto loc = from.registry_location();
  if (!loc || loc->first != client_.registry() || loc->second == ref_.repository()) {
    if (!mount_first_) return false;
    // No mount possible after all: do the HEAD that has_blob skipped (upload only if absent).
    KISTE_ASSIGN_OR_RETURN(bool present, client_.has_blob(ref_.repository(), d));
    return present;
  }
  return client_.mount_blob(ref_.repository(), d.digest, loc->second);
}

Status RemoteSink::put_manifest(const image::ManifestBlob& m, bool top) {
  std::string where = m.digest.str();
  if (top && ref_.tag()) where = *ref_.tag();
  if (top && ref_.digest() && *ref_.digest() != m.digest) {
    return failf(Errc::InvalidArgument, "push to {}: the image has digest {}", quote(ref_.str()),
                 m.digest);
  }
  KISTE_ASSIGN_OR_RETURN(image::Digest d, client_.put_manifest(ref_.repository(), where, m));
  if (top) pushed_ = d;
  return {};
}

std::string RemoteSink::describe() const { return "docker://" + ref_.str(); }

}  // namespace kiste::registry
