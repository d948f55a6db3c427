// import, save, load: wiring only; the work is in kiste::image (archive.hpp).
#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include <kiste/image/archive.hpp>
#include <kiste/image/store_ops.hpp>

#include "globals.hpp"
#include "progress.hpp"

namespace kiste::cli {

namespace {

// On a terminal the two passes over the file show as progress lines, as pull shows its blobs.
void cmd_import(const Globals& g, const std::string& file, const std::string& name,
                image::ImportOptions opts) {
  image::Store store = open_store(g);
  auto ref = value_or_exit(image::Reference::parse(name));
  const bool tty = isatty(STDERR_FILENO) != 0;
  LineProgress progress(!tty, tty);
  std::string current;  // the phase on screen, its bytes shown, and whether it is done
  uint64_t shown = 0;
  bool finished = false;
  image::Descriptor d_phase;
  if (tty) {
    opts.on_progress = [&](std::string_view phase, uint64_t done, uint64_t total) {
      if (phase != current) {
        current = std::string(phase);
        shown = 0;
        finished = false;
        d_phase = image::Descriptor{.digest = image::Digest::of(current),
                                    .size = static_cast<int64_t>(total)};
        progress.set_label(d_phase.digest, current + " " + file, "done");
        progress.blob_started(d_phase);
      }
      if (finished) return;  // told the end more than once: one "done" line
      if (done > shown) progress.blob_bytes(d_phase, done - shown);
      shown = std::max(shown, done);
      if (done == total) {
        finished = true;
        progress.blob_done(d_phase, image::CopyProgress::Outcome::Copied);
      }
    };
  }
  auto d = value_or_exit(image::import_rootfs(store, file, ref, opts));
  std::printf("%s\n", value_or_exit(image::image_id(store, d)).str().c_str());  // docker's ID
}

void cmd_save(const Globals& g, const std::vector<std::string>& names, const std::string& out,
              const std::string& format) {
  image::Store store = open_existing_store(g);
  std::vector<image::StoreEntry> entries;
  for (const auto& n : names) entries.push_back(value_or_exit(store.resolve(n)));
  auto saved = value_or_exit(image::save_archive(
      store, entries, out.empty() ? "-" : out,
      format == "oci-archive" ? image::ArchiveFormat::OciArchive
                              : image::ArchiveFormat::DockerArchive));
  note_referrers_left_out(saved, out.empty() ? "-" : out);
}

void cmd_load(const Globals& g, const std::string& in, bool quiet) {
  image::Store store = open_store(g);
  auto loaded = value_or_exit(image::load_archive(store, in.empty() ? "-" : in));
  for (const auto& l : loaded) {
    if (quiet) continue;
    if (l.name) {
      std::printf("Loaded image: %s\n", l.name->familiar().c_str());
    } else {
      std::printf("Loaded image ID: %s\n",
                  value_or_exit(image::image_id(store, l.manifest)).str().c_str());
    }
    if (l.referrers > 0) {
      std::fprintf(stderr, "  with %d signature/attestation artifact%s\n", l.referrers,
                   l.referrers == 1 ? "" : "s");
    }
  }
}

}  // namespace

void note_referrers_left_out(const image::SaveResult& r, const std::string& out) {
  if (r.referrers_left_out == 0) return;
  std::fprintf(stderr,
               "note: a docker-archive cannot hold signatures or attestations: %d referrer%s of "
               "the saved images left out of %s (an oci-archive keeps them)\n",
               r.referrers_left_out, r.referrers_left_out == 1 ? "" : "s", out.c_str());
}

void register_archive_commands(CLI::App& app, Globals& g) {
  struct Opts {
    std::string file, name, message, platform, output, format = "docker-archive", input;
    std::vector<std::string> changes, names;
    bool quiet = false;
  };
  auto o = std::make_shared<Opts>();

  auto* imp = app.add_subcommand("import", "Create an image from a root filesystem tarball");
  imp->add_option("FILE", o->file, "tarball (gzip/zstd/xz allowed), or - for stdin")->required();
  imp->add_option("NAME", o->name, "image name, e.g. busybox:latest")->required();
  imp->add_option("-c,--change", o->changes, "Dockerfile instruction to apply (CMD, ENV, ...)");
  imp->add_option("-m,--message", o->message, "history comment");
  imp->add_option("--platform", o->platform, "os/arch[/variant] (default: this host)");
  imp->callback([&g, o] {
    image::ImportOptions io;
    io.changes = o->changes;
    io.message = o->message;
    if (!o->platform.empty()) io.platform = value_or_exit(image::Platform::parse(o->platform));
    cmd_import(g, o->file, o->name, io);
  });

  auto* save = app.add_subcommand("save", "Write images to a docker-archive or oci-archive");
  save->add_option("IMAGE", o->names, "images")->required();
  save->add_option("-o,--output", o->output, "file (default: stdout)");
  save->add_option("--format", o->format, "docker-archive (default) or oci-archive")
      ->check(CLI::IsMember({"docker-archive", "oci-archive"}));
  save->callback([&g, o] { cmd_save(g, o->names, o->output, o->format); });

  auto* load = app.add_subcommand("load", "Load images from a docker-archive or oci-archive");
  load->add_option("-i,--input", o->input, "file (default: stdin)");
  load->add_flag("-q,--quiet", o->quiet, "print nothing");
  load->callback([&g, o] { cmd_load(g, o->input, o->quiet); });
}

}  // namespace kiste::cli
