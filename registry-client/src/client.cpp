// Client: the distribution API verbs on top of the session (base URL, auth, retries).
#include <cerrno>
#include <chrono>
#include <filesystem>
#include <kiste/base/log.hpp>
#include <kiste/base/sys.hpp>
#include <kiste/image/media_type.hpp>
#include <kiste/image/reference.hpp>
#include <kiste/registry/client.hpp>
#include <kiste/registry/errors.hpp>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "client_impl.hpp"
#include "curl_handles.hpp"

namespace kiste::registry {

namespace fs = std::filesystem;
namespace mt = image::media_type;

namespace {

bool is_loopback(std::string_view registry) {
  std::string_view host = registry;
  if (host.starts_with("[")) {
    host = host.substr(1, host.find(']') - 1);
  } else if (auto c = host.rfind(':'); c != std::string_view::npos) {
    host = host.substr(0, c);
  }
  // Only the names tests and local caches use: other loopback addresses are treated like any
  // host (list them as insecure registries to use plain HTTP).
  return host == "localhost" || host == "127.0.0.1" || host == "::1";
}

// CA certificates and client key pairs like podman: DIR/*.crt are CAs, DIR/X.cert + DIR/X.key a
// client certificate.
Result<detail::TlsConfig> tls_config(std::string_view registry, const ClientOptions& opts) {
  detail::TlsConfig tls;
  tls.verify = opts.tls_verify.value_or(true);
  fs::path dir = opts.cert_dir ? *opts.cert_dir : fs::path("/etc/containers/certs.d") / registry;
  std::error_code ec;
  if (!opts.cert_dir && !fs::is_directory(dir, ec))
    dir = fs::path("/etc/docker/certs.d") / registry;
  if (!fs::is_directory(dir, ec)) {
    if (opts.cert_dir)
      return failf(Errc::NotFound, "cert dir {}: not a directory", quote(dir.string()));
    return tls;
  }
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(dir, ec)) files.push_back(e.path());
  std::sort(files.begin(), files.end());
  for (const auto& p : files) {
    if (p.extension() == ".crt") {
      KISTE_ASSIGN_OR_RETURN(std::string pem, sys::read_file(p, 1 << 20));
      tls.ca_pem += pem;
      tls.ca_pem += "\n";
    } else if (p.extension() == ".cert") {
      fs::path key = p;
      key.replace_extension(".key");
      if (!fs::exists(key, ec)) {
        return failf(Errc::NotFound, "client certificate {} has no key {}", quote(p.string()),
                     quote(key.string()));
      }
      tls.client_cert = p.string();
      tls.client_key = key.string();
    }
  }
  return tls;
}

std::string declared_type(const detail::HttpHead& h) {
  std::string ct = h.header("content-type").value_or("");
  if (auto semi = ct.find(';'); semi != std::string::npos) ct.resize(semi);
  while (!ct.empty() && ct.back() == ' ') ct.pop_back();
  if (mt::is_manifest(ct) || mt::is_index(ct)) return ct;
  return "";
}

constexpr std::string_view kAcceptManifests =
    "Accept: application/vnd.oci.image.manifest.v1+json, "
    "application/vnd.oci.image.index.v1+json, "
    "application/vnd.docker.distribution.manifest.v2+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json";

// "<url>; rel=\"next\"" -> url
std::optional<std::string> next_link(const detail::HttpHead& h) {
  auto link = h.header("link");
  if (!link) return std::nullopt;
  auto lt = link->find('<');
  auto gt = link->find('>');
  if (lt == std::string::npos || gt == std::string::npos || gt < lt) return std::nullopt;
  if (link->find("rel=\"next\"", gt) == std::string::npos &&
      link->find("rel=next", gt) == std::string::npos) {
    return std::nullopt;
  }
  return link->substr(lt + 1, gt - lt - 1);
}

}  // namespace

// ---- session ---------------------------------------------------------------------------------

