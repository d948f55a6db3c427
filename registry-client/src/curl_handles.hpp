#pragma once
// RAII owners for libcurl handles (private to registry-client).
#include "curl_api.hpp"

#include <memory>

namespace kiste::registry::detail {

struct CurlEasyDeleter {
  void operator()(CURL* h) const { curl().easy_cleanup(h); }
};
struct CurlMultiDeleter {
  void operator()(CURLM* h) const { curl().multi_cleanup(h); }
};
struct CurlSlistDeleter {
  void operator()(curl_slist* l) const { curl().slist_free_all(l); }
};
using CurlEasy = std::unique_ptr<CURL, CurlEasyDeleter>;
using CurlMulti = std::unique_ptr<CURLM, CurlMultiDeleter>;
using CurlSlist = std::unique_ptr<curl_slist, CurlSlistDeleter>;

}  // namespace kiste::registry::detail
