#pragma once
// An HTTP/1.1 proxy in front of a registry that injects faults into blob downloads: one request
// per client connection (it answers `Connection: close`), the upstream response is buffered and
// then passed on, dropped half-way, replaced by a 500/429, corrupted or throttled.
#include <atomic>
#include <filesystem>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace kiste::testing {

class FaultProxy {
 public:
  // Trickle: the upstream headers, then the body at 4 bytes/s. EndlessHeaders: a status line and
  // then one more header line every 100 ms, never the blank line that ends them.
  enum class Fault { None, DropMidBlob, Status500, Status429, CorruptByte, Slow, Trickle,
                     EndlessHeaders };
  enum class Target { BlobGet, BlobUpload, ManifestGet, Any };
  // `times`: how many matching requests get the fault (-1: all of them). BlobUpload faults hit
  // the PUT that carries a blob's bytes (Status500/429, or DropMidBlob: no answer at all).
  FaultProxy(int upstream_port, Fault fault, int times = 1, Target target = Target::BlobGet);
  ~FaultProxy();
  FaultProxy(const FaultProxy&) = delete;
  FaultProxy& operator=(const FaultProxy&) = delete;
  [[nodiscard]] int port() const { return port_; }
  [[nodiscard]] std::string host() const { return "127.0.0.1:" + std::to_string(port_); }
  [[nodiscard]] int faults_injected() const { return injected_; }
  [[nodiscard]] int blob_gets() const { return blob_gets_; }

  // Answers the OCI referrers API (GET /v2/<name>/referrers/<digest>), which Debian's
  // docker-registry 2.8 lacks, from what the real registry stores: every manifest revision of
  // <name> under `registry_storage` is fetched from the registry itself and listed when its
  // `subject` is <digest>. Everything else is still forwarded unchanged.
  void serve_referrers(std::filesystem::path registry_storage) {
    referrers_storage_ = std::move(registry_storage);
  }
  [[nodiscard]] int referrers_answered() const { return referrers_answered_; }

 private:
  void serve();
  void handle(int client);
  bool take_fault();
  // Sends one request to the registry and returns its whole response ("" on failure).
  std::string upstream(std::string_view head, std::string_view body);
  std::string referrers_response(const std::string& name, const std::string& digest);
  int upstream_port_;
  Fault fault_;
  Target target_;
  std::atomic<int> budget_;
  std::atomic<int> injected_{0};
  std::atomic<int> blob_gets_{0};
  std::atomic<int> referrers_answered_{0};
  std::filesystem::path referrers_storage_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::vector<std::thread> workers_;
  std::thread acceptor_;
};

// A fake registry for hostile responses: "METHOD /path?query" (exact) or "METHOD /path" -> raw
// HTTP response; "<key> [bearer]" answers requests with "Authorization: Bearer good-token".
// `/v2/` answers 200; anything else unknown 404.
class ScriptedServer {
 public:
  explicit ScriptedServer(std::map<std::string, std::string> responses);
  ~ScriptedServer();
  ScriptedServer(const ScriptedServer&) = delete;
  ScriptedServer& operator=(const ScriptedServer&) = delete;
  [[nodiscard]] std::string host() const { return "127.0.0.1:" + std::to_string(port_); }
  void add(const std::string& key, std::string response) {
    std::lock_guard l(mu_);
    responses_[key] = std::move(response);
  }
  // Builds a response: status line, headers ("Name: value\r\n"...), body.
  static std::string response(std::string_view status, std::string_view headers,
                              std::string_view body);

 private:
  void serve();
  std::mutex mu_;
  std::map<std::string, std::string> responses_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace kiste::testing
