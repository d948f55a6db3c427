#pragma once
// A plain HTTP(S) GET through the registry client's transport (libcurl, loaded on first use),
// for `ADD URL` in builds: the builder receives it through its UrlFetcher interface from cli/.
#include <cstdint>
#include <optional>
#include <string_view>

#include <kiste/base/error.hpp>
#include <kiste/image/blob_io.hpp>

namespace kiste::registry {

struct FetchedUrl {
  std::optional<int64_t> last_modified;  // Last-Modified as seconds since the epoch
  uint64_t size = 0;                     // bytes written to the sink
};

struct FetchUrlOptions {
  uint64_t max_bytes = uint64_t{1} << 36;  // refuse bodies beyond this (64 GiB)
};

// GETs an http:// or https:// URL (redirects followed, TLS verified) into `out`. Any other
// scheme, a non-2xx status or a body over max_bytes is an error naming the URL.
[[nodiscard]] Result<FetchedUrl> fetch_url(std::string_view url, image::ByteSink& out,
                                           const FetchUrlOptions& opts = {});

// "Sun, 06 Nov 1994 08:49:37 GMT" (RFC 7231 IMF-fixdate) → seconds; nullopt when malformed.
[[nodiscard]] std::optional<int64_t> parse_http_date(std::string_view s);

}  // namespace kiste::registry
