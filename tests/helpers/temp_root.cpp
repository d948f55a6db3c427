#include <kiste/testing/temp_root.hpp>

#include <sys/wait.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include <kiste/base/error.hpp>

namespace kiste::testing {

namespace fs = std::filesystem;

namespace {
fs::path test_tmp_base() {
  const char* t = std::getenv("TMPDIR");
  return t && *t ? fs::path(t) : fs::path("/tmp");
}
}  // namespace

TempRoot::TempRoot(std::string_view prefix)
    : dir_(std::move(TempDir::create(test_tmp_base(), prefix).value())) {}

std::vector<std::string> mounts_below(const fs::path& dir) {
  std::vector<std::string> found;
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  const std::string prefix = dir.native();
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string id, parent, devno, root, mountpoint;
    ls >> id >> parent >> devno >> root >> mountpoint;
    if (mountpoint == prefix || mountpoint.starts_with(prefix + "/")) found.push_back(mountpoint);
  }
  return found;
}

int run_shell(const std::string& command, std::string* out) {
  std::string cmd = command + " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) return -1;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) {
    if (out != nullptr) out->append(buf, n);
  }
  int st = ::pclose(p);
  if (st == -1) return -1;
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

fs::path kiste_binary() { return KISTE_BINARY_PATH; }

}  // namespace kiste::testing
