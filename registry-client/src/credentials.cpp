#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <kiste/base/sys.hpp>
#include <kiste/base/unique_fd.hpp>
#include <kiste/registry/credentials.hpp>
#include <nlohmann/json.hpp>

#include "client_impl.hpp"

extern char** environ;

namespace kiste::registry {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr ? std::string(v) : std::string();
}

fs::path docker_config_file() {
  std::string dir = env("DOCKER_CONFIG");
  if (!dir.empty()) return fs::path(dir) / "config.json";
  std::string home = env("HOME");
  if (home.empty()) home = "/root";
  return fs::path(home) / ".docker" / "config.json";
}

bool valid_helper_name(std::string_view n) {
  if (n.empty() || n.size() > 64) return false;
  for (char c : n) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') {
      return false;
    }
  }
  return true;
}

// Runs `docker-credential-<helper> get` with the registry on stdin. The secret comes back on
// stdout; it never appears in argv or in an error.
Result<std::optional<Credential>> run_helper(std::string_view helper, std::string_view registry) {
  std::string what = fmt::format("credential helper `docker-credential-{}`", helper);
  if (!valid_helper_name(helper)) return failf(Errc::InvalidArgument, "{}: invalid name", what);
  int in[2], out[2];
  if (pipe2(in, O_CLOEXEC) != 0) return std::unexpected(sys_error("pipe2", what));
  UniqueFd in_r(in[0]), in_w(in[1]);
  if (pipe2(out, O_CLOEXEC) != 0) return std::unexpected(sys_error("pipe2", what));
  UniqueFd out_r(out[0]), out_w(out[1]);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in_r.get(), 0);
  posix_spawn_file_actions_adddup2(&fa, out_w.get(), 1);
  std::string prog = fmt::format("docker-credential-{}", helper);
  char arg_get[] = "get";
  char* argv[] = {prog.data(), arg_get, nullptr};
  pid_t pid = 0;
  int rc = posix_spawnp(&pid, prog.c_str(), &fa, nullptr, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) {
    errno = rc;
    return std::unexpected(sys_error("posix_spawnp", what));
  }
  in_r.reset();
  out_w.reset();
  (void)sys::write_all(in_w.get(), registry, what);
  in_w.reset();
  auto body = sys::read_all(out_r.get(), what, 1 << 20);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!body) return std::unexpected(body.error());
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    // "credentials not found in native keychain" is not an error: there are none.
    if (body->find("not found") != std::string::npos) return std::nullopt;
    return failf(Errc::PermissionDenied, "{}: failed for `{}`", what, registry);
  }
  auto j = json::parse(*body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return failf(Errc::InvalidArgument, "{}: output is not JSON", what);
  }
  Credential c;
  auto str = [&](const char* k) {
    return j.contains(k) && j[k].is_string() ? j[k].get<std::string>() : std::string();
  };
  c.username = str("Username");
  std::string secret = str("Secret");
  if (c.username == "<token>") {
    c.username.clear();
    c.identity_token = secret;
  } else {
    c.password = secret;
  }
  if (c.empty()) return std::nullopt;
  return c;
}

// Keys under which `registry` may appear in `auths`.
std::vector<std::string> candidate_keys(std::string_view registry) {
  std::vector<std::string> keys = {std::string(registry), "https://" + std::string(registry),
                                   "http://" + std::string(registry)};
  if (registry == "docker.io" || registry == "index.docker.io" ||
      registry == "registry-1.docker.io") {
    keys.insert(keys.begin(), "https://index.docker.io/v1/");
    keys.push_back("index.docker.io");
  }
  return keys;
}

Result<json> load_json(const fs::path& file) {
  KISTE_ASSIGN_OR_RETURN(std::string text, sys::read_file(file, 4 << 20));
  auto j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return failf(Errc::InvalidArgument, "auth file {}: not a JSON object", quote(file.string()));
  }
  return j;
}

