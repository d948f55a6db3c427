#pragma once
// Address leases of one network: which container holds which address. A text file, one
// `<address> <owner> <pid> [names]` line each, replaced atomically under an exclusive lock on a lock file beside
// it, so that 20 parallel `kiste run`s never get one address twice. Addresses are handed out
// round-robin after the last one given (as netavark does), so an address just released is not
// reused at once while peers may still have it in their ARP/neighbour caches.
#include <sys/types.h>

#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <kiste/base/error.hpp>
#include <kiste/network/address.hpp>

namespace kiste::network {

struct Lease {
  IpAddress address;
  std::string owner;  // a container id
  pid_t pid = 0;      // the process that took it (alive until the container's own marker is)
  // The names the network's DNS answers with this address (the container's name and its
  // --network-alias aliases): a fourth field, comma-separated, absent when there are none.
  std::vector<std::string> names;
};

// Whether a lease's owner still needs it.
using LeaseAliveFn = std::function<bool(const Lease&)>;

class LeaseFile {
 public:
  // `path` is the lease file; `subnet` the network's, whose host(1) .. are candidates except
  // `reserved` (the gateway).
  LeaseFile(std::filesystem::path path, Subnet subnet, std::vector<IpAddress> reserved)
      : path_(std::move(path)), subnet_(std::move(subnet)), reserved_(std::move(reserved)) {}

  // Leases an address to `owner`: `wanted` (--ip) if given and free, else the next free one.
  // Leases whose owner `alive` says is gone are reclaimed first (a SIGKILLed kiste's).
  // An owner that already holds an address gets it again. The lease records this process.
  [[nodiscard]] Result<IpAddress> acquire(std::string_view owner,
                                          const std::optional<IpAddress>& wanted,
                                          const LeaseAliveFn& alive,
                                          const std::vector<std::string>& names = {});
  // Drops `owner`'s lease; a missing one is fine (release runs again after a crash).
  [[nodiscard]] Status release(std::string_view owner);
  [[nodiscard]] Result<std::vector<Lease>> list() const;

 private:
  std::filesystem::path path_;
  Subnet subnet_;
  std::vector<IpAddress> reserved_;
};

}  // namespace kiste::network
