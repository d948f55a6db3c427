#pragma once
// Http: one request at a time per pooled connection (a curl easy handle driven through its own
// multi handle, so the body can be pulled by a BlobReader and connections are kept alive across
// requests). Many threads may use one Http; each transfer borrows a connection from the pool.
#include <cstdint>
#include <kiste/base/error.hpp>
#include <kiste/image/blob_io.hpp>
#include <kiste/registry/client.hpp>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace kiste::registry::detail {

struct TlsConfig {
  bool verify = true;
  std::string ca_pem;       // extra CA certificates (concatenated PEM), added to the system store
  std::string client_cert;  // path
  std::string client_key;   // path
};

struct HttpRequest {
  std::string method = "GET";
  std::string url;
  std::vector<std::string> headers;     // "Name: value"
  std::optional<std::string> body;      // small in-memory body (POST/PUT)
  image::BlobReader* upload = nullptr;  // streamed body of `upload_size` bytes
  int64_t upload_size = -1;
  bool follow_redirects = true;
  // Whole-request deadline (Deadlines::small_body_ms for small documents); 0: none, for blob
  // bodies, which have the minimum rate instead. The headers always have their deadline.
  int total_ms = 0;
};

struct HttpHead {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;  // names lower case
  [[nodiscard]] std::optional<std::string> header(std::string_view name) const;
};

class Connection;
class Http;

// A transfer whose response headers have arrived; the body is read on demand.
class Transfer {
 public:
  ~Transfer();
  Transfer(const Transfer&) = delete;
  Transfer& operator=(const Transfer&) = delete;
  [[nodiscard]] const HttpHead& head() const;
  [[nodiscard]] int status() const { return head().status; }
  // Body bytes; 0 at the end. A connection failure mid-body is Errc::Unavailable.
  [[nodiscard]] Result<size_t> read(void* buf, size_t len);
  // The rest of the body, at most `max` bytes (error beyond).
  [[nodiscard]] Result<std::string> read_all(size_t max, std::string_view what);
  // Reads a bounded error body, returning it (for check_response).
  [[nodiscard]] std::string error_body();

 private:
  friend class Http;
  Transfer(Http& http, std::unique_ptr<Connection> c);
  Http& http_;
  std::unique_ptr<Connection> c_;
};

class Http {
 public:
  Http(TlsConfig tls, std::string user_agent, Deadlines deadlines = {});
  ~Http();
  // Starts a request and waits for the response headers (an upload body is sent first).
  // Connection-level failures are Errc::Unavailable naming the method and URL.
  [[nodiscard]] Result<std::unique_ptr<Transfer>> start(const HttpRequest& req);

 private:
  friend class Transfer;
  std::unique_ptr<Connection> acquire();
  void release(std::unique_ptr<Connection> c);
  TlsConfig tls_;
  std::string user_agent_;
  Deadlines deadlines_;
  std::mutex mu_;
  std::vector<std::unique_ptr<Connection>> idle_;
};

// URL without its query (for messages: upload URLs carry opaque state).
[[nodiscard]] std::string redact_url(std::string_view url);
[[nodiscard]] std::string url_escape(std::string_view s);

}  // namespace kiste::registry::detail
