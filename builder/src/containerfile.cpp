#include <kiste/builder/containerfile.hpp>

#include <algorithm>
#include <array>
#include <cctype>
#include <utility>

#include <nlohmann/json.hpp>

#include <kiste/builder/copy_flags.hpp>
#include <kiste/builder/shell_words.hpp>

namespace kiste::builder {
namespace {

struct KindName {
  InstructionKind kind;
  std::string_view name;
};
constexpr std::array<KindName, 18> kKinds{{
    {InstructionKind::From, "FROM"},         {InstructionKind::Run, "RUN"},
    {InstructionKind::Cmd, "CMD"},           {InstructionKind::Entrypoint, "ENTRYPOINT"},
    {InstructionKind::Copy, "COPY"},         {InstructionKind::Add, "ADD"},
    {InstructionKind::Env, "ENV"},           {InstructionKind::Arg, "ARG"},
    {InstructionKind::Workdir, "WORKDIR"},   {InstructionKind::User, "USER"},
    {InstructionKind::Label, "LABEL"},       {InstructionKind::Expose, "EXPOSE"},
    {InstructionKind::Volume, "VOLUME"},     {InstructionKind::Shell, "SHELL"},
    {InstructionKind::Stopsignal, "STOPSIGNAL"}, {InstructionKind::Healthcheck, "HEALTHCHECK"},
    {InstructionKind::Onbuild, "ONBUILD"},   {InstructionKind::Maintainer, "MAINTAINER"},
}};

std::vector<std::string_view> allowed_flags(InstructionKind k) {
  switch (k) {
    case InstructionKind::From: return {"platform"};
    case InstructionKind::Run: return {"mount", "network", "security"};
    case InstructionKind::Copy: return {"from", "chown", "chmod", "link", "exclude", "parents"};
    case InstructionKind::Add:
      return {"chown", "chmod", "checksum", "link", "exclude", "keep-git-dir"};
    case InstructionKind::Healthcheck:
      return {"interval", "timeout", "start-period", "start-interval", "retries"};
    default: return {};
  }
}

bool is_blank(char c) { return c == ' ' || c == '\t'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && (is_blank(s.front()) || s.front() == '\r')) s.remove_prefix(1);
  while (!s.empty() && (is_blank(s.back()) || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

std::string upper(std::string_view s) {
  std::string r(s);
  for (char& c : r) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return r;
}

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t sub = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, sub});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

// A logical line: text plus where each piece came from, for line:column in errors.
struct Segment {
  size_t offset;  // in the logical text
  SourcePos pos;
};
struct Logical {
  std::string text;
  std::vector<Segment> segments;
  SourcePos at(size_t off) const {
    SourcePos p = segments.empty() ? SourcePos{1, 1} : segments.front().pos;
    size_t base = 0;
    for (const auto& s : segments) {
      if (s.offset > off) break;
      p = s.pos;
      base = s.offset;
    }
    p.column += static_cast<int>(off - base);
    return p;
  }
};

class LineParser {
 public:
  LineParser(const Logical& l, std::string_view file, char escape)
      : l_(l), file_(file), escape_(escape) {}

  std::unexpected<Error> error(size_t off, std::string msg) const {
    SourcePos p = l_.at(off);
    return fail(Errc::InvalidArgument, fmt::format("{}:{}:{}: {}", file_, p.line, p.column, msg));
  }

