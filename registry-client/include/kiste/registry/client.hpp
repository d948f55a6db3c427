#pragma once
// The distribution API client for one registry host. Layers (private, in src/): Http (libcurl
// easy+multi, pooled connections, TLS via OpenSSL, HTTP/2 when offered) -> AuthSession (ping,
// WWW-Authenticate per repository, Basic or Bearer token per scope, refresh once on 401) ->
// Client (the API verbs below). Thread-safe: copy_image's workers share one Client.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <kiste/base/error.hpp>
#include <kiste/image/blob_io.hpp>
#include <kiste/image/descriptor.hpp>
#include <kiste/image/manifest.hpp>
#include <kiste/registry/credentials.hpp>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kiste::registry {

struct RetryPolicy {
  int attempts = 5;           // total tries for a retryable failure
  int base_delay_ms = 200;    // doubled per attempt, with jitter
  int max_delay_ms = 10'000;  // also caps Retry-After
};

// How slow a registry may be before kiste gives up on it with one line naming it (libcurl's own
// guard, "< 1 byte/s for 60 s", let a registry trickling 2 bytes/s hold a pull forever).
struct Deadlines {
  int headers_ms = 60'000;       // request sent -> the final response headers
  int small_body_ms = 120'000;   // the whole request: pings, manifests, tokens, tag lists
  int64_t min_rate = 1024;       // bytes/s any body (blobs too) must keep up ...
  int rate_window_s = 60;        // ... over every window of this many seconds
  // Overrides from KISTE_REGISTRY_HEADERS_TIMEOUT, KISTE_REGISTRY_REQUEST_TIMEOUT (seconds),
  // KISTE_REGISTRY_MIN_RATE (bytes/s) and KISTE_REGISTRY_RATE_WINDOW (seconds).
  [[nodiscard]] static Result<Deadlines> from_env();
};

struct ClientOptions {
  // nullopt: verify TLS, except that localhost/127.0.0.1/::1 may fall back to plain HTTP.
  // false: do not verify, and fall back to plain HTTP (an "insecure registry").
  std::optional<bool> tls_verify;
  // Directory with ca.crt / *.crt and client *.cert + *.key; default
  // /etc/containers/certs.d/<host>/, else /etc/docker/certs.d/<host>/, when it exists.
  std::optional<std::filesystem::path> cert_dir;
  Keychain* keychain = nullptr;  // nullptr: anonymous
  RetryPolicy retry;
  size_t max_manifest_bytes = image::kMaxManifestBytes;
  // Blob uploads: 0 sends one monolithic PUT unless the registry asks for chunks
  // (OCI-Chunk-Min-Length); otherwise PATCH chunks of this size (at least the registry's minimum).
  size_t upload_chunk_bytes = 0;
  std::string user_agent = "kiste/0.1";
  Deadlines deadlines;
  // Told before each wait for a retry, with one line: "retrying (2/5) in 1.2 s: <reason>"
  // (the CLI shows it on a terminal). Unset: the line goes to the log at info level.
  std::function<void(const std::string& line)> on_retry;
};

// Counters for tests and benchmarks (what crossed the wire).
struct ClientStats {
  uint64_t requests = 0;
  uint64_t blob_bytes_uploaded = 0;
  uint64_t blob_bytes_downloaded = 0;
  uint64_t blob_uploads = 0;
  uint64_t mounts = 0;
  uint64_t retries = 0;
  uint64_t token_fetches = 0;
};

class Client {
 public:
  // `registry` is a host[:port] as in a Reference ("localhost:5000", "docker.io").
  [[nodiscard]] static Result<std::unique_ptr<Client>> create(std::string_view registry,
                                                              ClientOptions opts = {});
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  [[nodiscard]] const std::string& registry() const;
  // "https://localhost:5000" once known (after the first request).
  [[nodiscard]] std::string base_url();
  [[nodiscard]] ClientStats stats() const;

  // GET /v2/: checks the registry speaks the API and that the credentials are accepted.
  [[nodiscard]] Status ping();
  // Checks the keychain's username and password like ping(); with token auth it asks the token
  // server for offline access (docker's login) and returns the refresh token when it hands one
  // out: store it as the identity token instead of the password (later token requests then use
  // the OAuth2 refresh_token grant).
  [[nodiscard]] Result<std::optional<std::string>> login();

  // ---- manifests -----------------------------------------------------------------------------
  // GET a manifest or index by tag or digest (all four media types accepted), bounded, verified
  // against the digest when `reference` is one (and against Docker-Content-Digest otherwise).
  [[nodiscard]] Result<image::ManifestBlob> get_manifest(std::string_view repo,
                                                         std::string_view reference);
  // HEAD: the descriptor (media type, digest, size) or nullopt when absent.
  [[nodiscard]] Result<std::optional<image::Descriptor>> try_head_manifest(
      std::string_view repo, std::string_view reference);
  // PUT the exact bytes under `reference` (tag or digest); checks the returned digest.
  [[nodiscard]] Result<image::Digest> put_manifest(std::string_view repo,
                                                   std::string_view reference,
                                                   const image::ManifestBlob& m);
  [[nodiscard]] Status delete_manifest(std::string_view repo, const image::Digest& d);

  // ---- blobs ---------------------------------------------------------------------------------
  [[nodiscard]] Result<bool> has_blob(std::string_view repo, const image::Descriptor& d);
  // Streams a blob; a dropped connection resumes with Range. The reader does not hash: the sink
  // verifies the whole digest at the end (one pass). With `offset`, the download starts there
  // (Range) when the registry honours it; otherwise the reader's start_offset() is 0.
  [[nodiscard]] Result<std::unique_ptr<image::BlobReader>> open_blob(std::string_view repo,
                                                                     const image::Descriptor& d,
                                                                     uint64_t offset = 0);
  // Uploads `r` (exactly d.size bytes, digest d.digest): POST then a streamed PUT, or streamed
  // PATCH chunks and a closing PUT (see upload_chunk_bytes). The registry verifies the digest;
  // nothing is visible under the digest on mismatch.
  [[nodiscard]] Status upload_blob(std::string_view repo, const image::Descriptor& d,
                                   image::BlobReader& r);
  // Cross-repository mount: true on 201; false when the registry answered 202 (the started
  // upload is cancelled).
  [[nodiscard]] Result<bool> mount_blob(std::string_view repo, const image::Digest& d,
                                        std::string_view from_repo);

  // ---- listing -------------------------------------------------------------------------------
  // All tags (following `Link` pagination); every tag is validated.
  // Tags (repositories) as listed; names that are not valid are skipped, not fatal: one bad tag
  // must not hide the others.
  struct NameList {
    std::vector<std::string> names;
    size_t skipped = 0;                  // invalid names left out
    std::vector<std::string> examples;   // the first few of them, cut to 80 bytes
  };
  [[nodiscard]] Result<NameList> list_tags(std::string_view repo);
  [[nodiscard]] Result<NameList> catalog();
  // The tags of `repo` whose manifest is `d` (one HEAD per tag, sorted): what a DELETE of `d`
  // removes along with it, since the registry API deletes manifests, not tags.
  [[nodiscard]] Result<std::vector<std::string>> tags_of(std::string_view repo,
                                                         const image::Digest& d);
  // GET /v2/<repo>/referrers/<digest>: the index, or nullopt when the registry has no referrers
  // API (404).
  [[nodiscard]] Result<std::optional<image::ManifestBlob>> try_referrers(std::string_view repo,
                                                                         const image::Digest& d);

  struct Impl;

 private:
  explicit Client(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace kiste::registry
