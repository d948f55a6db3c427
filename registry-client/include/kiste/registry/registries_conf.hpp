#pragma once
// Insecure registries from the system configuration, like podman and docker:
//   /etc/containers/registries.conf (and its registries.conf.d/*.conf drop-ins): v2
//     `[[registry]]` (and `[[registry.mirror]]`) tables with `location = "host[:port]"` and
//     `insecure = true`, or v1 `[registries.insecure] registries = ["host[:port]", ...]`;
//     $KISTE_REGISTRIES_CONF names another file (and no drop-ins are read then).
//   /etc/docker/daemon.json `insecure-registries` (host[:port] or IPv4 CIDR;
//     $KISTE_DOCKER_DAEMON_JSON overrides).
// An insecure registry may be spoken to over plain HTTP and its certificate is not verified.
#include <filesystem>
#include <kiste/base/error.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace kiste::registry {

class InsecureRegistries {
 public:
  // Reads the files above; missing files are fine, a malformed one is an error naming it.
  [[nodiscard]] static Result<InsecureRegistries> load();

  // Entries are "host", "host:port" or "*.domain" (a location's path part is ignored).
  [[nodiscard]] static Result<InsecureRegistries> from_registries_conf(std::string_view toml,
                                                                       std::string_view what);
  [[nodiscard]] static Result<InsecureRegistries> from_daemon_json(std::string_view json,
                                                                   std::string_view what);
  void merge(const InsecureRegistries& other);

  // Whether `registry` ("host[:port]") is listed: an entry without a port matches every port of
  // its host, as in registries.conf; "*.example.com" matches its subdomains; an IPv4 network
  // from daemon.json ("10.0.0.0/8") matches the IPv4 addresses in it.
  [[nodiscard]] bool contains(std::string_view registry) const;
  [[nodiscard]] const std::vector<std::string>& entries() const { return entries_; }

 private:
  std::vector<std::string> entries_;
};

}  // namespace kiste::registry