  Result<Instruction> parse() {
    const std::string& t = l_.text;
    size_t i = 0;
    while (i < t.size() && is_blank(t[i])) ++i;
    size_t kw_start = i;
    while (i < t.size() && !is_blank(t[i])) ++i;
    std::string kw = upper(std::string_view(t).substr(kw_start, i - kw_start));
    Instruction ins;
    ins.pos = l_.at(kw_start);
    ins.original = std::string(trim(t));
    auto found = std::find_if(kKinds.begin(), kKinds.end(),
                              [&](const KindName& k) { return k.name == kw; });
    if (found == kKinds.end()) {
      std::string msg = fmt::format("unknown instruction `{}`", t.substr(kw_start, i - kw_start));
      if (auto s = suggest_keyword(kw)) msg += fmt::format(" (did you mean `{}`?)", *s);
      return error(kw_start, std::move(msg));
    }
    ins.kind = found->kind;
    // Flags.
    auto allowed = allowed_flags(ins.kind);
    for (;;) {
      while (i < t.size() && is_blank(t[i])) ++i;
      if (t.compare(i, 2, "--") != 0) break;
      size_t fstart = i;
      char quote = 0;
      while (i < t.size() && (quote != 0 || !is_blank(t[i]))) {
        if (quote == 0 && (t[i] == '"' || t[i] == '\'')) {
          quote = t[i];
        } else if (t[i] == quote) {
          quote = 0;
        }
        ++i;
      }
      std::string_view tok = std::string_view(t).substr(fstart + 2, i - fstart - 2);
      Flag f;
      f.pos = l_.at(fstart);
      size_t eq = tok.find('=');
      f.name = std::string(tok.substr(0, eq));
      if (eq != std::string_view::npos) f.value = std::string(tok.substr(eq + 1));
      if (f.name.empty()) return error(fstart, "empty flag name");
      if (std::find(allowed.begin(), allowed.end(), f.name) == allowed.end()) {
        return error(fstart, fmt::format("unknown flag `--{}` for {}", f.name, found->name));
      }
      // A COPY/ADD flag value that names no build arg and needs no unquoting is checked here, at
      // its line and column; the others once the builder has expanded them.
      bool copy_like = ins.kind == InstructionKind::Copy || ins.kind == InstructionKind::Add;
      const std::string raw = f.value.value_or("");
      if (copy_like && raw.find_first_of("$\"'") == std::string::npos &&
          raw.find(escape_) == std::string::npos) {
        CopyFlags scratch;
        if (auto s = apply_copy_flag(scratch, f.name, raw); !s) return error(fstart, s.error().message);
      }
      ins.flags.push_back(std::move(f));
    }
    rest_off_ = i;
    rest_ = std::string(trim(std::string_view(t).substr(i)));
    KISTE_TRY(parse_args(ins));
    return ins;
  }

 private:
  Result<bool> try_json(Instruction& ins) {
    if (rest_.empty() || rest_.front() != '[') return false;
    auto j = nlohmann::json::parse(rest_, nullptr, false);
    if (j.is_discarded() || !j.is_array()) return false;
    std::vector<std::string> out;
    for (const auto& e : j) {
      if (!e.is_string()) return false;
      out.push_back(e.get<std::string>());
    }
    ins.exec_form = true;
    ins.args = std::move(out);
    return true;
  }

  Status need_args(const Instruction& ins, size_t n, std::string_view what = "argument") {
    if (ins.args.size() < n) {
      return error(rest_off_, fmt::format("{} requires at least {} {}{}", keyword(ins.kind), n,
                                          what, n == 1 ? "" : "s"));
    }
    return {};
  }

  Status heredocs(Instruction& ins, const std::vector<std::string>& words) {
    for (const auto& w : words) {
      if (w.size() < 3 || w.compare(0, 2, "<<") != 0) continue;
      std::string_view s = std::string_view(w).substr(2);
      Heredoc h;
      if (!s.empty() && s.front() == '-') {
        h.strip_tabs = true;
        s.remove_prefix(1);
      }
      if (s.size() >= 2 && (s.front() == '"' || s.front() == '\'') && s.back() == s.front()) {
        h.expand = false;
        s = s.substr(1, s.size() - 2);
      }
      if (s.empty()) continue;
      bool ok = std::all_of(s.begin(), s.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' || c == '-' ||
               c == '.';
      });
      if (!ok) continue;
      h.name = std::string(s);
      ins.heredocs.push_back(std::move(h));
    }
    return {};
  }

