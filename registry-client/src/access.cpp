#include <kiste/registry/access.hpp>

#include <kiste/registry/registries_conf.hpp>

namespace kiste::registry {

Result<ClientOptions> client_options(const AccessOptions& access, std::string_view registry_host,
                                     Keychain* keychain) {
  ClientOptions o{.keychain = keychain};
  if (access.tls_verify) {
    o.tls_verify = *access.tls_verify;
  } else {
    KISTE_ASSIGN_OR_RETURN(auto insecure, InsecureRegistries::load());
    if (insecure.contains(registry_host)) o.tls_verify = false;
  }
  if (!access.cert_dir.empty()) o.cert_dir = access.cert_dir;
  KISTE_ASSIGN_OR_RETURN(o.deadlines, Deadlines::from_env());
  o.on_retry = access.on_retry;
  return o;
}

Result<Remote> connect(const AccessOptions& access, std::string_view registry_host) {
  Remote r;
  if (!access.authfile.empty()) {
    r.keychain = std::make_unique<DockerKeychain>(std::vector<std::filesystem::path>{access.authfile});
  } else {
    r.keychain = std::make_unique<DockerKeychain>();
  }
  KISTE_ASSIGN_OR_RETURN(ClientOptions o, client_options(access, registry_host, r.keychain.get()));
  KISTE_ASSIGN_OR_RETURN(r.client, Client::create(registry_host, std::move(o)));
  return r;
}

Result<image::Reference> parse_docker_ref(std::string_view s, image::ReferenceOptions opts) {
  if (s.starts_with("docker://")) s.remove_prefix(9);
  return image::Reference::parse(s, opts);
}

}  // namespace kiste::registry
