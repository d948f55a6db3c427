#pragma once
// libcurl, loaded on first use (dlopen) instead of at program start. Debian's libcurl pulls in
// gnutls (via librtmp), krb5, ldap and ssh2, whose load-time initialisation costs ~4 ms on every
// kiste command; `kiste run`, `build` and the store commands never talk to a registry.
#include <curl/curl.h>

#include <kiste/base/error.hpp>

namespace kiste::registry::detail {

struct CurlApi {
  decltype(&::curl_global_init) global_init;
  decltype(&::curl_easy_init) easy_init;
  decltype(&::curl_easy_cleanup) easy_cleanup;
  decltype(&::curl_easy_reset) easy_reset;
  decltype(&::curl_easy_setopt) easy_setopt;
  decltype(&::curl_easy_pause) easy_pause;
  decltype(&::curl_easy_strerror) easy_strerror;
  decltype(&::curl_easy_getinfo) easy_getinfo;
  decltype(&::curl_multi_init) multi_init;
  decltype(&::curl_multi_cleanup) multi_cleanup;
  decltype(&::curl_multi_add_handle) multi_add_handle;
  decltype(&::curl_multi_remove_handle) multi_remove_handle;
  decltype(&::curl_multi_perform) multi_perform;
  decltype(&::curl_multi_poll) multi_poll;
  decltype(&::curl_multi_info_read) multi_info_read;
  decltype(&::curl_multi_strerror) multi_strerror;
  decltype(&::curl_slist_append) slist_append;
  decltype(&::curl_slist_free_all) slist_free_all;
};

// Loads libcurl.so.4 and runs curl_global_init once; an error names the library and the reason.
[[nodiscard]] Result<const CurlApi*> load_curl();
// The loaded API; only valid after load_curl() succeeded (checked).
[[nodiscard]] const CurlApi& curl();

}  // namespace kiste::registry::detail
