// The kiste program: argument parsing and wiring only; all logic lives in the libraries.
#include <pwd.h>
#include <unistd.h>

#include <cstdlib>
#include <cstdio>
#include <string_view>

#include <CLI/CLI.hpp>

#include <kiste/base/interrupt.hpp>
#include <kiste/base/log.hpp>
#include <kiste/base/sys.hpp>
#include <kiste/runtime/rootless.hpp>

#include "cli_args.hpp"
#include "globals.hpp"
#include "run_network.hpp"
#include "trust_commands.hpp"

namespace kiste::cli {

int report(const Error& e) {
  std::fprintf(stderr, "kiste: error: %s\n", e.to_string().c_str());
  return kExitFailure;
}

void exit_on_error(const Status& s) {
  if (!s) throw CLI::RuntimeError(report(s.error()));
}

image::Store open_store(const Globals& g) {
  return value_or_exit(with_context(image::Store::open(g.root), "open store"));
}

image::Store open_existing_store(const Globals& g) {
  return value_or_exit(image::Store::open(g.root, {.create = false}));
}

std::string human_size(int64_t bytes) {
  const char* units[] = {"B", "kB", "MB", "GB", "TB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1000 && u < 4) {
    v /= 1000;
    ++u;
  }
  return u == 0 ? fmt::format("{}B", bytes) : fmt::format("{:.3g}{}", v, units[u]);
}

bool command_runs_outside_userns(std::string_view command) {
  // Nothing of the store or of a container: credentials and the version only; `exec` joins the
  // container's own user namespace once it knows the container (cmd_exec).
  return command == "version" || command == "login" || command == "logout" || command == "exec";
}

Status enter_rootless(const Result<runtime::UserPaths>& paths,
                      const runtime::EnvLookup& env) {
  // Everything is checked before anything is made.
  if (!paths) return std::unexpected(paths.error());
  const uid_t uid = ::getuid();
  const gid_t gid = ::getgid();
  const struct passwd* pw = ::getpwuid(uid);
  const std::string user = pw != nullptr && pw->pw_name != nullptr ? pw->pw_name : "";
  KISTE_ASSIGN_OR_RETURN(runtime::RootlessPlan plan, runtime::plan_rootless(uid, gid, user, env));
  KISTE_TRY(with_context(sys::restrict_dir(paths->state, 0700), "runtime state dir"));
  KISTE_TRY(with_context(runtime::enter_rootless_namespace(plan), "rootless user namespace"));
  return {};
}

}  // namespace kiste::cli

