#pragma once
// Network namespaces for network tests (the network rule: a test's bridges, rules and clients
// live in namespaces it made, never on the host's interfaces).
#include <atomic>
#include <string>
#include <thread>

#include <kiste/base/unique_fd.hpp>

namespace kiste::testing {

// Moves this process into a new network namespace with its loopback up (127.0.0.1 of that
// namespace for published ports). Call first thing in main(), before threads exist; false when
// not root or the kernel refuses.
[[nodiscard]] bool enter_own_netns();

// A further network namespace (an "upstream" or "outside" peer), held by the fd; invalid on
// failure. No process stays in it.
[[nodiscard]] UniqueFd new_netns();

// A further namespace on a veth from this one: `host_if` here gets `host_addr`/24, the peer's
// eth0 gets `peer_addr`/24 (and its loopback is up). Invalid on failure (the veth is not left).
[[nodiscard]] UniqueFd new_peer_netns(const std::string& host_if, const std::string& host_addr,
                                      const std::string& peer_addr);

// A TCP server on `addr` (a free port) in the namespace `netns_fd`: it answers one connection
// with "pong\n" and records the client's address. The wait for the client is bounded (30 s).
class OneShotServer {
 public:
  OneShotServer(int netns_fd, const std::string& addr);
  ~OneShotServer();
  OneShotServer(const OneShotServer&) = delete;
  OneShotServer& operator=(const OneShotServer&) = delete;
  // The port, or -1 when the server could not listen.
  [[nodiscard]] int port() const { return port_; }
  // The client's address once it was served ("" when none came); waits for the server.
  [[nodiscard]] std::string peer();

 private:
  std::atomic<int> port_{0};
  std::string peer_;
  std::thread thread_;
};

}  // namespace kiste::testing
