#pragma once
// The subset of Go's text/template that docker's and podman's `--format` flags are used with,
// applied to a JSON value (`inspect -f`, `ps --format`):
//   {{.Id}}  {{.Config.Env}}  {{.}}           field access ("<no value>" when a key is absent)
//   {{json .Config}}                          compact JSON, no HTML escaping (docker's `json`)
//   {{index .RepoTags 0}}  {{index .Labels "a.b"}}   array element / object key
//   {{join .Config.Env ","}}  {{upper .Os}}  {{lower .Os}}  {{len .RepoTags}}
//   {{- .Id -}}                               trims the white space beside the action
//   "literal text" around actions.
// Values print like Go prints the decoded JSON: strings raw, arrays `[a b]`, objects
// `map[k:v]` (keys sorted), null `<nil>`. No range/if/with/variables: parse() rejects them
// by name, so a template never half-works.
//
// nlohmann::json is a header-only dependency (json_fwd here); a caller that formats has it.
#include <kiste/base/result.hpp>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace kiste {

class GoTemplate {
 public:
  // Errors: "template: <text>: <reason>" (Errc::InvalidArgument).
  [[nodiscard]] static Result<GoTemplate> parse(std::string_view text);
  // Errors name the action: "template `{{.Id.X}}`: can't evaluate field X in type string".
  [[nodiscard]] Result<std::string> render(const nlohmann::json& data) const;

  struct Arg {
    enum class Kind { Field, String, Int };
    Kind kind = Kind::Field;
    std::vector<std::string> path;  // Field: {"Config", "Env"}; empty for `.`
    std::string text;               // String
    long long number = 0;           // Int
  };
  struct Node {
    std::string literal;    // text, when `func` and `args` are empty and !action
    bool action = false;
    std::string func;       // "" (print the single argument), "json", "index", ...
    std::vector<Arg> args;
    std::string source;     // the action as written, for messages
  };

 private:
  std::vector<Node> nodes_;
};

}  // namespace kiste
