#pragma once
// Registry errors are structured: the HTTP status and the distribution error codes
// (MANIFEST_UNKNOWN, DENIED, TOOMANYREQUESTS, ...) travel in kiste::Error.
#include <kiste/base/error.hpp>
#include <string_view>

namespace kiste::registry {

// Builds Error{Errc::Registry, http_status, registry_codes} from a non-success response.
// `what` names the request ("GET `localhost:5000/a/manifests/1`"); `body` is the (bounded)
// response body, parsed as distribution error JSON when it is one.
[[nodiscard]] Error registry_error(std::string_view what, int http_status, std::string_view body);

// 408, 429, 5xx and connection-level failures (Errc::Unavailable) are worth retrying.
[[nodiscard]] bool is_retryable(const Error& e);

// Whether the error says "this does not exist" (404 / *_UNKNOWN).
[[nodiscard]] bool is_not_found(const Error& e);

}  // namespace kiste::registry
