#include "http.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <type_traits>

#include <kiste/base/interrupt.hpp>

#include "curl_api.hpp"
#include "curl_handles.hpp"

namespace kiste::registry::detail {

namespace {

// Receive buffer high-water mark: above it the transfer is paused until the reader catches up,
// so a slow sink never makes a blob pile up in memory.
constexpr size_t kHighWater = 128 * 1024;
constexpr size_t kMaxErrorBody = 64 * 1024;

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n')) {
    s.remove_suffix(1);
  }
  return s;
}

}  // namespace

std::optional<std::string> HttpHead::header(std::string_view name) const {
  std::string n = lower(name);
  for (const auto& [k, v] : headers) {
    if (k == n) return v;
  }
  return std::nullopt;
}

std::string redact_url(std::string_view url) {
  auto q = url.find('?');
  return std::string(url.substr(0, q));
}

std::string url_escape(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += fmt::format("%{:02X}", c);
    }
  }
  return out;
}

// One pooled connection: an easy handle permanently attached to its own multi handle, so the
// multi's connection cache keeps the TCP/TLS connection alive between requests.
class Connection {
 public:
  Connection() : easy_(curl().easy_init()), multi_(curl().multi_init()) {
    KISTE_CHECK(easy_ && multi_);
  }

  Status begin(const HttpRequest& in, const TlsConfig& tls, const std::string& ua,
               const Deadlines& deadlines) {
    reset_state();
    deadlines_ = deadlines;
    const auto now = Clock::now();
    headers_by_ = now + std::chrono::milliseconds(deadlines.headers_ms);
    done_by_ = in.total_ms > 0 ? std::optional(now + std::chrono::milliseconds(in.total_ms))
                               : std::nullopt;
    // The transfer outlives the caller's request object (the body is read later), so keep a
    // copy: curl's URL, headers and POST body point into it.
    req_store_ = in;
    req_ = &req_store_;
    const HttpRequest& req = req_store_;
    CURL* h = easy_.get();
    curl().easy_reset(h);
    errbuf_[0] = '\0';
    curl().easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf_);
    curl().easy_setopt(h, CURLOPT_URL, req.url.c_str());
    curl().easy_setopt(h, CURLOPT_USERAGENT, ua.c_str());
    curl().easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl().easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    curl().easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 30'000L);
    // A stalled transfer (under 1 byte/s for 60 s) fails and is retried or resumed.
    curl().easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, static_cast<long>(deadlines.min_rate));
    curl().easy_setopt(h, CURLOPT_LOW_SPEED_TIME, static_cast<long>(deadlines.rate_window_s));
    curl().easy_setopt(h, CURLOPT_BUFFERSIZE, 128L * 1024);
    curl().easy_setopt(h, CURLOPT_HTTP_VERSION, CURL_HTTP_VERSION_2TLS);
    curl().easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl().easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl().easy_setopt(h, CURLOPT_FOLLOWLOCATION, req.follow_redirects ? 1L : 0L);
    curl().easy_setopt(h, CURLOPT_MAXREDIRS, 10L);
    // Credentials are only ever sent to the host they were meant for.
    curl().easy_setopt(h, CURLOPT_UNRESTRICTED_AUTH, 0L);
    curl().easy_setopt(h, CURLOPT_SSL_VERIFYPEER, tls.verify ? 1L : 0L);
    curl().easy_setopt(h, CURLOPT_SSL_VERIFYHOST, tls.verify ? 2L : 0L);
    if (!tls.ca_pem.empty()) {
      ca_blob_ = curl_blob{.data = const_cast<char*>(tls.ca_pem.data()),
                           .len = tls.ca_pem.size(),
                           .flags = CURL_BLOB_NOCOPY};
      curl().easy_setopt(h, CURLOPT_CAINFO_BLOB, &ca_blob_);
    }
    if (!tls.client_cert.empty()) curl().easy_setopt(h, CURLOPT_SSLCERT, tls.client_cert.c_str());
    if (!tls.client_key.empty()) curl().easy_setopt(h, CURLOPT_SSLKEY, tls.client_key.c_str());

    curl_slist* list = nullptr;
    for (const auto& hd : req.headers) list = curl().slist_append(list, hd.c_str());
    list = curl().slist_append(list, "Expect:");  // no 100-continue round trip
    headers_.reset(list);
    curl().easy_setopt(h, CURLOPT_HTTPHEADER, list);

    curl().easy_setopt(h, CURLOPT_HEADERFUNCTION, &Connection::on_header);
    curl().easy_setopt(h, CURLOPT_HEADERDATA, this);
    curl().easy_setopt(h, CURLOPT_WRITEFUNCTION, &Connection::on_write);
    curl().easy_setopt(h, CURLOPT_WRITEDATA, this);

    if (req.method == "HEAD") {
      curl().easy_setopt(h, CURLOPT_NOBODY, 1L);
    } else if (req.upload != nullptr || (req.body && req.method == "PUT")) {
      curl().easy_setopt(h, CURLOPT_UPLOAD, 1L);
      curl().easy_setopt(h, CURLOPT_READFUNCTION, &Connection::on_read);
      curl().easy_setopt(h, CURLOPT_READDATA, this);
      int64_t size =
          req.upload != nullptr ? req.upload_size : static_cast<int64_t>(req.body->size());
      curl().easy_setopt(h, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(size));
      if (req.method != "PUT") curl().easy_setopt(h, CURLOPT_CUSTOMREQUEST, req.method.c_str());
    } else if (req.body) {
      curl().easy_setopt(h, CURLOPT_POSTFIELDS, req.body->data());
      curl().easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(req.body->size()));
      if (req.method != "POST") curl().easy_setopt(h, CURLOPT_CUSTOMREQUEST, req.method.c_str());
    } else if (req.method == "POST") {
      curl().easy_setopt(h, CURLOPT_POST, 1L);
      curl().easy_setopt(h, CURLOPT_POSTFIELDSIZE, 0L);
    } else if (req.method != "GET") {
      curl().easy_setopt(h, CURLOPT_CUSTOMREQUEST, req.method.c_str());
    }
    if (curl().multi_add_handle(multi_.get(), h) != CURLM_OK) {
      return failf(Errc::System, "{} {}: curl_multi_add_handle failed", req.method,
                   redact_url(req.url));
    }
    attached_ = true;
    return {};
  }

  // Drives the transfer until the final response headers are in (or it ended).
  Status wait_headers() {
    KISTE_TRY(drive([this] { return headers_done_; }));
    if (!headers_done_) {
      KISTE_TRY(transfer_error());
      // Ended without a header block we recognised (HTTP/0.9 or similar).
      return failf(Errc::Unavailable, "{} {}: no response", req_->method, redact_url(req_->url));
    }
    return {};
  }

  // Fills `out` as far as the transfer allows before returning (so a 1 MiB read gets 1 MiB and
  // the store writes it straight through); the write callback copies into `out` directly and
  // only the overflow of one curl chunk is buffered.
  Result<size_t> read(void* out, size_t len) {
    target_ = static_cast<char*>(out);
    target_len_ = len;
    target_pos_ = 0;
    size_t from_buf = std::min(len, buf_.size() - pos_);
    std::memcpy(target_, buf_.data() + pos_, from_buf);
    pos_ += from_buf;
    target_pos_ = from_buf;
    if (pos_ == buf_.size()) {
      buf_.clear();
      pos_ = 0;
    }
    Status st;
    if (target_pos_ < target_len_ && !done_) {
      if (paused_) {
        paused_ = false;
        curl().easy_pause(easy_.get(), CURLPAUSE_CONT);
      }
      st = drive([this] { return target_pos_ == target_len_; });
    }
    size_t n = target_pos_;
    target_ = nullptr;
    target_len_ = target_pos_ = 0;
    if (!st) return std::unexpected(std::move(st).error());
    if (n == 0 && done_) KISTE_TRY(transfer_error());
    return n;
  }

  void finish() {
    if (attached_) {
      curl().multi_remove_handle(multi_.get(), easy_.get());
      attached_ = false;
    }
    req_ = nullptr;
    req_store_ = HttpRequest{};  // an idle connection holds no request body
  }

  // A connection whose transfer did not end cleanly is not reused.
  [[nodiscard]] bool reusable() const { return done_ && result_ == CURLE_OK; }

  HttpHead head;

 private:
  void reset_state() {
    head = HttpHead{};
    header_status_ = 0;
    headers_done_ = false;
    done_ = false;
    paused_ = false;
    result_ = CURLE_OK;
    buf_.clear();
    pos_ = 0;
    upload_pos_ = 0;
    upload_error_.reset();
  }

  template <class Pred>
  Status drive(Pred pred) {
    while (!pred() && !done_) {
      int running = 0;
      CURLMcode mc = curl().multi_perform(multi_.get(), &running);
      if (mc != CURLM_OK) {
        return failf(Errc::System, "{} {}: {}", req_->method, redact_url(req_->url),
                     curl().multi_strerror(mc));
      }
      int queued = 0;
      while (CURLMsg* m = curl().multi_info_read(multi_.get(), &queued)) {
        if (m->msg == CURLMSG_DONE && m->easy_handle == easy_.get()) {
          done_ = true;
          result_ = m->data.result;
        }
      }
      if (pred() || done_) break;
      KISTE_TRY(check_deadlines());
      KISTE_TRY(check_interrupted());  // Ctrl-C while the registry is slow or silent
      int numfds = 0;
      mc = curl().multi_poll(multi_.get(), nullptr, 0, 1000, &numfds);
      if (mc != CURLM_OK) {
        return failf(Errc::System, "{} {}: {}", req_->method, redact_url(req_->url),
                     curl().multi_strerror(mc));
      }
    }
    return {};
  }

  // A registry too slow for the configured deadlines: one line naming the request (its URL names
  // the registry), what was late, and the setting. Not retried: a registry that trickles once
  // trickles again.
  Status check_deadlines() const {
    const auto now = Clock::now();
    if (!headers_done_ && now > headers_by_) {
      return failf(Errc::Registry,
                   "{} {}: the registry sent no complete response headers within {:g} s "
                   "(KISTE_REGISTRY_HEADERS_TIMEOUT)",
                   req_->method, redact_url(req_->url), deadlines_.headers_ms / 1000.0);
    }
    if (done_by_ && now > *done_by_) {
      return failf(Errc::Registry,
                   "{} {}: the registry did not finish the response within {:g} s "
                   "(KISTE_REGISTRY_REQUEST_TIMEOUT)",
                   req_->method, redact_url(req_->url), req_->total_ms / 1000.0);
    }
    return {};
  }

  Status transfer_error() {
    if (result_ == CURLE_OK) return {};
    if (upload_error_) return std::unexpected(*upload_error_);
    std::string detail = errbuf_[0] != '\0' ? std::string(errbuf_) : curl().easy_strerror(result_);
    while (!detail.empty() && detail.back() == '\n') detail.pop_back();
    Errc code = Errc::Unavailable;
    switch (result_) {
      case CURLE_PEER_FAILED_VERIFICATION:
      case CURLE_SSL_CERTPROBLEM:
      case CURLE_SSL_CACERT_BADFILE:
      case CURLE_UNSUPPORTED_PROTOCOL:
      case CURLE_URL_MALFORMAT:
      case CURLE_TOO_MANY_REDIRECTS:
        code = Errc::PermissionDenied;
        if (result_ == CURLE_URL_MALFORMAT || result_ == CURLE_UNSUPPORTED_PROTOCOL ||
            result_ == CURLE_TOO_MANY_REDIRECTS) {
          code = Errc::InvalidArgument;
        }
        break;
      case CURLE_OPERATION_TIMEDOUT:
        if (detail.find("too slow") != std::string::npos) {
          return failf(Errc::Registry,
                       "{} {}: the registry sent less than {} bytes/s for {} s "
                       "(KISTE_REGISTRY_MIN_RATE, KISTE_REGISTRY_RATE_WINDOW)",
                       req_->method, redact_url(req_->url), deadlines_.min_rate,
                       deadlines_.rate_window_s);
        }
        break;
      case CURLE_SSL_CONNECT_ERROR:
        // A plain-HTTP server answering the TLS handshake: an answer, not worth a retry.
        if (detail.find("wrong version number") != std::string::npos) {
          code = Errc::Unsupported;
          detail += " (the server does not speak TLS; plain HTTP needs --tls-verify=false or an "
                    "insecure registry in registries.conf)";
        }
        break;
      default:
        break;
    }
    // The connect's own errno (ECONNREFUSED: nothing listens there), for callers that decide
    // whether a retry can help.
    long os_errno = 0;
    if (result_ == CURLE_COULDNT_CONNECT) {
      curl().easy_getinfo(easy_.get(), CURLINFO_OS_ERRNO, &os_errno);
    }
    return std::unexpected(
        Error{.code = code,
              .message = fmt::format("{} {}: {}", req_->method, redact_url(req_->url), detail),
              .sys_errno = static_cast<int>(os_errno)});
  }

  static size_t on_header(char* data, size_t size, size_t n, void* self_) {
    auto* self = static_cast<Connection*>(self_);
    std::string_view line(data, size * n);
    if (line.starts_with("HTTP/")) {
      self->head.headers.clear();
      auto sp = line.find(' ');
      self->header_status_ = sp == std::string_view::npos ? 0 : std::atoi(line.data() + sp + 1);
      return size * n;
    }
    std::string_view t = trim(line);
    if (t.empty()) {
      int st = self->header_status_;
      bool redirect = st >= 300 && st < 400 && self->req_->follow_redirects &&
                      self->head.header("location").has_value();
      if (st >= 200 && !redirect) {
        self->head.status = st;
        self->headers_done_ = true;
      }
      return size * n;
    }
    auto colon = t.find(':');
    if (colon != std::string_view::npos) {
      self->head.headers.emplace_back(lower(trim(t.substr(0, colon))),
                                      std::string(trim(t.substr(colon + 1))));
    }
    return size * n;
  }

  static size_t on_write(char* data, size_t size, size_t n, void* self_) {
    auto* self = static_cast<Connection*>(self_);
    size_t len = size * n;
    size_t used = 0;
    if (self->target_ != nullptr && self->target_pos_ < self->target_len_) {
      used = std::min(len, self->target_len_ - self->target_pos_);
      std::memcpy(self->target_ + self->target_pos_, data, used);
      self->target_pos_ += used;
    }
    if (used == len) return len;
    if (self->buf_.size() - self->pos_ >= kHighWater) {
      if (used > 0) {
        // Keep the rest (at most one curl chunk) rather than pausing mid-chunk.
        self->buf_.append(data + used, len - used);
        return len;
      }
      self->paused_ = true;
      return CURL_WRITEFUNC_PAUSE;
    }
    self->buf_.append(data + used, len - used);
    return len;
  }

  static size_t on_read(char* out, size_t size, size_t n, void* self_) {
    auto* self = static_cast<Connection*>(self_);
    size_t len = size * n;
    const HttpRequest& req = *self->req_;
    if (req.upload == nullptr) {
      size_t m = std::min(len, req.body->size() - self->upload_pos_);
      std::memcpy(out, req.body->data() + self->upload_pos_, m);
      self->upload_pos_ += m;
      return m;
    }
    auto r = req.upload->read(out, len);
    if (!r) {
      self->upload_error_ = std::move(r).error();
      return CURL_READFUNC_ABORT;
    }
    self->upload_pos_ += *r;
    return *r;
  }

  using Clock = std::chrono::steady_clock;
  Deadlines deadlines_;
  Clock::time_point headers_by_{};
  std::optional<Clock::time_point> done_by_;
  CurlEasy easy_;
  CurlMulti multi_;
  CurlSlist headers_;
  curl_blob ca_blob_{};
  char errbuf_[CURL_ERROR_SIZE] = {};
  HttpRequest req_store_;
  const HttpRequest* req_ = nullptr;
  bool attached_ = false;
  int header_status_ = 0;
  bool headers_done_ = false;
  bool done_ = false;
  bool paused_ = false;
  CURLcode result_ = CURLE_OK;
  std::string buf_;  // overflow beyond the reader's buffer (bounded by kHighWater + one chunk)
  size_t pos_ = 0;
  char* target_ = nullptr;  // the reader's buffer during read()
  size_t target_len_ = 0;
  size_t target_pos_ = 0;
  size_t upload_pos_ = 0;
  std::optional<Error> upload_error_;
};

