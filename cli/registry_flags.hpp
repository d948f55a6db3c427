#pragma once
// The registry flags every command that talks to a registry takes; what they mean is
// registry::AccessOptions (kiste/registry/access.hpp).
#include <string>

#include <CLI/CLI.hpp>

#include <kiste/registry/access.hpp>

namespace kiste::cli {

struct RegistryFlags {
  std::string tls_verify;  // "", "true", "false"
  std::string cert_dir;
  std::string authfile;

  [[nodiscard]] registry::AccessOptions access() const;
};

void add_registry_flags(CLI::App* cmd, RegistryFlags& f);

}  // namespace kiste::cli
