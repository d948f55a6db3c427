#include <kiste/builder/shell_words.hpp>

#include <cctype>
#include <optional>

namespace kiste::builder {
namespace {

bool is_name_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_';
}
bool is_word_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// `${A:-${B:-…}}`: each level is a nested Lexer (and a scan for its `}`). Without a bound, 5000
// levels (a 30 KB Containerfile) overflowed the stack.
constexpr int kMaxNesting = 64;

class Lexer {
 public:
  Lexer(std::string_view in, const VarMap& vars, char escape, bool quotes, int depth = 0)
      : in_(in), vars_(vars), escape_(escape), quotes_(quotes), depth_(depth) {}

  // split=false: one word. split=true: words split on unquoted whitespace.
  Result<std::vector<std::string>> run(bool split) {
    std::vector<std::string> words;
    std::string cur;
    bool have = false;  // a quoted empty string still makes a word
    auto push = [&] {
      if (have || !cur.empty()) words.push_back(std::move(cur));
      cur.clear();
      have = false;
    };
    while (i_ < in_.size()) {
      char c = in_[i_];
      if (quotes_ && c == '\'') {
        ++i_;
        size_t end = in_.find('\'', i_);
        if (end == std::string_view::npos) return fail(Errc::InvalidArgument, "unexpected end of statement while looking for matching single-quote");
        cur.append(in_.substr(i_, end - i_));
        i_ = end + 1;
        have = true;
      } else if (quotes_ && c == '"') {
        ++i_;
        bool closed = false;
        while (i_ < in_.size()) {
          char d = in_[i_];
          if (d == '"') {
            ++i_;
            closed = true;
            break;
          }
          if (d == '$') {
            KISTE_ASSIGN_OR_RETURN(std::string v, variable());
            cur += v;
            continue;
          }
          if (d == escape_ && i_ + 1 < in_.size()) {
            char e = in_[i_ + 1];
            if (e == '"' || e == '$' || e == escape_) {
              cur += e;
            } else {
              cur += d;
              cur += e;
            }
            i_ += 2;
            continue;
          }
          cur += d;
          ++i_;
        }
        if (!closed) return fail(Errc::InvalidArgument, "unexpected end of statement while looking for matching double-quote");
        have = true;
      } else if (c == '$') {
        KISTE_ASSIGN_OR_RETURN(std::string v, variable());
        if (!split) {
          cur += v;
        } else {
          for (char ch : v) {
            if (is_word_space(ch)) {
              push();
            } else {
              cur += ch;
            }
          }
        }
      } else if (quotes_ && c == escape_) {
        if (i_ + 1 < in_.size()) {
          cur += in_[i_ + 1];
          i_ += 2;
        } else {
          cur += c;
          ++i_;
        }
      } else if (split && is_word_space(c)) {
        push();
        ++i_;
      } else {
        cur += c;
        ++i_;
      }
    }
    if (!split || have || !cur.empty()) words.push_back(std::move(cur));
    return words;
  }