  Status key_values(Instruction& ins, bool legacy_ok) {
    auto words = split_raw_words(rest_, escape_);
    if (words.empty()) return need_args(ins, 1);
    if (legacy_ok && words.front().find('=') == std::string::npos) {
      // Legacy `ENV key value with spaces`.
      if (words.size() < 2) {
        return error(rest_off_, fmt::format("{} `{}` needs a value (`{} {}=value`)",
                                            keyword(ins.kind), words.front(), keyword(ins.kind),
                                            words.front()));
      }
      std::string_view r = rest_;
      r.remove_prefix(words.front().size());
      ins.pairs.push_back({words.front(), std::string(trim(r))});
      return {};
    }
    for (const auto& w : words) {
      size_t eq = w.find('=');
      if (eq == std::string::npos) {
        return error(rest_off_, fmt::format("syntax error: can't find `=` in `{}`: must be of the "
                                            "form name=value",
                                            w));
      }
      if (eq == 0) return error(rest_off_, fmt::format("{} names can not be blank", keyword(ins.kind)));
      ins.pairs.push_back({w.substr(0, eq), w.substr(eq + 1)});
    }
    return {};
  }

  Status parse_args(Instruction& ins) {
    using K = InstructionKind;
    switch (ins.kind) {
      case K::Run:
      case K::Cmd:
      case K::Entrypoint: {
        KISTE_ASSIGN_OR_RETURN(bool json, try_json(ins));
        if (!json) {
          if (!rest_.empty()) ins.args = {rest_};
          if (ins.kind == K::Run) KISTE_TRY(heredocs(ins, split_raw_words(rest_, escape_)));
          KISTE_TRY(need_args(ins, 1));
        } else if (ins.kind == K::Run && ins.args.empty()) {
          return need_args(ins, 1);
        }
        return {};
      }
      case K::Copy:
      case K::Add: {
        KISTE_ASSIGN_OR_RETURN(bool json, try_json(ins));
        if (!json) {
          ins.args = split_raw_words(rest_, escape_);
          KISTE_TRY(heredocs(ins, ins.args));
        }
        return need_args(ins, 2);
      }
      case K::Volume: {
        KISTE_ASSIGN_OR_RETURN(bool json, try_json(ins));
        if (!json) ins.args = split_raw_words(rest_, escape_);
        return need_args(ins, 1);
      }
      case K::Shell: {
        KISTE_ASSIGN_OR_RETURN(bool json, try_json(ins));
        if (!json) return error(rest_off_, "SHELL requires the arguments to be in JSON form");
        return need_args(ins, 1);
      }
      case K::Expose:
        ins.args = split_raw_words(rest_, escape_);
        return need_args(ins, 1);
      case K::From: {
        ins.args = split_raw_words(rest_, escape_);
        if (ins.args.size() == 3 && upper(ins.args[1]) == "AS") {
          const std::string& n = ins.args[2];
          bool ok = std::isalpha(static_cast<unsigned char>(n.front())) != 0 &&
                    std::all_of(n.begin(), n.end(), [](char c) {
                      return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' ||
                             c == '-' || c == '.';
                    });
          if (!ok) return error(rest_off_, fmt::format("invalid stage name `{}`: must start with a letter and contain only letters, digits, `_`, `-`, `.`", n));
          return {};
        }
        if (ins.args.size() != 1) {
          return error(rest_off_, "FROM requires either one argument, or three: FROM <image> [AS <name>]");
        }
        return {};
      }
      case K::Env:
        return key_values(ins, true);
      case K::Label:
        return key_values(ins, true);
      case K::Arg: {
        auto words = split_raw_words(rest_, escape_);
        if (words.empty()) return error(rest_off_, "ARG requires at least one argument");
        for (auto& w : words) {
          size_t eq = w.find('=');
          if (eq == 0) return error(rest_off_, "ARG names can not be blank");
          if (eq == std::string::npos) {
            ins.pairs.push_back({w, std::nullopt});
          } else {
            ins.pairs.push_back({w.substr(0, eq), w.substr(eq + 1)});
          }
        }
        return {};
      }
      case K::Workdir:
      case K::User:
      case K::Stopsignal:
      case K::Maintainer:
        if (!rest_.empty()) ins.args = {rest_};
        return need_args(ins, 1);
      case K::Healthcheck: {
        auto words = split_raw_words(rest_, escape_);
        if (words.empty()) return error(rest_off_, "HEALTHCHECK requires at least one argument");
        std::string head = upper(words.front());
        if (head == "NONE") {
          if (words.size() != 1) return error(rest_off_, "HEALTHCHECK NONE takes no arguments");
          if (!ins.flags.empty()) return error(rest_off_, "HEALTHCHECK NONE takes no flags");
          ins.args = {"NONE"};
          return {};
        }
        if (head != "CMD") {
          return error(rest_off_, fmt::format("unknown type `{}` in HEALTHCHECK (try CMD)", words.front()));
        }
        std::string_view r = rest_;
        r.remove_prefix(words.front().size());
        rest_off_ += words.front().size();
        rest_ = std::string(trim(r));
        KISTE_ASSIGN_OR_RETURN(bool json, try_json(ins));
        if (!json) {
          if (rest_.empty()) return error(rest_off_, "HEALTHCHECK CMD requires a command");
          ins.args = {rest_};
        }
        ins.args.insert(ins.args.begin(), "CMD");
        return {};
      }
      case K::Onbuild: {
        if (rest_.empty()) return need_args(ins, 1);
        std::string inner = upper(split_raw_words(rest_, escape_).front());
        if (inner == "ONBUILD") return error(rest_off_, "chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed");
        if (inner == "FROM" || inner == "MAINTAINER") {
          return error(rest_off_, fmt::format("{} isn't allowed as an ONBUILD trigger", inner));
        }
        // Validate the trigger now, so errors point at this line.
        Logical sub;
        sub.text = rest_;
        sub.segments.push_back({0, l_.at(rest_off_)});
        LineParser p(sub, file_, escape_);
        KISTE_TRY(p.parse());
        ins.trigger = rest_;
        return {};
      }
    }
    return {};
  }

