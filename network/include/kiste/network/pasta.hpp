#pragma once
// User-mode networking (`--network pasta`), for rootless containers: pasta (Debian's `passt`)
// gives the container's network namespace a tap interface whose packets it turns into ordinary
// sockets of the host, so outbound connections need no bridge, no veth and no privilege, and a
// published port is a socket pasta listens on in the host's namespace.
//
// Why pasta and not slirp4netns: pasta has no NAT and no userland TCP stack to copy every byte
// through (it splices, and the container sees the host's own address, so logs show real client
// addresses), and it publishes ports itself, so kiste needs no separate port forwarder
// (slirp4netns needs one per port, or its API socket). podman made it the default in 5.0.
//
// What kiste asks of pasta: the interface `eth0` with the host's address and routes
// (--config-net), nothing forwarded but the ports the user published (-t/-u; pasta's default
// "auto" would publish every port the container listens on), no way into the host's loopback
// (-T none -U none, --no-map-gw: the container reaches no host service that the outside cannot),
// and no quitting on its own. pasta runs in the foreground as kiste's child with a parent-death
// signal, so it goes with the kiste process (foreground run or a detached container's monitor)
// that started it, also when that one is SIGKILLed.
#include <sys/types.h>

#include <string>
#include <vector>

#include <kiste/base/error.hpp>
#include <kiste/network/publish.hpp>

namespace kiste::network {

// pasta's arguments after argv[0], for a network namespace at `netns_path` and a pid file at
// `pid_path` (kiste passes /proc/self/fd paths of its own pipe and namespace fd).
[[nodiscard]] std::vector<std::string> pasta_arguments(const std::vector<PortMapping>& ports,
                                                       const std::string& netns_path,
                                                       const std::string& pid_path);

// Host port 0 ("-p 8080", -P): a free port, as the kernel picks one for a socket bound to port 0.
// pasta binds what it is told, so the port is chosen here, just before pasta binds it.
[[nodiscard]] Status choose_free_ports(std::vector<PortMapping>& ports);

class Pasta {
 public:
  // Starts pasta on the network namespace `netns_fd` and returns once pasta has configured it and
  // bound every published port. An error names the reason in one line (pasta missing,
  // /dev/net/tun not usable, a host port in use) and leaves no process.
  [[nodiscard]] static Result<Pasta> start(int netns_fd, const std::vector<PortMapping>& ports);
  Pasta(Pasta&& o) noexcept : pid_(std::exchange(o.pid_, -1)) {}
  Pasta& operator=(Pasta&&) = delete;
  ~Pasta();  // kills pasta and reaps it

  [[nodiscard]] pid_t pid() const { return pid_; }

 private:
  explicit Pasta(pid_t pid) : pid_(pid) {}
  pid_t pid_ = -1;
};

}  // namespace kiste::network
