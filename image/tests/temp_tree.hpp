#pragma once
// Test-only: a fresh temp directory for one unit test (image/ unit tests use base's TempDir, as
// the layering lint allows only kiste/base and kiste/image includes here).

#include <cstdlib>
#include <filesystem>

#include <kiste/base/temp_dir.hpp>

namespace kiste::image::testing {

class TempTree {
 public:
  TempTree() : dir_(make()) {}
  [[nodiscard]] const std::filesystem::path& path() const { return dir_.path(); }
  [[nodiscard]] std::filesystem::path operator/(const std::filesystem::path& p) const {
    return dir_.path() / p;
  }

 private:
  static TempDir make() {
    const char* t = std::getenv("TMPDIR");
    return std::move(TempDir::create(t && *t ? t : "/tmp", "kiste-test-").value());
  }
  TempDir dir_;
};

}  // namespace kiste::image::testing
