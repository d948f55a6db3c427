#pragma once
// Image references with docker's normalisation:
//   busybox                   -> docker.io/library/busybox:latest
//   localhost:5000/a/b@sha256:… (tag and digest both kept when given)
#include <optional>
#include <string>
#include <string_view>

#include <kiste/base/error.hpp>
#include <kiste/image/digest.hpp>

namespace kiste::image {

struct ReferenceOptions {
  std::string_view default_registry = "docker.io";
  // Add ":latest" when neither a tag nor a digest is given.
  bool default_tag = true;
};

class Reference {
 public:
  [[nodiscard]] static Result<Reference> parse(std::string_view s, ReferenceOptions opts = {});

  [[nodiscard]] const std::string& registry() const { return registry_; }
  [[nodiscard]] const std::string& repository() const { return repository_; }
  [[nodiscard]] const std::optional<std::string>& tag() const { return tag_; }
  [[nodiscard]] const std::optional<Digest>& digest() const { return digest_; }
  // registry/repository
  [[nodiscard]] std::string name() const { return registry_ + "/" + repository_; }
  // Full normalised form: registry/repository[:tag][@digest]
  [[nodiscard]] std::string str() const;
  // The form docker shows: "busybox:latest", "ghcr.io/x/y:1".
  [[nodiscard]] std::string familiar() const;
  // Tag, else digest: what a registry's manifests/<ref> endpoint takes.
  [[nodiscard]] std::string identifier() const;

  [[nodiscard]] Reference with_tag(std::string tag) const;
  [[nodiscard]] Reference with_digest(Digest d) const;
  [[nodiscard]] Reference without_digest() const;

  friend bool operator==(const Reference&, const Reference&) = default;

 private:
  std::string registry_;
  std::string repository_;
  std::optional<std::string> tag_;
  std::optional<Digest> digest_;
};

// Distribution-spec grammar checks, usable on their own (registry responses, tags lists).
[[nodiscard]] bool is_valid_tag(std::string_view tag);
[[nodiscard]] bool is_valid_repository(std::string_view repo);

}  // namespace kiste::image