std::string Client::Impl::url_for(std::string_view target) {
  if (target.starts_with("http://") || target.starts_with("https://")) return std::string(target);
  std::lock_guard l(base_mu);
  return base + std::string(target);
}

void Client::Impl::backoff(int attempt, const std::optional<std::string>& retry_after,
                           const Error& reason) {
  ++stats.retries;
  int delay = opts.retry.base_delay_ms << std::min(attempt - 1, 10);
  thread_local std::mt19937 rng{std::random_device{}()};
  delay = std::uniform_int_distribution<int>(delay / 2, delay)(rng);
  if (retry_after) {
    char* end = nullptr;
    long s = std::strtol(retry_after->c_str(), &end, 10);
    if (end != retry_after->c_str() && s >= 0) delay = static_cast<int>(std::min(s, 3600L)) * 1000;
  }
  delay = std::min(delay, opts.retry.max_delay_ms);
  std::string line = fmt::format("retrying ({}/{}) in {:.1f} s: {}", attempt + 1,
                                 opts.retry.attempts, delay / 1000.0, reason.to_string());
  if (opts.on_retry) {
    opts.on_retry(line);
  } else {
    log::info("{}", line);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(delay));
}

Status Client::Impl::ensure_base() {
  std::lock_guard l(base_mu);
  if (!base.empty()) return {};
  // Loopback registries (tests, local caches) are tried over plain HTTP first: the traffic never
  // leaves the host, and it spares loading the CA store for a TLS probe that would fail. A TLS
  // registry there answers the plain request with 400 and is then reached over verified HTTPS.
  std::vector<std::string> schemes = {"https://"};
  if (http_first) {
    schemes = {"http://", "https://"};
  } else if (may_fall_back_to_http) {
    schemes.push_back("http://");
  }
  std::optional<Error> first;
  for (const auto& scheme : schemes) {
    const bool last = scheme == schemes.back();
    std::string url = scheme + api_host() + "/v2/";
    for (int attempt = 1;; ++attempt) {
      detail::HttpRequest req{.url = url, .total_ms = opts.deadlines.small_body_ms};
      ++stats.requests;
      auto r = http.start(req);
      if (!r) {
        Error e = std::move(r).error();
        // A certificate that does not verify is an answer, not a reason to go plain.
        bool verify_failure = e.code == Errc::PermissionDenied && scheme == "https://";
        if (verify_failure) return std::unexpected(std::move(e));
        // Too slow (Errc::Registry): it answered, so another scheme would only hide why.
        if (e.code == Errc::Registry) {
          return std::unexpected(std::move(e).with_context(fmt::format("registry `{}`", registry)));
        }
        // Nothing listens on a loopback port: no retry or other scheme changes that, so say it
        // at once with the URL that was tried.
        if (http_first && e.sys_errno == ECONNREFUSED) {
          return failf(Errc::Unavailable,
                       "registry {}: connect to {}: connection refused (the registry may not be "
                       "running)",
                       quote(registry), url);
        }
        if (is_retryable(e) && attempt < opts.retry.attempts && last) {
          backoff(attempt, std::nullopt, e);
          continue;
        }
        if (!first || scheme == "https://") first = e;
        break;
      }
      int st = (*r)->status();
      if (st == 200 || st == 401) {
        if (st == 401) KISTE_TRY(learn_challenge((*r)->head()));
        (void)(*r)->error_body();
        base = scheme + api_host();
        log::debug("registry {}: using {}", registry, base);
        return {};
      }
      Error e = registry_error(fmt::format("ping `{}`", url), st, (*r)->error_body());
      if (!last && !is_retryable(e)) {
        if (!first) first = e;
        break;  // e.g. 400 from a TLS server spoken to in plain HTTP
      }
      if (is_retryable(e) && attempt < opts.retry.attempts) {
        backoff(attempt, (*r)->head().header("retry-after"), e);
        continue;
      }
      return std::unexpected(e);
    }
  }
  return std::unexpected(std::move(*first).with_context(fmt::format("registry `{}`", registry)));
}

