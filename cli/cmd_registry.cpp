// Registry commands: pull, push, copy, promote, tags, delete, login, logout (and the remote half
// of `inspect docker://REF`). Wiring only: the work is in registry-client and image.
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <kiste/base/temp_dir.hpp>
#include <kiste/image/archive.hpp>
#include <kiste/image/copy.hpp>
#include <kiste/image/media_type.hpp>
#include <kiste/image/store.hpp>
#include <kiste/registry/client.hpp>
#include <kiste/registry/credentials.hpp>
#include <kiste/registry/promote.hpp>
#include <kiste/registry/remote_image.hpp>
#include <mutex>
#include <nlohmann/json.hpp>

#include "globals.hpp"
#include "push.hpp"

namespace kiste::cli {

namespace {

using image::Reference;

Result<Reference> parse_remote(std::string_view s) {
  if (s.starts_with("docker://")) s.remove_prefix(9);
  return Reference::parse(s);
}

std::string human(double bytes) {
  const char* units[] = {"B", "KB", "MB", "GB"};
  int u = 0;
  while (bytes >= 1000 && u < 3) {
    bytes /= 1000;
    ++u;
  }
  return fmt::format("{:.1f} {}", bytes, units[u]);
}

// Progress on stderr, thread-safe: one line per finished blob; on a TTY (or --progress=tty) also
// a live status line with the bytes so far, the rate and the ETA of the blobs in flight.
class LineProgress final : public image::CopyProgress {
 public:
  LineProgress(bool quiet, bool tty) : quiet_(quiet), tty_(tty && !quiet) {}
  ~LineProgress() override {
    if (tty_ && drawn_) std::fprintf(stderr, "\r\033[K");
  }
  void blob_started(const image::Descriptor& d) override {
    if (quiet_) return;
    std::lock_guard l(mu_);
    in_flight_ += static_cast<uint64_t>(d.size);
  }
  void blob_bytes(const image::Descriptor& d, uint64_t n) override {
    (void)d;
    if (!tty_) return;
    std::lock_guard l(mu_);
    bytes_ += n;
    auto now = std::chrono::steady_clock::now();
    if (now - last_draw_ < std::chrono::milliseconds(100)) return;
    last_draw_ = now;
    double secs = std::chrono::duration<double>(now - start_).count();
    double rate = secs > 0 ? static_cast<double>(bytes_) / secs : 0;
    double left = in_flight_ > bytes_done_ + bytes_
                      ? static_cast<double>(in_flight_ - bytes_done_ - bytes_)
                      : 0;
    std::fprintf(stderr, "\r\033[K%s  %s/s  ETA %.0fs", human(static_cast<double>(bytes_)).c_str(),
                 human(rate).c_str(), rate > 0 ? left / rate : 0.0);
    drawn_ = true;
  }
  void blob_done(const image::Descriptor& d, Outcome o) override {
    if (quiet_) return;
    std::lock_guard l(mu_);
    if (o != Outcome::Copied) bytes_done_ += static_cast<uint64_t>(d.size);
    const char* what = o == Outcome::Copied    ? "copied"
                       : o == Outcome::Mounted ? "mounted"
                                               : "exists";
    std::fprintf(stderr, "%sblob %s: %s (%s)\n", tty_ && drawn_ ? "\r\033[K" : "",
                 d.digest.str().substr(0, 19).c_str(), what,
                 human(static_cast<double>(d.size)).c_str());
  }