  const Logical& l_;
  std::string_view file_;
  char escape_;
  size_t rest_off_ = 0;
  std::string rest_;
};

struct PhysLine {
  std::string_view text;
  int number;
};

std::vector<PhysLine> split_lines(std::string_view text) {
  std::vector<PhysLine> out;
  int n = 1;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) {
      if (start < text.size()) out.push_back({text.substr(start), n});
      break;
    }
    std::string_view l = text.substr(start, end - start);
    if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
    out.push_back({l, n++});
    start = end + 1;
  }
  return out;
}

bool is_comment(std::string_view l) {
  l = trim(l);
  return !l.empty() && l.front() == '#';
}

}  // namespace

std::string_view keyword(InstructionKind k) {
  for (const auto& e : kKinds) {
    if (e.kind == k) return e.name;
  }
  return "?";
}

const Flag* Instruction::flag(std::string_view name) const {
  for (const auto& f : flags) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

std::vector<std::string> Instruction::flag_values(std::string_view name) const {
  std::vector<std::string> out;
  for (const auto& f : flags) {
    if (f.name == name) out.push_back(f.value.value_or(""));
  }
  return out;
}

std::optional<std::string> suggest_keyword(std::string_view word) {
  std::string w = upper(word);
  size_t best = 3;
  std::optional<std::string> out;
  for (const auto& k : kKinds) {
    size_t d = edit_distance(w, k.name);
    size_t limit = std::max<size_t>(1, k.name.size() / 3);
    if (d <= limit && d < best) {
      best = d;
      out = std::string(k.name);
    }
  }
  return out;
}

Result<Instruction> parse_instruction(std::string_view line, std::string_view name, SourcePos pos,
                                      char escape) {
  Logical l;
  l.text = std::string(line);
  l.segments.push_back({0, pos});
  LineParser p(l, name, escape);
  return p.parse();
}

Result<Containerfile> parse_containerfile(std::string_view text, std::string_view name) {
  Containerfile cf;
  cf.name = std::string(name);
  auto lines = split_lines(text);
  auto err = [&](int line, int col, std::string msg) {
    return fail(Errc::InvalidArgument, fmt::format("{}:{}:{}: {}", name, line, col, msg));
  };
  // Parser directives: only at the very top, `# key=value`.
  size_t i = 0;
  bool seen_escape = false;
  for (; i < lines.size(); ++i) {
    std::string_view l = trim(lines[i].text);
    if (l.empty() || l.front() != '#') break;
    std::string_view body = trim(l.substr(1));
    size_t eq = body.find('=');
    if (eq == std::string_view::npos) break;
    std::string key = upper(trim(body.substr(0, eq)));
    std::string_view val = trim(body.substr(eq + 1));
    bool word = !key.empty() && std::all_of(key.begin(), key.end(), [](char c) {
      return std::isalnum(static_cast<unsigned char>(c)) != 0;
    });
    if (!word) break;
    if (key == "ESCAPE") {
      if (seen_escape) return err(lines[i].number, 1, "only one escape parser directive can be used");
      seen_escape = true;
      if (val != "\\" && val != "`") {
        return err(lines[i].number, 1,
                   fmt::format("invalid escape token `{}`: must be ` or \\", val));
      }
      cf.escape = val.front();
    } else if (key == "SYNTAX") {
      if (cf.syntax) return err(lines[i].number, 1, "only one syntax parser directive can be used");
      cf.syntax = std::string(val);
      cf.notes.push_back(fmt::format("{}:{}: `# syntax={}` is ignored: kiste has its own frontend",
                                     name, lines[i].number, val));
    } else if (key == "CHECK") {
      // BuildKit's lint directive: accepted, nothing to do.
    } else {
      break;  // an unknown directive is a comment and ends the directive block
    }
  }
  const char esc = cf.escape;
  auto continues = [&](std::string_view l) -> std::optional<std::string_view> {
    std::string_view t = l;
    while (!t.empty() && is_blank(t.back())) t.remove_suffix(1);
    if (!t.empty() && t.back() == esc) {
      t.remove_suffix(1);
      return t;
    }
    return std::nullopt;
  };
  while (i < lines.size()) {
    std::string_view l = lines[i].text;
    if (trim(l).empty() || is_comment(l)) {
      ++i;
      continue;
    }
    Logical lg;
    for (;;) {
      std::string_view cur = lines[i].text;
      auto cont = continues(cur);
      std::string_view piece = cont ? *cont : cur;
      lg.segments.push_back({lg.text.size(), {lines[i].number, 1}});
      lg.text.append(piece);
      ++i;
      if (!cont) break;
      // Skip comments and empty lines inside a continuation.
      while (i < lines.size() && (is_comment(lines[i].text) || trim(lines[i].text).empty())) {
        if (trim(lines[i].text).empty()) {
          cf.notes.push_back(fmt::format("{}:{}: empty continuation line", name, lines[i].number));
        }
        ++i;
      }
      if (i >= lines.size()) break;
    }
    LineParser p(lg, name, esc);
    KISTE_ASSIGN_OR_RETURN(Instruction ins, p.parse());
    // Heredoc bodies follow the instruction line.
    for (auto& h : ins.heredocs) {
      bool closed = false;
      while (i < lines.size()) {
        std::string_view body = lines[i].text;
        ++i;
        if (h.strip_tabs) {
          while (!body.empty() && body.front() == '\t') body.remove_prefix(1);
        }
        if (body == h.name) {
          closed = true;
          break;
        }
        h.content.append(body);
        h.content.push_back('\n');
      }
      if (!closed) {
        return err(ins.pos.line, ins.pos.column,
                   fmt::format("unterminated heredoc `{}`: no line `{}` before the end of the file",
                               h.name, h.name));
      }
    }
    cf.instructions.push_back(std::move(ins));
  }
  if (cf.instructions.empty()) return fail(Errc::InvalidArgument, fmt::format("{}: file with no instructions", name));
  if (cf.instructions.front().kind != InstructionKind::From &&
      cf.instructions.front().kind != InstructionKind::Arg) {
    const auto& f = cf.instructions.front();
    return err(f.pos.line, f.pos.column, "the first instruction must be FROM (or ARG before FROM)");
  }
  for (const auto& ins : cf.instructions) {
    if (ins.kind == InstructionKind::From) break;
    if (ins.kind != InstructionKind::Arg) {
      return err(ins.pos.line, ins.pos.column,
                 fmt::format("{} before the first FROM: only ARG may come before FROM",
                             keyword(ins.kind)));
    }
  }
  return cf;
}

}  // namespace kiste::builder