Result<std::unique_ptr<detail::Transfer>> Client::Impl::send(const Call& call,
                                                             std::initializer_list<int> ok) {
  KISTE_TRY(ensure_base());
  bool refreshed = false;
  bool sent_body = false;
  for (int attempt = 1;; ++attempt) {
    detail::HttpRequest req{.method = call.method,
                            .url = url_for(call.target),
                            .headers = call.headers,
                            .body = call.body,
                            .upload = call.upload,
                            .upload_size = call.upload_size,
                            .total_ms = call.blob_body || call.upload != nullptr
                                            ? 0
                                            : opts.deadlines.small_body_ms};
    KISTE_ASSIGN_OR_RETURN(std::string auth, with_context(authorization(call.scopes), call.what));
    if (!auth.empty()) req.headers.push_back(std::move(auth));
    ++stats.requests;
    if (call.upload != nullptr) {
      if (sent_body) {
        return failf(Errc::Unavailable, "{}: cannot resend a streamed body", call.what);
      }
      sent_body = true;
    }
    auto r = http.start(req);
    if (!r) {
      Error e = std::move(r).error().with_context(call.what);
      if (is_retryable(e) && attempt < opts.retry.attempts && call.upload == nullptr) {
        backoff(attempt, std::nullopt, e);
        continue;
      }
      return std::unexpected(std::move(e));
    }
    auto& t = *r;
    int st = t->status();
    if (std::find(ok.begin(), ok.end(), st) != ok.end()) return std::move(t);
    std::string body = t->error_body();
    if (st == 401 && !refreshed && call.upload == nullptr) {
      refreshed = true;
      KISTE_TRY(with_context(on_unauthorized(t->head(), call.scopes), call.what));
      --attempt;
      continue;
    }
    Error e = registry_error(call.what, st, body);
    if (is_retryable(e) && attempt < opts.retry.attempts && call.upload == nullptr) {
      auto ra = t->head().header("retry-after");
      t.reset();
      backoff(attempt, ra, e);
      continue;
    }
    return std::unexpected(std::move(e));
  }
}

// ---- Client ----------------------------------------------------------------------------------

