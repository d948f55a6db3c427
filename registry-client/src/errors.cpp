#include <algorithm>
#include <kiste/registry/errors.hpp>
#include <nlohmann/json.hpp>

namespace kiste::registry {

namespace {

std::string_view reason_phrase(int status) {
  switch (status) {
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 413:
      return "Payload Too Large";
    case 416:
      return "Range Not Satisfiable";
    case 429:
      return "Too Many Requests";
    case 500:
      return "Internal Server Error";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    default:
      return "";
  }
}

// Keeps registry-provided text printable and short (it ends up on one terminal line).
std::string sanitize(std::string_view s, size_t max = 200) {
  std::string out;
  for (char c : s) {
    if (out.size() >= max) {
      out += "...";
      break;
    }
    out += (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) ? ' ' : c;
  }
  return out;
}

}  // namespace

Error registry_error(std::string_view what, int http_status, std::string_view body) {
  Error e{.code = Errc::Registry};
  e.http_status = http_status;
  std::string detail;
  auto j = nlohmann::json::parse(body, nullptr, false);
  if (!j.is_discarded() && j.is_object() && j.contains("errors") && j["errors"].is_array()) {
    for (const auto& item : j["errors"]) {
      if (!item.is_object()) continue;
      std::string code = item.contains("code") && item["code"].is_string()
                             ? item["code"].get<std::string>()
                             : std::string();
      std::string msg = item.contains("message") && item["message"].is_string()
                            ? item["message"].get<std::string>()
                            : std::string();
      if (!code.empty()) e.registry_codes.push_back(sanitize(code, 64));
      if (!detail.empty()) detail += "; ";
      detail += code.empty() ? sanitize(msg)
                             : sanitize(code, 64) + (msg.empty() ? "" : ": " + sanitize(msg));
    }
  }
  std::string status = fmt::format("{} {}", http_status, reason_phrase(http_status));
  while (!status.empty() && status.back() == ' ') status.pop_back();
  e.message = detail.empty() ? fmt::format("{}: {}", what, status)
                             : fmt::format("{}: {}: {}", what, status, detail);
  if (http_status == 401 || http_status == 403) e.code = Errc::PermissionDenied;
  if (http_status == 404) e.code = Errc::NotFound;
  if (http_status == 408 || http_status == 429 || http_status >= 500) e.code = Errc::Unavailable;
  return e;
}

bool is_retryable(const Error& e) {
  if (e.http_status == 408 || e.http_status == 429 || e.http_status >= 500) return true;
  if (e.http_status != 0) return false;
  return e.code == Errc::Unavailable;
}

bool is_not_found(const Error& e) {
  if (e.http_status == 404) return true;
  return std::any_of(e.registry_codes.begin(), e.registry_codes.end(), [](const std::string& c) {
    return c == "MANIFEST_UNKNOWN" || c == "BLOB_UNKNOWN" || c == "NAME_UNKNOWN";
  });
}

}  // namespace kiste::registry
