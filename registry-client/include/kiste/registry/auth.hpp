#pragma once
// Registry authentication values: WWW-Authenticate challenges and credentials.
#include <kiste/base/error.hpp>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace kiste::registry {

struct Challenge {
  std::string scheme;                         // lower case: "basic", "bearer"
  std::map<std::string, std::string> params;  // realm, service, scope, error ... (keys lower case)
  [[nodiscard]] std::string param(std::string_view key) const;
};

// Parses one WWW-Authenticate header value (RFC 7235: several challenges, quoted strings with
// backslash escapes, commas inside quotes). Malformed input is InvalidArgument.
[[nodiscard]] Result<std::vector<Challenge>> parse_www_authenticate(std::string_view header);

// What a keychain returns for a registry. Never logged, never put in an error message.
struct Credential {
  std::string username;
  std::string password;
  std::string identity_token;  // OAuth2 refresh token (docker "identitytoken")
  [[nodiscard]] bool empty() const {
    return username.empty() && password.empty() && identity_token.empty();
  }
};

// Token scope for a repository: "repository:<repo>:pull" or "repository:<repo>:pull,push".
[[nodiscard]] std::string repository_scope(std::string_view repo, bool push);

}  // namespace kiste::registry
