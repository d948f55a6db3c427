#include <kiste/base/go_template.hpp>

#include <algorithm>
#include <cctype>
#include <nlohmann/json.hpp>

namespace kiste {

namespace {

using json = nlohmann::json;

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// Splits an action's inside into words; a "quoted" word keeps its quotes (and Go's escapes).
Result<std::vector<std::string>> words(std::string_view s, std::string_view action) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < s.size()) {
    if (is_space(s[i])) {
      ++i;
      continue;
    }
    size_t start = i;
    if (s[i] == '"' || s[i] == '`') {
      char q = s[i++];
      while (i < s.size() && s[i] != q) i += (q == '"' && s[i] == '\\') ? 2 : 1;
      if (i >= s.size()) {
        return failf(Errc::InvalidArgument, "template `{}`: unterminated quoted string", action);
      }
      ++i;
    } else {
      while (i < s.size() && !is_space(s[i])) ++i;
    }
    out.emplace_back(s.substr(start, i - start));
  }
  return out;
}

Result<GoTemplate::Arg> parse_arg(const std::string& w, std::string_view action) {
  GoTemplate::Arg a;
  if (w == ".") return a;
  if (w.starts_with(".")) {
    std::string_view rest(w);
    rest.remove_prefix(1);
    while (!rest.empty()) {
      auto dot = rest.find('.');
      std::string_view name = rest.substr(0, dot);
      if (name.empty()) return failf(Errc::InvalidArgument, "template `{}`: bad field {}", action, w);
      a.path.emplace_back(name);
      if (dot == std::string_view::npos) break;
      rest.remove_prefix(dot + 1);
      if (rest.empty()) return failf(Errc::InvalidArgument, "template `{}`: bad field {}", action, w);
    }
    return a;
  }
  if (w.front() == '`') {
    a.kind = GoTemplate::Arg::Kind::String;
    a.text = w.substr(1, w.size() - 2);
    return a;
  }
  if (w.front() == '"') {
    a.kind = GoTemplate::Arg::Kind::String;
    for (size_t i = 1; i + 1 < w.size(); ++i) {
      char c = w[i];
      if (c == '\\' && i + 2 < w.size()) {
        char e = w[++i];
        c = e == 'n' ? '\n' : e == 't' ? '\t' : e;
      }
      a.text += c;
    }
    return a;
  }
  bool digits = !w.empty() && std::all_of(w.begin() + (w[0] == '-' ? 1 : 0), w.end(), [](char c) {
    return std::isdigit(static_cast<unsigned char>(c));
  });
  if (digits && w != "-" && w.size() < 18) {
    a.kind = GoTemplate::Arg::Kind::Int;
    a.number = std::stoll(w);
    return a;
  }
  return failf(Errc::InvalidArgument, "template `{}`: unsupported argument {}", action, quote(w));
}

struct FuncSpec {
  std::string_view name;
  size_t min_args;
  size_t max_args;
};
constexpr FuncSpec kFuncs[] = {{"json", 1, 1},  {"index", 2, 8}, {"join", 2, 2},
                               {"upper", 1, 1}, {"lower", 1, 1}, {"len", 1, 1},
                               {"print", 1, 8}, {"println", 1, 8}};
constexpr std::string_view kUnsupported[] = {"range", "if", "with", "else", "end", "define",
                                              "template", "block", "table"};

// Go's fmt %v of a decoded JSON value.
void print_value(const json& v, std::string& out) {
  switch (v.type()) {
    case json::value_t::string:
      out += v.get_ref<const std::string&>();
      break;
    case json::value_t::null:
      out += "<nil>";
      break;
    case json::value_t::array: {
      out += '[';
      bool first = true;
      for (const auto& e : v) {
        if (!first) out += ' ';
        first = false;
        print_value(e, out);
      }
      out += ']';
      break;
    }
    case json::value_t::object: {
      out += "map[";
      bool first = true;
      for (const auto& [k, e] : v.items()) {  // nlohmann::json keeps keys sorted, as Go prints
        if (!first) out += ' ';
        first = false;
        out += k;
        out += ':';
        print_value(e, out);
      }
      out += ']';
      break;
    }
    default:
      out += v.dump();
      break;
  }
}

