// registries.conf (a TOML subset: tables, arrays of tables, strings, booleans, numbers, string
// arrays over several lines; anything else is skipped when it is not a key kiste uses) and
// docker's daemon.json.
#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <kiste/base/sys.hpp>
#include <kiste/registry/registries_conf.hpp>
#include <nlohmann/json.hpp>
#include <optional>

namespace kiste::registry {

namespace fs = std::filesystem;

namespace {

constexpr size_t kMaxConfBytes = 4 << 20;
// Arrays inside arrays: registries.conf has none; parse_value recurses per level.
constexpr int kMaxArrayDepth = 32;

// One value as the subset knows it.
struct Value {
  enum Kind { String, Bool, StringArray, Other } kind = Other;
  std::string s;
  bool b = false;
  std::vector<std::string> list;
};

class Parser {
 public:
  Parser(std::string_view text, std::string_view what) : t_(text), what_(what) {}

  // Calls on_table(path, is_array_table) and on_key(table_path, key, value).
  template <class OnTable, class OnKey>
  Status run(OnTable on_table, OnKey on_key) {
    std::string table;
    while (skip_space_and_comments(), pos_ < t_.size()) {
      if (t_[pos_] == '[') {
        bool array = pos_ + 1 < t_.size() && t_[pos_ + 1] == '[';
        pos_ += array ? 2 : 1;
        size_t end = t_.find(']', pos_);
        if (end == std::string_view::npos) return error("unterminated table header");
        if (array && (end + 1 >= t_.size() || t_[end + 1] != ']')) return error("expected `]]`");
        table = trim(t_.substr(pos_, end - pos_));
        std::erase(table, '"');
        pos_ = end + (array ? 2 : 1);
        on_table(table, array);
        KISTE_TRY(end_of_line());
        continue;
      }
      KISTE_ASSIGN_OR_RETURN(std::string key, parse_key());
      skip_blanks();
      if (pos_ >= t_.size() || t_[pos_] != '=') return error("expected `=` after a key");
      ++pos_;
      skip_blanks();
      KISTE_ASSIGN_OR_RETURN(Value v, parse_value());
      on_key(table, key, v);
      KISTE_TRY(end_of_line());
    }
    return {};
  }

