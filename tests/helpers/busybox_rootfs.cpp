#include <kiste/testing/busybox_rootfs.hpp>

#include <kiste/base/sys.hpp>
#include <kiste/testing/temp_root.hpp>

namespace kiste::testing {

namespace fs = std::filesystem;

fs::path kiste_test_init_binary() { return KISTE_TEST_INIT_PATH; }

Status make_busybox_rootfs(const fs::path& dir, const BusyboxRootfsOptions& opts) {
  const fs::path busybox = "/bin/busybox";
  std::error_code ec;
  if (!fs::exists(busybox, ec)) {
    return fail(Errc::NotFound, "busybox rootfs: /bin/busybox is missing (apt-get install busybox-static)");
  }
  for (const char* d : {"bin", "sbin", "usr/bin", "usr/sbin", "etc", "tmp", "root", "proc", "sys", "dev"}) {
    KISTE_TRY(sys::mkdir_all(dir / d, 0755));
  }
  ::chmod((dir / "tmp").c_str(), 01777);
  fs::copy_file(busybox, dir / "bin/busybox", fs::copy_options::overwrite_existing, ec);
  if (ec) return failf(Errc::System, "busybox rootfs: copy busybox: {}", ec.message());
  std::string list;
  if (run_shell("/bin/busybox --list-full", &list) != 0) {
    return fail(Errc::System, "busybox rootfs: busybox --list-full failed");
  }
  size_t pos = 0;
  while (pos < list.size()) {
    size_t nl = list.find('\n', pos);
    std::string rel = list.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
    pos = nl == std::string::npos ? list.size() : nl + 1;
    if (rel.empty() || rel == "bin/busybox" || rel.find('/') == std::string::npos) continue;
    fs::path link = dir / rel;
    fs::create_directories(link.parent_path(), ec);
    fs::remove(link, ec);
    fs::create_symlink("/bin/busybox", link, ec);
    if (ec) return failf(Errc::System, "busybox rootfs: link {}: {}", rel, ec.message());
  }
  KISTE_TRY(sys::write_file_atomic(dir / "etc/passwd",
                                   "root:x:0:0:root:/root:/bin/sh\n"
                                   "tester:x:1000:1000:tester:/home/tester:/bin/sh\n"
                                   "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"));
  KISTE_TRY(sys::write_file_atomic(dir / "etc/group",
                                   "root:x:0:\n"
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