int main(int argc, char** argv) {
  using namespace kiste::cli;
  // runc's command line: as `kiste-runc` (the symlink engines are pointed at) or `kiste oci`.
  if (const std::string_view self = argc > 0 ? argv[0] : "";
      self == "kiste-runc" || self.ends_with("/kiste-runc")) {
    return oci_main(argc - 1, argv + 1);
  }
  if (argc >= 2 && std::string_view(argv[1]) == "oci") return oci_main(argc - 2, argv + 2);
  CLI::App app{"kiste: build, move and run OCI images", "kiste"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "kiste 0.1.0");
  Globals g;
  // An ordinary user runs rootless (runtime/rootless.hpp): the store under $XDG_DATA_HOME and,
  // once the command is known, kiste moves into its user namespace.
  const bool as_user = ::getuid() != 0;
  const auto env = [](const char* name) -> const char* { return std::getenv(name); };
  kiste::Result<kiste::runtime::UserPaths> user_paths =
      as_user ? kiste::runtime::user_paths(env) : kiste::Result<kiste::runtime::UserPaths>{};
  const char* env_root = std::getenv("KISTE_ROOT");
  g.root = env_root && *env_root     ? env_root
           : as_user && user_paths ? user_paths->store
                                     : "/var/lib/kiste";
  app.add_option("--root", g.root,
                 "storage root (default $KISTE_ROOT, else /var/lib/kiste for root and "
                 "$XDG_DATA_HOME/kiste for other users)");
  app.add_option("--log-level", g.log_level, "debug, info, warn or off")
      ->check(CLI::IsMember({"debug", "info", "warn", "off"}));
  std::string_view wanted;
  app.parse_complete_callback([&g, &wanted, &user_paths, as_user, env] {
    using kiste::log::Level;
    kiste::log::set_level(g.log_level == "debug"  ? Level::Debug
                          : g.log_level == "info" ? Level::Info
                          : g.log_level == "off"  ? Level::Off
                                                  : Level::Warn);
    if (as_user && !command_runs_outside_userns(wanted)) {
      exit_on_error(enter_rootless(user_paths, env));
    }
  });

  // Registering every command's options costs ~0.4 ms of start-up (measured on `run`), so
  // groups are registered, busiest first, only until the one the command line names exists;
  // help, a typo or no command at all still get them all.
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--root" || a == "--log-level") {
      ++i;
    } else if (!a.starts_with("-")) {
      wanted = a;
      break;
    }
  }
  using Register = void (*)(CLI::App&, Globals&);
  for (Register r : {Register{register_run_commands}, Register{register_build_commands},
                     Register{register_image_commands}, Register{register_registry_commands},
                     Register{register_archive_commands}, Register{register_system_commands},
                     Register{register_network_commands}, Register{register_manifest_commands},
                     Register{register_trust_commands}}) {
    r(app, g);
    const std::string name(wanted);
    if (!name.empty() &&
        !app.get_subcommands([&name](CLI::App* c) { return c->check_name(name); }).empty()) {
      break;
    }
  }
  app.footer("Run `kiste COMMAND --help` for more information on a command.\n"
             "`kiste oci COMMAND` (or `kiste-runc COMMAND`) is the OCI runtime command line of runc.");

  if (wanted.empty() || wanted == "help") {
    // Plain `kiste` (and `kiste help [COMMAND]`) prints help and succeeds, as docker does;
    // `kiste --help`, `--version` and a bad global flag go through the parser.
    bool parser_wanted = false;
    for (int i = 1; i < argc && wanted.empty(); ++i) {
      std::string_view a = argv[i];
      if (a == "--root" || a == "--log-level") {
        ++i;
      } else if (a.starts_with("-") && !a.starts_with("--root=") && !a.starts_with("--log-level=")) {
        parser_wanted = true;
      }
    }
    if (!parser_wanted) {
      const CLI::App* about = &app;
      for (int i = 1; i + 1 < argc; ++i) {
        if (std::string_view(argv[i]) != "help") continue;
        const std::string name = argv[i + 1];
        auto hit = app.get_subcommands([&name](CLI::App* c) { return c->check_name(name); });
        if (!hit.empty()) about = hit.front();
        break;
      }
      std::fputs(about == &app ? app.help().c_str() : about->help("kiste").c_str(), stdout);
      return 0;
    }
  } else if (const std::string name(wanted);
             app.get_subcommands([&name](CLI::App* c) { return c->check_name(name); }).empty()) {
    return report(kiste::Error{.code = kiste::Errc::InvalidArgument,
                               .message = unknown_command_message("", name, subcommand_names(app))});
  }

  // Ctrl-C and SIGTERM stop at the next loop boundary; what the command made is removed on
  // the way out, and it exits 128+N as docker does.
  kiste::install_interrupt_handlers();
  try {
    app.parse(argc, argv);
  } catch (const CLI::RuntimeError& e) {
    if (const int sig = kiste::interrupted_by(); sig != 0 && e.get_exit_code() == kExitFailure) {
      return 128 + sig;
    }
    return e.get_exit_code();
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);
    const CLI::App& cmd = innermost_command(app);
    if (cmd.get_require_subcommand_min() > 0 && cmd.get_subcommands().empty() &&
        app.remaining(true).empty()) {
      // A group without its subcommand (`kiste image`): its help, as docker prints it.
      std::fputs(cmd.help(cmd.get_parent() == &app ? "kiste" : "").c_str(), stdout);
      return 0;
    }
    std::string msg = explain_rejected(app).value_or(e.what());
    std::fprintf(stderr, "kiste: error: %s\n", msg.c_str());
    return kExitFailure;
  }
  return 0;
}
