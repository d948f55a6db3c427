#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <kiste/testing/registry_process.hpp>
#include <mutex>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <vector>

namespace kiste::testing {

namespace fs = std::filesystem;

namespace {

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void spit(const fs::path& p, std::string_view data) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << data;
}

std::string b64(std::string_view in, bool url) {
  static constexpr char kStd[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  static constexpr char kUrl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  const char* t = url ? kUrl : kStd;
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8) | uint8_t(in[i + 2]);
    out += {t[v >> 18], t[(v >> 12) & 63], t[(v >> 6) & 63], t[v & 63]};
  }
  size_t rest = in.size() - i;
  if (rest > 0) {
    uint32_t v = uint8_t(in[i]) << 16;
    if (rest == 2) v |= uint8_t(in[i + 1]) << 8;
    out += t[v >> 18];
    out += t[(v >> 12) & 63];
    if (rest == 2) out += t[(v >> 6) & 63];
    if (!url) out += rest == 2 ? "=" : "==";
  }
  return out;
}

std::string b64_decode(std::string_view in) {
  static constexpr std::string_view kStd =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    auto p = kStd.find(c);
    if (p == std::string_view::npos) continue;
    acc = (acc << 6) | uint32_t(p);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += char((acc >> bits) & 0xff);
    }
  }
  return out;
}

std::string url_decode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      out += char(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16));
      i += 2;
    } else if (s[i] == '+') {
      out += ' ';
    } else {
      out += s[i];
    }
  }
  return out;
}

std::string json_str(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

}  // namespace

int free_loopback_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  int port = ntohs(a.sin_port);
  ::close(fd);
  return port;
}

// Docker token auth server: GET /token?service=S&scope=repository:NAME:ACTIONS (repeatable),
// Basic credentials checked; answers a JWT (RS256, x5c = the signing certificate, which is the
// registry's rootcertbundle) granting the requested scopes.
class TokenServer {
 public:
  TokenServer(std::string user, std::string password, std::string service, std::string issuer,
              const fs::path& key_pem, const fs::path& cert_der)
      : user_(std::move(user)),
        password_(std::move(password)),
        service_(std::move(service)),
        issuer_(std::move(issuer)),
        cert_der_(slurp(cert_der)) {
    FILE* f = std::fopen(key_pem.c_str(), "r");
    if (f != nullptr) {
      key_ = PEM_read_PrivateKey(f, nullptr, nullptr, nullptr);
      std::fclose(f);
    }
    listen_fd_ = listen_on_loopback(&port_);
    thread_ = std::thread([this] { serve(); });
  }
  ~TokenServer() {
    stop_ = true;
    ::shutdown(listen_fd_, SHUT_RDWR);
    thread_.join();
    ::close(listen_fd_);
    if (key_ != nullptr) EVP_PKEY_free(key_);
  }
  [[nodiscard]] bool ok() const { return key_ != nullptr && !cert_der_.empty() && port_ > 0; }
  [[nodiscard]] int port() const { return port_; }
  [[nodiscard]] int requests() const { return requests_; }
  [[nodiscard]] int refresh_grants() const { return refresh_grants_; }

 private:
  void serve() {
    while (!stop_) {
      pollfd p{.fd = listen_fd_, .events = POLLIN};
      if (::poll(&p, 1, 200) <= 0) continue;
      int c = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      handle(c);
      ::close(c);
    }
  }