Client::Client(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Client::~Client() = default;

Result<std::unique_ptr<Client>> Client::create(std::string_view registry, ClientOptions opts) {
  if (registry.empty() || registry.find_first_of("/?#@ \r\n") != std::string_view::npos) {
    return failf(Errc::InvalidArgument, "registry {}: not a host[:port]", quote(registry));
  }
  KISTE_ASSIGN_OR_RETURN(auto tls, tls_config(registry, opts));
  bool fall_back = opts.tls_verify == false || (!opts.tls_verify && is_loopback(registry));
  bool http_first = !opts.tls_verify && is_loopback(registry);
  auto impl =
      std::make_unique<Impl>(std::string(registry), std::move(opts), std::move(tls), fall_back);
  impl->http_first = http_first;
  return std::unique_ptr<Client>(new Client(std::move(impl)));
}

const std::string& Client::registry() const { return impl_->registry; }

std::string Client::base_url() {
  std::lock_guard l(impl_->base_mu);
  return impl_->base;
}

ClientStats Client::stats() const {
  const auto& s = impl_->stats;
  return ClientStats{.requests = s.requests,
                     .blob_bytes_uploaded = s.up,
                     .blob_bytes_downloaded = s.down,
                     .blob_uploads = s.uploads,
                     .mounts = s.mounts,
                     .retries = s.retries,
                     .token_fetches = s.tokens};
}

Status Client::ping() {
  auto t =
      impl_->send({.target = "/v2/", .what = fmt::format("ping registry `{}`", registry())}, {200});
  KISTE_TRY(t);
  return {};
}

Result<image::ManifestBlob> Client::get_manifest(std::string_view repo,
                                                 std::string_view reference) {
  std::string what = fmt::format(
      "get manifest `{}/{}{}{}`", registry(), repo,
      reference.starts_with("sha") && reference.find(':') != std::string_view::npos ? "@" : ":",
      reference);
  std::optional<image::Digest> want;
  if (reference.find(':') != std::string_view::npos) {
    KISTE_ASSIGN_OR_RETURN(want, with_context(image::Digest::parse(reference), what));
  } else if (!image::is_valid_tag(reference)) {
    return failf(Errc::InvalidArgument, "{}: invalid tag", what);
  }
  KISTE_ASSIGN_OR_RETURN(auto t,
                         impl_->send({.target = fmt::format("/v2/{}/manifests/{}", repo, reference),
                                      .headers = {std::string(kAcceptManifests)},
                                      .scopes = {repository_scope(repo, false)},
                                      .what = what},
                                     {200}));
  size_t max = impl_->opts.max_manifest_bytes;
  if (auto cl = t->head().header("content-length")) {
    if (std::strtoull(cl->c_str(), nullptr, 10) > max) {
      return failf(Errc::Corrupt, "{}: manifest of {} bytes exceeds the {} byte limit", what, *cl,
                   max);
    }
  }
  KISTE_ASSIGN_OR_RETURN(std::string bytes, t->read_all(max, what));
  std::string ctype = declared_type(t->head());
  auto header_digest = t->head().header("docker-content-digest");
  t.reset();
  KISTE_ASSIGN_OR_RETURN(image::ManifestBlob m,
                         with_context(image::parse_manifest(std::move(bytes), ctype), what));
  if (want) {
    image::Digest got = want->algorithm() == m.digest.algorithm()
                            ? m.digest
                            : image::Digest::of(m.bytes, want->algorithm());
    if (got != *want) {
      return failf(Errc::Corrupt, "{}: content has digest {}", what, got);
    }
  } else if (header_digest) {
    KISTE_ASSIGN_OR_RETURN(image::Digest hd, with_context(image::Digest::parse(*header_digest),
                                                          what + ": Docker-Content-Digest"));
    if (hd.algorithm() == m.digest.algorithm() && hd != m.digest) {
      return failf(Errc::Corrupt, "{}: registry says {} but the content has digest {}", what, hd,
                   m.digest);
    }
  }
  return m;
}

Result<std::optional<image::Descriptor>> Client::try_head_manifest(std::string_view repo,
                                                                   std::string_view reference) {
  std::string what = fmt::format("head manifest `{}/{}` `{}`", registry(), repo, reference);
  if (reference.find(':') != std::string_view::npos) {
    KISTE_TRY(with_context(image::Digest::parse(reference), what));
  } else if (!image::is_valid_tag(reference)) {
    return failf(Errc::InvalidArgument, "{}: invalid tag", what);
  }
  auto t = impl_->send({.method = "HEAD",
                        .target = fmt::format("/v2/{}/manifests/{}", repo, reference),
                        .headers = {std::string(kAcceptManifests)},
                        .scopes = {repository_scope(repo, false)},
                        .what = what},
                       {200});
  if (!t) {
    if (is_not_found(t.error())) return std::nullopt;
    return std::unexpected(std::move(t).error());
  }
  auto dcd = (*t)->head().header("docker-content-digest");
  auto cl = (*t)->head().header("content-length");
  std::string ctype = declared_type((*t)->head());
  t->reset();
  if (!dcd || !cl) {
    KISTE_ASSIGN_OR_RETURN(auto m, get_manifest(repo, reference));
    return m.descriptor();
  }
  KISTE_ASSIGN_OR_RETURN(
      image::Digest d, with_context(image::Digest::parse(*dcd), what + ": Docker-Content-Digest"));
  image::Descriptor desc{.media_type = ctype,
                         .digest = d,
                         .size = static_cast<int64_t>(std::strtoll(cl->c_str(), nullptr, 10))};
  return desc;
}

Result<image::Digest> Client::put_manifest(std::string_view repo, std::string_view reference,
                                           const image::ManifestBlob& m) {
  std::string what = fmt::format("put manifest `{}/{}` `{}`", registry(), repo, reference);
  if (reference.find(':') == std::string_view::npos && !image::is_valid_tag(reference)) {
    return failf(Errc::InvalidArgument, "{}: invalid tag", what);
  }
  KISTE_ASSIGN_OR_RETURN(auto t,
                         impl_->send({.method = "PUT",
                                      .target = fmt::format("/v2/{}/manifests/{}", repo, reference),
                                      .headers = {"Content-Type: " + m.media_type},
                                      .body = m.bytes,
                                      .scopes = {repository_scope(repo, true)},
                                      .what = what},
                                     {200, 201}));
  if (auto dcd = t->head().header("docker-content-digest")) {
    KISTE_ASSIGN_OR_RETURN(image::Digest d, with_context(image::Digest::parse(*dcd), what));
    if (d.algorithm() == m.digest.algorithm() && d != m.digest) {
      return failf(Errc::Corrupt, "{}: registry stored {} instead of {}", what, d, m.digest);
    }
  }
  return m.digest;
}

Status Client::delete_manifest(std::string_view repo, const image::Digest& d) {
  std::string what = fmt::format("delete manifest `{}/{}@{}`", registry(), repo, d);
  KISTE_TRY(impl_->send({.method = "DELETE",
                         .target = fmt::format("/v2/{}/manifests/{}", repo, d.str()),
                         .scopes = {repository_scope(repo, true)},
                         .what = what},
                        {200, 202}));
  return {};
}

Result<bool> Client::has_blob(std::string_view repo, const image::Descriptor& d) {
  std::string what = fmt::format("head blob {} in `{}/{}`", d.digest, registry(), repo);
  auto t = impl_->send({.method = "HEAD",
                        .target = fmt::format("/v2/{}/blobs/{}", repo, d.digest.str()),
                        .scopes = {repository_scope(repo, false)},
                        .what = what},
                       {200});
  if (!t) {
    if (is_not_found(t.error())) return false;
    return std::unexpected(std::move(t).error());
  }
  if (auto cl = (*t)->head().header("content-length")) {
    if (std::strtoll(cl->c_str(), nullptr, 10) != d.size) {
      return failf(Errc::Corrupt, "{}: registry has {} bytes, descriptor says {}", what, *cl,
                   d.size);
    }
  }
  return true;
}

Result<std::unique_ptr<image::BlobReader>> Client::open_blob(std::string_view repo,
                                                             const image::Descriptor& d,
                                                             uint64_t offset) {
  return open_remote_blob(*impl_, std::string(repo), d, offset);
}

Status Client::upload_blob(std::string_view repo, const image::Descriptor& d,
                           image::BlobReader& r) {
  std::string what = fmt::format("upload blob {} to `{}/{}`", d.digest, registry(), repo);
  KISTE_ASSIGN_OR_RETURN(auto start,
                         impl_->send({.method = "POST",
                                      .target = fmt::format("/v2/{}/blobs/uploads/", repo),
                                      .scopes = {repository_scope(repo, true)},
                                      .what = what},
                                     {202}));
  auto loc = start->head().header("location");
  auto min_chunk = start->head().header("oci-chunk-min-length");
  start.reset();
  auto valid_location = [](const std::optional<std::string>& l) {
    return l && (l->starts_with("/") || l->starts_with("http://") || l->starts_with("https://"));
  };
  if (!valid_location(loc)) return failf(Errc::Registry, "{}: no valid upload location", what);
  size_t chunk = impl_->opts.upload_chunk_bytes;
  if (min_chunk) {
    size_t m = std::strtoull(min_chunk->c_str(), nullptr, 10);
    if (m > 0) chunk = std::max({chunk, m, size_t{8} << 20});
  }
  // Counts what is actually sent.
  struct Counting final : image::BlobReader {
    image::BlobReader& in;
    uint64_t n = 0;
    explicit Counting(image::BlobReader& i) : in(i) {}
    Result<size_t> read(void* b, size_t l) override {
      auto k = in.read(b, l);
      if (k) n += *k;
      return k;
    }
  } counting(r);
  auto with_digest = [&](const std::string& l) {
    return l + (l.find('?') == std::string::npos ? "?" : "&") +
           "digest=" + detail::url_escape(d.digest.str());
  };
  Result<std::unique_ptr<detail::Transfer>> put = std::unique_ptr<detail::Transfer>();
  if (chunk == 0 || d.size <= static_cast<int64_t>(chunk)) {
    put = impl_->send({.method = "PUT",
                       .target = with_digest(*loc),
                       .headers = {"Content-Type: application/octet-stream"},
                       .upload = &counting,
                       .upload_size = d.size,
                       .scopes = {repository_scope(repo, true)},
                       .what = what},
                      {201});
  } else {
    // Chunked: each PATCH streams the next `chunk` bytes straight from the reader.
    struct Window final : image::BlobReader {
      image::BlobReader& in;
      uint64_t left;
      Window(image::BlobReader& i, uint64_t n) : in(i), left(n) {}
      Result<size_t> read(void* b, size_t l) override {
        if (left == 0) return 0;
        auto k = in.read(b, std::min<uint64_t>(l, left));
        if (k) left -= *k;
        return k;
      }
    };
    uint64_t size = static_cast<uint64_t>(d.size);
    for (uint64_t off = 0; off < size;) {
      uint64_t n = std::min<uint64_t>(chunk, size - off);
      Window w(counting, n);
      auto p = impl_->send({.method = "PATCH",
                            .target = *loc,
                            .headers = {"Content-Type: application/octet-stream",
                                        fmt::format("Content-Range: {}-{}", off, off + n - 1)},
                            .upload = &w,
                            .upload_size = static_cast<int64_t>(n),
                            .scopes = {repository_scope(repo, true)},
                            .what = what},
                           {202});
      if (!p) {
        impl_->stats.up += counting.n;
        return std::unexpected(std::move(p).error());
      }
      loc = (*p)->head().header("location");
      if (!valid_location(loc)) return failf(Errc::Registry, "{}: no valid upload location", what);
      off += n;
    }
    put = impl_->send({.method = "PUT",
                       .target = with_digest(*loc),
                       .headers = {"Content-Type: application/octet-stream"},
                       .body = std::string(),
                       .scopes = {repository_scope(repo, true)},
                       .what = what},
                      {201});
  }
  impl_->stats.up += counting.n;
  KISTE_TRY(put);
  ++impl_->stats.uploads;
  if (auto dcd = (*put)->head().header("docker-content-digest")) {
    KISTE_ASSIGN_OR_RETURN(image::Digest got, with_context(image::Digest::parse(*dcd), what));
    if (got != d.digest) return failf(Errc::Corrupt, "{}: registry stored {}", what, got);
  }
  return {};
}

Result<bool> Client::mount_blob(std::string_view repo, const image::Digest& d,
                                std::string_view from_repo) {
  std::string what =
      fmt::format("mount blob {} from `{}` into `{}/{}`", d, from_repo, registry(), repo);
  KISTE_ASSIGN_OR_RETURN(
      auto t,
      impl_->send(
          {.method = "POST",
           .target = fmt::format("/v2/{}/blobs/uploads/?mount={}&from={}", repo,
                                 detail::url_escape(d.str()), detail::url_escape(from_repo)),
           .scopes = {repository_scope(repo, true), repository_scope(from_repo, false)},
           .what = what},
          {201, 202}));
  if (t->status() == 201) {
    ++impl_->stats.mounts;
    return true;
  }
  // 202: the registry started an upload instead; cancel it and let the caller upload.
  auto loc = t->head().header("location");
  t.reset();
  if (loc && (loc->starts_with("/") || loc->starts_with("http"))) {
    auto del = impl_->send({.method = "DELETE",
                            .target = *loc,
                            .scopes = {repository_scope(repo, true)},
                            .what = what + ": cancel upload"},
                           {204, 200, 202, 404});
    (void)del;
  }
  return false;
}

namespace {

template <class Validate>
Result<Client::NameList> paged_list(Client::Impl& impl, std::string target, std::string_view key,
                                    std::vector<std::string> scopes, const std::string& what,
                                    Validate valid) {
  constexpr size_t kExamples = 8;
  Client::NameList out;
  for (int page = 0; page < 10'000; ++page) {
    KISTE_ASSIGN_OR_RETURN(auto t,
                           impl.send({.target = target, .scopes = scopes, .what = what}, {200}));
    auto next = next_link(t->head());
    KISTE_ASSIGN_OR_RETURN(std::string body, t->read_all(16 << 20, what));
    t.reset();
    auto j = nlohmann::json::parse(body, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return failf(Errc::Registry, "{}: not JSON", what);
    if (j.contains(key) && !j[key].is_null()) {
      if (!j[key].is_array()) return failf(Errc::Registry, "{}: `{}` is not a list", what, key);
      for (const auto& v : j[key]) {
        if (!v.is_string() || !valid(v.get<std::string>())) {
          if (++out.skipped <= kExamples) {
            out.examples.push_back(v.is_string() ? v.get<std::string>().substr(0, 80)
                                                 : v.dump().substr(0, 80));
          }
          continue;
        }
        out.names.push_back(v.get<std::string>());
      }
    }
    if (!next) return out;
    if (!next->starts_with("/v2/") && !next->starts_with(impl.url_for("/v2/"))) {
      return failf(Errc::Registry, "{}: pagination link leaves the registry", what);
    }
    target = *next;
  }
  return failf(Errc::Registry, "{}: too many pages", what);
}

}  // namespace

Result<Client::NameList> Client::list_tags(std::string_view repo) {
  return paged_list(*impl_, fmt::format("/v2/{}/tags/list?n=1000", repo), "tags",
                    {repository_scope(repo, false)},
                    fmt::format("list tags of `{}/{}`", registry(), repo),
                    [](const std::string& t) { return image::is_valid_tag(t); });
}

Result<Client::NameList> Client::catalog() {
  return paged_list(*impl_, "/v2/_catalog?n=1000", "repositories", {"registry:catalog:*"},
                    fmt::format("list repositories of `{}`", registry()),
                    [](const std::string& r) { return image::is_valid_repository(r); });
}

Result<std::vector<std::string>> Client::tags_of(std::string_view repo, const image::Digest& d) {
  KISTE_ASSIGN_OR_RETURN(NameList all, list_tags(repo));
  std::vector<std::string> out;
  for (const auto& t : all.names) {
    KISTE_ASSIGN_OR_RETURN(auto h, try_head_manifest(repo, t));
    if (h && h->digest == d) out.push_back(t);
  }
  std::sort(out.begin(), out.end());
  return out;
}

Result<std::optional<image::ManifestBlob>> Client::try_referrers(std::string_view repo,
                                                                 const image::Digest& d) {
  std::string what = fmt::format("list referrers of {} in `{}/{}`", d, registry(), repo);
  auto t = impl_->send({.target = fmt::format("/v2/{}/referrers/{}", repo, d.str()),
                        .headers = {"Accept: application/vnd.oci.image.index.v1+json"},
                        .scopes = {repository_scope(repo, false)},
                        .what = what},
                       {200});
  if (!t) {
    const Error& e = t.error();
    if (e.http_status == 404 || e.http_status == 400 || e.http_status == 405) return std::nullopt;
    return std::unexpected(std::move(t).error());
  }
  KISTE_ASSIGN_OR_RETURN(std::string body, (*t)->read_all(impl_->opts.max_manifest_bytes, what));
  auto m = image::parse_manifest(std::move(body), mt::kOciIndex);
  if (!m || !m->is_index()) return std::nullopt;  // not a referrers API after all
  return std::optional<image::ManifestBlob>(std::move(*m));
}

}  // namespace kiste::registry
