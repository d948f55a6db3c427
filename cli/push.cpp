#include "push.hpp"

#include <kiste/registry/registries_conf.hpp>
#include <kiste/registry/remote_image.hpp>

#include <unistd.h>

#include <cstdio>
#include <kiste/base/log.hpp>

namespace kiste::cli {

void add_registry_flags(CLI::App* cmd, RegistryFlags& f) {
  cmd->add_option("--tls-verify", f.tls_verify,
                  "verify TLS (default true; false also allows plain HTTP)")
      ->check(CLI::IsMember({"true", "false"}));
  cmd->add_option("--cert-dir", f.cert_dir, "directory with ca.crt / client *.cert + *.key");
  cmd->add_option("--authfile", f.authfile, "credentials file (default: docker/podman locations)");
}

// --tls-verify wins; without it a registry listed insecure in registries.conf or daemon.json
// is reached like podman does (plain HTTP allowed, certificate not verified).
Result<registry::ClientOptions> client_options(const RegistryFlags& f,
                                               std::string_view registry_host,
                                               registry::Keychain* keychain) {
  registry::ClientOptions o{.keychain = keychain};
  if (!f.tls_verify.empty()) {
    o.tls_verify = f.tls_verify == "true";
  } else {
    KISTE_ASSIGN_OR_RETURN(auto insecure, registry::InsecureRegistries::load());
    if (insecure.contains(registry_host)) o.tls_verify = false;
  }
  if (!f.cert_dir.empty()) o.cert_dir = f.cert_dir;
  KISTE_ASSIGN_OR_RETURN(o.deadlines, registry::Deadlines::from_env());
  // A wait for a retry is visible on a terminal; otherwise it goes to the log (--log-level info).
  o.on_retry = [](const std::string& line) {
    if (isatty(STDERR_FILENO) != 0) {
      std::fprintf(stderr, "kiste: %s\n", line.c_str());
    } else {
      log::info("{}", line);
    }
  };
  return o;
}

Result<Remote> connect(const RegistryFlags& f, std::string_view registry_host) {
  Remote r;
  if (!f.authfile.empty()) {
    r.keychain =
        std::make_unique<registry::DockerKeychain>(std::vector<std::filesystem::path>{f.authfile});
  } else {
    r.keychain = std::make_unique<registry::DockerKeychain>();
  }
  KISTE_ASSIGN_OR_RETURN(registry::ClientOptions o,
                         client_options(f, registry_host, r.keychain.get()));
  KISTE_ASSIGN_OR_RETURN(r.client, registry::Client::create(registry_host, std::move(o)));
  return r;
}

Result<image::CopyResult> push_stored(const image::Store& store, const image::StoreEntry& entry,
                                      const image::Reference& dest, const RegistryFlags& rf,
                                      image::CopyOptions opts) {
  KISTE_ASSIGN_OR_RETURN(auto src, store.open_image(entry));
  KISTE_ASSIGN_OR_RETURN(Remote remote, connect(rf, dest.registry()));
  opts.all = true;  // a push sends what the store has, index and all
  registry::RemoteSink sink(*remote.client, dest);
  return with_context(image::copy_image(*src, sink, opts), fmt::format("push `{}`", dest.str()));
}

}  // namespace kiste::cli