std::string go_type(const json& v) {
  switch (v.type()) {
    case json::value_t::string:
      return "string";
    case json::value_t::array:
      return "[]interface {}";
    case json::value_t::object:
      return "map[string]interface {}";
    case json::value_t::null:
      return "nil";
    case json::value_t::boolean:
      return "bool";
    default:
      return "float64";
  }
}

// A missing key is Go's "<no value>": a distinct state, not null.
struct Value {
  const json* v = nullptr;  // nullptr: no value
  json owned;
  bool has_owned = false;
  [[nodiscard]] const json* get() const { return has_owned ? &owned : v; }
};

Result<Value> eval(const GoTemplate::Arg& a, const json& data, std::string_view action) {
  Value out;
  if (a.kind == GoTemplate::Arg::Kind::String) {
    out.owned = a.text;
    out.has_owned = true;
    return out;
  }
  if (a.kind == GoTemplate::Arg::Kind::Int) {
    out.owned = a.number;
    out.has_owned = true;
    return out;
  }
  const json* cur = &data;
  for (const auto& name : a.path) {
    if (cur == nullptr) return out;  // a field of <no value> is <no value> too (Go's map rule)
    if (!cur->is_object()) {
      return failf(Errc::InvalidArgument, "template `{}`: can't evaluate field {} in type {}",
                   action, name, go_type(*cur));
    }
    auto it = cur->find(name);
    cur = it == cur->end() ? nullptr : &*it;
  }
  out.v = cur;
  return out;
}

}  // namespace

Result<GoTemplate> GoTemplate::parse(std::string_view text) {
  GoTemplate t;
  size_t pos = 0;
  bool trim_next_left = false;
  while (pos <= text.size()) {
    size_t open = text.find("{{", pos);
    std::string lit(text.substr(pos, open == std::string_view::npos ? std::string_view::npos
                                                                     : open - pos));
    if (trim_next_left) {
      lit.erase(lit.begin(), std::find_if(lit.begin(), lit.end(), [](char c) { return !is_space(c); }));
    }
    if (open == std::string_view::npos) {
      if (!lit.empty()) t.nodes_.push_back(Node{.literal = std::move(lit)});
      break;
    }
    size_t close = text.find("}}", open + 2);
    if (close == std::string_view::npos) {
      return failf(Errc::InvalidArgument, "template {}: unclosed action", quote(text));
    }
    std::string_view inner = text.substr(open + 2, close - open - 2);
    std::string source(text.substr(open, close + 2 - open));
    if (inner.starts_with("- ")) {
      while (!lit.empty() && is_space(lit.back())) lit.pop_back();
      inner.remove_prefix(2);
    }
    trim_next_left = false;
    if (inner.ends_with(" -")) {
      trim_next_left = true;
      inner.remove_suffix(2);
    }
    if (!lit.empty()) t.nodes_.push_back(Node{.literal = std::move(lit)});
    if (inner.find("/*") != std::string_view::npos && inner.find("*/") != std::string_view::npos) {
      pos = close + 2;  // a comment
      continue;
    }
    if (inner.find('|') != std::string_view::npos || inner.find('$') != std::string_view::npos ||
        inner.find('(') != std::string_view::npos) {
      return failf(Errc::InvalidArgument,
                   "template `{}`: pipes, variables and parentheses are not supported", source);
    }
    KISTE_ASSIGN_OR_RETURN(auto ws, words(inner, source));
    if (ws.empty()) return failf(Errc::InvalidArgument, "template `{}`: empty action", source);
    Node n{.action = true, .source = source};
    size_t first_arg = 0;
    const std::string& w0 = ws[0];
    if (!w0.starts_with(".") && !w0.starts_with("\"") && !w0.starts_with("`") &&
        !std::isdigit(static_cast<unsigned char>(w0[0])) && w0[0] != '-') {
      if (std::find(std::begin(kUnsupported), std::end(kUnsupported), w0) !=
          std::end(kUnsupported)) {
        return failf(Errc::InvalidArgument, "template `{}`: `{}` is not supported", source, w0);
      }
      auto f = std::find_if(std::begin(kFuncs), std::end(kFuncs),
                            [&](const FuncSpec& s) { return s.name == w0; });
      if (f == std::end(kFuncs)) {
        return failf(Errc::InvalidArgument, "template `{}`: function {} not defined", source,
                     quote(w0));
      }
      size_t nargs = ws.size() - 1;
      if (nargs < f->min_args || nargs > f->max_args) {
        return failf(Errc::InvalidArgument, "template `{}`: wrong number of arguments for {}",
                     source, w0);
      }
      n.func = w0;
      first_arg = 1;
    } else if (ws.size() != 1) {
      return failf(Errc::InvalidArgument, "template `{}`: {} is not a function", source,
                   quote(w0));
    }
    for (size_t i = first_arg; i < ws.size(); ++i) {
      KISTE_ASSIGN_OR_RETURN(Arg a, parse_arg(ws[i], source));
      n.args.push_back(std::move(a));
    }
    t.nodes_.push_back(std::move(n));
    pos = close + 2;
  }
  return t;
}

