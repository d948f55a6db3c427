#pragma once
// Talking to a registry from several commands: the registry flags, a connected client, and the
// one push routine that `kiste push` and `kiste build --push` share.
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include <CLI/CLI.hpp>

#include <kiste/base/error.hpp>
#include <kiste/image/copy.hpp>
#include <kiste/image/reference.hpp>
#include <kiste/image/store.hpp>
#include <kiste/registry/client.hpp>
#include <kiste/registry/credentials.hpp>

namespace kiste::cli {

struct RegistryFlags {
  std::string tls_verify;  // "", "true", "false"
  std::string cert_dir;
  std::string authfile;
};

void add_registry_flags(CLI::App* cmd, RegistryFlags& f);

// Owns what a Client borrows (the keychain).
struct Remote {
  std::unique_ptr<registry::Keychain> keychain;
  std::unique_ptr<registry::Client> client;
};

// Client options from the flags and the host's insecure-registry lists (registries.conf,
// daemon.json); --tls-verify wins.
[[nodiscard]] Result<registry::ClientOptions> client_options(const RegistryFlags& f,
                                                             std::string_view registry_host,
                                                             registry::Keychain* keychain);

[[nodiscard]] Result<Remote> connect(const RegistryFlags& f, std::string_view registry_host);

// Pushes the stored image `entry` (index and all) to `dest`.
[[nodiscard]] Result<image::CopyResult> push_stored(const image::Store& store,
                                                    const image::StoreEntry& entry,
                                                    const image::Reference& dest,
                                                    const RegistryFlags& rf,
                                                    image::CopyOptions opts);

}  // namespace kiste::cli
