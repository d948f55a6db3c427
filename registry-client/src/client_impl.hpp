#pragma once
// Client internals shared by client.cpp (verbs), auth_session.cpp and blob_reader.cpp.
#include <atomic>
#include <initializer_list>
#include <kiste/registry/auth.hpp>
#include <kiste/registry/client.hpp>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "http.hpp"

namespace kiste::registry {

// One request as the verbs describe it; the session adds the base URL, auth and retries.
struct Call {
  std::string method = "GET";
  std::string target;  // "/v2/..." or an absolute URL (upload locations, pagination links)
  std::vector<std::string> headers;
  std::optional<std::string> body;
  image::BlobReader* upload = nullptr;  // not replayable: no retry after it was sent
  int64_t upload_size = -1;
  std::vector<std::string> scopes;  // token scopes this request needs
  std::string what;                 // "GET manifest `a/b:1`" for messages
  // A blob's bytes come back: no whole-request deadline, only the minimum rate (an upload is
  // treated the same way).
  bool blob_body = false;
};

struct Client::Impl {
  Impl(std::string registry, ClientOptions opts, detail::TlsConfig tls, bool may_fall_back)
      : registry(std::move(registry)),
        opts(std::move(opts)),
        http(std::move(tls), this->opts.user_agent, this->opts.deadlines),
        may_fall_back_to_http(may_fall_back) {}

  // Sends `call` with auth and retries; returns the transfer when its status is in `ok`,
  // else the registry error (the body is read and parsed).
  [[nodiscard]] Result<std::unique_ptr<detail::Transfer>> send(const Call& call,
                                                               std::initializer_list<int> ok);
  [[nodiscard]] Status ensure_base();
  [[nodiscard]] std::string url_for(std::string_view target);
  // Waits before try `attempt + 1` (exponential with jitter, or Retry-After) and says so
  // through opts.on_retry, naming `reason`.
  void backoff(int attempt, const std::optional<std::string>& retry_after, const Error& reason);

  // ---- auth (auth_session.cpp) -----------------------------------------------------------
  // The Authorization header for `scopes` ("" when anonymous), fetching a token if needed.
  [[nodiscard]] Result<std::string> authorization(const std::vector<std::string>& scopes);
  // Reacts to a 401: learns the challenge, drops the cached token, fetches a new one.
  [[nodiscard]] Status on_unauthorized(const detail::HttpHead& head,
                                       const std::vector<std::string>& scopes);
  [[nodiscard]] Status learn_challenge(const detail::HttpHead& head);
  [[nodiscard]] Result<std::optional<Credential>> credential();
  struct TokenReply {
    std::string token;
    std::string refresh_token;  // only when asked for offline access and the server gives one
  };
  // `offline`: ask for a refresh token as well (docker's login: offline_token=true).
  [[nodiscard]] Result<TokenReply> fetch_token(const std::vector<std::string>& scopes,
                                               bool offline = false);

  std::string registry;
  // Where the API lives: docker.io's is registry-1.docker.io.
  std::string api_host() const {
    return registry == "docker.io" ? std::string("registry-1.docker.io") : registry;
  }
  ClientOptions opts;
  detail::Http http;
  bool may_fall_back_to_http;
  bool http_first = false;  // loopback: plain HTTP first, then verified HTTPS

  std::mutex base_mu;
  std::string base;  // "https://host:port" once pinged

  enum class Scheme { None, Basic, Bearer };
  std::mutex auth_mu;
  Scheme scheme = Scheme::None;
  Challenge bearer;
  std::map<std::string, std::string> tokens;  // joined scopes -> token
  bool cred_loaded = false;
  std::optional<Credential> cred;

  struct AtomicStats {
    std::atomic<uint64_t> requests{0}, up{0}, down{0}, uploads{0}, mounts{0}, retries{0}, tokens{0};
  } stats;
};

[[nodiscard]] Result<std::unique_ptr<image::BlobReader>> open_remote_blob(
    Client::Impl& c, std::string repo, const image::Descriptor& d, uint64_t offset = 0);

[[nodiscard]] std::string base64_encode(std::string_view in);
[[nodiscard]] Result<std::string> base64_decode(std::string_view in);

}  // namespace kiste::registry
