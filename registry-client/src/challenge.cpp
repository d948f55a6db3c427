#include <cctype>
#include <kiste/registry/auth.hpp>

namespace kiste::registry {

namespace {

bool is_token_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) ||
         std::string_view("!#$%&'*+-.^_`|~/=").find(c) != std::string_view::npos;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

class Parser {
 public:
  explicit Parser(std::string_view s) : s_(s) {}
  void skip_ws() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t')) ++i_;
  }
  bool at_end() {
    skip_ws();
    return i_ >= s_.size();
  }
  bool eat(char c) {
    skip_ws();
    if (i_ < s_.size() && s_[i_] == c) {
      ++i_;
      return true;
    }
    return false;
  }
  std::string token() {
    skip_ws();
    size_t b = i_;
    // '=' is a token68 character only at the end; stop at it for auth-param names.
    while (i_ < s_.size() && is_token_char(s_[i_]) && s_[i_] != '=') ++i_;
    return std::string(s_.substr(b, i_ - b));
  }
  Result<std::string> value() {
    skip_ws();
    if (i_ < s_.size() && s_[i_] == '"') {
      ++i_;
      std::string out;
      while (i_ < s_.size() && s_[i_] != '"') {
        if (s_[i_] == '\\' && i_ + 1 < s_.size()) ++i_;
        out += s_[i_++];
      }
      if (i_ >= s_.size()) return fail(Errc::InvalidArgument, "unterminated quoted string");
      ++i_;
      return out;
    }
    size_t b = i_;
    while (i_ < s_.size() && s_[i_] != ',' && s_[i_] != ' ' && s_[i_] != '\t') ++i_;
    return std::string(s_.substr(b, i_ - b));
  }
  size_t pos() const { return i_; }
  void set_pos(size_t p) { i_ = p; }

 private:
  std::string_view s_;
  size_t i_ = 0;
};

}  // namespace

std::string Challenge::param(std::string_view key) const {
  auto it = params.find(std::string(key));
  return it == params.end() ? std::string() : it->second;
}

Result<std::vector<Challenge>> parse_www_authenticate(std::string_view header) {
  std::vector<Challenge> out;
  Parser p(header);
  auto bad = [&](std::string_view why) {
    return failf(Errc::InvalidArgument, "malformed WWW-Authenticate header: {}", why);
  };
  while (!p.at_end()) {
    if (p.eat(',')) continue;
    std::string scheme = p.token();
    if (scheme.empty()) return bad("expected an auth scheme");
    Challenge c{.scheme = lower(scheme)};
    // auth-params: name=value, separated by commas, until the next scheme.
    for (;;) {
      size_t save = p.pos();
      while (p.eat(',')) {
      }
      if (p.at_end()) break;
      std::string name = p.token();
      if (name.empty()) return bad("expected a parameter name");
      if (!p.eat('=')) {
        // Not a parameter: the next challenge's scheme starts here.
        p.set_pos(save);
        break;
      }
      KISTE_ASSIGN_OR_RETURN(std::string v, p.value());
      c.params[lower(name)] = std::move(v);
    }
    out.push_back(std::move(c));
  }
  if (out.empty()) return bad("empty");
  return out;
}

std::string repository_scope(std::string_view repo, bool push) {
  return fmt::format("repository:{}:{}", repo, push ? "pull,push" : "pull");
}

}  // namespace kiste::registry
