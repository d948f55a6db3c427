#pragma once
// The image configuration (OCI config.md; Docker's container image v1 is the same shape).
// Fields kiste does not model are kept in `raw_` and written back unchanged by serialize().
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <kiste/base/error.hpp>
#include <kiste/image/digest.hpp>
#include <kiste/image/platform.hpp>

namespace kiste::image {

struct HealthConfig {
  std::vector<std::string> test;  // ["CMD-SHELL", "..."], ["NONE"], ...
  int64_t interval_ns = 0, timeout_ns = 0, start_period_ns = 0, start_interval_ns = 0;
  int retries = 0;
  friend bool operator==(const HealthConfig&, const HealthConfig&) = default;
};

struct ContainerDefaults {  // "config" in the JSON
  std::string user;
  std::vector<std::string> exposed_ports;  // "80/tcp"
  std::vector<std::string> env;            // "K=V"
  std::optional<std::vector<std::string>> entrypoint;
  std::optional<std::vector<std::string>> cmd;
  std::vector<std::string> volumes;
  std::string working_dir;
  std::map<std::string, std::string> labels;
  std::string stop_signal;
  std::optional<HealthConfig> healthcheck;
  std::vector<std::string> shell;
  std::vector<std::string> on_build;
  friend bool operator==(const ContainerDefaults&, const ContainerDefaults&) = default;
};

struct HistoryEntry {
  std::string created;  // RFC 3339
  std::string created_by;
  std::string author;
  std::string comment;
  bool empty_layer = false;
  friend bool operator==(const HistoryEntry&, const HistoryEntry&) = default;
};

class ImageConfig {
 public:
  std::string created;  // RFC 3339, may be empty
  std::string author;
  std::string architecture;
  std::string os;
  std::string variant;
  std::string os_version;
  ContainerDefaults config;
  std::vector<Digest> diff_ids;
  std::vector<HistoryEntry> history;

  // Validates the REQUIRED fields: architecture, os, rootfs.type == "layers", diff_ids digests.
  [[nodiscard]] static Result<ImageConfig> parse(std::string_view bytes);
  // Deterministic JSON (sorted keys, no whitespace); unknown fields of a parsed config are kept.
  [[nodiscard]] std::string serialize() const;
  [[nodiscard]] Platform platform() const;

 private:
  std::string raw_;  // the parsed document, for fields kiste does not model
};

// ChainID(L0) = DiffID(L0); ChainID(L0..n) = sha256(ChainID(L0..n-1) + " " + DiffID(Ln)).
[[nodiscard]] std::vector<Digest> chain_ids(const std::vector<Digest>& diff_ids);

// RFC 3339 UTC ("2024-01-02T03:04:05Z") for a unix time.
[[nodiscard]] std::string rfc3339(int64_t unix_seconds);

}  // namespace kiste::image