 private:
  static std::string trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return std::string(s);
  }
  int line() const { return 1 + static_cast<int>(std::count(t_.begin(), t_.begin() + pos_, '\n')); }
  std::unexpected<Error> error(std::string_view why) const {
    return failf(Errc::InvalidArgument, "parse {}: line {}: {}", what_, line(), why);
  }
  void skip_blanks() {
    while (pos_ < t_.size() && (t_[pos_] == ' ' || t_[pos_] == '\t')) ++pos_;
  }
  void skip_comment() {
    if (pos_ < t_.size() && t_[pos_] == '#') {
      while (pos_ < t_.size() && t_[pos_] != '\n') ++pos_;
    }
  }
  void skip_space_and_comments() {
    for (;;) {
      skip_blanks();
      skip_comment();
      if (pos_ < t_.size() && (t_[pos_] == '\n' || t_[pos_] == '\r')) {
        ++pos_;
        continue;
      }
      return;
    }
  }
  Status end_of_line() {
    skip_blanks();
    skip_comment();
    if (pos_ < t_.size() && t_[pos_] == '\r') ++pos_;
    if (pos_ < t_.size() && t_[pos_] != '\n') return error("unexpected text after a value");
    return {};
  }
  Result<std::string> parse_key() {
    if (t_[pos_] == '"' || t_[pos_] == '\'') return parse_string();
    size_t start = pos_;
    while (pos_ < t_.size() && (std::isalnum(static_cast<unsigned char>(t_[pos_])) ||
                                t_[pos_] == '-' || t_[pos_] == '_' || t_[pos_] == '.')) {
      ++pos_;
    }
    if (pos_ == start) return error("expected a key");
    return std::string(t_.substr(start, pos_ - start));
  }
  Result<std::string> parse_string() {
    char q = t_[pos_++];
    std::string out;
    while (pos_ < t_.size() && t_[pos_] != q) {
      if (t_[pos_] == '\n') return error("line break in a string");
      char c = t_[pos_++];
      if (c == '\\' && q == '"' && pos_ < t_.size()) {
        char e = t_[pos_++];
        switch (e) {
          case 'n':
            out += '\n';
            break;
          case 't':
            out += '\t';
            break;
          case '\\':
            out += '\\';
            break;
          case '"':
            out += '"';
            break;
          default:
            return error("unsupported escape in a string");
        }
        continue;
      }
      out += c;
    }
    if (pos_ >= t_.size()) return error("unterminated string");
    ++pos_;
    return out;
  }
  Result<Value> parse_value(int depth = 0) {
    Value v;
    if (pos_ >= t_.size()) return error("expected a value");
    char c = t_[pos_];
    if (c == '"' || c == '\'') {
      v.kind = Value::String;
      KISTE_ASSIGN_OR_RETURN(v.s, parse_string());
      return v;
    }
    if (t_.substr(pos_).starts_with("true") || t_.substr(pos_).starts_with("false")) {
      v.kind = Value::Bool;
      v.b = t_[pos_] == 't';
      pos_ += v.b ? 4 : 5;
      return v;
    }
    if (c == '[') {
      if (depth >= kMaxArrayDepth) return error("arrays nested too deeply");
      ++pos_;
      v.kind = Value::StringArray;
      for (;;) {
        skip_space_and_comments();
        if (pos_ >= t_.size()) return error("unterminated array");
        if (t_[pos_] == ']') {
          ++pos_;
          return v;
        }
        KISTE_ASSIGN_OR_RETURN(Value item, parse_value(depth + 1));
        if (item.kind == Value::String) {
          v.list.push_back(std::move(item.s));
        } else {
          v.kind = Value::Other;
        }
        skip_space_and_comments();
        if (pos_ < t_.size() && t_[pos_] == ',') ++pos_;
      }
    }
    if (c == '{') {  // inline table: skipped (kiste reads none)
      int depth = 0;
      for (; pos_ < t_.size(); ++pos_) {
        if (t_[pos_] == '{') ++depth;
        if (t_[pos_] == '}' && --depth == 0) {
          ++pos_;
          return v;
        }
      }
      return error("unterminated inline table");
    }
    // Numbers and dates: up to the end of the value.
    size_t start = pos_;
    while (pos_ < t_.size() && t_[pos_] != '\n' && t_[pos_] != '#' && t_[pos_] != ',' &&
           t_[pos_] != ']') {
      ++pos_;
    }
    if (trim(t_.substr(start, pos_ - start)).empty()) return error("expected a value");
    return v;
  }

  std::string_view t_;
  std::string what_;
  size_t pos_ = 0;
};

// "https://host:port/path" -> "host:port"
std::string host_of(std::string_view location) {
  if (auto p = location.find("://"); p != std::string_view::npos) location.remove_prefix(p + 3);
  return std::string(location.substr(0, location.find('/')));
}

// "a.b.c.d/len" -> {network, mask}
std::optional<std::pair<uint32_t, uint32_t>> parse_cidr(std::string_view s) {
  auto slash = s.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  std::string ip(s.substr(0, slash));
  std::string len(s.substr(slash + 1));
  in_addr a{};
  if (::inet_pton(AF_INET, ip.c_str(), &a) != 1 || len.empty() || len.size() > 2 ||
      len.find_first_not_of("0123456789") != std::string::npos) {
    return std::nullopt;
  }
  int bits = std::stoi(len);
  if (bits > 32) return std::nullopt;
  uint32_t mask = bits == 0 ? 0 : ~uint32_t{0} << (32 - bits);
  return std::make_pair(ntohl(a.s_addr) & mask, mask);
}

Result<InsecureRegistries> read_conf_file(const fs::path& p, bool toml) {
  auto bytes = sys::read_file(p, kMaxConfBytes);
  if (!bytes) {
    if (bytes.error().sys_errno == ENOENT) return InsecureRegistries{};
    return std::unexpected(std::move(bytes).error());
  }
  std::string what = quote(p.native());
  return toml ? InsecureRegistries::from_registries_conf(*bytes, what)
              : InsecureRegistries::from_daemon_json(*bytes, what);
}

}  // namespace

