// images, inspect, tag, rmi, prune, fsck: wiring only; the work is in kiste::image.
#include <cstdio>
#include <optional>

#include <kiste/base/go_template.hpp>
#include <nlohmann/json.hpp>

#include <kiste/image/root_layout.hpp>
#include <kiste/image/store_layers.hpp>
#include <kiste/image/store_ops.hpp>
#include <kiste/runtime/live_marker.hpp>
#include <kiste/runtime/runner.hpp>

#include "globals.hpp"
#include "listing.hpp"
#include "registry_flags.hpp"

namespace kiste::cli {

namespace fs = std::filesystem;

namespace {

struct ImagesFlags {
  std::string format = "table";
  bool quiet = false, digests = false, no_trunc = false, all = false;
  std::vector<std::string> filters;
  std::string name;
};

void cmd_images(const Globals& g, const ImagesFlags& f) {
  ImageSelection sel;
  if (!f.name.empty()) sel.name = f.name;
  for (const auto& filter : f.filters) {
    if (auto bad = add_filter(sel, filter)) {
      exit_on_error(fail(Errc::InvalidArgument, *bad));
    }
  }
  image::Store store = open_existing_store(g);
  auto all = value_or_exit(image::list_images(store));
  std::vector<image::ImageSummary> list;
  for (auto& s : all) {
    if (selected(sel, {.repository = s.repository, .tag = s.tag})) list.push_back(std::move(s));
  }
  if (f.format == "json") {
    std::printf("%s\n", image::images_json(list).c_str());
    return;
  }
  auto id = [&f](const image::Digest& d) {
    return f.no_trunc ? d.str() : std::string(d.short_hex());
  };
  if (f.quiet) {
    for (const auto& s : list) std::printf("%s\n", id(s.image_id).c_str());
    return;
  }
  const int id_width = f.no_trunc ? 72 : 14;
  std::string head = fmt::format("{:<40} {:<20} ", "REPOSITORY", "TAG");
  if (f.digests) head += fmt::format("{:<72} ", "DIGEST");
  head += fmt::format("{:<{}} {:<26} {}", "IMAGE ID", id_width, "CREATED", "SIZE");
  std::printf("%s\n", head.c_str());
  const int64_t now = std::time(nullptr);
  for (const auto& s : list) {
    std::string row = fmt::format("{:<40} {:<20} ", s.repository, s.tag);
    if (f.digests) row += fmt::format("{:<72} ", s.manifest_digest.str());
    row += fmt::format("{:<{}} {:<26} {}", id(s.image_id), id_width,
                       created_column(s.created, now), human_size(s.size));
    std::printf("%s\n", row.c_str());
  }
}

// docker's output: a JSON array of the objects, or with -f the template applied to each, one
// line per image.
void cmd_inspect(const Globals& g, const RegistryFlags& rf, const std::vector<std::string>& names,
                 const std::string& format) {
  std::optional<GoTemplate> tpl;
  if (!format.empty()) tpl = value_or_exit(GoTemplate::parse(format));
  std::optional<image::Store> store;
  nlohmann::ordered_json all = nlohmann::ordered_json::array();
  std::string lines;
  for (const auto& n : names) {
    std::string one;
    if (n.starts_with("docker://")) {  // remote, without pulling
      one = value_or_exit(inspect_remote_json(rf, n));
    } else {
      if (!store) store = open_existing_store(g);
      auto entry = value_or_exit(store->resolve(n));
      one = value_or_exit(image::inspect_image(*store, entry));
    }
    if (tpl) {
      lines += value_or_exit(tpl->render(nlohmann::json::parse(one))) + "\n";
    } else {
      all.push_back(nlohmann::ordered_json::parse(one));
    }
  }
  if (tpl) {
    std::fputs(lines.c_str(), stdout);
  } else {
    std::printf("%s\n", all.dump(4, ' ', false, nlohmann::ordered_json::error_handler_t::replace).c_str());
  }
}

void cmd_tag(const Globals& g, const std::string& src, const std::string& dst) {
  image::Store store = open_existing_store(g);
  auto entry = value_or_exit(store.resolve(src));
  auto ref = value_or_exit(image::Reference::parse(dst));
  exit_on_error(store.set_name(ref, entry.manifest));
}

void cmd_rmi(const Globals& g, const std::vector<std::string>& names, bool force) {
  image::Store store = open_existing_store(g);
  for (const auto& n : names) {
    auto entry = value_or_exit(store.resolve(n));
    auto all = value_or_exit(store.entries());
    std::vector<std::string> same;
    for (const auto& e : all) {
      if (e.manifest.digest == entry.manifest.digest) same.push_back(e.name);
    }
    // A name removes that name; an id removes every name of the image (with -f when several).
    bool by_name = false;
    if (auto ref = image::Reference::parse(n); ref && ref->str() == entry.name) by_name = true;
    std::vector<std::string> remove = by_name ? std::vector<std::string>{entry.name} : same;
    if (!by_name && same.size() > 1 && !force) {
      exit_on_error(failf(Errc::InvalidArgument,
                          "image {} has {} names; remove them by name or use --force", n,
                          same.size()));
    }
    for (const auto& name : remove) {
      exit_on_error(store.remove_entry(name));
      std::printf("Untagged: %s\n", name.c_str());
    }
  }
}

void cmd_unpack(const Globals& g, const std::string& name, const std::string& dir,
                const std::string& platform) {
  image::Store store = open_existing_store(g);
  auto entry = value_or_exit(store.resolve(name));
  image::Platform p = platform.empty() ? image::Platform::host()
                                       : value_or_exit(image::Platform::parse(platform));
  exit_on_error(image::unpack_image(store, entry, dir, p));
}

void cmd_prune(const Globals& g) {
  prune_containers(g);
  // A root that only ever ran --rootfs containers has no image store: nothing more to prune.
  std::error_code ec;
  const image::RootLayout root(g.root);
  if (!fs::exists(root.oci_layout_file(), ec) && fs::exists(root.containers(), ec)) return;
  image::Store store = open_existing_store(g);
  const fs::path running = root.running();
  runtime::ExitedCleanup exited;
  auto rep = value_or_exit(image::prune(
      store, {.snapshots_in_use = [&running] { return runtime::live_lower_dirs(running); },
              .while_locked = [&]() -> kiste::Status {
                KISTE_ASSIGN_OR_RETURN(exited, runtime::remove_exited_containers(
                                                   running, root.containers()));
                return {};
              }}));
  for (const auto& p : exited.problems) std::fprintf(stderr, "kiste: warning: %s\n", p.c_str());
  if (!exited.containers.empty()) {
    std::printf("Removed %zu exited containers\n", exited.containers.size());
  }
  std::printf("Deleted %d blobs (%s) and %d unused layer snapshots; removed %d stale temporary files\n",
              rep.blobs_removed, human_size(rep.bytes_freed).c_str(), rep.snapshots_removed,
              rep.tmp_removed);
}

void cmd_fsck(const Globals& g) {
  image::Store store = open_existing_store(g);
  auto rep = value_or_exit(image::fsck(store));
  for (const auto& p : rep.problems) std::fprintf(stderr, "kiste: fsck: %s\n", p.c_str());
  if (rep.tmp_removed > 0) {
    std::printf("removed %d stale temporary files of interrupted writes\n", rep.tmp_removed);
  }
  if (!rep.clean()) {
    std::fprintf(stderr, "kiste: error: fsck: %zu problems in %d blobs\n", rep.problems.size(),
                 rep.blobs_checked);
    throw CLI::RuntimeError(1);
  }
  std::printf("ok: %d blobs verified\n", rep.blobs_checked);
}

}  // namespace

void prune_containers(const Globals& g) {
  prune_stopped_containers(g);  // detached containers that ended (or lost their monitor)
  // Containers whose kiste was killed: their cgroups and directories.
  auto stale = value_or_exit(runtime::Runner({.root = g.root}).sweep());
  for (const auto& p : stale.problems) std::fprintf(stderr, "kiste: warning: %s\n", p.c_str());
  if (!stale.containers.empty()) {
    std::printf("Removed the leftovers of %zu containers whose kiste was killed (%zu cgroups)\n",
                stale.containers.size(), stale.cgroups.size());
  }
}

void prune_all(const Globals& g) { cmd_prune(g); }

void register_image_commands(CLI::App& app, Globals& g) {
  struct Opts {
    ImagesFlags images;
    bool force = false;
    std::vector<std::string> names;
    RegistryFlags registry;  // inspect docker://REF
    std::string src, dst, dir, platform, format;
  };
  auto o = std::make_shared<Opts>();

  // The docker-style group `kiste image ls|rm|inspect|tag|prune` has the same commands as the
  // top-level ones: each is added to both.
  auto* group = app.add_subcommand("image", "Manage images (ls, rm, inspect, tag, prune)");
  group->require_subcommand(1);

  for (CLI::App* parent : {&app, group}) {
    const bool top = parent == &app;
    auto* images = parent->add_subcommand(top ? "images" : "ls", "List images in the store");
    if (!top) images->alias("list");
    images->add_option("NAME", o->images.name, "only images of this repository[:tag]");
    images->add_option("--format", o->images.format, "table (default) or json")
        ->check(CLI::IsMember({"table", "json"}));
    images->add_flag("-q,--quiet", o->images.quiet, "only image ids");
    images->add_flag("--digests", o->images.digests, "show the manifest digests (what pull and push print)");
    images->add_flag("--no-trunc", o->images.no_trunc, "show whole image ids");
    images->add_flag("-a,--all", o->images.all,
                     "accepted for docker's sake: kiste keeps no intermediate images");
    images->add_option("-f,--filter", o->images.filters,
                       "dangling=true|false or reference=PATTERN (repeatable)")
        ->allow_extra_args(false);
    images->callback([&g, o] { cmd_images(g, o->images); });

    auto* inspect = parent->add_subcommand(
        "inspect", "Show images as JSON in docker's shape (stored images and docker://REF)");
    inspect->add_option("IMAGE", o->names, "image names or ids, or docker://REF")->required();
    add_registry_flags(inspect, o->registry);
    inspect->add_option("-f,--format", o->format,
                        "Go template, e.g. '{{.Id}}', '{{.Config.Env}}', '{{json .Config}}', "
                        "'{{index .RepoTags 0}}' (no range/if)");
    inspect->callback([&g, o, top] {
      // `kiste inspect X`: a container by that name or id first, as docker's inspect looks.
      if (top && inspect_if_containers(g, o->names, o->format)) return;
      cmd_inspect(g, o->registry, o->names, o->format);
    });

    auto* tag = parent->add_subcommand("tag", "Give an image another name");
    tag->add_option("SOURCE", o->src, "image name or id")->required();
    tag->add_option("TARGET", o->dst, "new name")->required();
    tag->callback([&g, o] { cmd_tag(g, o->src, o->dst); });

    auto* rmi = parent->add_subcommand(top ? "rmi" : "rm",
                                       "Remove image names (blobs go with `kiste prune`)");
    rmi->add_option("IMAGE", o->names, "image names or ids")->required();
    rmi->add_flag("-f,--force", o->force, "remove every name of an image given by id");
    rmi->callback([&g, o] { cmd_rmi(g, o->names, o->force); });
  }
  group->add_subcommand("prune", "Delete blobs and layer snapshots no image uses (as `kiste prune`)")
      ->callback([&g] { cmd_prune(g); });

  auto* unpack = app.add_subcommand("unpack", "Write an image's flattened root filesystem to a directory");
  unpack->add_option("IMAGE", o->src, "image name or id")->required();
  unpack->add_option("DIR", o->dir, "target directory (must not exist or be empty)")->required();
  unpack->add_option("--platform", o->platform, "os/arch[/variant] for a multi-platform image");
  unpack->callback([&g, o] { cmd_unpack(g, o->src, o->dir, o->platform); });

  app.add_subcommand("prune", "Delete blobs no image uses")->callback([&g] { cmd_prune(g); });
  app.add_subcommand("fsck", "Verify every blob and image in the store")->callback([&g] { cmd_fsck(g); });
}

}  // namespace kiste::cli