Result<std::optional<Credential>> from_file(const fs::path& file, std::string_view registry) {
  std::error_code ec;
  if (!fs::exists(file, ec)) return std::nullopt;
  KISTE_ASSIGN_OR_RETURN(json j, load_json(file));
  std::string where = fmt::format("auth file {}", quote(file.string()));
  if (j.contains("credHelpers") && j["credHelpers"].is_object()) {
    for (const auto& k : candidate_keys(registry)) {
      if (j["credHelpers"].contains(k) && j["credHelpers"][k].is_string()) {
        return run_helper(j["credHelpers"][k].get<std::string>(), registry);
      }
    }
  }
  if (j.contains("auths") && j["auths"].is_object()) {
    for (const auto& k : candidate_keys(registry)) {
      if (!j["auths"].contains(k) || !j["auths"][k].is_object()) continue;
      const json& a = j["auths"][k];
      Credential c;
      if (a.contains("auth") && a["auth"].is_string() && !a["auth"].get<std::string>().empty()) {
        auto dec = base64_decode(a["auth"].get<std::string>());
        if (!dec) return failf(Errc::InvalidArgument, "{}: entry for `{}` is not base64", where, k);
        auto colon = dec->find(':');
        if (colon == std::string::npos) {
          return failf(Errc::InvalidArgument, "{}: entry for `{}` is not user:password", where, k);
        }
        c.username = dec->substr(0, colon);
        c.password = dec->substr(colon + 1);
      }
      if (a.contains("identitytoken") && a["identitytoken"].is_string()) {
        c.identity_token = a["identitytoken"].get<std::string>();
      }
      if (!c.empty()) return c;
    }
  }
  if (j.contains("credsStore") && j["credsStore"].is_string() &&
      !j["credsStore"].get<std::string>().empty()) {
    return run_helper(j["credsStore"].get<std::string>(), registry);
  }
  return std::nullopt;
}

}  // namespace

DockerKeychain::DockerKeychain() : files_(default_files()) {}

std::vector<fs::path> DockerKeychain::default_files() {
  std::vector<fs::path> files;
  if (std::string f = env("REGISTRY_AUTH_FILE"); !f.empty()) files.emplace_back(f);
  if (std::string x = env("XDG_RUNTIME_DIR"); !x.empty()) {
    files.push_back(fs::path(x) / "containers" / "auth.json");
  }
  files.push_back(docker_config_file());
  return files;
}

fs::path DockerKeychain::login_file() {
  if (std::string f = env("REGISTRY_AUTH_FILE"); !f.empty()) return f;
  return docker_config_file();
}

Result<std::optional<Credential>> DockerKeychain::get(std::string_view registry) {
  for (const auto& f : files_) {
    KISTE_ASSIGN_OR_RETURN(auto c, from_file(f, registry));
    if (c) return c;
  }
  return std::nullopt;
}

std::string auths_key(std::string_view registry) {
  if (registry == "docker.io" || registry == "index.docker.io") {
    return "https://index.docker.io/v1/";
  }
  return std::string(registry);
}

Status save_login(const fs::path& file, std::string_view registry, const Credential& cred) {
  json j = json::object();
  std::error_code ec;
  if (fs::exists(file, ec)) {
    KISTE_ASSIGN_OR_RETURN(j, load_json(file));
  } else {
    KISTE_TRY(sys::mkdir_all(file.parent_path(), 0700));
  }
  if (!j.contains("auths") || !j["auths"].is_object()) j["auths"] = json::object();
  json entry = json::object();
  if (!cred.identity_token.empty()) {
    // Like docker: the user name without a password, and the token.
    if (!cred.username.empty()) entry["auth"] = base64_encode(cred.username + ":");
    entry["identitytoken"] = cred.identity_token;
  } else {
    entry["auth"] = base64_encode(cred.username + ":" + cred.password);
  }
  j["auths"][auths_key(registry)] = entry;
  return sys::write_file_atomic(file, j.dump(1, '\t') + "\n", 0600);
}

Status remove_login(const fs::path& file, std::string_view registry) {
  std::error_code ec;
  if (!fs::exists(file, ec)) {
    return failf(Errc::NotFound, "not logged in to `{}`", registry);
  }
  KISTE_ASSIGN_OR_RETURN(json j, load_json(file));
  bool removed = false;
  if (j.contains("auths") && j["auths"].is_object()) {
    for (const auto& k : candidate_keys(registry)) removed |= j["auths"].erase(k) > 0;
  }
  if (!removed) return failf(Errc::NotFound, "not logged in to `{}`", registry);
  return sys::write_file_atomic(file, j.dump(1, '\t') + "\n", 0600);
}

}  // namespace kiste::registry
