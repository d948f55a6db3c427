#pragma once
// Lookaside signature storage (containers-registries.d(5)): the YAML files of a registries.d
// directory say, per registry/namespace/repository (`docker:`) or for all (`default-docker:`),
// where GPG simple signings live (`lookaside:`, or the older `sigstore:`). skopeo --sign-by
// writes `<lookaside>/<repository>@sha256=<hex>/signature-<n>`. kiste reads `file://` storage.
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <kiste/base/error.hpp>
#include <kiste/image/digest.hpp>
#include <kiste/image/reference.hpp>

namespace kiste::registry {

struct LookasideConfig {
  std::map<std::string, std::string> docker;  // scope -> lookaside URL
  std::string default_docker;

  // The most specific `docker:` scope for `ref` (repository, then each parent namespace, then the
  // registry), else default-docker; nullopt when none is configured.
  [[nodiscard]] std::optional<std::string> lookaside_for(const image::Reference& ref) const;
};

// The subset of YAML registries.d files use (nested `key: value` maps, comments, quotes); a file
// that is not that is an error naming it. Keys other than lookaside/sigstore are ignored.
[[nodiscard]] Status parse_registries_d(std::string_view yaml, LookasideConfig& into);
// Every *.yaml file of `dir` (a missing dir is an empty config).
[[nodiscard]] Result<LookasideConfig> load_registries_d(const std::filesystem::path& dir);

// The signatures (signature-1, signature-2, … until one is missing; at most 64, each at most
// 64 KiB) of `digest` in `ref`'s repository under the `file://` lookaside `url`.
[[nodiscard]] Result<std::vector<std::string>> read_lookaside_signatures(
    std::string_view url, const image::Reference& ref, const image::Digest& digest);

// Adds `signature` as the next free signature-<n> of `digest` in `ref`'s repository under the
// `file://` lookaside `url` (directories made as needed; the file written atomically, never
// over another). Returns its path.
[[nodiscard]] Result<std::filesystem::path> write_lookaside_signature(std::string_view url,
                                                                      const image::Reference& ref,
                                                                      const image::Digest& digest,
                                                                      const std::string& signature);

}  // namespace kiste::registry
