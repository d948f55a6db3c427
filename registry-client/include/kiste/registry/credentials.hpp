#pragma once
// Where credentials come from, like docker and podman:
//   $REGISTRY_AUTH_FILE, ${XDG_RUNTIME_DIR}/containers/auth.json, $DOCKER_CONFIG/config.json
//   (default ~/.docker/config.json); per file `credHelpers[host]`, then `auths[host]`, then
//   `credsStore`, where helpers are `docker-credential-NAME get` (secret via stdin/stdout only).
#include <filesystem>
#include <kiste/base/error.hpp>
#include <kiste/registry/auth.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kiste::registry {

class Keychain {
 public:
  virtual ~Keychain() = default;
  // Credentials for `registry` ("localhost:5000", "docker.io"); nullopt when there are none.
  [[nodiscard]] virtual Result<std::optional<Credential>> get(std::string_view registry) = 0;
};

// A keychain that knows nothing (anonymous access).
class AnonymousKeychain final : public Keychain {
 public:
  [[nodiscard]] Result<std::optional<Credential>> get(std::string_view) override {
    return std::nullopt;
  }
};

class DockerKeychain final : public Keychain {
 public:
  // Files searched in order (from the environment when not given).
  DockerKeychain();
  explicit DockerKeychain(std::vector<std::filesystem::path> files) : files_(std::move(files)) {}
  [[nodiscard]] Result<std::optional<Credential>> get(std::string_view registry) override;

  // The default search list, from the environment.
  [[nodiscard]] static std::vector<std::filesystem::path> default_files();
  // Where `login` writes: $REGISTRY_AUTH_FILE, else $DOCKER_CONFIG/config.json or
  // ~/.docker/config.json.
  [[nodiscard]] static std::filesystem::path login_file();

 private:
  std::vector<std::filesystem::path> files_;
};

// Stores `cred` for `registry` in `file` (`auths`, base64 "user:pass", mode 0600, atomic replace;
// other keys of the file are kept).
[[nodiscard]] Status save_login(const std::filesystem::path& file, std::string_view registry,
                                const Credential& cred);
// Removes `registry` from `file`; NotFound when it was not logged in.
[[nodiscard]] Status remove_login(const std::filesystem::path& file, std::string_view registry);

// The key docker uses in `auths`: docker.io is "https://index.docker.io/v1/".
[[nodiscard]] std::string auths_key(std::string_view registry);

}  // namespace kiste::registry
