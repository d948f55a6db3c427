// AuthSession: the WWW-Authenticate challenge (learned from /v2/ and from every 401, so a
// per-repository challenge is honoured), Basic credentials, and Bearer tokens cached per scope.
#include <algorithm>
#include <kiste/base/log.hpp>
#include <kiste/registry/errors.hpp>
#include <nlohmann/json.hpp>

#include "client_impl.hpp"

namespace kiste::registry {

namespace {

constexpr std::string_view kB64 =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::string scope_key(const std::vector<std::string>& scopes) {
  std::vector<std::string> s = scopes;
  std::sort(s.begin(), s.end());
  std::string out;
  for (const auto& x : s) out += x + " ";
  return out;
}

}  // namespace

std::string base64_encode(std::string_view in) {
  std::string out;
  size_t i = 0;
  while (i + 2 < in.size()) {
    uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8) | uint8_t(in[i + 2]);
    out += kB64[v >> 18];
    out += kB64[(v >> 12) & 63];
    out += kB64[(v >> 6) & 63];
    out += kB64[v & 63];
    i += 3;
  }
  if (i + 1 == in.size()) {
    uint32_t v = uint8_t(in[i]) << 16;
    out += kB64[v >> 18];
    out += kB64[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == in.size()) {
    uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8);
    out += kB64[v >> 18];
    out += kB64[(v >> 12) & 63];
    out += kB64[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

Result<std::string> base64_decode(std::string_view in) {
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    if (c == '=' || c == '\n' || c == '\r') continue;
    auto p = kB64.find(c);
    if (p == std::string_view::npos) return fail(Errc::InvalidArgument, "invalid base64");
    acc = (acc << 6) | static_cast<uint32_t>(p);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  return out;
}

Result<std::optional<Credential>> Client::Impl::credential() {
  // Called with auth_mu held.
  if (!cred_loaded) {
    if (opts.keychain != nullptr) {
      KISTE_ASSIGN_OR_RETURN(cred, opts.keychain->get(registry));
    }
    cred_loaded = true;
  }
  return cred;
}

Status Client::Impl::learn_challenge(const detail::HttpHead& head) {
  auto hdr = head.header("www-authenticate");
  if (!hdr) {
    return failf(Errc::PermissionDenied, "registry `{}` answered 401 without a challenge",
                 registry);
  }
  KISTE_ASSIGN_OR_RETURN(auto challenges, with_context(parse_www_authenticate(*hdr),
                                                       fmt::format("registry `{}`", registry)));
  std::lock_guard l(auth_mu);
  for (const auto& c : challenges) {
    if (c.scheme == "bearer") {
      std::string realm = c.param("realm");
      if (!realm.starts_with("https://") && !realm.starts_with("http://")) {
        return failf(Errc::PermissionDenied, "registry `{}`: token realm is not an http(s) URL",
                     registry);
      }
      scheme = Scheme::Bearer;
      bearer = c;
      return {};
    }
  }
  for (const auto& c : challenges) {
    if (c.scheme == "basic") {
      scheme = Scheme::Basic;
      return {};
    }
  }
  return failf(Errc::Unsupported, "registry `{}`: unsupported authentication scheme `{}`", registry,
               challenges.front().scheme);
}

Result<Client::Impl::TokenReply> Client::Impl::fetch_token(
    const std::vector<std::string>& scopes_in, bool offline) {
  // Called with auth_mu held (token fetches are serialised: one per scope, then cached).
  KISTE_ASSIGN_OR_RETURN(auto c, credential());
  std::vector<std::string> scopes = scopes_in;
  if (scopes.empty() && !bearer.param("scope").empty()) scopes.push_back(bearer.param("scope"));
  std::string realm = bearer.param("realm");
  std::string query;
  auto add = [&](std::string_view k, std::string_view v) {
    query += query.empty() ? "" : "&";
    query += fmt::format("{}={}", k, detail::url_escape(v));
  };
  if (!bearer.param("service").empty()) add("service", bearer.param("service"));
  for (const auto& s : scopes) add("scope", s);

  detail::HttpRequest req;
  req.total_ms = opts.deadlines.small_body_ms;
  if (c && !c->identity_token.empty()) {
    // OAuth2 refresh-token grant (docker's identitytoken).
    req.method = "POST";
    req.url = realm;
    add("grant_type", "refresh_token");
    add("client_id", "kiste");
    add("refresh_token", c->identity_token);
    req.body = query;
    req.headers.push_back("Content-Type: application/x-www-form-urlencoded");
  } else {
    if (offline) {
      add("offline_token", "true");
      add("client_id", "kiste");
    }
    req.url = realm + (realm.find('?') == std::string::npos ? "?" : "&") + query;
    if (c && !c->username.empty()) {
      req.headers.push_back("Authorization: Basic " +
                            base64_encode(c->username + ":" + c->password));
    }
  }
  std::string what = fmt::format("get token from `{}`", detail::redact_url(realm));
  ++stats.tokens;
  std::unique_ptr<detail::Transfer> t;
  for (int attempt = 1;; ++attempt) {
    auto r = http.start(req);
    if (r && (*r)->status() == 200) {
      t = std::move(*r);
      break;
    }
    Error e = r ? registry_error(what, (*r)->status(), (*r)->error_body())
                : std::move(r).error().with_context(what);
    if (!is_retryable(e) || attempt >= opts.retry.attempts) return std::unexpected(e);
    backoff(attempt, std::nullopt, e);
  }
  KISTE_ASSIGN_OR_RETURN(std::string body, t->read_all(1 << 20, what));
  auto j = nlohmann::json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return failf(Errc::Registry, "{}: not JSON", what);
  TokenReply reply;
  for (const char* key : {"token", "access_token"}) {
    if (j.contains(key) && j[key].is_string() && !j[key].get<std::string>().empty()) {
      reply.token = j[key].get<std::string>();
      if (reply.token.find_first_of("\r\n") != std::string::npos) {
        return failf(Errc::Registry, "{}: token contains a line break", what);
      }
      break;
    }
  }
  if (reply.token.empty()) return failf(Errc::Registry, "{}: the response has no token", what);
  if (offline && j.contains("refresh_token") && j["refresh_token"].is_string()) {
    reply.refresh_token = j["refresh_token"].get<std::string>();
  }
  return reply;
}

Result<std::string> Client::Impl::authorization(const std::vector<std::string>& scopes) {
  std::lock_guard l(auth_mu);
  switch (scheme) {
    case Scheme::None:
      return std::string();
    case Scheme::Basic: {
      KISTE_ASSIGN_OR_RETURN(auto c, credential());
      if (!c || c->username.empty()) return std::string();
      return "Authorization: Basic " + base64_encode(c->username + ":" + c->password);
    }
    case Scheme::Bearer: {
      std::string key = scope_key(scopes);
      auto it = tokens.find(key);
      if (it == tokens.end()) {
        KISTE_ASSIGN_OR_RETURN(TokenReply tok, fetch_token(scopes));
        it = tokens.emplace(key, std::move(tok.token)).first;
      }
      return "Authorization: Bearer " + it->second;
    }
  }
  return std::string();
}

Status Client::Impl::on_unauthorized(const detail::HttpHead& head,
                                     const std::vector<std::string>& scopes) {
  KISTE_TRY(learn_challenge(head));
  std::lock_guard l(auth_mu);
  if (scheme == Scheme::Bearer) {
    tokens.erase(scope_key(scopes));
    log::debug("registry {}: refreshing token", registry);
  } else if (scheme == Scheme::Basic) {
    KISTE_ASSIGN_OR_RETURN(auto c, credential());
    if (!c) {
      return failf(Errc::PermissionDenied, "registry `{}` requires a login (kiste login {})",
                   registry, registry);
    }
  }
  return {};
}

Result<std::optional<std::string>> Client::login() {
  KISTE_TRY(impl_->ensure_base());
  {
    std::lock_guard l(impl_->auth_mu);
    if (impl_->scheme == Impl::Scheme::Bearer) {
      KISTE_ASSIGN_OR_RETURN(auto c, impl_->credential());
      if (c && !c->username.empty() && c->identity_token.empty()) {
        // Docker's login: the password buys a refresh token for offline use when the token
        // server offers one; that is what gets stored instead of the password.
        KISTE_ASSIGN_OR_RETURN(Impl::TokenReply reply,
                               with_context(impl_->fetch_token({}, true),
                                            fmt::format("login to `{}`", registry())));
        impl_->tokens[scope_key({})] = reply.token;
        if (!reply.refresh_token.empty()) {
          if (reply.refresh_token.find_first_of("\r\n") != std::string::npos) {
            return failf(Errc::Registry, "login to `{}`: refresh token contains a line break",
                         registry());
          }
          return std::optional<std::string>(std::move(reply.refresh_token));
        }
      }
    }
  }
  KISTE_TRY(with_context(ping(), fmt::format("login to `{}`", registry())));
  return std::optional<std::string>();
}

}  // namespace kiste::registry
