// version, info, system df|info|prune, container run|prune: wiring only; the probes are in
// kiste::runtime (host_info.hpp) and the accounting in kiste::image (store_ops.hpp).
#include <cstdio>

#include <kiste/base/disk_usage.hpp>
#include <kiste/image/root_layout.hpp>
#include <kiste/image/store_ops.hpp>
#include <kiste/runtime/host_info.hpp>

#include "globals.hpp"

namespace kiste::cli {

namespace fs = std::filesystem;

namespace {

void cmd_version() {
  std::printf("kiste version %s\n", kVersion);
  std::printf("  OCI image-spec 1.1, distribution-spec 1.1, runtime-spec 1.2\n");
#if defined(__GNUC__) && !defined(__clang__)
  std::printf("  built with GCC %d.%d.%d\n", __GNUC__, __GNUC_MINOR__, __GNUC_PATCHLEVEL__);
#endif
}

std::string feature(const runtime::HostFeature& f) {
  std::string s = f.available ? "yes" : "no";
  if (!f.detail.empty()) s += " (" + f.detail + ")";
  return s;
}

void cmd_info(const Globals& g) {
  runtime::HostInfo h = runtime::probe_host();
  std::error_code ec;
  std::string store;
  if (!fs::exists(image::RootLayout(g.root).oci_layout_file(), ec)) {
    store = fmt::format("{} (no store yet: the first pull, import or build makes it)",
                        g.root.native());
  } else {
    auto u = tree_usage(g.root);
    auto s = image::Store::open(g.root, {.create = false});
    auto n = s ? s->entries() : Result<std::vector<image::StoreEntry>>(std::unexpected(s.error()));
    store = fmt::format("{} ({}, {} named images)", g.root.native(),
                        u ? human_size(u->bytes) : u.error().to_string(),
                        n ? std::to_string(n->size()) : std::string("?"));
  }
  std::printf("Version:          %s\n", kVersion);
  std::printf("Store:            %s\n", store.c_str());
  std::printf("Kernel:           %s (%s)\n", h.kernel.c_str(), h.architecture.c_str());
  std::printf("Cgroups:          %s\n",
              h.cgroup_mode ? std::string(runtime::to_string(*h.cgroup_mode)).c_str()
                            : h.cgroup_mode_error.c_str());
  std::printf("Cgroup manager:   %s\n", std::string(runtime::to_string(h.cgroup_manager)).c_str());
  std::printf("Overlay:          %s\n", feature(h.overlay).c_str());
  std::printf("User namespaces:  %s\n", feature(h.user_namespaces).c_str());
  std::printf("Seccomp:          %s\n", feature(h.seccomp).c_str());
  std::printf("openat2:          %s\n", feature(h.openat2).c_str());
  std::printf("Network:          run: none by default (--network host); build RUN: private "
              "unless --network host\n");
}

void cmd_df(const Globals& g) {
  image::Store store = open_existing_store(g);
  auto u = value_or_exit(image::store_usage(store));
  std::printf("%-18s %-8s %-10s %s\n", "TYPE", "TOTAL", "SIZE", "NOTE");
  auto row = [](const char* type, const image::StoreUsage::Part& p, const char* note) {
    std::printf("%-18s %-8lld %-10s %s\n", type, static_cast<long long>(p.count),
                human_size(p.bytes).c_str(), note);
  };
  row("Images", u.images, "blobs of named images, as stored (compressed)");
  row("Unused blobs", u.unused_blobs, u.unused_blobs.count > 0 ? "`kiste prune` deletes them" : "");
  row("Layer snapshots", u.snapshots, "unpacked layers, made on first run or build");
  row("Build cache", u.build_cache, "records of build steps");
  row("Containers", u.containers, "state and writable layers");
  row("Volumes", u.volumes, "");
  row("Temporary files", u.tmp,
      u.tmp.count > 0 ? "in-flight work, or leftovers of killed commands (`kiste prune`)" : "");
}

}  // namespace

void register_system_commands(CLI::App& app, Globals& g) {
  app.add_subcommand("version", "Show kiste's version")->callback([] { cmd_version(); });
  app.add_subcommand("info", "Show the store and what this host offers containers")
      ->callback([&g] { cmd_info(g); });

  auto* sys = app.add_subcommand("system", "Manage the store (df, info, prune)");
  sys->require_subcommand(1);
  sys->add_subcommand("df", "Show what the store's parts hold")->callback([&g] { cmd_df(g); });
  sys->add_subcommand("info", "Show the store and what this host offers containers")
      ->callback([&g] { cmd_info(g); });
  sys->add_subcommand("prune", "Delete what nothing uses (as `kiste prune`)")
      ->callback([&g] { prune_all(g); });

  auto* ctr = app.add_subcommand("container", "Manage containers (run, prune)");
  ctr->require_subcommand(1);
  add_run_command(*ctr, g);
  add_container_subcommands(*ctr, g);
  ctr->add_subcommand("prune", "Remove what containers whose kiste was killed left behind")
      ->callback([&g] { prune_containers(g); });
}

}  // namespace kiste::cli
