// kiste manifest create|add|remove|inspect|push|rm: image indexes (manifest lists) assembled by
// hand, with buildah's and podman's names. Wiring only: the work is in kiste::image
// (image_index.hpp) and registry-client (push_image).
#include <chrono>
#include <cstdio>

#include <kiste/image/image_index.hpp>
#include <kiste/image/store.hpp>
#include <kiste/registry/transport.hpp>

#include "globals.hpp"
#include "progress.hpp"
#include "registry_flags.hpp"

namespace kiste::cli {

namespace {

Result<std::vector<image::Descriptor>> entries_of(const image::Store& store, std::string_view image) {
  KISTE_ASSIGN_OR_RETURN(image::StoreEntry e, store.resolve(image));
  return image::index_entries_of(store, e);
}

// The new index blob is named under the writer lease, so a concurrent prune never takes it first.
Status name_index(const image::Store& store, const image::Reference& name, const image::Index& index) {
  KISTE_ASSIGN_OR_RETURN(FileLock lease, store.writer_lease());
  KISTE_ASSIGN_OR_RETURN(image::Descriptor d, image::put_index(store, index));
  KISTE_TRY(store.set_name(name, d));
  std::printf("%s\n", d.digest.str().c_str());
  return {};
}

Status do_create(const Globals& g, const std::string& list, const std::vector<std::string>& images,
                 bool amend) {
  image::Store store = open_store(g);
  KISTE_ASSIGN_OR_RETURN(image::Reference name, image::Reference::parse(list));
  image::Index index;
  if (auto existing = store.resolve(name.str()); existing) {
    if (!amend) {
      return failf(Errc::AlreadyExists, "{} already exists (--amend adds to it)", quote(list));
    }
    KISTE_ASSIGN_OR_RETURN(image::ManifestBlob m, image::read_index(store, *existing));
    index = m.index();
  }
  for (const std::string& img : images) {
    KISTE_ASSIGN_OR_RETURN(auto entries, with_context(entries_of(store, img), fmt::format("image {}", quote(img))));
    for (const auto& d : entries) index = image::with_entry(std::move(index), d);
  }
  return name_index(store, name, index);
}

// The stored list `list` and its name.
struct StoredList {
  image::Reference name;
  image::Index index;
};
Result<StoredList> open_list(const image::Store& store, const std::string& list) {
  KISTE_ASSIGN_OR_RETURN(image::StoreEntry e, store.resolve(list));
  KISTE_ASSIGN_OR_RETURN(image::ManifestBlob m, image::read_index(store, e));
  KISTE_ASSIGN_OR_RETURN(image::Reference name, image::Reference::parse(e.name));
  return StoredList{.name = std::move(name), .index = m.index()};
}

Status do_add(const Globals& g, const std::string& list, const std::string& img) {
  image::Store store = open_existing_store(g);
  KISTE_ASSIGN_OR_RETURN(StoredList l, open_list(store, list));
  KISTE_ASSIGN_OR_RETURN(auto entries, with_context(entries_of(store, img), fmt::format("image {}", quote(img))));
  for (const auto& d : entries) l.index = image::with_entry(std::move(l.index), d);
  return name_index(store, l.name, l.index);
}

Status do_remove(const Globals& g, const std::string& list, const std::string& digest) {
  image::Store store = open_existing_store(g);
  KISTE_ASSIGN_OR_RETURN(StoredList l, open_list(store, list));
  KISTE_ASSIGN_OR_RETURN(image::Digest d, with_context(image::Digest::parse(digest), "DIGEST"));
  KISTE_ASSIGN_OR_RETURN(l.index, with_context(image::without_entry(std::move(l.index), d), quote(list)));
  return name_index(store, l.name, l.index);
}

Status do_inspect(const Globals& g, const std::string& list) {
  image::Store store = open_existing_store(g);
  KISTE_ASSIGN_OR_RETURN(image::StoreEntry e, store.resolve(list));
  KISTE_ASSIGN_OR_RETURN(image::ManifestBlob m, image::read_index(store, e));
  std::printf("%s\n", m.bytes.c_str());
  return {};
}

Status do_push(const Globals& g, const RegistryFlags& rf, const std::string& list,
               const std::string& dest_arg, bool quiet, bool rm) {
  auto t0 = std::chrono::steady_clock::now();
  image::Store store = open_existing_store(g);
  KISTE_ASSIGN_OR_RETURN(image::StoreEntry e, store.resolve(list));
  KISTE_TRY(image::read_index(store, e));
  KISTE_ASSIGN_OR_RETURN(image::Reference dest,
                         registry::parse_docker_ref(dest_arg.empty() ? e.name : dest_arg));
  LineProgress progress(quiet, false);
  // Every platform image, then the index itself (buildah's `manifest push --all`).
  KISTE_ASSIGN_OR_RETURN(image::CopyResult r,
                         registry::push_image(store, e, dest, rf.access(), {.all = true, .progress = &progress}));
  if (!quiet) {
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::fprintf(stderr, "pushed %s@%s (%d blobs copied, %d already there) in %.2f s\n",
                 dest.str().c_str(), r.top.digest.str().c_str(), r.blobs_copied, r.blobs_existing, s);
  }
  if (rm) KISTE_TRY(store.remove_entry(e.name));
  std::printf("%s\n", r.top.digest.str().c_str());
  return {};
}

Status do_rm(const Globals& g, const std::vector<std::string>& lists) {
  image::Store store = open_existing_store(g);
  for (const std::string& list : lists) {
    KISTE_ASSIGN_OR_RETURN(image::StoreEntry e, store.resolve(list));
    KISTE_TRY(image::read_index(store, e));  // `manifest rm` removes lists only, as buildah's
    KISTE_TRY(store.remove_entry(e.name));
    std::printf("%s\n", e.manifest.digest.str().c_str());
  }
  return {};
}

}  // namespace

void register_manifest_commands(CLI::App& app, Globals& g) {
  struct Opts {
    std::string list, image, digest, dest;
    std::vector<std::string> images, lists;
    bool amend = false, all = true, quiet = false, rm = false;
    RegistryFlags registry;
  };
  auto o = std::make_shared<Opts>();
  auto* m = app.add_subcommand("manifest", "Assemble image indexes (manifest lists)");
  m->require_subcommand(1);

  auto* create = m->add_subcommand("create", "Create a list, optionally from images");
  create->add_option("LIST", o->list, "name of the list")->required();
  create->add_option("IMAGE", o->images, "images (or lists) to add");
  create->add_flag("--amend,-a", o->amend, "add to the list if it exists");
  create->add_flag("--all", o->all, "add every platform of a list given as IMAGE (the default)");
  create->callback([&g, o] { exit_on_error(do_create(g, o->list, o->images, o->amend)); });

  auto* add = m->add_subcommand("add", "Add an image (every platform of a list) to a list");
  add->add_option("LIST", o->list, "list")->required();
  add->add_option("IMAGE", o->image, "image in the store")->required();
  add->add_flag("--all", o->all, "add every platform of a list given as IMAGE (the default)");
  add->callback([&g, o] { exit_on_error(do_add(g, o->list, o->image)); });

  auto* remove = m->add_subcommand("remove", "Remove an entry from a list by its digest");
  remove->add_option("LIST", o->list, "list")->required();
  remove->add_option("DIGEST", o->digest, "manifest digest of the entry")->required();
  remove->callback([&g, o] { exit_on_error(do_remove(g, o->list, o->digest)); });

  auto* inspect = m->add_subcommand("inspect", "Print a list's index JSON");
  inspect->add_option("LIST", o->list, "list")->required();
  inspect->callback([&g, o] { exit_on_error(do_inspect(g, o->list)); });

  auto* push = m->add_subcommand("push", "Push every image of a list, then the list");
  push->add_option("LIST", o->list, "list")->required();
  push->add_option("DEST", o->dest, "docker://REF or REF (default: the list's name)");
  push->add_flag("--all", o->all, "push every image of the list (the default)");
  push->add_flag("--rm", o->rm, "remove the list from the store after pushing");
  push->add_flag("-q,--quiet", o->quiet, "print only the index digest");
  add_registry_flags(push, o->registry);
  push->callback([&g, o] {
    exit_on_error(do_push(g, o->registry, o->list, o->dest, o->quiet, o->rm));
  });

  auto* rm = m->add_subcommand("rm", "Remove lists from the store (their images stay)");
  rm->add_option("LIST", o->lists, "lists")->required();
  rm->callback([&g, o] { exit_on_error(do_rm(g, o->lists)); });
}

}  // namespace kiste::cli
