#pragma once
// A busybox root filesystem made offline by scripts/busybox-rootfs.sh --dir, for runtime and e2e
// tests: /bin/busybox with every applet linked at its usual path, /etc/passwd and /etc/group
// (root, nobody, and a "tester" user in an extra group), /tmp, /root, and the static
// kiste_test_init helper at /usr/bin/kiste_test_init.
#include <filesystem>

#include <kiste/base/error.hpp>

namespace kiste::testing {

struct BusyboxRootfsOptions {
  bool with_test_init = true;
};

[[nodiscard]] Status make_busybox_rootfs(const std::filesystem::path& dir,
                                         const BusyboxRootfsOptions& opts = {});

// Path of the built static kiste_test_init.
[[nodiscard]] std::filesystem::path kiste_test_init_binary();

}  // namespace kiste::testing
