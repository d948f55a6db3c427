#include "libarchive.hpp"

#include <dlfcn.h>

#include <mutex>

namespace kiste::image::detail {

namespace {

LibArchive g_api;
const LibArchive* g_loaded = nullptr;
std::string g_error;

void load_once() {
  void* lib = ::dlopen("libarchive.so.13", RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr) {
    const char* e = ::dlerror();
    g_error = fmt::format("load libarchive.so.13: {}", e ? e : "unknown error");
    return;
  }
  LibArchive a;
#define KISTE_LIBARCHIVE_BIND(name)                                              \
  a.name = reinterpret_cast<decltype(&::name)>(::dlsym(lib, #name));             \
  if (a.name == nullptr) {                                                       \
    g_error = fmt::format("libarchive.so.13 has no `{}`", #name);                \
    return;                                                                      \
  }
  KISTE_LIBARCHIVE_FUNCTIONS(KISTE_LIBARCHIVE_BIND)
#undef KISTE_LIBARCHIVE_BIND
  g_api = a;
  g_loaded = &g_api;
}

}  // namespace

Status load_libarchive() {
  static std::once_flag once;
  std::call_once(once, load_once);
  if (g_loaded == nullptr) return fail(Errc::Unsupported, g_error);
  return {};
}

const LibArchive& la() {
  KISTE_CHECK(g_loaded != nullptr);
  return *g_loaded;
}

}  // namespace kiste::image::detail
