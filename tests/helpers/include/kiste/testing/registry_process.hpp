#pragma once
// A real CNCF distribution registry (Debian's docker-registry) for tests: free loopback port,
// temporary storage, plain HTTP or TLS (CA + server certificate generated with openssl), htpasswd
// Basic auth, or Bearer token auth against a small in-process token server (RS256 JWTs signed
// with OpenSSL). The destructor kills the process and stops the token server: nothing is left.
#include <sys/types.h>

#include <atomic>
#include <filesystem>
#include <kiste/testing/temp_root.hpp>
#include <memory>
#include <string>
#include <thread>

namespace kiste::testing {

enum class RegistryAuth { None, Basic, Token };

struct RegistryConfig {
  bool tls = false;
  RegistryAuth auth = RegistryAuth::None;
  std::string username = "kiste";
  std::string password = "kiste-secret";
  // Loopback address to listen on; another than 127.0.0.1 is not "localhost" to kiste.
  std::string address = "127.0.0.1";
};

class TokenServer;

class RegistryProcess {
 public:
  // Starts the registry and waits until it accepts connections. On failure returns nullptr and
  // sets `why`.
  static std::unique_ptr<RegistryProcess> start(const RegistryConfig& cfg, std::string* why);
  ~RegistryProcess();
  RegistryProcess(const RegistryProcess&) = delete;
  RegistryProcess& operator=(const RegistryProcess&) = delete;

  // "127.0.0.1:PORT" (loopback: kiste may use plain HTTP without --tls-verify=false)
  [[nodiscard]] std::string host() const { return cfg_.address + ":" + std::to_string(port_); }
  [[nodiscard]] int port() const { return port_; }
  // Directory with ca.crt (a --cert-dir), when TLS is on.
  [[nodiscard]] std::filesystem::path cert_dir() const { return dir_ / "certs"; }
  [[nodiscard]] std::filesystem::path storage() const { return dir_ / "storage"; }
  [[nodiscard]] const RegistryConfig& config() const { return cfg_; }
  // The registry's log (access log lines included) so far.
  [[nodiscard]] std::string log() const;
  // Access-log lines whose request line contains `needle` ("PUT /v2/prod/blobs/uploads/").
  [[nodiscard]] int count_requests(std::string_view needle) const;
  // Token requests served (Token auth).
  [[nodiscard]] int token_requests() const;
  // OAuth2 `grant_type=refresh_token` requests the token server accepted. It hands out refresh
  // tokens for offline access (GET with offline_token=true, or POST grant_type=password with
  // access_type=offline) and accepts them back as POST grant_type=refresh_token.
  [[nodiscard]] int token_refresh_grants() const;
  [[nodiscard]] pid_t pid() const { return pid_; }

 private:
  RegistryProcess() = default;
  TempRoot dir_{"kiste-registry-"};
  RegistryConfig cfg_;
  int port_ = 0;
  pid_t pid_ = -1;
  std::unique_ptr<TokenServer> token_;
};

// A free TCP port on 127.0.0.1 (bound and released; good enough for tests).
int free_loopback_port();

}  // namespace kiste::testing
