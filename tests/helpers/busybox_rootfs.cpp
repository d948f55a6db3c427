#include <kiste/testing/busybox_rootfs.hpp>

#include <fmt/format.h>

#include <kiste/base/sys.hpp>
#include <kiste/testing/temp_root.hpp>

namespace kiste::testing {

namespace fs = std::filesystem;

fs::path kiste_test_init_binary() { return KISTE_TEST_INIT_PATH; }

Status make_busybox_rootfs(const fs::path& dir, const BusyboxRootfsOptions& opts) {
  // The busybox tree itself comes from the one script that also makes the image tarball; the
  // test users and kiste_test_init are what only these tests need.
  std::string out;
  if (run_shell(fmt::format("{}/scripts/busybox-rootfs.sh --dir {} 2>&1", KISTE_SOURCE_DIR, dir.native()), &out) !=
      0) {
    return failf(Errc::System, "busybox rootfs: scripts/busybox-rootfs.sh --dir failed: {}", out);
  }
  std::error_code ec;
  KISTE_TRY(sys::write_file_atomic(dir / "etc/passwd",
                                   "root:x:0:0:root:/root:/bin/sh\n"
                                   "daemon:x:1:1:daemon:/usr/sbin:/bin/false\n"
                                   "tester:x:1000:1000:tester:/home/tester:/bin/sh\n"
                                   "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"));
  KISTE_TRY(sys::write_file_atomic(dir / "etc/group",
                                   "root:x:0:\n"
                                   "daemon:x:1:\n"
                                   "tty:x:5:\n"
                                   "tester:x:1000:\n"
                                   "extra:x:2000:tester\n"
                                   "nogroup:x:65534:\n"));
  if (opts.with_test_init) {
    fs::copy_file(kiste_test_init_binary(), dir / "usr/bin/kiste_test_init",
                  fs::copy_options::overwrite_existing, ec);
    if (ec) return failf(Errc::System, "busybox rootfs: copy kiste_test_init: {}", ec.message());
  }
  return {};
}

}  // namespace kiste::testing
