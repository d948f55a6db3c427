#pragma once
// How kiste reaches a registry: the TLS policy, certificates and credentials that the registry
// flags (--tls-verify, --cert-dir, --authfile) choose, and a connected client. Every command that
// talks to a registry (pull, push, copy, promote, tags, delete, login, inspect docker://, build's
// caches) goes through connect().
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <kiste/base/error.hpp>
#include <kiste/image/reference.hpp>
#include <kiste/registry/client.hpp>
#include <kiste/registry/credentials.hpp>

namespace kiste::registry {

// Asked before anything is copied from a registry image: the reference as the command names it,
// the client that reached it and the digest of the top manifest as fetched (the bytes that will be
// copied). An error stops the command with nothing stored or tagged. cli/ plugs the signature
// policy (trust/) in here; registry-client knows nothing of signatures' meaning.
using SourceGate = std::function<Status(Client& c, const image::Reference& ref,
                                        const image::Digest& top)>;

struct AccessOptions {
  // Set: verify TLS (true) or not, which also allows plain HTTP (false). Unset: a registry listed
  // insecure in registries.conf or daemon.json is reached like podman does, others verified.
  std::optional<bool> tls_verify;
  std::filesystem::path cert_dir;  // ca.crt, client *.cert + *.key
  std::filesystem::path authfile;  // empty: docker's and podman's credential files
  // Hears each "retrying (2/5) in 1.2 s: <reason>" line (ClientOptions::on_retry); unset: logged.
  std::function<void(const std::string& line)> on_retry;
  // pull, build's base images and copy from docker:// ask this before copying (unset: no gate).
  SourceGate gate;
};

// Owns what a Client borrows (the keychain).
struct Remote {
  std::unique_ptr<Keychain> keychain;
  std::unique_ptr<Client> client;
};

// Client options for `registry_host` from `access`, the host's insecure-registry lists and the
// deadline environment; tls_verify wins over the lists.
[[nodiscard]] Result<ClientOptions> client_options(const AccessOptions& access,
                                                   std::string_view registry_host,
                                                   Keychain* keychain);

// A client for `registry_host` with the credentials from `access.authfile` (or the defaults).
[[nodiscard]] Result<Remote> connect(const AccessOptions& access, std::string_view registry_host);

// A registry image reference as users write it: with or without the `docker://` prefix.
[[nodiscard]] Result<image::Reference> parse_docker_ref(std::string_view s,
                                                        image::ReferenceOptions opts = {});

}  // namespace kiste::registry
