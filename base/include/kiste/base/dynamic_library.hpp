#pragma once
// A C library loaded on first use (dlopen) instead of at program start: every shared library
// linked into kiste costs its load and relocations on every command, and most commands never
// need libcurl, libsystemd, libmnl or libnftables. Loaded libraries are never unloaded.
#include <string>

#include <kiste/base/error.hpp>

namespace kiste {

class DynamicLibrary {
 public:
  // dlopen(soname, RTLD_NOW | RTLD_LOCAL); the error names the library and dlerror().
  [[nodiscard]] static Result<DynamicLibrary> open(const char* soname);

  // Binds `out` to the symbol `name`; the error names the library and the symbol.
  template <class F>
  [[nodiscard]] Status bind(const char* name, F& out) const {
    void* sym = symbol(name);
    if (sym == nullptr) return failf(Errc::Unsupported, "{} has no `{}`", soname_, name);
    out = reinterpret_cast<F>(sym);
    return {};
  }

 private:
  DynamicLibrary(void* handle, std::string soname) : handle_(handle), soname_(std::move(soname)) {}
  [[nodiscard]] void* symbol(const char* name) const;
  void* handle_;
  std::string soname_;
};

}  // namespace kiste
