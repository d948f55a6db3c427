#pragma once
// The registry flags every command that talks to a registry takes; what they mean is
// registry::AccessOptions (kiste/registry/access.hpp).
#include <string>

#include <CLI/CLI.hpp>

#include <kiste/image/platform.hpp>
#include <kiste/image/reference.hpp>
#include <kiste/registry/access.hpp>

namespace kiste::cli {

struct RegistryFlags {
  std::string tls_verify;  // "", "true", "false"
  std::string cert_dir;
  std::string authfile;

  [[nodiscard]] registry::AccessOptions access() const;
};

void add_registry_flags(CLI::App* cmd, RegistryFlags& f);

struct Globals;
// Pulls `ref` (the manifest for `platform` when it names an index) into the store at --root,
// reached with build's registry flags; what `kiste build` uses for a FROM image the store lacks.
[[nodiscard]] Status pull_for_build(const Globals& g, const RegistryFlags& rf,
                                    const image::Reference& ref, const image::Platform& platform);

}  // namespace kiste::cli
