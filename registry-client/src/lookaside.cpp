// registries.d lookaside configuration and file:// lookaside signature storage.
#include <kiste/registry/lookaside.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>

#include <kiste/base/sys.hpp>

namespace kiste::registry {

namespace {

std::string_view trim_ws(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

// A scalar: quotes removed; a trailing ` # comment` dropped from unquoted ones.
std::string scalar(std::string_view v) {
  v = trim_ws(v);
  if (!v.empty() && (v.front() == '"' || v.front() == '\'')) {
    size_t close = v.find(v.front(), 1);
    if (close != std::string_view::npos) return std::string(v.substr(1, close - 1));
  }
  if (size_t c = v.find(" #"); c != std::string_view::npos) v = trim_ws(v.substr(0, c));
  return std::string(v);
}

}  // namespace

Status parse_registries_d(std::string_view yaml, LookasideConfig& into) {
  if (yaml.size() > 1024 * 1024) return fail(Errc::InvalidArgument, "larger than 1 MiB");
  enum class Top { None, Docker, DefaultDocker, Other } top = Top::None;
  std::string scope;       // under docker:
  int scope_indent = -1;   // the indentation of docker's scope keys
  size_t lineno = 0;
  size_t start = 0;
  while (start < yaml.size()) {
    size_t nl = yaml.find('\n', start);
    std::string_view raw = yaml.substr(start, nl == std::string_view::npos ? std::string_view::npos : nl - start);
    start = nl == std::string_view::npos ? yaml.size() : nl + 1;
    ++lineno;
    std::string_view line = trim_ws(raw);
    if (line.empty() || line.front() == '#' || line == "---") continue;
    if (raw.find('\t') < raw.find_first_not_of(" \t")) {
      return failf(Errc::InvalidArgument, "line {}: tabs in indentation", lineno);
    }
    int indent = static_cast<int>(raw.find_first_not_of(' '));
    // A key: everything up to the first ": " or a trailing ':' (keys such as host:port hold ':').
    size_t colon = line.find(": ");
    std::string_view key_part = colon == std::string_view::npos ? line : line.substr(0, colon);
    std::string_view value;
    if (colon != std::string_view::npos) {
      value = line.substr(colon + 2);
    } else if (line.back() == ':') {
      key_part = line.substr(0, line.size() - 1);
    } else {
      return failf(Errc::InvalidArgument, "line {}: not `key: value`", lineno);
    }
    std::string key = scalar(key_part);
    if (indent == 0) {
      top = key == "docker" ? Top::Docker : key == "default-docker" ? Top::DefaultDocker : Top::Other;
      scope.clear();
      scope_indent = -1;
      continue;
    }
    if (top == Top::DefaultDocker) {
      if (key == "lookaside" || (key == "sigstore" && into.default_docker.empty())) {
        into.default_docker = scalar(value);
      }
    } else if (top == Top::Docker) {
      if (scope_indent < 0 || indent <= scope_indent) {
        if (!value.empty()) return failf(Errc::InvalidArgument, "line {}: `{}` under docker: is not a scope", lineno, key);
        scope_indent = indent;
        scope = key;
      } else if (key == "lookaside" || (key == "sigstore" && !into.docker.contains(scope))) {
        into.docker[scope] = scalar(value);
      }
    }
  }
  return {};
}

Result<LookasideConfig> load_registries_d(const std::filesystem::path& dir) {
  LookasideConfig c;
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) return c;
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    if (e.path().extension() == ".yaml") files.push_back(e.path());
  }
  if (ec) return failf(Errc::System, "read `{}`: {}", dir.string(), ec.message());
  std::sort(files.begin(), files.end());
  for (const auto& f : files) {
    KISTE_ASSIGN_OR_RETURN(std::string text, sys::read_file(f, 1024 * 1024));
    KISTE_TRY(with_context(parse_registries_d(text, c), fmt::format("registries.d `{}`", f.string())));
  }
  return c;
}

std::optional<std::string> LookasideConfig::lookaside_for(const image::Reference& ref) const {
  std::string name = ref.name();
  while (true) {
    if (auto it = docker.find(name); it != docker.end()) return it->second;
    size_t slash = name.rfind('/');
    if (slash == std::string::npos) break;
    name.resize(slash);
  }
  if (!default_docker.empty()) return default_docker;
  return std::nullopt;
}

namespace {
Result<std::filesystem::path> lookaside_dir(std::string_view url, const image::Reference& ref,
                                            const image::Digest& digest) {
  if (!url.starts_with("file://")) {
    return failf(Errc::Unsupported, "lookaside `{}`: only file:// lookaside storage is supported", url);
  }
  return std::filesystem::path(std::string(url.substr(7))) /
         (ref.repository() + "@" + std::string(digest.algorithm_name()) + "=" +
          std::string(digest.hex()));
}
}  // namespace

Result<std::filesystem::path> write_lookaside_signature(std::string_view url,
                                                        const image::Reference& ref,
                                                        const image::Digest& digest,
                                                        const std::string& signature) {
  KISTE_ASSIGN_OR_RETURN(std::filesystem::path dir, lookaside_dir(url, ref, digest));
  KISTE_TRY(sys::mkdir_all(dir, 0755));
  // Written whole to a temp file, then hard-linked to the first free name: readers never see half
  // a signature, and a signature written at the same time by someone else is never replaced.
  std::filesystem::path tmp = dir / fmt::format(".signature-tmp-{}", ::getpid());
  KISTE_TRY(sys::write_file_atomic(tmp, signature, 0644));
  std::error_code ec;
  for (int n = 1; n <= 64; ++n) {
    std::filesystem::path f = dir / ("signature-" + std::to_string(n));
    if (::link(tmp.c_str(), f.c_str()) == 0) {
      std::filesystem::remove(tmp, ec);
      KISTE_TRY(sys::fsync_dir(dir));
      return f;
    }
    if (errno != EEXIST) {
      Error e = sys_error("link", f.string());
      std::filesystem::remove(tmp, ec);
      return std::unexpected(std::move(e));
    }
  }
  std::filesystem::remove(tmp, ec);
  return failf(Errc::InvalidArgument, "lookaside `{}`: already 64 signatures", dir.string());
}

Result<std::vector<std::string>> read_lookaside_signatures(std::string_view url,
                                                           const image::Reference& ref,
                                                           const image::Digest& digest) {
  KISTE_ASSIGN_OR_RETURN(std::filesystem::path dir, lookaside_dir(url, ref, digest));
  std::vector<std::string> out;
  for (int n = 1; n <= 64; ++n) {
    std::filesystem::path f = dir / ("signature-" + std::to_string(n));
    auto fd = sys::open(f, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (!fd) {
      if (fd.error().sys_errno == ENOENT) break;
      return std::unexpected(std::move(fd).error());
    }
    KISTE_ASSIGN_OR_RETURN(std::string bytes, sys::read_all(fd->get(), f.string(), 64 * 1024));
    out.push_back(std::move(bytes));
  }
  return out;
}

}  // namespace kiste::registry