 private:
  bool quiet_;
  bool tty_;
  bool drawn_ = false;
  std::mutex mu_;
  uint64_t bytes_ = 0;       // streamed so far
  uint64_t in_flight_ = 0;   // sizes of the blobs started
  uint64_t bytes_done_ = 0;  // sizes of blobs that needed no streaming
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point last_draw_{};
};

bool want_tty(const std::string& progress_flag) {
  if (progress_flag == "tty") return true;
  if (progress_flag == "plain") return false;
  return isatty(STDERR_FILENO) != 0;
}

void summary(bool quiet, const image::CopyResult& r, std::chrono::steady_clock::time_point t0) {
  if (quiet) return;
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::fprintf(stderr, "%d copied (%s in %.2f s), %d mounted, %d already present\n", r.blobs_copied,
               human(static_cast<double>(r.bytes_copied)).c_str(), s, r.blobs_mounted,
               r.blobs_existing);
}

struct CopyFlags {
  std::string platform;
  bool all = false;
  int jobs = 4;
  bool quiet = false;
  std::string progress = "auto";
};

void add_copy_flags(CLI::App* cmd, CopyFlags& f) {
  cmd->add_option("--platform", f.platform, "os/arch[/variant] to select from an index");
  cmd->add_flag("--all,-a", f.all, "copy the whole index with every platform");
  cmd->add_option("--jobs,-j", f.jobs, "parallel blob transfers")->check(CLI::Range(1, 64));
  cmd->add_flag("--quiet,-q", f.quiet, "print only the digest");
  cmd->add_option("--progress", f.progress, "auto (a live line on a TTY), plain or tty")
      ->check(CLI::IsMember({"auto", "plain", "tty"}));
}

Result<image::CopyOptions> copy_options(const CopyFlags& f, image::CopyProgress* p) {
  image::CopyOptions o{.all = f.all, .jobs = f.jobs, .progress = p};
  if (!f.platform.empty()) {
    KISTE_ASSIGN_OR_RETURN(o.platform, image::Platform::parse(f.platform));
  }
  return o;
}

Status do_pull(Globals& g, const RegistryFlags& rf, const CopyFlags& cf, const std::string& arg) {
  auto t0 = std::chrono::steady_clock::now();
  KISTE_ASSIGN_OR_RETURN(Reference ref, parse_remote(arg));
  KISTE_ASSIGN_OR_RETURN(image::Store store, image::Store::open(g.root));
  KISTE_ASSIGN_OR_RETURN(FileLock lease, store.writer_lease());
  KISTE_ASSIGN_OR_RETURN(Remote remote, connect(rf, ref.registry()));
  LineProgress progress(cf.quiet, want_tty(cf.progress));
  KISTE_ASSIGN_OR_RETURN(image::CopyOptions opts, copy_options(cf, &progress));
  KISTE_ASSIGN_OR_RETURN(auto src, with_context(registry::RemoteImage::open(*remote.client, ref),
                                                fmt::format("pull `{}`", ref.str())));
  image::StoreSink sink(store, ref);
  KISTE_ASSIGN_OR_RETURN(image::CopyResult r, image::copy_image(*src, sink, opts));
  summary(cf.quiet, r, t0);
  std::printf("%s\n", r.top.digest.str().c_str());
  return {};
}

}  // namespace

Status pull_for_build(const Globals& g, const image::Reference& ref,
                      const image::Platform& platform) {
  KISTE_ASSIGN_OR_RETURN(image::Store store, image::Store::open(g.root));
  KISTE_ASSIGN_OR_RETURN(FileLock lease, store.writer_lease());
  KISTE_ASSIGN_OR_RETURN(Remote remote, connect(RegistryFlags{}, ref.registry()));
  KISTE_ASSIGN_OR_RETURN(auto src, with_context(registry::RemoteImage::open(*remote.client, ref),
                                                fmt::format("pull `{}`", ref.str())));
  image::StoreSink sink(store, ref);
  LineProgress progress(false, false);
  KISTE_TRY(image::copy_image(*src, sink, {.platform = platform, .progress = &progress}));
  return {};
}

namespace {

Status do_push(Globals& g, const RegistryFlags& rf, const CopyFlags& cf, const std::string& name,
               const std::string& dest_arg) {
  auto t0 = std::chrono::steady_clock::now();
  KISTE_ASSIGN_OR_RETURN(image::Store store, image::Store::open(g.root, {.create = false}));
  KISTE_ASSIGN_OR_RETURN(image::StoreEntry entry, store.resolve(name));
  KISTE_ASSIGN_OR_RETURN(Reference dest, parse_remote(dest_arg.empty() ? entry.name : dest_arg));
  LineProgress progress(cf.quiet, want_tty(cf.progress));
  KISTE_ASSIGN_OR_RETURN(image::CopyOptions opts, copy_options(cf, &progress));
  KISTE_ASSIGN_OR_RETURN(image::CopyResult r, push_stored(store, entry, dest, rf, opts));
  summary(cf.quiet, r, t0);
  std::printf("%s\n", r.top.digest.str().c_str());
  return {};
}

// Where an image is for `copy`: docker://REF, oci-archive:PATH, docker-archive:PATH, or a
// stored image name (optionally written store:NAME).
struct Location {
  enum Kind { Remote, OciArchive, DockerArchive, Stored } kind;
  std::string value;
};

Location parse_location(const std::string& s) {
  if (s.starts_with("docker://")) return {Location::Remote, s};
  if (s.starts_with("oci-archive:")) return {Location::OciArchive, s.substr(12)};
  if (s.starts_with("docker-archive:")) return {Location::DockerArchive, s.substr(15)};
  if (s.starts_with("store:")) return {Location::Stored, s.substr(6)};
  return {Location::Stored, s};
}

// A scratch store for archive <-> registry copies (removed afterwards).
Result<std::pair<TempDir, image::Store>> scratch_store() {
  KISTE_ASSIGN_OR_RETURN(TempDir dir,
                         TempDir::create(std::filesystem::temp_directory_path(), "kiste-copy-"));
  KISTE_ASSIGN_OR_RETURN(image::Store store, image::Store::open(dir.path()));
  return std::make_pair(std::move(dir), std::move(store));
}

Status do_copy(Globals& g, const RegistryFlags& rf, const CopyFlags& cf, const std::string& from,
               const std::string& to) {
  Location src = parse_location(from);
  Location dst = parse_location(to);
  auto is_archive = [](const Location& l) {
    return l.kind == Location::OciArchive || l.kind == Location::DockerArchive;
  };
  if (from.starts_with("oci:") || from.starts_with("dir:") || to.starts_with("oci:") ||
      to.starts_with("dir:")) {
    return failf(Errc::Unsupported, "copy: transport of {} is not supported yet",
                 quote(from.starts_with("oci:") || from.starts_with("dir:") ? from : to));
  }
  if (src.kind == Location::Remote && dst.kind == Location::Stored) return do_pull(g, rf, cf, from);
  if (src.kind == Location::Stored && dst.kind == Location::Remote) {
    return do_push(g, rf, cf, src.value, to);
  }
  if (src.kind == Location::Remote && is_archive(dst)) {
    // Through a scratch store: the registry image is verified on the way in, then saved.
    KISTE_ASSIGN_OR_RETURN(auto scratch, scratch_store());
    KISTE_ASSIGN_OR_RETURN(Reference ref, parse_remote(from));
    KISTE_ASSIGN_OR_RETURN(Remote remote, connect(rf, ref.registry()));
    LineProgress progress(cf.quiet, want_tty(cf.progress));
    KISTE_ASSIGN_OR_RETURN(image::CopyOptions opts, copy_options(cf, &progress));
    KISTE_ASSIGN_OR_RETURN(auto img, registry::RemoteImage::open(*remote.client, ref));
    image::StoreSink sink(scratch.second, ref);
    KISTE_ASSIGN_OR_RETURN(image::CopyResult r, image::copy_image(*img, sink, opts));
    KISTE_ASSIGN_OR_RETURN(image::StoreEntry e, scratch.second.resolve(ref.str()));
    KISTE_TRY(image::save_archive(scratch.second, {e}, dst.value,
                                  dst.kind == Location::OciArchive
                                      ? image::ArchiveFormat::OciArchive
                                      : image::ArchiveFormat::DockerArchive));
    std::printf("%s\n", r.top.digest.str().c_str());
    return {};
  }
  if (is_archive(src) && dst.kind == Location::Remote) {
    KISTE_ASSIGN_OR_RETURN(auto scratch, scratch_store());
    KISTE_ASSIGN_OR_RETURN(auto loaded, image::load_archive(scratch.second, src.value));
    if (loaded.size() != 1) {
      return failf(Errc::InvalidArgument,
                   "copy: archive {} holds {} images; copy needs exactly one", quote(src.value),
                   loaded.size());
    }
    image::StoreEntry e{.name = loaded[0].name ? loaded[0].name->str() : std::string(),
                        .manifest = loaded[0].manifest};
    KISTE_ASSIGN_OR_RETURN(auto img, scratch.second.open_image(e));
    KISTE_ASSIGN_OR_RETURN(Reference d, parse_remote(to));
    KISTE_ASSIGN_OR_RETURN(Remote remote, connect(rf, d.registry()));
    LineProgress progress(cf.quiet, want_tty(cf.progress));
    CopyFlags all = cf;
    all.all = true;
    KISTE_ASSIGN_OR_RETURN(image::CopyOptions opts, copy_options(all, &progress));
    registry::RemoteSink sink(*remote.client, d);
    KISTE_ASSIGN_OR_RETURN(image::CopyResult r, image::copy_image(*img, sink, opts));
    std::printf("%s\n", r.top.digest.str().c_str());
    return {};
  }
  if (src.kind != Location::Remote || dst.kind != Location::Remote) {
    return fail(Errc::InvalidArgument,
                "copy: one side must be docker://REF (use `kiste save`/`load`/`tag` locally)");
  }
  auto t0 = std::chrono::steady_clock::now();
  KISTE_ASSIGN_OR_RETURN(Reference s, parse_remote(from));
  KISTE_ASSIGN_OR_RETURN(Reference d, parse_remote(to));
  KISTE_ASSIGN_OR_RETURN(Remote rs, connect(rf, s.registry()));
  KISTE_ASSIGN_OR_RETURN(Remote rd, connect(rf, d.registry()));
  LineProgress progress(cf.quiet, want_tty(cf.progress));
  KISTE_ASSIGN_OR_RETURN(image::CopyOptions opts, copy_options(cf, &progress));
  KISTE_ASSIGN_OR_RETURN(auto img, registry::RemoteImage::open(*rs.client, s));
  registry::RemoteSink sink(*rd.client, d);
  KISTE_ASSIGN_OR_RETURN(image::CopyResult r, image::copy_image(*img, sink, opts));
  summary(cf.quiet, r, t0);
  std::printf("%s\n", r.top.digest.str().c_str());
  return {};
}

Status do_promote(const RegistryFlags& rf, const CopyFlags& cf, const std::string& from,
                  const std::string& to, const std::string& expect, bool no_signatures) {
  auto t0 = std::chrono::steady_clock::now();
  KISTE_ASSIGN_OR_RETURN(Reference s, parse_remote(from));
  KISTE_ASSIGN_OR_RETURN(Reference d, parse_remote(to));
  // Promotion moves no bytes (mounts), so more parallel requests cost no memory.
  registry::PromoteOptions po{.copy_signatures = !no_signatures, .jobs = std::max(cf.jobs, 8)};
  if (!expect.empty()) {
    KISTE_ASSIGN_OR_RETURN(po.expect_digest,
                           with_context(image::Digest::parse(expect), "--expect-digest"));
  }
  LineProgress progress(cf.quiet, want_tty(cf.progress));
  po.progress = &progress;
  KISTE_ASSIGN_OR_RETURN(Remote rs, connect(rf, s.registry()));
  Remote rd;
  registry::Client* dc = rs.client.get();
  if (d.registry() != s.registry()) {
    KISTE_ASSIGN_OR_RETURN(rd, connect(rf, d.registry()));
    dc = rd.client.get();
  }
  KISTE_ASSIGN_OR_RETURN(registry::PromoteResult r, registry::promote(*rs.client, s, *dc, d, po));
  summary(cf.quiet, r.copy, t0);
  if (!cf.quiet && r.artifacts_copied > 0) {
    std::fprintf(stderr, "%d signature/attestation/referrer artifacts copied\n",
                 r.artifacts_copied);
  }
  std::printf("%s\n", r.digest.str().c_str());
  return {};
}

Status do_tags(const RegistryFlags& rf, const std::string& repo_arg) {
  std::string_view a = repo_arg;
  if (a.starts_with("docker://")) a.remove_prefix(9);
  KISTE_ASSIGN_OR_RETURN(Reference ref, Reference::parse(a, {.default_tag = false}));
  KISTE_ASSIGN_OR_RETURN(Remote remote, connect(rf, ref.registry()));
  KISTE_ASSIGN_OR_RETURN(auto tags, remote.client->list_tags(ref.repository()));
  for (const auto& t : tags) std::printf("%s\n", t.c_str());
  return {};
}

Status do_delete(const RegistryFlags& rf, const std::string& arg) {
  KISTE_ASSIGN_OR_RETURN(Reference ref, parse_remote(arg));
  KISTE_ASSIGN_OR_RETURN(Remote remote, connect(rf, ref.registry()));
  image::Digest d = image::Digest::of("");
  if (ref.digest()) {
    d = *ref.digest();
  } else {
    KISTE_ASSIGN_OR_RETURN(auto h,
                           remote.client->try_head_manifest(ref.repository(), ref.identifier()));
    if (!h) return failf(Errc::NotFound, "delete `{}`: no such manifest", ref.str());
    d = h->digest;
  }
  KISTE_TRY(remote.client->delete_manifest(ref.repository(), d));
  std::printf("%s\n", d.str().c_str());
  return {};
}

class OneCredential final : public registry::Keychain {
 public:
  explicit OneCredential(registry::Credential c) : c_(std::move(c)) {}
  Result<std::optional<registry::Credential>> get(std::string_view) override { return c_; }

