#pragma once
// The Containerfile (Dockerfile) language: a parser that turns text into instructions, keeping
// raw words (quotes and `$VAR` intact) so that variable substitution happens later, at plan time,
// with the ARG/ENV values in scope (as Docker does). Every error names file:line:column.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <kiste/base/error.hpp>

namespace kiste::builder {

struct SourcePos {
  int line = 0;    // 1-based
  int column = 0;  // 1-based
  friend bool operator==(const SourcePos&, const SourcePos&) = default;
};

enum class InstructionKind {
  From, Run, Cmd, Entrypoint, Copy, Add, Env, Arg, Workdir, User, Label, Expose, Volume,
  Shell, Stopsignal, Healthcheck, Onbuild, Maintainer,
};

// Upper-case keyword ("RUN") for a kind.
[[nodiscard]] std::string_view keyword(InstructionKind k);

struct Flag {
  std::string name;                  // "from" for --from=build
  std::optional<std::string> value;  // absent for a bare `--link`
  SourcePos pos;
};

struct Heredoc {
  std::string name;      // the delimiter word
  std::string content;   // body, each line ending in "\n"
  bool expand = true;    // false when the delimiter was quoted (`<<"EOF"`)
  bool strip_tabs = false;  // `<<-EOF`
};

struct Instruction {
  InstructionKind kind = InstructionKind::Run;
  SourcePos pos;             // of the keyword
  std::string original;      // the logical line as written (continuations joined)
  std::vector<Flag> flags;
  bool exec_form = false;    // JSON array form
  // Exec form: the decoded JSON strings. Shell form: the whitespace-separated words, raw
  // (quotes and `$` kept) for word instructions; for RUN/CMD/ENTRYPOINT/MAINTAINER shell form a
  // single element holding the command text.
  std::vector<std::string> args;
  std::vector<Heredoc> heredocs;
  // ENV/LABEL/ARG: key/value pairs, raw (unexpanded, quotes kept). ARG without default has no
  // value.
  struct KeyValue {
    std::string key;
    std::optional<std::string> value;
  };
  std::vector<KeyValue> pairs;
  // ONBUILD: the trigger instruction text (parsed again when triggered).
  std::string trigger;

  [[nodiscard]] const Flag* flag(std::string_view name) const;
  [[nodiscard]] std::vector<std::string> flag_values(std::string_view name) const;
};

struct Containerfile {
  std::string name;  // for messages
  char escape = '\\';
  std::optional<std::string> syntax;  // `# syntax=` (accepted and ignored)
  std::vector<std::string> notes;     // warnings for the user (empty continuation lines, …)
  std::vector<Instruction> instructions;
};

// Parses a whole Containerfile. `name` is used in error messages ("Containerfile:3:5: …").
[[nodiscard]] Result<Containerfile> parse_containerfile(std::string_view text,
                                                        std::string_view name = "Containerfile");

// Parses one instruction line (ONBUILD triggers); `pos` is where it came from.
[[nodiscard]] Result<Instruction> parse_instruction(std::string_view line, std::string_view name,
                                                    SourcePos pos, char escape = '\\');

// The closest known instruction keyword within a small edit distance, if any ("RUNN" → "RUN").
[[nodiscard]] std::optional<std::string> suggest_keyword(std::string_view word);

}  // namespace kiste::builder
