#include "curl_api.hpp"

#include <dlfcn.h>

#include <mutex>

namespace kiste::registry::detail {

namespace {

CurlApi g_api;
const CurlApi* g_loaded = nullptr;
std::string g_error;

template <class F>
bool bind(void* lib, const char* name, F& out) {
  out = reinterpret_cast<F>(::dlsym(lib, name));
  if (out == nullptr) g_error = fmt::format("libcurl.so.4 has no `{}`", name);
  return out != nullptr;
}

void load_once() {
  void* lib = ::dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr) {
    const char* e = ::dlerror();
    g_error = fmt::format("load libcurl.so.4: {}", e ? e : "unknown error");
    return;
  }
  CurlApi a{};
  bool ok = bind(lib, "curl_global_init", a.global_init) &&
            bind(lib, "curl_easy_init", a.easy_init) &&
            bind(lib, "curl_easy_cleanup", a.easy_cleanup) &&
            bind(lib, "curl_easy_reset", a.easy_reset) &&
            bind(lib, "curl_easy_setopt", a.easy_setopt) &&
            bind(lib, "curl_easy_pause", a.easy_pause) &&
            bind(lib, "curl_easy_strerror", a.easy_strerror) &&
            bind(lib, "curl_easy_getinfo", a.easy_getinfo) &&
            bind(lib, "curl_multi_init", a.multi_init) &&
            bind(lib, "curl_multi_cleanup", a.multi_cleanup) &&
            bind(lib, "curl_multi_add_handle", a.multi_add_handle) &&
            bind(lib, "curl_multi_remove_handle", a.multi_remove_handle) &&
            bind(lib, "curl_multi_perform", a.multi_perform) &&
            bind(lib, "curl_multi_poll", a.multi_poll) &&
            bind(lib, "curl_multi_info_read", a.multi_info_read) &&
            bind(lib, "curl_multi_strerror", a.multi_strerror) &&
            bind(lib, "curl_slist_append", a.slist_append) &&
            bind(lib, "curl_slist_free_all", a.slist_free_all);
  if (!ok) return;  // the library stays loaded; nothing else uses it
  if (CURLcode rc = a.global_init(CURL_GLOBAL_DEFAULT); rc != CURLE_OK) {
    g_error = fmt::format("curl_global_init: {}", a.easy_strerror(rc));
    return;
  }
  g_api = a;
  g_loaded = &g_api;
}

}  // namespace

Result<const CurlApi*> load_curl() {
  static std::once_flag once;
  std::call_once(once, load_once);
  if (g_loaded == nullptr) return fail(Errc::Unsupported, g_error);
  return g_loaded;
}

const CurlApi& curl() {
  KISTE_CHECK(g_loaded != nullptr);
  return *g_loaded;
}

}  // namespace kiste::registry::detail
