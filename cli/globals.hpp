#pragma once
// Options every command sees, and the one way commands report results and errors.
#include <filesystem>
#include <string>

#include <CLI/CLI.hpp>

#include <kiste/base/error.hpp>

namespace kiste::cli {

struct Globals {
  std::filesystem::path root;  // --root / KISTE_ROOT / /var/lib/kiste
  std::string log_level = "warn";
};

// Exit codes (docker/podman convention): 125 kiste failed, 126 cannot run, 127 not found.
inline constexpr int kExitFailure = 125;

// Prints "kiste: error: <context…>: <message>" on one line to stderr; returns kExitFailure.
int report(const Error& e);

// Each command registers itself; its callback throws CLI::RuntimeError(code) to set the exit code.
void register_image_commands(CLI::App& app, Globals& g);  // images inspect tag rmi prune fsck
void register_archive_commands(CLI::App& app, Globals& g);  // import save load
// pull push copy promote tags delete login logout
void register_registry_commands(CLI::App& app, Globals& g);

// `kiste inspect docker://REF`: the remote image as JSON (like skopeo inspect), without pulling.
[[nodiscard]] Result<std::string> inspect_remote_json(Globals& g, std::string_view ref);

// Turns a Result into the command's exit: prints the error and exits non-zero on failure.
void exit_on_error(const Status& s);

}  // namespace kiste::cli
