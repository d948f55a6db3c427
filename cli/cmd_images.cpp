// images, inspect, tag, rmi, prune, fsck: wiring only; the work is in kiste::image.
#include <cstdio>

#include <kiste/image/store_layers.hpp>
#include <kiste/image/store_ops.hpp>
#include <kiste/runtime/live_marker.hpp>

#include "globals.hpp"

namespace kiste::cli {

namespace fs = std::filesystem;

namespace {

std::string created_ago(const std::string& rfc) {
  if (rfc.empty()) return "N/A";
  std::tm tm{};
  if (::strptime(rfc.c_str(), "%Y-%m-%dT%H:%M:%S", &tm) == nullptr) return rfc;
  int64_t t = ::timegm(&tm);
  int64_t d = std::time(nullptr) - t;
  if (d < 60) return "Less than a minute ago";
  if (d < 3600) return fmt::format("{} minutes ago", d / 60);
  if (d < 86400 * 2) return fmt::format("{} hours ago", d / 3600);
  if (d < 86400 * 14) return fmt::format("{} days ago", d / 86400);
  if (d < 86400 * 60) return fmt::format("{} weeks ago", d / (86400 * 7));
  if (d < 86400 * 365 * 2) return fmt::format("{} months ago", d / (86400 * 30));
  return fmt::format("{} years ago", d / (86400 * 365));
}

void cmd_images(const Globals& g, const std::string& format, bool quiet) {
  image::Store store = open_existing_store(g);
  auto list = value_or_exit(image::list_images(store));
  if (format == "json") {
    std::printf("%s\n", image::images_json(list).c_str());
    return;
  }
  if (quiet) {
    for (const auto& s : list) std::printf("%s\n", std::string(s.image_id.short_hex()).c_str());
    return;
  }
  std::printf("%-40s %-20s %-14s %-20s %s\n", "REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE");
  for (const auto& s : list) {
    std::printf("%-40s %-20s %-14s %-20s %s\n", s.repository.c_str(), s.tag.c_str(),
                std::string(s.image_id.short_hex()).c_str(), created_ago(s.created).c_str(),
                human_size(s.size).c_str());
  }
}

void cmd_inspect(const Globals& g, const std::vector<std::string>& names) {
  if (names.size() == 1 && names[0].starts_with("docker://")) {  // remote, without pulling
    std::printf("%s\n", value_or_exit(inspect_remote_json(g, names[0])).c_str());
    return;
  }
  image::Store store = open_existing_store(g);
  std::string out;
  for (const auto& n : names) {
    auto entry = value_or_exit(store.resolve(n));
    std::string one = value_or_exit(image::inspect_image(store, entry));
    // Each is a one-element array; join them into one array.
    if (!out.empty()) {
      out.resize(out.rfind(']'));
      while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
      out += ",";
      one = one.substr(one.find('[') + 1);
    }
    out += one;
  }
  if (!out.empty()) std::printf("%s\n", out.c_str());
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
  if (!fs::exists(g.root / "oci-layout", ec) && fs::exists(g.root / "containers", ec)) return;
  image::Store store = open_existing_store(g);
  const fs::path running = g.root / "running";
  auto rep = value_or_exit(image::prune(
      store, {.snapshots_in_use = [&running] { return runtime::live_lower_dirs(running); }}));
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
  // Containers whose kiste was killed: their cgroups and directories.
  auto stale = value_or_exit(runtime::clean_stale_containers(g.root / "running", g.root / "containers"));
  for (const auto& p : stale.problems) std::fprintf(stderr, "kiste: warning: %s\n", p.c_str());
  if (!stale.containers.empty()) {
    std::printf("Removed the leftovers of %zu containers whose kiste was killed (%zu cgroups)\n",
                stale.containers.size(), stale.cgroups.size());
  }
}

void prune_all(const Globals& g) { cmd_prune(g); }

void register_image_commands(CLI::App& app, Globals& g) {
  struct Opts {
    std::string format = "table";
    bool quiet = false;
    bool force = false;
    std::vector<std::string> names;
    std::string src, dst, dir, platform;
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
    images->add_option("--format", o->format, "table (default) or json")
        ->check(CLI::IsMember({"table", "json"}));
    images->add_flag("-q,--quiet", o->quiet, "only image ids");
    images->callback([&g, o] { cmd_images(g, o->format, o->quiet); });

    auto* inspect =
        parent->add_subcommand("inspect", "Show an image's manifest, config and layers as JSON");
    inspect->add_option("IMAGE", o->names, "image names or ids")->required();
    inspect->callback([&g, o] { cmd_inspect(g, o->names); });

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
