// kiste run: docker-style options -> runtime::make_spec -> runtime::run_container. Wiring only.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include <kiste/base/sys.hpp>
#include <kiste/image/store.hpp>
#include <kiste/image/store_layers.hpp>
#include <kiste/runtime/container.hpp>
#include <kiste/runtime/runner.hpp>
#include <kiste/runtime/run_options.hpp>
#include <kiste/runtime/volume.hpp>

#include "cli_args.hpp"
#include "globals.hpp"

extern char** environ;

namespace kiste::cli {

namespace fs = std::filesystem;

// What `run IMAGE` needs from the store: the snapshot dirs (bottom first) and the config's
// process defaults.
struct ImageForRun {
  std::vector<fs::path> lower_dirs;
  runtime::ImageProcessDefaults defaults;
};

Result<runtime::CgroupPlacement> cgroup_placement(const std::string& manager,
                                                const std::string& parent) {
  runtime::CgroupPlacement p{.parent = parent};
  std::string name = manager;
  if (const char* env = std::getenv("KISTE_CGROUP_MANAGER"); name.empty() && env != nullptr) name = env;
  if (!name.empty()) {
    KISTE_ASSIGN_OR_RETURN(p.manager, runtime::parse_cgroup_manager(name));
  }
  return p;
}

namespace {

// IMAGE -> the store entry -> snapshots (unpacked on first use) + the config's process defaults.
// The caller holds a store lease from here until the runner's marker names the snapshots.
Result<ImageForRun> open_image_for_run(const image::Store& store, std::string_view ref) {
  auto entry = store.resolve(ref);
  if (!entry) return std::unexpected(std::move(entry).error());
  auto layers = image::prepare_layers(store, *entry);
  if (!layers) {
    return std::unexpected(std::move(layers).error().with_context(fmt::format("image {}", quote(ref))));
  }
  ImageForRun out;
  out.lower_dirs = std::move(layers->lower_dirs);
  const image::ContainerDefaults& c = layers->config.config;
  out.defaults.entrypoint = c.entrypoint.value_or(std::vector<std::string>{});
  out.defaults.cmd = c.cmd.value_or(std::vector<std::string>{});
  out.defaults.env = c.env;
  out.defaults.working_dir = c.working_dir;
  out.defaults.user = c.user;
  if (out.lower_dirs.empty()) {
    return failf(Errc::InvalidArgument, "image {}: has no layers to run", quote(ref));
  }
  return out;
}

struct RunArgs {
  runtime::RunOptions opts;
  std::string rootfs;
  bool rm = false;
  std::string cgroup_manager;
  std::string cgroup_parent;
};

int run_command(Globals& g, RunArgs& a, std::vector<std::string> positional) {
  auto placement = cgroup_placement(a.cgroup_manager, a.cgroup_parent);
  if (!placement) return report(placement.error());
  ImageForRun image;
  std::optional<FileLock> lease;
  if (!a.rootfs.empty()) {
    std::error_code ec;
    fs::path dir = fs::absolute(a.rootfs, ec);
    if (ec || !fs::is_directory(dir, ec)) {
      return report(Error{.code = Errc::NotFound,
                          .message = fmt::format("rootfs {}: not a directory", quote(a.rootfs))});
    }
    image.lower_dirs.push_back(dir.lexically_normal());
  } else {
    if (positional.empty()) {
      return report(Error{.code = Errc::InvalidArgument,
                          .message = "run: give an IMAGE or --rootfs DIR"});
    }
    auto store = image::Store::open(g.root, {.create = false});
    if (!store) return report(store.error());
    auto l = store->writer_lease();
    if (!l) return report(l.error());
    lease = std::move(*l);
    auto img = open_image_for_run(*store, positional.front());
    if (!img) return report(img.error());
    image = std::move(*img);
    positional.erase(positional.begin());
  }
  a.opts.command = std::move(positional);

  runtime::Runner runner({.root = g.root, .cgroups = *placement});
  const std::string id = runtime::Runner::new_id();
  runtime::MakeSpecInput in{.id = id,
                            .lower_dirs = image.lower_dirs,
                            .container_dir = runner.container_dir(id),
                            .image = image.defaults,
                            .host_env = environ,
                            .volumes_dir = g.root / "volumes",
                            .init_binary =
                                a.opts.init ? runtime::default_init_binary() : fs::path()};
  auto spec = runtime::make_spec(a.opts, in);
  if (!spec) return report(spec.error());
  spec->root.volatile_upper = a.rm;
  if (auto warning = runtime::sys_admin_warning(*spec); !warning.empty()) {
    std::fprintf(stderr, "kiste: warning: %s\n", warning.c_str());
  }
  // Leftovers of containers whose kiste was SIGKILLed (only running containers have a marker:
  // one short readdir).
  if (auto stale = runner.sweep(); stale) {
    for (const auto& p : stale->problems) std::fprintf(stderr, "kiste: warning: %s\n", p.c_str());
  }
  // A container kept after exit (no --rm) is named, on stderr so `$(kiste run …)` stays the
  // command's output; `kiste prune` removes it once it has exited.
  if (!a.rm) std::fprintf(stderr, "%s\n", id.c_str());
  auto result = runner.run(*spec, {.remove = a.rm, .store_lease = lease ? &*lease : nullptr});
  if (!result) return report(result.error());
  if (!result->exec_error.empty()) {
    std::fprintf(stderr, "kiste: error: %s\n", result->exec_error.c_str());
    return result->exit_code;
  }
  if (result->oom_killed) {
    std::fprintf(stderr, "kiste: error: %s\n", result->oom_message().c_str());
  }
  return result->exit_code;
}

}  // namespace

// kiste volume create|ls|rm: named volumes (<root>/volumes/NAME/_data), as docker keeps them.
void register_volume_commands(CLI::App& app, Globals& g) {
  auto* vol = app.add_subcommand("volume", "Manage named volumes (-v NAME:/path)");
  vol->require_subcommand(1);
  auto names = std::make_shared<std::vector<std::string>>();
  vol->add_subcommand("create", "Create named volumes")
      ->callback([&g, names] {
        for (const auto& n : *names) {
          (void)value_or_exit(runtime::ensure_volume(g.root / "volumes", n));
          std::printf("%s\n", n.c_str());
        }
      })
      ->add_option("NAME", *names, "volume names")
      ->required();
  vol->add_subcommand("ls", "List named volumes")->callback([&g] {
    auto list = runtime::list_volumes(g.root / "volumes");
    if (!list) throw CLI::RuntimeError(report(list.error()));
    for (const auto& n : *list) std::printf("%s\n", n.c_str());
  });
  auto rm_names = std::make_shared<std::vector<std::string>>();
  vol->add_subcommand("rm", "Remove named volumes and their data")
      ->callback([&g, rm_names] {
        for (const auto& n : *rm_names) exit_on_error(runtime::remove_volume(g.root / "volumes", n));
      })
      ->add_option("NAME", *rm_names, "volume names")
      ->required();
}

void register_run_commands(CLI::App& app, Globals& g) {
  register_volume_commands(app, g);
  add_run_command(app, g);
}

CLI::App* add_run_command(CLI::App& app, Globals& g) {
  auto a = std::make_shared<RunArgs>();
  auto* run = app.add_subcommand("run", "Run a command in a new container");
  run->set_help_flag("--help", "show this help");
  run->footer("Arguments: (IMAGE | --rootfs DIR) [COMMAND [ARG...]]  (everything after IMAGE is the command)");
  run->prefix_command();  // everything after IMAGE (or the first command word) is the command
  auto& o = a->opts;
  run->add_option("--rootfs", a->rootfs, "run this directory as the (read-only lower) root");
  run->add_flag("--rm", a->rm, "remove the container's directories when it exits");
  run->add_flag("-i,--interactive", o.interactive, "keep stdin connected");
  run->add_flag("-t,--tty", o.tty, "allocate a pseudo-terminal");
  run->add_option("-e,--env", o.env, "set an environment variable (KEY=VALUE or KEY)")->allow_extra_args(false);
  run->add_option("--env-file", o.env_files, "read environment variables from a file")->allow_extra_args(false);
  run->add_option("--entrypoint", o.entrypoint, "override the image's entrypoint");
  run->add_option("-w,--workdir", o.workdir, "working directory inside the container");
  run->add_option("-u,--user", o.user, "user name or uid[:gid]");
  run->add_option("-h,--hostname", o.hostname, "container hostname");
  run->add_option("--cap-add", o.cap_add, "add a capability")->allow_extra_args(false);
  run->add_option("--cap-drop", o.cap_drop, "drop a capability")->allow_extra_args(false);
  run->add_flag("--privileged", o.privileged, "all capabilities, no seccomp, no masked paths");
  run->add_option("-v,--volume", o.volumes, "bind mount HOST:CONTAINER[:ro]")->allow_extra_args(false);
  run->add_option("--mount", o.mounts, "type=bind|tmpfs,source=…,target=…[,readonly]")->allow_extra_args(false);
  run->add_option("--security-opt", o.security_opts,
                  "seccomp=PROFILE.json|unconfined, no-new-privileges")->allow_extra_args(false);
  run->add_option("--ulimit", o.ulimits, "NAME=SOFT[:HARD]")->allow_extra_args(false);
  run->add_option("--pids-limit", o.pids_limit, "maximum number of tasks (-1: unlimited)");
  run->add_option("-m,--memory", o.memory, "memory limit (e.g. 5m, 1g)");
  run->add_option("--memory-swap", o.memory_swap, "memory plus swap limit (-1: unlimited)");
  run->add_option("--cpus", o.cpus, "CPU limit (e.g. 1.5)");
  run->add_option("-c,--cpu-shares", o.cpu_shares, "relative CPU weight");
  run->add_flag("--read-only", o.read_only, "mount the root read-only");
  run->add_flag("--init", o.init, "run a small init as PID 1 that reaps zombies and forwards signals");
  run->add_option("--network,--net", o.network, "none (default) or host");
  run->add_option("--cgroup-manager", a->cgroup_manager,
                  "systemd or cgroupfs (default: systemd when it is PID 1 on a cgroup v2 host)");
  run->add_option("--cgroup-parent", a->cgroup_parent,
                  "systemd: the slice (default kiste.slice); cgroupfs: the parent cgroup (v2 default kiste)");
  run->add_option("--userns", o.userns, "host (default) or auto (a free 65536-id range)");
  run->add_option("--uidmap", o.uidmap, "CONTAINER_ID:HOST_ID:SIZE user namespace uid mapping")
      ->allow_extra_args(false);
  run->add_option("--gidmap", o.gidmap, "CONTAINER_ID:HOST_ID:SIZE user namespace gid mapping")
      ->allow_extra_args(false);
  run->callback([a, run, &g] {
    if (auto bad = unknown_leading_flag(*run)) {  // CLI11 leaves flags it does not know to us
      throw CLI::RuntimeError(report(Error{.code = Errc::InvalidArgument, .message = *bad}));
    }
    int code = run_command(g, *a, run->remaining());
    if (code != 0) throw CLI::RuntimeError(code);
  });
  return run;
}

}  // namespace kiste::cli