Result<InsecureRegistries> InsecureRegistries::from_registries_conf(std::string_view toml,
                                                                    std::string_view what) {
  InsecureRegistries out;
  // The current [[registry]] or [[registry.mirror]] table: its location and insecure flag.
  struct Entry {
    std::string location;
    bool insecure = false;
  };
  std::vector<Entry> entries;
  std::optional<Entry> cur;
  auto flush = [&] {
    if (cur) entries.push_back(std::move(*cur));
    cur.reset();
  };
  Parser p(toml, what);
  KISTE_TRY(p.run(
      [&](const std::string& table, bool array) {
        flush();
        if (array && (table == "registry" || table == "registry.mirror")) cur = Entry{};
      },
      [&](const std::string& table, const std::string& key, const Value& v) {
        if (cur && key == "location" && v.kind == Value::String) cur->location = v.s;
        if (cur && key == "insecure" && v.kind == Value::Bool) cur->insecure = v.b;
        bool v1 = (table == "registries.insecure" && key == "registries") ||
                  (table.empty() && key == "registries.insecure.registries");
        if (v1 && v.kind == Value::StringArray) {
          for (const auto& r : v.list) out.entries_.push_back(host_of(r));
        }
      }));
  flush();
  for (const auto& e : entries) {
    if (e.insecure && !e.location.empty()) out.entries_.push_back(host_of(e.location));
  }
  return out;
}

Result<InsecureRegistries> InsecureRegistries::from_daemon_json(std::string_view json,
                                                                std::string_view what) {
  auto j = nlohmann::json::parse(json, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return failf(Errc::InvalidArgument, "parse {}: not a JSON object", what);
  }
  InsecureRegistries out;
  auto it = j.find("insecure-registries");
  if (it == j.end() || it->is_null()) return out;
  if (!it->is_array()) {
    return failf(Errc::InvalidArgument, "parse {}: `insecure-registries` is not a list", what);
  }
  for (const auto& v : *it) {
    if (!v.is_string()) {
      return failf(Errc::InvalidArgument, "parse {}: `insecure-registries` holds a non-string",
                   what);
    }
    // docker also takes IPv4 networks in CIDR notation ("10.0.0.0/8"), kept as they are.
    std::string e = v.get<std::string>();
    out.entries_.push_back(parse_cidr(e) ? e : host_of(e));
  }
  return out;
}

void InsecureRegistries::merge(const InsecureRegistries& other) {
  entries_.insert(entries_.end(), other.entries_.begin(), other.entries_.end());
}

Result<InsecureRegistries> InsecureRegistries::load() {
  InsecureRegistries out;
  if (const char* e = std::getenv("KISTE_REGISTRIES_CONF"); e != nullptr && *e != '\0') {
    KISTE_ASSIGN_OR_RETURN(auto c, read_conf_file(e, true));
    out.merge(c);
  } else {
    fs::path main = "/etc/containers/registries.conf";
    KISTE_ASSIGN_OR_RETURN(auto c, read_conf_file(main, true));
    out.merge(c);
    std::error_code ec;
    std::vector<fs::path> dropins;
    for (const auto& d : fs::directory_iterator("/etc/containers/registries.conf.d", ec)) {
      if (d.path().extension() == ".conf") dropins.push_back(d.path());
    }
    std::sort(dropins.begin(), dropins.end());
    for (const auto& d : dropins) {
      KISTE_ASSIGN_OR_RETURN(auto dc, read_conf_file(d, true));
      out.merge(dc);
    }
  }
  const char* dj = std::getenv("KISTE_DOCKER_DAEMON_JSON");
  KISTE_ASSIGN_OR_RETURN(
      auto d, read_conf_file(dj != nullptr && *dj != '\0' ? dj : "/etc/docker/daemon.json", false));
  out.merge(d);
  return out;
}

bool InsecureRegistries::contains(std::string_view registry) const {
  std::string_view host = registry;
  if (!host.starts_with("[")) {
    if (auto c = host.rfind(':'); c != std::string_view::npos) host = host.substr(0, c);
  }
  for (const auto& e : entries_) {
    if (e == registry) return true;
    if (e == host && e.find(':') == std::string::npos) return true;  // any port of the host
    if (e.starts_with("*.") && host.size() > e.size() - 1 &&
        host.ends_with(std::string_view(e).substr(1))) {
      return true;
    }
    if (auto net = parse_cidr(e)) {
      in_addr a{};
      std::string h(host);
      if (::inet_pton(AF_INET, h.c_str(), &a) == 1 &&
          (ntohl(a.s_addr) & net->second) == net->first) {
        return true;
      }
    }
  }
  return false;
}

}  // namespace kiste::registry
