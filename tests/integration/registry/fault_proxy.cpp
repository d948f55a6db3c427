#include "fault_proxy.hpp"

#include <kiste/testing/temp_root.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <nlohmann/json.hpp>
#include <cstring>
#include <optional>
#include <sstream>

namespace kiste::testing {

namespace {

bool write_all(int fd, std::string_view d) {
  while (!d.empty()) {
    ssize_t n = ::send(fd, d.data(), d.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    d.remove_prefix(size_t(n));
  }
  return true;
}

// Reads until `pred(buf)` or EOF/timeout.
template <class Pred>
bool read_until(int fd, std::string& buf, Pred pred, int timeout_ms = 10'000,
                bool http_head = false) {
  char tmp[65536];
  while (!pred(buf)) {
    // Not HTTP (a TLS ClientHello starts with 0x16): hang up at once, as a real server would.
    if (http_head && !buf.empty() && !(buf[0] >= 'A' && buf[0] <= 'Z')) return false;
    pollfd p{.fd = fd, .events = POLLIN};
    if (::poll(&p, 1, timeout_ms) <= 0) return false;
    ssize_t n = ::read(fd, tmp, sizeof tmp);
    if (n <= 0) return false;
    buf.append(tmp, size_t(n));
  }
  return true;
}

}  // namespace

FaultProxy::FaultProxy(int upstream_port, Fault fault, int times, Target target)
    : upstream_port_(upstream_port), fault_(fault), target_(target), budget_(times) {
  listen_fd_ = listen_on_loopback(&port_);
  acceptor_ = std::thread([this] { serve(); });
}

FaultProxy::~FaultProxy() {
  stop_ = true;
  ::shutdown(listen_fd_, SHUT_RDWR);
  acceptor_.join();
  std::vector<std::thread> w;
  {
    std::lock_guard l(mu_);
    w.swap(workers_);
  }
  for (auto& t : w) t.join();
  ::close(listen_fd_);
}

void FaultProxy::serve() {
  while (!stop_) {
    pollfd p{.fd = listen_fd_, .events = POLLIN};
    if (::poll(&p, 1, 100) <= 0) continue;
    int c = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) continue;
    std::lock_guard l(mu_);
    workers_.emplace_back([this, c] {
      handle(c);
      ::close(c);
    });
  }
}

bool FaultProxy::take_fault() {
  if (fault_ == Fault::None) return false;
  int b = budget_.load();
  while (b != 0) {
    if (b < 0) return true;
    if (budget_.compare_exchange_weak(b, b - 1)) return true;
  }
  return false;
}

void FaultProxy::handle(int client) {
  std::string req;
  if (!read_until(
          client, req, [](const std::string& b) { return b.find("\r\n\r\n") != std::string::npos; },
          10'000, true)) {
    return;
  }
  size_t head_end = req.find("\r\n\r\n") + 4;
  std::string head = req.substr(0, head_end);
  std::string line = head.substr(0, head.find("\r\n"));
  std::string method = line.substr(0, line.find(' '));
  std::string target = line.substr(line.find(' ') + 1);
  target = target.substr(0, target.find(' '));
  size_t content_length = 0;
  std::string out_head = line + "\r\n";
  std::istringstream hs(head.substr(line.size() + 2));
  std::string h;
  while (std::getline(hs, h)) {
    if (!h.empty() && h.back() == '\r') h.pop_back();
    if (h.empty()) continue;
    if (strncasecmp(h.c_str(), "connection:", 11) == 0) continue;
    if (strncasecmp(h.c_str(), "content-length:", 15) == 0) {
      content_length = std::stoull(h.substr(15));
    }
    out_head += h + "\r\n";
  }
  out_head += "Connection: close\r\n\r\n";
  std::string body = req.substr(head_end);
  if (!read_until(client, body, [&](const std::string& b) { return b.size() >= content_length; })) {
    return;
  }

  bool blob_get = method == "GET" && target.find("/blobs/sha256:") != std::string::npos;
  bool blob_put = method == "PUT" && target.find("/blobs/uploads/") != std::string::npos;
  if (blob_get) ++blob_gets_;
  bool manifest_get = method == "GET" && target.find("/manifests/") != std::string::npos;
  bool matches = target_ == Target::Any          ? true
                 : target_ == Target::BlobGet    ? blob_get
                 : target_ == Target::BlobUpload ? blob_put
                                                 : manifest_get;
  bool fault = matches && take_fault();
  if (fault && fault_ == Fault::EndlessHeaders) {
    ++injected_;
    if (!write_all(client, "HTTP/1.1 200 OK\r\n")) return;
    for (int i = 0; !stop_; ++i) {
      if (!write_all(client, "X-Pad-" + std::to_string(i) + ": x\r\n")) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return;
  }
  if (fault && blob_put && fault_ == Fault::DropMidBlob) {
    ++injected_;
    return;  // the body was taken, no answer: the connection just closes
  }
  if (fault && (fault_ == Fault::Status500 || fault_ == Fault::Status429)) {
    ++injected_;
    std::string body429 =
        R"({"errors":[{"code":"TOOMANYREQUESTS","message":"slow down","detail":null}]})";
    std::string r = fault_ == Fault::Status500
                        ? std::string(
                              "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n"
                              "Connection: close\r\n\r\n")
                        : "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 1\r\n"
                          "Content-Type: application/json\r\nContent-Length: " +
                              std::to_string(body429.size()) + "\r\nConnection: close\r\n\r\n" +
                              body429;
    write_all(client, r);
    return;
  }

  if (method == "GET" && !referrers_storage_.empty()) {
    // /v2/<name>/referrers/<digest>
    std::string path = target.substr(0, target.find('?'));
    auto r = path.rfind("/referrers/");
    if (path.starts_with("/v2/") && r != std::string::npos && r > 4) {
      write_all(client, referrers_response(path.substr(4, r - 4), path.substr(r + 11)));
      return;
    }
  }
  std::string resp = upstream(out_head, body);
  size_t rh = resp.find("\r\n\r\n");
  if (rh == std::string::npos) return;
  rh += 4;
  bool ok_body = resp.starts_with("HTTP/1.1 200") && resp.size() > rh + 2;
  if (fault && ok_body) {
    ++injected_;
    switch (fault_) {
      case Fault::DropMidBlob:
        write_all(client, std::string_view(resp).substr(0, rh + (resp.size() - rh) / 2));
        return;  // connection closes mid-body
      case Fault::CorruptByte:
        resp[rh + (resp.size() - rh) / 2] ^= 0x01;
        break;
      case Fault::Trickle: {
        write_all(client, std::string_view(resp).substr(0, rh));
        for (size_t off = rh; off < resp.size() && !stop_; off += 2) {
          if (!write_all(client, std::string_view(resp).substr(off, 2))) return;
          std::this_thread::sleep_for(std::chrono::milliseconds(500));
        }
        return;
      }
      case Fault::Slow: {
        write_all(client, std::string_view(resp).substr(0, rh));
        for (size_t off = rh; off < resp.size() && !stop_; off += 64 * 1024) {
          if (!write_all(client, std::string_view(resp).substr(off, 64 * 1024))) return;
          std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        return;
      }
      default:
        break;
    }
  }
  write_all(client, resp);
}

std::string FaultProxy::upstream(std::string_view head, std::string_view body) {
  int up = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(uint16_t(upstream_port_));
  if (::connect(up, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(up);
    return {};
  }
  write_all(up, head);
  write_all(up, body);
  std::string resp;
  read_until(
      up, resp, [](const std::string&) { return false; }, 30'000);  // until EOF
  ::close(up);
  return resp;
}

std::string FaultProxy::referrers_response(const std::string& name, const std::string& digest) {
  ++referrers_answered_;
  namespace fs = std::filesystem;
  using nlohmann::json;
  json manifests = json::array();
  fs::path revisions = referrers_storage_ / "docker/registry/v2/repositories" / name /
                       "_manifests/revisions/sha256";
  std::error_code ec;
  std::vector<std::string> hexes;
  for (const auto& e : fs::directory_iterator(revisions, ec)) hexes.push_back(e.path().filename());
  std::sort(hexes.begin(), hexes.end());
  for (const auto& hex : hexes) {
    // The manifest as the registry serves it.
    std::string resp = upstream(
        "GET /v2/" + name + "/manifests/sha256:" + hex +
            " HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/vnd.oci.image.manifest.v1+json, "
            "application/vnd.oci.image.index.v1+json\r\nConnection: close\r\n\r\n",
        "");
    size_t rh = resp.find("\r\n\r\n");
    if (!resp.starts_with("HTTP/1.1 200") || rh == std::string::npos) continue;
    std::string bytes = resp.substr(rh + 4);
    json m = json::parse(bytes, nullptr, false);
    if (!m.is_object() || !m.contains("subject") || !m["subject"].is_object() ||
        m["subject"].value("digest", "") != digest) {
      continue;
    }
    json d = {{"mediaType", m.value("mediaType", "application/vnd.oci.image.manifest.v1+json")},
              {"digest", "sha256:" + hex},
              {"size", bytes.size()}};
    std::string type = m.value("artifactType", "");
    if (type.empty() && m.contains("config") && m["config"].is_object()) {
      type = m["config"].value("mediaType", "");
    }
    if (!type.empty()) d["artifactType"] = type;
    if (m.contains("annotations")) d["annotations"] = m["annotations"];
    manifests.push_back(d);
  }
  json index = {{"schemaVersion", 2},
                {"mediaType", "application/vnd.oci.image.index.v1+json"},
                {"manifests", manifests}};
  return ScriptedServer::response("200 OK",
                                  "Content-Type: application/vnd.oci.image.index.v1+json\r\n",
                                  index.dump());
}

ScriptedServer::ScriptedServer(std::map<std::string, std::string> responses)
    : responses_(std::move(responses)) {
  listen_fd_ = listen_on_loopback(&port_);
  thread_ = std::thread([this] { serve(); });
}

ScriptedServer::~ScriptedServer() {
  stop_ = true;
  ::shutdown(listen_fd_, SHUT_RDWR);
  thread_.join();
  ::close(listen_fd_);
}

std::string ScriptedServer::response(std::string_view status, std::string_view headers,
                                     std::string_view body) {
  return "HTTP/1.1 " + std::string(status) + "\r\n" + std::string(headers) +
         "Content-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" +
         std::string(body);
}

void ScriptedServer::serve() {
  while (!stop_) {
    pollfd p{.fd = listen_fd_, .events = POLLIN};
    if (::poll(&p, 1, 100) <= 0) continue;
    int c = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) continue;
    std::string req;
    if (read_until(
            c, req, [](const std::string& b) { return b.find("\r\n\r\n") != std::string::npos; },
            2000, true)) {
      std::string line = req.substr(0, req.find("\r\n"));
      std::string method = line.substr(0, line.find(' '));
      std::string target = line.substr(line.find(' ') + 1);
      target = target.substr(0, target.find(' '));
      // A request carrying "Authorization: Bearer good-token" matches "<key> [bearer]" first.
      bool bearer = req.find("Authorization: Bearer good-token\r\n") != std::string::npos;
      std::string path = target.substr(0, target.find('?'));
      std::optional<std::string> answer;
      {
        std::lock_guard l(mu_);
        auto it = responses_.end();
        for (const auto& key : {method + " " + target, method + " " + path}) {
          if (bearer && it == responses_.end()) it = responses_.find(key + " [bearer]");
          if (it == responses_.end()) it = responses_.find(key);
        }
        if (it != responses_.end()) answer = it->second;
      }
      target = path;
      if (answer) {
        write_all(c, *answer);
      } else if (target == "/v2/") {
        write_all(c, response("200 OK", "", "{}"));
      } else {
        write_all(c, response("404 Not Found", "Content-Type: application/json\r\n",
                              R"({"errors":[{"code":"MANIFEST_UNKNOWN","message":"unknown"}]})"));
      }
    }
    ::close(c);
  }
}

}  // namespace kiste::testing
