#pragma once
// What a user typed wrong, in one line: unknown commands and flags with a "did you mean", and
// the docker commands and flags kiste does not have yet, named as such. Unit-tested with real
// CLI11 apps (cli/tests/cli_args_test.cpp).
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <CLI/CLI.hpp>

namespace kiste::cli {

// A docker command kiste does not have (yet): why, and what to use instead. Nothing for names
// docker does not have either.
[[nodiscard]] std::optional<std::string_view> missing_docker_command(std::string_view name);
// A docker flag of `command` (run, build, images, …) that kiste does not have (yet).
[[nodiscard]] std::optional<std::string_view> missing_docker_flag(std::string_view command,
                                                                  std::string_view flag);

// The flag a command-line token names: "--name=web" -> "--name"; combined short flags
// ("-dit") -> the first letter `known` does not list ("-d").
[[nodiscard]] std::string flag_of(std::string_view token, const std::vector<std::string>& known);

// "unknown flag --rn (did you mean --rm?)", or for a docker flag kiste lacks
// "--name: not supported by kiste yet (…)".
[[nodiscard]] std::string unknown_flag_message(std::string_view command, std::string_view token,
                                               const std::vector<std::string>& known);
// "unknown command biuld (did you mean build?)", "ps: not supported by kiste yet (…)";
// `parent` is "" at the top or the group ("image") the word was given to.
[[nodiscard]] std::string unknown_command_message(std::string_view parent, std::string_view word,
                                                  const std::vector<std::string>& known);

// Every flag `cmd` and the commands above it accept: "--rm", "-t", "--root", ….
[[nodiscard]] std::vector<std::string> known_flags(const CLI::App& cmd);
// The names (and aliases) of `cmd`'s subcommands.
[[nodiscard]] std::vector<std::string> subcommand_names(const CLI::App& cmd);

// After CLI11 rejected a command line: one line naming the first unknown flag, command or
// argument, or nothing when the error is about something else (a missing value, a bad number).
[[nodiscard]] std::optional<std::string> explain_rejected(const CLI::App& app);
// For a command that takes everything after its options as a command (run, with CLI11's
// prefix_command): the message for an unknown flag before the image, if there is one.
[[nodiscard]] std::optional<std::string> unknown_leading_flag(const CLI::App& cmd);

// The innermost subcommand the parse reached (the app itself when none).
[[nodiscard]] const CLI::App& innermost_command(const CLI::App& app);

}  // namespace kiste::cli