  void handle(int c) {
    std::string req;
    char buf[4096];
    while (req.find("\r\n\r\n") == std::string::npos && req.size() < 65536) {
      pollfd p{.fd = c, .events = POLLIN};
      if (::poll(&p, 1, 5000) <= 0) return;
      ssize_t n = ::read(c, buf, sizeof buf);
      if (n <= 0) return;
      req.append(buf, size_t(n));
    }
    ++requests_;
    std::string line = req.substr(0, req.find("\r\n"));
    std::string method = line.substr(0, line.find(' '));
    std::string target = line.substr(line.find(' ') + 1);
    target = target.substr(0, target.find(' '));
    std::string auth;
    size_t content_length = 0;
    std::istringstream hs(req.substr(0, req.find("\r\n\r\n") + 2));
    std::string h;
    while (std::getline(hs, h)) {
      while (!h.empty() && h.back() == '\r') h.pop_back();
      if (h.size() > 14 && strncasecmp(h.c_str(), "authorization:", 14) == 0) {
        auth = h.substr(14);
        while (!auth.empty() && (auth.front() == ' ')) auth.erase(0, 1);
      } else if (h.size() > 15 && strncasecmp(h.c_str(), "content-length:", 15) == 0) {
        content_length = std::stoul(h.substr(15));
      }
    }
    // OAuth2 (POST, form body) or docker's GET (query); both as one parameter list.
    std::string body = req.substr(req.find("\r\n\r\n") + 4);
    while (method == "POST" && body.size() < content_length && body.size() < 65536) {
      pollfd p{.fd = c, .events = POLLIN};
      if (::poll(&p, 1, 5000) <= 0) return;
      ssize_t n = ::read(c, buf, sizeof buf);
      if (n <= 0) return;
      body.append(buf, size_t(n));
    }
    std::string params = method == "POST" ? body : std::string();
    if (method != "POST") {
      if (auto q = target.find('?'); q != std::string::npos) params = target.substr(q + 1);
    }
    std::vector<std::string> scopes;
    std::map<std::string, std::string> form;
    {
      std::stringstream qs(params);
      std::string kv;
      while (std::getline(qs, kv, '&')) {
        auto eq = kv.find('=');
        if (eq == std::string::npos) continue;
        std::string k = kv.substr(0, eq);
        std::string v = url_decode(kv.substr(eq + 1));
        if (k == "scope") {
          // A scope parameter may itself hold several space-separated scopes.
          std::stringstream ss(v);
          std::string s;
          while (ss >> s) scopes.push_back(s);
        } else {
          form[k] = v;
        }
      }
    }
    bool oauth = method == "POST";
    bool authed = false;
    bool offline = false;
    if (oauth && form["grant_type"] == "refresh_token") {
      std::lock_guard l(mu_);
      authed = refresh_tokens_.contains(form["refresh_token"]);
      if (authed) ++refresh_grants_;
    } else if (oauth && form["grant_type"] == "password") {
      authed = form["username"] == user_ && form["password"] == password_;
      offline = form["access_type"] == "offline";
    } else if (!oauth) {
      authed =
          auth.starts_with("Basic ") && b64_decode(auth.substr(6)) == user_ + ":" + password_;
      offline = form["offline_token"] == "true";
    }
    if (!authed) {
      reply(c, "401 Unauthorized", R"({"details":"bad credentials"})");
      return;
    }
    std::string access = "[";
    for (const auto& s : scopes) {
      auto first = s.find(':');
      auto last = s.rfind(':');
      if (first == std::string::npos || first == last) continue;
      std::string actions = "[";
      std::stringstream as(s.substr(last + 1));
      std::string a;
      while (std::getline(as, a, ',')) actions += (actions.size() > 1 ? "," : "") + json_str(a);
      actions += "]";
      access += (access.size() > 1 ? "," : "") +
                fmt_access(s.substr(0, first), s.substr(first + 1, last - first - 1), actions);
    }
    access += "]";
    auto now = std::chrono::duration_cast<std::chrono::seconds>(
                   std::chrono::system_clock::now().time_since_epoch())
                   .count();
    std::string header =
        "{\"typ\":\"JWT\",\"alg\":\"RS256\",\"x5c\":[" + json_str(b64(cert_der_, false)) + "]}";
    std::string claims =
        "{\"iss\":" + json_str(issuer_) + ",\"sub\":" + json_str(user_) +
        ",\"aud\":" + json_str(service_) + ",\"exp\":" + std::to_string(now + 600) +
        ",\"nbf\":" + std::to_string(now - 10) + ",\"iat\":" + std::to_string(now) + ",\"jti\":\"" +
        std::to_string(now) + "-" + std::to_string(requests_) + "\",\"access\":" + access + "}";
    std::string signing = b64(header, true) + "." + b64(claims, true);
    std::string sig = sign(signing);
    std::string jwt = signing + "." + b64(sig, true);
    std::string refresh;
    if (offline) {
      std::lock_guard l(mu_);
      refresh = "kiste-refresh-" + std::to_string(now) + "-" + std::to_string(requests_);
      refresh_tokens_.insert(refresh);
      refresh = ",\"refresh_token\":" + json_str(refresh);
    }
    reply(c, "200 OK",
          "{\"" + std::string(oauth ? "access_token" : "token") + "\":" + json_str(jwt) +
              ",\"expires_in\":600" + refresh + "}");
  }

  static std::string fmt_access(const std::string& type, const std::string& name,
                                const std::string& actions) {
    return "{\"type\":" + json_str(type) + ",\"name\":" + json_str(name) +
           ",\"actions\":" + actions + "}";
  }

  std::string sign(std::string_view data) {
    std::lock_guard l(mu_);
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    size_t len = 0;
    EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, key_);
    EVP_DigestSignUpdate(ctx, data.data(), data.size());
    EVP_DigestSignFinal(ctx, nullptr, &len);
    std::string sig(len, '\0');
    EVP_DigestSignFinal(ctx, reinterpret_cast<unsigned char*>(sig.data()), &len);
    sig.resize(len);
    EVP_MD_CTX_free(ctx);
    return sig;
  }

  static void reply(int c, std::string_view status, std::string_view body) {
    std::string r = "HTTP/1.1 " + std::string(status) +
                    "\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: " +
                    std::to_string(body.size()) + "\r\n\r\n" + std::string(body);
    size_t off = 0;
    while (off < r.size()) {
      ssize_t n = ::write(c, r.data() + off, r.size() - off);
      if (n <= 0) return;
      off += size_t(n);
    }
  }

  std::string user_, password_, service_, issuer_;
  std::string cert_der_;
  EVP_PKEY* key_ = nullptr;
  std::mutex mu_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> requests_{0};
  std::atomic<int> refresh_grants_{0};
  std::set<std::string> refresh_tokens_;  // handed out for offline access (guarded by mu_)
  std::thread thread_;
};

