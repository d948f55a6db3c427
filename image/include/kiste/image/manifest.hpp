#pragma once
// Manifests and indexes (OCI and Docker schema2). Parsed forms always travel with the exact bytes
// and their digest: a digest is never recomputed from a re-serialisation.
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <kiste/base/error.hpp>
#include <kiste/image/descriptor.hpp>

namespace kiste::image {

inline constexpr size_t kMaxManifestBytes = 4 * 1024 * 1024;

struct Manifest {
  int schema_version = 2;
  std::string media_type;  // as written in the document (may be empty for OCI)
  std::string artifact_type;
  Descriptor config;
  std::vector<Descriptor> layers;
  std::optional<Descriptor> subject;
  std::map<std::string, std::string> annotations;
};

struct Index {
  int schema_version = 2;
  std::string media_type;
  std::string artifact_type;
  std::vector<Descriptor> manifests;
  std::optional<Descriptor> subject;
  std::map<std::string, std::string> annotations;
};

struct ManifestBlob {
  std::string bytes;
  Digest digest = Digest::of("");
  std::string media_type;  // effective type (document's mediaType, else declared, else inferred)
  std::variant<Manifest, Index> parsed;

  [[nodiscard]] bool is_index() const { return std::holds_alternative<Index>(parsed); }
  [[nodiscard]] const Manifest& manifest() const { return std::get<Manifest>(parsed); }
  [[nodiscard]] const Index& index() const { return std::get<Index>(parsed); }
  // A descriptor of this document (media type, digest, size).
  [[nodiscard]] Descriptor descriptor() const;
};

// Parses a manifest or index. `declared_type` is the media type from the referring descriptor or
// the HTTP Content-Type ("" when unknown). Rejected: not JSON, schemaVersion != 2, a document with
// both `manifests` and `layers`/`config`, a mediaType that contradicts `declared_type`, unknown
// manifest media types, malformed digests or negative sizes anywhere.
[[nodiscard]] Result<ManifestBlob> parse_manifest(std::string bytes,
                                                  std::string_view declared_type = {});

// Serialises new documents (for images kiste creates). Stable key order, no whitespace.
[[nodiscard]] std::string serialize_manifest(const Manifest& m);
[[nodiscard]] std::string serialize_index(const Index& i);

// Bounds on a walk over an image's manifests, since registries and layouts are hostile input (a
// chain of indexes each naming the next one overflowed the stack after ~3,460 fetches): indexes
// nest at most kMaxIndexDepth deep, a manifest named twice is walked once, and one walk fetches at
// most kMaxManifestsPerWalk manifests. Every recursive walker keeps one ManifestWalk.
inline constexpr int kMaxIndexDepth = 4;
inline constexpr size_t kMaxManifestsPerWalk = 1000;

class ManifestWalk {
 public:
  // Before fetching `d`: false when it was walked already (skip it), an error when this walk has
  // fetched kMaxManifestsPerWalk manifests.
  [[nodiscard]] Result<bool> enter(const Descriptor& d);
  // After fetching `m`, which has `indexes_above` indexes above it (0: the top): an error when `m`
  // is an index nested deeper than kMaxIndexDepth.
  [[nodiscard]] static Status check_depth(const ManifestBlob& m, int indexes_above);

 private:
  std::set<Digest> seen_;
};

// Picks the entry of `index` for `want` (first match), or NotFound listing what is there.
[[nodiscard]] Result<Descriptor> select_platform(const Index& index, const Platform& want);
// A single-platform image (its config says `have`) asked for as `want`: the same error shape as
// select_platform's, so that an image is never used as, or labelled with, a platform it is not.
[[nodiscard]] Status check_platform(const Platform& have, const Platform& want);

}  // namespace kiste::image