Result<std::string> GoTemplate::render(const json& data) const {
  std::string out;
  for (const auto& n : nodes_) {
    if (!n.action) {
      out += n.literal;
      continue;
    }
    std::vector<Value> vals;
    for (const auto& a : n.args) {
      KISTE_ASSIGN_OR_RETURN(Value v, eval(a, data, n.source));
      vals.push_back(std::move(v));
    }
    auto print = [&out](const Value& v) {
      if (v.get() == nullptr) {
        out += "<no value>";
      } else {
        print_value(*v.get(), out);
      }
    };
    if (n.func.empty() || n.func == "print" || n.func == "println") {
      for (size_t i = 0; i < vals.size(); ++i) {
        // Go's print puts a space only between operands when neither is a string.
        if (i > 0 && (n.func == "println" || !(vals[i - 1].get() && vals[i - 1].get()->is_string()) ||
                      !(vals[i].get() && vals[i].get()->is_string()))) {
          out += ' ';
        }
        print(vals[i]);
      }
      if (n.func == "println") out += '\n';
    } else if (n.func == "json") {
      const json* v = vals[0].get();
      out += v == nullptr ? "null" : v->dump(-1, ' ', false, json::error_handler_t::replace);
    } else if (n.func == "upper" || n.func == "lower") {
      const json* v = vals[0].get();
      if (v == nullptr || !v->is_string()) {
        return failf(Errc::InvalidArgument, "template `{}`: {} wants a string", n.source, n.func);
      }
      std::string s = v->get<std::string>();
      for (auto& c : s) {
        c = static_cast<char>(n.func == "upper" ? std::toupper(static_cast<unsigned char>(c))
                                                : std::tolower(static_cast<unsigned char>(c)));
      }
      out += s;
    } else if (n.func == "len") {
      const json* v = vals[0].get();
      if (v == nullptr || !(v->is_array() || v->is_object() || v->is_string())) {
        return failf(Errc::InvalidArgument, "template `{}`: len of {}", n.source,
                     v == nullptr ? "<no value>" : go_type(*v));
      }
      out += std::to_string(v->is_string() ? v->get_ref<const std::string&>().size() : v->size());
    } else if (n.func == "join") {
      const json* v = vals[0].get();
      const json* sep = vals[1].get();
      if (v == nullptr || v->is_null()) continue;  // docker: join of a nil list is ""
      if (!v->is_array() || sep == nullptr || !sep->is_string()) {
        return failf(Errc::InvalidArgument, "template `{}`: join wants a list and a string",
                     n.source);
      }
      bool first = true;
      for (const auto& e : *v) {
        if (!first) out += sep->get_ref<const std::string&>();
        first = false;
        print_value(e, out);
      }
    } else if (n.func == "index") {
      const json* cur = vals[0].get();
      for (size_t i = 1; i < vals.size(); ++i) {
        const json* key = vals[i].get();
        if (cur == nullptr || cur->is_null()) {
          return failf(Errc::InvalidArgument, "template `{}`: index of untyped nil", n.source);
        }
        if (cur->is_array() && key != nullptr && key->is_number_integer()) {
          long long k = key->get<long long>();
          if (k < 0 || static_cast<size_t>(k) >= cur->size()) {
            return failf(Errc::InvalidArgument, "template `{}`: index out of range: {}", n.source,
                         k);
          }
          cur = &(*cur)[static_cast<size_t>(k)];
        } else if (cur->is_object() && key != nullptr && key->is_string()) {
          auto it = cur->find(key->get<std::string>());
          cur = it == cur->end() ? nullptr : &*it;
        } else {
          return failf(Errc::InvalidArgument, "template `{}`: can't index item of type {}",
                       n.source, go_type(*cur));
        }
      }
      print(Value{.v = cur});
    }
  }
  return out;
}

}  // namespace kiste
