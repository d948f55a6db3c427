#pragma once
// Network namespaces for network tests (the network rule: a test's bridges, rules and clients
// live in namespaces it made, never on the host's interfaces).
#include <kiste/base/unique_fd.hpp>

namespace kiste::testing {

// Moves this process into a new network namespace with its loopback up (127.0.0.1 of that
// namespace for published ports). Call first thing in main(), before threads exist; false when
// not root or the kernel refuses.
[[nodiscard]] bool enter_own_netns();

// A further network namespace (an "upstream" or "outside" peer), held by the fd; invalid on
// failure. No process stays in it.
[[nodiscard]] UniqueFd new_netns();

}  // namespace kiste::testing
