#include "cli_args.hpp"

#include <algorithm>
#include <span>
#include <utility>

#include <fmt/format.h>

#include <kiste/base/suggest.hpp>

namespace kiste::cli {

namespace {

using Entry = std::pair<std::string_view, std::string_view>;

constexpr std::string_view kLifecycle =
    "detached containers have run -d, ps, logs, attach, exec, cp, start, restart, top, stats, port, "
    "stop, kill, wait and rm so far";
constexpr std::string_view kNetworks =
    "kiste's networks have `--network NAME`, `--ip`, `--network-alias`, `-p`, `-P`, `--dns*` and "
    "`--add-host` so far";

// Docker's commands that kiste lacks.
constexpr Entry kMissingCommands[] = {
    {"pause", kLifecycle},
    {"unpause", kLifecycle}, {"rename", kLifecycle},  {"create", kLifecycle},
    {"update", kLifecycle},
    {"diff", kLifecycle},    {"events", kLifecycle},
    {"history", "`kiste inspect IMAGE` shows the image's History"},
    {"commit", "images are made by `kiste build` and `kiste import`"},
    {"export", "`kiste unpack IMAGE DIR` writes an image's filesystem"},
    {"search", "`kiste tags REPO` lists the tags of a repository"},
    {"compose", "not planned"},  {"swarm", "not planned"}, {"service", "not planned"},
    {"stack", "not planned"},    {"node", "not planned"},  {"plugin", "not planned"},
    {"context", "not planned"},  {"trust", "not planned"}, {"buildx", "`kiste build` is the builder"},
    {"builder", "`kiste build` is the builder; `kiste prune` clears what it left"},
};

// Docker's `run` flags that kiste lacks (the long and short spellings).
constexpr Entry kMissingRunFlags[] = {
    {"--cidfile", "`run -d` prints the container's id"},
    {"-a", "output is always attached"},
    {"--attach", "output is always attached"},
    {"--detach-keys", kLifecycle},
    {"--sig-proxy", "signals are always forwarded to the container"},
    {"--expose", kNetworks},
    {"--ip6", kNetworks},
    {"--mac-address", kNetworks},
    {"--link", kNetworks},
    {"--device", "devices are not passed into containers yet"},
    {"--gpus", "devices are not passed into containers yet"},
    {"--tmpfs", "use --mount type=tmpfs,target=PATH"},
    {"-l", "labels come with container listing (detached containers)"},
    {"--label", "labels come with container listing (detached containers)"},
    {"--label-file", "labels come with container listing (detached containers)"},
    {"--shm-size", "/dev/shm has the default size"},
    {"--group-add", "use --user UID:GID"},
    {"--volumes-from", "use -v or --mount"},
    {"--log-driver", "detached containers log to docker's json-file format (--log-opt max-size, max-file)"},
    {"--runtime", "kiste is its own runtime"},
    {"--ipc", "each container gets its own IPC namespace"},
    {"--pid", "each container gets its own PID namespace"},
    {"--uts", "each container gets its own UTS namespace"},
    {"--sysctl", "sysctls are not set yet"},
    {"--domainname", "use -h/--hostname"},
    {"--disable-content-trust", "kiste verifies digests; signatures are not checked yet"},
};

constexpr Entry kMissingBuildFlags[] = {
    {"--label", "use LABEL in the Containerfile"},
    {"--pull", "FROM images are pulled when the store does not have them"},
    {"--squash", "each step is its own layer"},
    {"--add-host", kNetworks},
    {"--shm-size", "/dev/shm has the default size"},
    {"--isolation", "RUN steps run in kiste's own containers"},
    {"--load", "a built image is in the store already"},
};

std::optional<std::string_view> lookup(std::span<const Entry> table, std::string_view key) {
  for (const auto& [k, why] : table) {
    if (k == key) return why;
  }
  return std::nullopt;
}

bool looks_like_flag(std::string_view token) { return token.size() > 1 && token[0] == '-'; }

std::string qualified(std::string_view parent, std::string_view word) {
  if (parent.empty()) return std::string(word);
  if (word.empty()) return std::string(parent);
  return fmt::format("{} {}", parent, word);
}

// The command names from the top down to `cmd` ("image ls"), without the program's name.
std::string command_path(const CLI::App& cmd) {
  std::string path;
  for (const CLI::App* c = &cmd; c != nullptr && c->get_parent() != nullptr; c = c->get_parent()) {
    path = path.empty() ? c->get_name() : c->get_name() + " " + path;
  }
  return path;
}

}  // namespace

std::optional<std::string_view> missing_docker_command(std::string_view name) {
  return lookup(kMissingCommands, name);
}

std::optional<std::string_view> missing_docker_flag(std::string_view command,
                                                    std::string_view flag) {
  if (command == "run") return lookup(kMissingRunFlags, flag);
  if (command == "build") return lookup(kMissingBuildFlags, flag);
  return std::nullopt;
}

std::string flag_of(std::string_view token, const std::vector<std::string>& known) {
  if (token.starts_with("--")) return std::string(token.substr(0, token.find('=')));
  if (token.size() <= 2) return std::string(token);
  // -dit, -p8080:80: short flags run together, or one with its value attached.
  for (char c : token.substr(1)) {
    std::string one{'-', c};
    if (std::find(known.begin(), known.end(), one) == known.end()) return one;
  }
  return std::string(token.substr(0, 2));
}

std::string unknown_flag_message(std::string_view command, std::string_view token,
                                 const std::vector<std::string>& known) {
  std::string flag = flag_of(token, known);
  // "container run" has run's flags.
  std::string_view last = command.substr(command.rfind(' ') + 1);
  if (auto why = missing_docker_flag(last, flag)) {
    return fmt::format("{}: not supported by kiste yet ({})", flag, *why);
  }
  if (auto near = closest_match(flag, known)) {
    return fmt::format("unknown flag {} (did you mean {}?)", flag, *near);
  }
  return fmt::format("unknown flag {} (see `{}`)", flag,
                     qualified(qualified("kiste", command), "--help"));
}

std::string unknown_command_message(std::string_view parent, std::string_view word,
                                    const std::vector<std::string>& known) {
  if (parent.empty()) {
    if (auto why = missing_docker_command(word)) {
      return fmt::format("{}: not supported by kiste yet ({})", word, *why);
    }
  }
  if (auto near = closest_match(word, known)) {
    return fmt::format("unknown command {} (did you mean {}?)", qualified(parent, word),
                       qualified(parent, *near));
  }
  return fmt::format("unknown command {} (see `{}`)", qualified(parent, word),
                     qualified(qualified("kiste", parent), "--help"));
}

std::vector<std::string> known_flags(const CLI::App& cmd) {
  std::vector<std::string> out;
  for (const CLI::App* c = &cmd; c != nullptr; c = c->get_parent()) {
    for (const CLI::Option* o : c->get_options()) {
      for (const auto& l : o->get_lnames()) out.push_back("--" + l);
      for (const auto& s : o->get_snames()) out.push_back("-" + s);
    }
  }
  return out;
}

std::vector<std::string> subcommand_names(const CLI::App& cmd) {
  std::vector<std::string> out;
  for (const CLI::App* s : cmd.get_subcommands([](const CLI::App*) { return true; })) {
    if (s->get_name().empty()) continue;
    out.push_back(s->get_name());
    for (const auto& a : s->get_aliases()) out.push_back(a);
  }
  return out;
}

const CLI::App& innermost_command(const CLI::App& app) {
  const CLI::App* c = &app;
  for (;;) {
    auto subs = c->get_subcommands();
    if (subs.empty()) return *c;
    c = subs.front();
  }
}

std::optional<std::string> explain_rejected(const CLI::App& app) {
  const CLI::App& cmd = innermost_command(app);
  const std::vector<std::string> rest = app.remaining(true);
  std::vector<std::string> flags = known_flags(cmd);
  for (const auto& t : rest) {
    if (t == "--") break;
    if (looks_like_flag(t)) return unknown_flag_message(command_path(cmd), t, flags);
  }
  // A group (image, volume, …) given no known subcommand.
  if (cmd.get_require_subcommand_min() > 0 && cmd.get_subcommands().empty() && !rest.empty()) {
    return unknown_command_message(command_path(cmd), rest.front(), subcommand_names(cmd));
  }
  if (!rest.empty()) {
    std::string path = command_path(cmd);
    return fmt::format("{}unexpected argument {} (see `{}`)", path.empty() ? "" : path + ": ",
                       rest.front(), qualified(qualified("kiste", path), "--help"));
  }
  return std::nullopt;
}

std::optional<std::string> unknown_leading_flag(const CLI::App& cmd) {
  const std::vector<std::string> rest = cmd.remaining();
  if (rest.empty() || !looks_like_flag(rest.front()) || rest.front() == "--") return std::nullopt;
  return unknown_flag_message(command_path(cmd), rest.front(), known_flags(cmd));
}

}  // namespace kiste::cli