 private:
  registry::Credential c_;
};

Result<std::string> read_password(bool from_stdin) {
  std::string pw;
  if (from_stdin || !isatty(STDIN_FILENO)) {
    std::getline(std::cin, pw);
  } else {
    std::fprintf(stderr, "Password: ");
    termios old{};
    tcgetattr(STDIN_FILENO, &old);
    termios quiet = old;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
    std::getline(std::cin, pw);
    tcsetattr(STDIN_FILENO, TCSANOW, &old);
    std::fprintf(stderr, "\n");
  }
  while (!pw.empty() && (pw.back() == '\r' || pw.back() == '\n')) pw.pop_back();
  if (pw.empty()) return fail(Errc::InvalidArgument, "login: empty password");
  return pw;
}

Status do_login(const RegistryFlags& rf, std::string user, bool password_stdin,
                const std::string& registry_arg) {
  std::string host = registry_arg;
  if (host.starts_with("docker://")) host = host.substr(9);
  if (user.empty()) {
    if (!isatty(STDIN_FILENO) || password_stdin) {
      return fail(Errc::InvalidArgument, "login: --username is required with --password-stdin");
    }
    std::fprintf(stderr, "Username: ");
    std::getline(std::cin, user);
  }
  KISTE_ASSIGN_OR_RETURN(std::string pw, read_password(password_stdin));
  registry::Credential cred{.username = user, .password = pw};
  OneCredential kc(cred);
  registry::ClientOptions o{.keychain = &kc};
  if (!rf.tls_verify.empty()) o.tls_verify = rf.tls_verify == "true";
  if (!rf.cert_dir.empty()) o.cert_dir = rf.cert_dir;
  KISTE_ASSIGN_OR_RETURN(auto client, registry::Client::create(host, std::move(o)));
  KISTE_TRY(with_context(client->ping(), fmt::format("login to `{}`", host)));
  std::filesystem::path file = rf.authfile.empty() ? registry::DockerKeychain::login_file()
                                                   : std::filesystem::path(rf.authfile);
  KISTE_TRY(registry::save_login(file, host, cred));
  std::printf("Login Succeeded\n");
  return {};
}

}  // namespace

Result<std::string> inspect_remote_json(const Globals& g, std::string_view arg) {
  (void)g;
  KISTE_ASSIGN_OR_RETURN(Reference ref, parse_remote(arg));
  KISTE_ASSIGN_OR_RETURN(Remote remote, connect({}, ref.registry()));
  registry::Client& c = *remote.client;
  KISTE_ASSIGN_OR_RETURN(auto img, registry::RemoteImage::open(c, ref));
  nlohmann::ordered_json j;
  j["Name"] = ref.name();
  j["Digest"] = img->top().digest.str();
  j["MediaType"] = img->top().media_type;
  auto tags = c.list_tags(ref.repository());
  j["RepoTags"] = tags ? *tags : std::vector<std::string>{};
  image::ManifestBlob m = img->top();
  if (m.is_index()) {
    nlohmann::ordered_json plats = nlohmann::ordered_json::array();
    for (const auto& d : m.index().manifests) {
      plats.push_back({{"digest", d.digest.str()},
                       {"platform", d.platform ? d.platform->str() : std::string()}});
    }
    j["Manifests"] = plats;
    auto sel = image::select_platform(m.index(), image::Platform::host());
    if (!sel) return j.dump(4);
    KISTE_ASSIGN_OR_RETURN(m, img->fetch_manifest(*sel));
  }
  const auto& man = m.manifest();
  if (image::media_type::is_config(man.config.media_type)) {
    KISTE_ASSIGN_OR_RETURN(auto r, img->open_blob(man.config));
    KISTE_ASSIGN_OR_RETURN(std::string cfg,
                           image::read_bounded(*r, image::kMaxManifestBytes, "config"));
    if (image::Digest::of(cfg) != man.config.digest) {
      return failf(Errc::Corrupt, "inspect `{}`: config does not match {}", ref.str(),
                   man.config.digest);
    }
    auto cj = nlohmann::json::parse(cfg, nullptr, false);
    if (cj.is_object()) {
      for (const char* k : {"created", "architecture", "variant", "os"}) {
        if (cj.contains(k) && cj[k].is_string()) {
          std::string key(k);
          key[0] = static_cast<char>(std::toupper(key[0]));
          j[key] = cj[k];
        }
      }
      if (cj.contains("config") && cj["config"].is_object()) {
        for (const char* k : {"Labels", "Env"}) {
          if (cj["config"].contains(k)) j[k] = cj["config"][k];
        }
      }
    }
  }
  nlohmann::ordered_json layers = nlohmann::ordered_json::array();
  for (const auto& l : man.layers) {
    layers.push_back({{"MIMEType", l.media_type}, {"Digest", l.digest.str()}, {"Size", l.size}});
  }
  j["LayersData"] = layers;
  return j.dump(4);
}

void register_registry_commands(CLI::App& app, Globals& g) {
  // Option storage lives as long as the app (callbacks run during parse).
  static RegistryFlags rf;
  static CopyFlags cf;

  {
    auto* cmd = app.add_subcommand("pull", "pull an image from a registry into the store");
    static std::string ref;
    cmd->add_option("REF", ref, "image reference")->required();
    add_registry_flags(cmd, rf);
    add_copy_flags(cmd, cf);
    cmd->callback([&g] { exit_on_error(do_pull(g, rf, cf, ref)); });
  }
  {
    auto* cmd = app.add_subcommand("push", "push a stored image to a registry");
    static std::string name, dest;
    cmd->add_option("IMAGE", name, "stored image")->required();
    cmd->add_option("DEST", dest, "destination reference (default: IMAGE's name)");
    add_registry_flags(cmd, rf);
    add_copy_flags(cmd, cf);
    cmd->callback([&g] { exit_on_error(do_push(g, rf, cf, name, dest)); });
  }
  {
    auto* cmd = app.add_subcommand(
        "copy",
        "copy an image between docker://REF, oci-archive:PATH, docker-archive:PATH and the store");
    static std::string from, to;
    cmd->add_option("SRC", from)->required();
    cmd->add_option("DEST", to)->required();
    add_registry_flags(cmd, rf);
    add_copy_flags(cmd, cf);
    cmd->callback([&g] { exit_on_error(do_copy(g, rf, cf, from, to)); });
  }
  {
    auto* cmd = app.add_subcommand(
        "promote", "copy an image between repositories byte for byte (mounts, verifies digest)");
    static std::string from, to, expect;
    static bool no_sigs = false;
    cmd->add_option("SRC", from)->required();
    cmd->add_option("DEST", to)->required();
    cmd->add_option("--expect-digest", expect, "refuse unless the source has this digest");
    cmd->add_flag("--no-signatures", no_sigs, "do not copy .sig/.att/.sbom tags and referrers");
    add_registry_flags(cmd, rf);
    add_copy_flags(cmd, cf);
    cmd->callback([] { exit_on_error(do_promote(rf, cf, from, to, expect, no_sigs)); });
  }
  {
    auto* cmd = app.add_subcommand("tags", "list the tags of a repository");
    static std::string repo;
    cmd->add_option("REPO", repo)->required();
    add_registry_flags(cmd, rf);
    cmd->callback([] { exit_on_error(do_tags(rf, repo)); });
  }
  {
    auto* cmd = app.add_subcommand("delete", "delete a manifest from a registry (docker://REF)");
    static std::string ref;
    cmd->add_option("REF", ref)->required();
    add_registry_flags(cmd, rf);
    cmd->callback([] { exit_on_error(do_delete(rf, ref)); });
  }
  {
    auto* cmd =
        app.add_subcommand("login", "log in to a registry (stores credentials like docker)");
    static std::string user, host;
    static bool pw_stdin = false;
    cmd->add_option("--username,-u", user);
    cmd->add_flag("--password-stdin", pw_stdin, "read the password from stdin");
    cmd->add_option("REGISTRY", host)->required();
    add_registry_flags(cmd, rf);
    cmd->callback([] { exit_on_error(do_login(rf, user, pw_stdin, host)); });
  }
  {
    auto* cmd = app.add_subcommand("logout", "remove stored credentials for a registry");
    static std::string host;
    cmd->add_option("REGISTRY", host)->required();
    cmd->add_option("--authfile", rf.authfile);
    cmd->callback([] {
      std::filesystem::path file = rf.authfile.empty() ? registry::DockerKeychain::login_file()
                                                       : std::filesystem::path(rf.authfile);
      exit_on_error(registry::remove_login(file, host));
    });
  }
}

}  // namespace kiste::cli