std::unique_ptr<RegistryProcess> RegistryProcess::start(const RegistryConfig& cfg,
                                                        std::string* why) {
  std::unique_ptr<RegistryProcess> r(new RegistryProcess());
  r->cfg_ = cfg;
  const fs::path& d = r->dir_.path();
  fs::create_directories(d / "storage");
  fs::create_directories(d / "certs");
  auto sh = [&](const std::string& cmd) {
    std::string out;
    if (run_shell(cmd, &out) != 0) {
      if (why != nullptr) *why = cmd + ": " + out;
      return false;
    }
    return true;
  };
  std::string dq = "'" + d.string() + "'";
  if (cfg.tls) {
    spit(d / "san.ext", "subjectAltName=DNS:localhost,IP:127.0.0.1\n");
    if (!sh("cd " + dq +
            " && openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key "
            "-out certs/ca.crt -days 2 -subj /CN=kiste-test-ca && "
            "openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr "
            "-subj /CN=localhost && openssl x509 -req -in server.csr -CA certs/ca.crt "
            "-CAkey ca.key -CAcreateserial -out server.crt -days 2 -extfile san.ext")) {
      return nullptr;
    }
  }
  r->port_ = free_loopback_port();
  std::string yml =
      "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: false\n"
      "storage:\n  filesystem:\n    rootdirectory: " +
      (d / "storage").string() +
      "\n  delete:\n    enabled: true\n  maintenance:\n    uploadpurging:\n"
      "      enabled: false\n"
      "http:\n  addr: " + cfg.address + ":" +
      std::to_string(r->port_) + "\n  secret: kiste-test-secret\n";
  if (cfg.tls) {
    yml += "  tls:\n    certificate: " + (d / "server.crt").string() +
           "\n    key: " + (d / "server.key").string() + "\n";
  }
  if (cfg.auth == RegistryAuth::Basic) {
    if (!sh("htpasswd -Bbn '" + cfg.username + "' '" + cfg.password + "' > " + dq + "/htpasswd")) {
      return nullptr;
    }
    yml +=
        "auth:\n  htpasswd:\n    realm: kiste-test\n    path: " + (d / "htpasswd").string() + "\n";
  } else if (cfg.auth == RegistryAuth::Token) {
    if (!sh("cd " + dq +
            " && openssl req -x509 -newkey rsa:2048 -nodes -keyout token.key "
            "-out token.crt -days 2 -subj /CN=kiste-token-signer && "
            "openssl x509 -in token.crt -outform DER -out token.der")) {
      return nullptr;
    }
    r->token_ =
        std::make_unique<TokenServer>(cfg.username, cfg.password, "kiste-test-registry",
                                      "kiste-test-issuer", d / "token.key", d / "token.der");
    if (!r->token_->ok()) {
      if (why != nullptr) *why = "token server did not start";
      return nullptr;
    }
    yml += "auth:\n  token:\n    realm: http://127.0.0.1:" + std::to_string(r->token_->port()) +
           "/token\n    service: kiste-test-registry\n    issuer: kiste-test-issuer\n"
           "    rootcertbundle: " +
           (d / "token.crt").string() + "\n";
  }
  spit(d / "config.yml", yml);

  int log_fd = ::open((d / "registry.log").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    ::dup2(log_fd, 1);
    ::dup2(log_fd, 2);
    std::string conf = (d / "config.yml").string();
    ::execl("/usr/bin/docker-registry", "docker-registry", "serve", conf.c_str(),
            static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::close(log_fd);
  if (pid < 0) {
    if (why != nullptr) *why = "fork failed";
    return nullptr;
  }
  r->pid_ = pid;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline) {
    int st = 0;
    if (::waitpid(pid, &st, WNOHANG) == pid) {
      r->pid_ = -1;
      if (why != nullptr) *why = "docker-registry exited: " + r->log();
      return nullptr;
    }
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    ::inet_pton(AF_INET, cfg.address.c_str(), &a.sin_addr);
    a.sin_port = htons(uint16_t(r->port_));
    int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::close(fd);
    if (rc == 0) return r;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (why != nullptr) *why = "docker-registry did not listen: " + r->log();
  return nullptr;
}

RegistryProcess::~RegistryProcess() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    int st = 0;
    while (::waitpid(pid_, &st, 0) < 0 && errno == EINTR) {
    }
  }
}

std::string RegistryProcess::log() const { return slurp(dir_.path() / "registry.log"); }

int RegistryProcess::count_requests(std::string_view needle) const {
  std::istringstream in(log());
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    // Access log lines: `IP - - [date] "METHOD /path HTTP/1.1" status ...`
    auto q = line.find('"');
    if (q == std::string::npos) continue;
    auto e = line.find('"', q + 1);
    if (e == std::string::npos) continue;
    if (line.substr(q + 1, e - q - 1).find(needle) != std::string::npos) ++n;
  }
  return n;
}

int RegistryProcess::token_requests() const { return token_ ? token_->requests() : 0; }

int RegistryProcess::token_refresh_grants() const { return token_ ? token_->refresh_grants() : 0; }

}  // namespace kiste::testing
