#include <kiste/base/temp_dir.hpp>

#include <cstdlib>

#include <kiste/base/log.hpp>
#include <kiste/base/sys.hpp>

namespace kiste {

Result<TempDir> TempDir::create(const std::filesystem::path& parent, std::string_view prefix) {
  std::string tmpl = (parent / (std::string(prefix) + "XXXXXX")).native();
  if (::mkdtemp(tmpl.data()) == nullptr) return std::unexpected(sys_error("mkdtemp", tmpl));
  return TempDir(std::filesystem::path(tmpl));
}

TempDir& TempDir::operator=(TempDir&& o) noexcept {
  if (this != &o) {
    TempDir old(std::move(*this));
    path_ = std::exchange(o.path_, {});
  }
  return *this;
}

TempDir::~TempDir() {
  if (path_.empty()) return;
  if (auto r = sys::remove_tree(path_); !r) {
    log::warn("leaving temporary directory behind: {}", r.error().to_string());
  }
}

}  // namespace kiste
