#include <kiste/testing/kiste_cli.hpp>

#include <sys/stat.h>

#include <algorithm>
#include <mutex>
#include <vector>

#include <kiste/base/sys.hpp>
#include <kiste/testing/temp_root.hpp>

namespace kiste::testing {

namespace fs = std::filesystem;

CliResult KisteCli::run(const std::string& args) const {
  CliResult r;
  r.status = run_shell(kiste_binary().native() + " --root '" + root_.native() + "' " + args,
                       &r.output);
  return r;
}

std::string tree_listing(const fs::path& dir) {
  std::vector<std::string> lines;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    fs::path rel = fs::relative(it->path(), dir);
    std::string r = rel.native();
    if (r == "tmp" || r.starts_with("tmp/") || r.ends_with(".lock")) continue;
    struct stat st {};
    ::lstat(it->path().c_str(), &st);
    std::string line = r + " " + std::to_string(st.st_mode) + " " + std::to_string(st.st_size);
    if (S_ISREG(st.st_mode)) {
      auto bytes = sys::read_file(it->path());
      line += " " + std::to_string(std::hash<std::string>{}(bytes.value_or("?")));
    }
    lines.push_back(std::move(line));
  }
  std::sort(lines.begin(), lines.end());
  std::string out;
  for (const auto& l : lines) out += l + "\n";
  return out;
}

fs::path busybox_tar() {
  static std::once_flag once;
  static fs::path path = fs::temp_directory_path() / ("kiste-test-busybox-" + sys::random_hex(4) + ".tar");
  std::call_once(once, [] {
    std::string out;
    int rc = run_shell(std::string(KISTE_SOURCE_DIR) + "/scripts/busybox-rootfs.sh " + path.native(), &out);
    if (rc != 0) throw std::runtime_error("busybox-rootfs.sh failed: " + out);
    std::atexit([] { ::unlink(path.c_str()); });
  });
  return path;
}

fs::path busybox_tar_arm64() {
  static std::once_flag once;
  static fs::path path =
      fs::temp_directory_path() / ("kiste-test-busybox-arm64-" + sys::random_hex(4) + ".tar");
  std::call_once(once, [] {
    std::string out;
    int rc = run_shell(std::string(KISTE_SOURCE_DIR) + "/scripts/busybox-rootfs.sh --arch arm64 " +
                           path.native(),
                       &out);
    if (rc != 0) throw std::runtime_error("busybox-rootfs.sh --arch arm64 failed: " + out);
    std::atexit([] { ::unlink(path.c_str()); });
  });
  return path;
}

std::string kiste_command(const std::filesystem::path& root, const std::string& args) {
  return kiste_binary().string() + " --root " + root.string() + " " + args;
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

size_t count_lines(std::string_view s) { return static_cast<size_t>(std::ranges::count(s, '\n')); }

}  // namespace kiste::testing
