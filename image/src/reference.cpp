#include <kiste/image/reference.hpp>

#include <cctype>

namespace kiste::image {

namespace {

constexpr size_t kMaxNameLength = 255;

bool is_lower_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
bool is_alnum(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; }

// path-component := [a-z0-9]+ ((\.|_|__|-+) [a-z0-9]+)*
bool is_path_component(std::string_view c) {
  if (c.empty() || !is_lower_alnum(c.front()) || !is_lower_alnum(c.back())) return false;
  size_t i = 0;
  while (i < c.size()) {
    if (is_lower_alnum(c[i])) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < c.size() && !is_lower_alnum(c[j])) ++j;
    std::string_view sep = c.substr(i, j - i);
    bool ok = sep == "." || sep == "_" || sep == "__" ||
              sep.find_first_not_of('-') == std::string_view::npos;
    if (!ok) return false;
    i = j;
  }
  return true;
}

// domain := host-component ('.' host-component)* (':' port)? | '[' ipv6 ']' (':' port)?
bool is_domain(std::string_view d) {
  if (d.empty()) return false;
  std::string_view host = d;
  size_t colon = std::string_view::npos;
  if (d.front() == '[') {
    size_t close = d.find(']');
    if (close == std::string_view::npos || close == 1) return false;
    for (char c : d.substr(1, close - 1)) {
      if (!(std::isxdigit(static_cast<unsigned char>(c)) || c == ':')) return false;
    }
    host = {};
    if (close + 1 < d.size()) {
      if (d[close + 1] != ':') return false;
      colon = close + 1;
    }
  } else {
    colon = d.rfind(':');
    if (colon != std::string_view::npos) host = d.substr(0, colon);
  }
  if (colon != std::string_view::npos) {
    std::string_view port = d.substr(colon + 1);
    if (port.empty() || port.size() > 5) return false;
    for (char c : port) {
      if (!std::isdigit(static_cast<unsigned char>(c))) return false;
    }
  }
  if (d.front() == '[') return true;
  size_t i = 0;
  while (i <= host.size()) {
    size_t j = host.find('.', i);
    if (j == std::string_view::npos) j = host.size();
    std::string_view comp = host.substr(i, j - i);
    if (comp.empty() || !is_alnum(comp.front()) || !is_alnum(comp.back())) return false;
    for (char c : comp) {
      if (!is_alnum(c) && c != '-') return false;
    }
    i = j + 1;
  }
  return true;
}

}  // namespace

bool is_valid_tag(std::string_view tag) {
  if (tag.empty() || tag.size() > 128) return false;
  auto word = [](char c) { return is_alnum(c) || c == '_'; };
  if (!word(tag.front())) return false;
  for (char c : tag) {
    if (!word(c) && c != '.' && c != '-') return false;
  }
  return true;
}

bool is_valid_repository(std::string_view repo) {
  if (repo.empty()) return false;
  size_t i = 0;
  while (i <= repo.size()) {
    size_t j = repo.find('/', i);
    if (j == std::string_view::npos) j = repo.size();
    if (!is_path_component(repo.substr(i, j - i))) return false;
    i = j + 1;
  }
  return true;
}

Result<Reference> Reference::parse(std::string_view s, ReferenceOptions opts) {
  auto bad = [&](std::string_view why) {
    return failf(Errc::InvalidArgument, "invalid reference {}: {}", quote(s.substr(0, 300)), why);
  };
  if (s.empty()) return bad("empty");
  Reference ref;
  std::string_view rest = s;
  if (size_t at = rest.find('@'); at != std::string_view::npos) {
    auto d = Digest::parse(rest.substr(at + 1));
    if (!d) return bad(d.error().message);
    ref.digest_ = std::move(*d);
    rest = rest.substr(0, at);
  }
  // A tag follows the last ':' that comes after the last '/'.
  size_t slash = rest.rfind('/');
  size_t colon = rest.rfind(':');
  if (colon != std::string_view::npos && (slash == std::string_view::npos || colon > slash)) {
    std::string_view tag = rest.substr(colon + 1);
    if (!is_valid_tag(tag)) return bad("invalid tag");
    ref.tag_ = std::string(tag);
    rest = rest.substr(0, colon);
  }
  if (rest.empty()) return bad("missing repository name");
  // The first component is a registry when it looks like one (docker's rule).
  std::string_view domain, remote = rest;
  if (size_t i = rest.find('/'); i != std::string_view::npos) {
    std::string_view first = rest.substr(0, i);
    bool has_upper = false;
    for (char c : first) has_upper |= std::isupper(static_cast<unsigned char>(c)) != 0;
    if (first.find_first_of(".:") != std::string_view::npos || first == "localhost" ||
        has_upper) {
      domain = first;
      remote = rest.substr(i + 1);
    }
  }
  if (!domain.empty() && !is_domain(domain)) return bad("invalid registry host");
  ref.registry_ = domain.empty() ? std::string(opts.default_registry) : std::string(domain);
  if (ref.registry_ == "index.docker.io" || ref.registry_ == "registry-1.docker.io") {
    ref.registry_ = "docker.io";
  }
  for (char c : remote) {
    if (std::isupper(static_cast<unsigned char>(c))) {
      return bad("repository name must be lowercase");
    }
  }
  if (!is_valid_repository(remote)) return bad("invalid repository name");
  ref.repository_ = std::string(remote);
  if (ref.registry_ == "docker.io" && ref.repository_.find('/') == std::string::npos) {
    ref.repository_ = "library/" + ref.repository_;
  }
  if (ref.name().size() > kMaxNameLength) return bad("name longer than 255 characters");
  if (!ref.tag_ && !ref.digest_ && opts.default_tag) ref.tag_ = "latest";
  return ref;
}

std::string Reference::str() const {
  std::string out = name();
  if (tag_) out += ":" + *tag_;
  if (digest_) out += "@" + digest_->str();
  return out;
}

std::string Reference::familiar() const {
  std::string out;
  if (registry_ == "docker.io") {
    out = repository_.starts_with("library/") ? repository_.substr(8) : repository_;
  } else {
    out = name();
  }
  if (tag_) out += ":" + *tag_;
  if (digest_) out += "@" + digest_->str();
  return out;
}

std::string Reference::identifier() const {
  if (digest_) return digest_->str();
  return tag_.value_or("latest");
}

Reference Reference::with_tag(std::string tag) const {
  Reference r = *this;
  r.tag_ = std::move(tag);
  return r;
}

Reference Reference::with_digest(Digest d) const {
  Reference r = *this;
  r.digest_ = std::move(d);
  return r;
}

Reference Reference::without_digest() const {
  Reference r = *this;
  r.digest_.reset();
  return r;
}

}  // namespace kiste::image