 private:
  // At '$'.
  Result<std::string> variable() {
    ++i_;
    if (i_ >= in_.size()) return std::string("$");
    if (in_[i_] != '{') {
      size_t start = i_;
      while (i_ < in_.size() && is_name_char(in_[i_])) ++i_;
      if (start == i_) return std::string("$");
      return lookup(in_.substr(start, i_ - start)).value_or("");
    }
    ++i_;  // '{'
    size_t start = i_;
    while (i_ < in_.size() && is_name_char(in_[i_])) ++i_;
    std::string_view name = in_.substr(start, i_ - start);
    if (i_ >= in_.size()) return fail(Errc::InvalidArgument, "missing `}` in variable substitution");
    if (name.empty()) {
      return failf(Errc::InvalidArgument, "bad substitution: `${}{}`", in_[i_],
                   in_.substr(i_ + 1, 8));
    }
    if (in_[i_] == '}') {
      ++i_;
      return lookup(name).value_or("");
    }
    bool colon = false;
    if (in_[i_] == ':') {
      colon = true;
      ++i_;
    }
    if (i_ >= in_.size()) return fail(Errc::InvalidArgument, "missing `}` in variable substitution");
    char mod = in_[i_];
    if (mod != '-' && mod != '+' && mod != '?') {
      return failf(Errc::InvalidArgument, "unsupported modifier `{}` in `${{{}`", mod, name);
    }
    ++i_;
    // The word runs to the matching '}' (nested ${…} allowed).
    size_t wstart = i_;
    int depth = 1;
    while (i_ < in_.size()) {
      char c = in_[i_];
      if (c == escape_ && i_ + 1 < in_.size()) {
        i_ += 2;
        continue;
      }
      if (c == '{') ++depth;
      if (c == '}' && --depth == 0) break;
      ++i_;
    }
    if (i_ >= in_.size()) return fail(Errc::InvalidArgument, "missing `}` in variable substitution");
    std::string_view raw = in_.substr(wstart, i_ - wstart);
    ++i_;  // '}'
    auto val = lookup(name);
    bool set = val.has_value() && (!colon || !val->empty());
    auto word = [&]() -> Result<std::string> {
      if (depth_ >= kMaxNesting) {
        return failf(Errc::InvalidArgument, "variable substitutions nested deeper than {} levels",
                     kMaxNesting);
      }
      Lexer sub(raw, vars_, escape_, quotes_, depth_ + 1);
      KISTE_ASSIGN_OR_RETURN(auto w, sub.run(false));
      return w.empty() ? std::string() : w.front();
    };
    switch (mod) {
      case '-':
        if (set) return *val;
        return word();
      case '+':
        if (set) return word();
        return std::string();
      default: {  // '?'
        if (set) return *val;
        KISTE_ASSIGN_OR_RETURN(std::string msg, word());
        return failf(Errc::InvalidArgument, "{}: {}", name,
                     msg.empty() ? "is not allowed to be unset" : msg);
      }
    }
  }

  std::optional<std::string> lookup(std::string_view name) const {
    auto it = vars_.find(name);
    if (it == vars_.end()) return std::nullopt;
    return it->second;
  }

  std::string_view in_;
  const VarMap& vars_;
  char escape_;
  bool quotes_;
  int depth_;
  size_t i_ = 0;
};

}  // namespace

Result<std::string> expand_word(std::string_view word, const VarMap& vars, char escape) {
  Lexer lx(word, vars, escape, true);
  KISTE_ASSIGN_OR_RETURN(auto w, lx.run(false));
  return w.empty() ? std::string() : std::move(w.front());
}

Result<std::vector<std::string>> expand_words(std::string_view text, const VarMap& vars,
                                              char escape) {
  Lexer lx(text, vars, escape, true);
  return lx.run(true);
}

Result<std::string> expand_vars_only(std::string_view text, const VarMap& vars) {
  Lexer lx(text, vars, '\0', false);
  KISTE_ASSIGN_OR_RETURN(auto w, lx.run(false));
  return w.empty() ? std::string() : std::move(w.front());
}

std::vector<std::string> split_raw_words(std::string_view text, char escape) {
  std::vector<std::string> words;
  std::string cur;
  char quote = 0;
  bool in_word = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (quote == 0 && is_word_space(c)) {
      if (in_word) words.push_back(std::move(cur));
      cur.clear();
      in_word = false;
      continue;
    }
    in_word = true;
    if (c == escape && quote != '\'' && i + 1 < text.size()) {
      cur += c;
      cur += text[++i];
      continue;
    }
    if (quote == 0 && (c == '"' || c == '\'')) {
      quote = c;
    } else if (c == quote) {
      quote = 0;
    }
    cur += c;
  }
  if (in_word) words.push_back(std::move(cur));
  return words;
}

}  // namespace kiste::builder
