#include <kiste/base/dynamic_library.hpp>

#include <dlfcn.h>

namespace kiste {

Result<DynamicLibrary> DynamicLibrary::open(const char* soname) {
  void* h = ::dlopen(soname, RTLD_NOW | RTLD_LOCAL);
  if (h == nullptr) {
    const char* e = ::dlerror();
    return failf(Errc::Unsupported, "load {}: {}", soname, e ? e : "unknown error");
  }
  return DynamicLibrary(h, soname);
}

void* DynamicLibrary::symbol(const char* name) const { return ::dlsym(handle_, name); }

}  // namespace kiste