Http::Http(TlsConfig tls, std::string user_agent, Deadlines deadlines)
    : tls_(std::move(tls)), user_agent_(std::move(user_agent)), deadlines_(deadlines) {}

Http::~Http() = default;

std::unique_ptr<Connection> Http::acquire() {
  std::lock_guard l(mu_);
  if (idle_.empty()) return std::make_unique<Connection>();
  auto c = std::move(idle_.back());
  idle_.pop_back();
  return c;
}

void Http::release(std::unique_ptr<Connection> c) {
  bool keep = c->reusable();
  c->finish();
  if (!keep) return;  // its multi handle (and the broken connection) goes away
  std::lock_guard l(mu_);
  if (idle_.size() < 16) idle_.push_back(std::move(c));
}

Result<std::unique_ptr<Transfer>> Http::start(const HttpRequest& req) {
  KISTE_TRY(load_curl());
  auto c = acquire();
  KISTE_TRY(c->begin(req, tls_, user_agent_, deadlines_));
  std::unique_ptr<Transfer> t(new Transfer(*this, std::move(c)));
  KISTE_TRY(t->c_->wait_headers());
  return t;
}

Transfer::Transfer(Http& http, std::unique_ptr<Connection> c) : http_(http), c_(std::move(c)) {}

Transfer::~Transfer() {
  if (c_) http_.release(std::move(c_));
}

