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
  std::string policy;        // --policy (commands that read images from a registry)
  std::string registries_d;  // --registries.d: where GPG signatures' lookaside storage is named

  [[nodiscard]] registry::AccessOptions access() const;
  // access() with the signature policy's gate (--policy, else $KISTE_POLICY, else
  // /etc/containers/policy.json when present) for the images a command reads from a registry.
  [[nodiscard]] Result<registry::AccessOptions> gated_access() const;
};

void add_registry_flags(CLI::App* cmd, RegistryFlags& f);
// --policy FILE and --registries.d DIR: pull, copy, promote and build.
void add_policy_flag(CLI::App* cmd, RegistryFlags& f);

struct Globals;
// Pulls `ref` (the manifest for `platform` when it names an index) into the store at --root,
// reached with build's registry flags; what `kiste build` uses for a FROM image the store lacks.
[[nodiscard]] Status pull_for_build(const Globals& g, const RegistryFlags& rf,
                                    const image::Reference& ref, const image::Platform& platform);

}  // namespace kiste::cli
