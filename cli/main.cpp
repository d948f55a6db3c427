// The kiste program: argument parsing and wiring only; all logic lives in the libraries.
#include <cstdlib>
#include <cstdio>
#include <string_view>

#include <CLI/CLI.hpp>

#include <kiste/base/log.hpp>

#include "globals.hpp"

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

}  // namespace kiste::cli

int main(int argc, char** argv) {
  using namespace kiste::cli;
  CLI::App app{"kiste: build, move and run OCI images"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "kiste 0.1.0");
  Globals g;
  const char* env_root = std::getenv("KISTE_ROOT");
  g.root = env_root && *env_root ? env_root : "/var/lib/kiste";
  app.add_option("--root", g.root, "storage root (default $KISTE_ROOT or /var/lib/kiste)");
  app.add_option("--log-level", g.log_level, "debug, info, warn or off")
      ->check(CLI::IsMember({"debug", "info", "warn", "off"}));
  app.parse_complete_callback([&g] {
    using kiste::log::Level;
    kiste::log::set_level(g.log_level == "debug"  ? Level::Debug
                          : g.log_level == "info" ? Level::Info
                          : g.log_level == "off"  ? Level::Off
                                                  : Level::Warn);
  });

  // Registering every command's options costs ~0.4 ms of start-up (measured on `run`), so
  // groups are registered, busiest first, only until the one the command line names exists;
  // help, a typo or no command at all still get them all.
  std::string_view wanted;
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
                     Register{register_archive_commands}}) {
    r(app, g);
    const std::string name(wanted);
    if (!name.empty() &&
        !app.get_subcommands([&name](CLI::App* c) { return c->check_name(name); }).empty()) {
      break;
    }
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::RuntimeError& e) {
    return e.get_exit_code();
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);
    std::fprintf(stderr, "kiste: error: %s\n", e.what());
    return kExitFailure;
  }
  return 0;
}