const HttpHead& Transfer::head() const { return c_->head; }

Result<size_t> Transfer::read(void* buf, size_t len) { return c_->read(buf, len); }

Result<std::string> Transfer::read_all(size_t max, std::string_view what) {
  std::string out;
  char buf[64 * 1024];
  for (;;) {
    KISTE_ASSIGN_OR_RETURN(size_t n, read(buf, sizeof buf));
    if (n == 0) break;
    if (out.size() + n > max) return failf(Errc::Corrupt, "{}: larger than {} bytes", what, max);
    out.append(buf, n);
  }
  return out;
}

std::string Transfer::error_body() {
  auto r = read_all(kMaxErrorBody, "error body");
  return r ? *r : std::string();
}

}  // namespace kiste::registry::detail

namespace kiste::registry {

Result<Deadlines> Deadlines::from_env() {
  Deadlines d;
  auto read = [](const char* name, int64_t scale, auto& out) -> Status {
    const char* v = std::getenv(name);
    if (v == nullptr || *v == '\0') return {};
    char* end = nullptr;
    errno = 0;
    long long n = std::strtoll(v, &end, 10);
    if (errno != 0 || *end != '\0' || n <= 0 || n > 1'000'000'000LL / scale) {
      return failf(Errc::InvalidArgument, "{}={}: expected a positive whole number", name,
                   quote(v));
    }
    out = static_cast<std::remove_reference_t<decltype(out)>>(n * scale);
    return {};
  };
  KISTE_TRY(read("KISTE_REGISTRY_HEADERS_TIMEOUT", 1000, d.headers_ms));
  KISTE_TRY(read("KISTE_REGISTRY_REQUEST_TIMEOUT", 1000, d.small_body_ms));
  KISTE_TRY(read("KISTE_REGISTRY_MIN_RATE", 1, d.min_rate));
  KISTE_TRY(read("KISTE_REGISTRY_RATE_WINDOW", 1, d.rate_window_s));
  return d;
}

}  // namespace kiste::registry
