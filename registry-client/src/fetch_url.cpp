#include <kiste/registry/fetch_url.hpp>

#include <ctime>
#include <string>

#include "http.hpp"

namespace kiste::registry {

std::optional<int64_t> parse_http_date(std::string_view s) {
  std::string str(s);
  std::tm tm{};
  const char* end = ::strptime(str.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if (end == nullptr || *end != '\0') return std::nullopt;
  return static_cast<int64_t>(::timegm(&tm));
}

Result<FetchedUrl> fetch_url(std::string_view url, image::ByteSink& out,
                             const FetchUrlOptions& opts) {
  if (!url.starts_with("http://") && !url.starts_with("https://")) {
    return failf(Errc::InvalidArgument, "fetch {}: only http:// and https:// URLs are supported",
                 quote(url));
  }
  detail::Http http(detail::TlsConfig{}, "kiste/0.1");
  detail::HttpRequest req{.url = std::string(url)};
  FetchedUrl r;
  {
    KISTE_ASSIGN_OR_RETURN(auto t, http.start(req));
    if (t->status() < 200 || t->status() > 299) {
      Error e = Error{.code = t->status() == 404 ? Errc::NotFound : Errc::Unavailable,
                      .message = fmt::format("GET {}: HTTP status {}",
                                             quote(detail::redact_url(url)), t->status())};
      e.http_status = t->status();
      return std::unexpected(std::move(e));
    }
    if (auto lm = t->head().header("last-modified")) r.last_modified = parse_http_date(*lm);
    char buf[64 * 1024];
    for (;;) {
      KISTE_ASSIGN_OR_RETURN(size_t n, t->read(buf, sizeof buf));
      if (n == 0) break;
      r.size += n;
      if (r.size > opts.max_bytes) {
        return failf(Errc::InvalidArgument, "GET {}: body larger than {} bytes",
                     quote(detail::redact_url(url)), opts.max_bytes);
      }
      KISTE_TRY(out.write(std::string_view(buf, n)));
    }
  }
  return r;
}

}  // namespace kiste::registry
