// Registry commands: pull, push, copy, promote, tags, delete, login, logout (and the remote half
// of `inspect docker://REF`). Wiring only: the work is in registry-client and image.
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <kiste/image/copy.hpp>
#include <kiste/image/media_type.hpp>
#include <kiste/image/store.hpp>
#include <kiste/registry/access.hpp>
#include <kiste/registry/client.hpp>
#include <kiste/registry/credentials.hpp>
#include <kiste/registry/promote.hpp>
#include <kiste/image/inspect.hpp>
#include <kiste/registry/remote_image.hpp>
#include <kiste/registry/transport.hpp>
#include <mutex>
#include <nlohmann/json.hpp>

#include "globals.hpp"
#include "registry_flags.hpp"
#include "progress.hpp"
#include "promote_release.hpp"
#include "rebuild_gate.hpp"
#include "trust_commands.hpp"
#include "trust_gate.hpp"

namespace kiste::cli {

namespace {

using image::Reference;
using registry::parse_docker_ref;
using registry::Remote;

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
  cmd->add_option("--progress", f.progress,
                  "auto (live lines per blob on a TTY: bytes, rate, ETA), plain or tty")
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
  KISTE_ASSIGN_OR_RETURN(Reference ref, parse_docker_ref(arg));
  KISTE_ASSIGN_OR_RETURN(image::Store store, image::Store::open(g.root));
  LineProgress progress(cf.quiet, want_tty(cf.progress));
  KISTE_ASSIGN_OR_RETURN(image::CopyOptions opts, copy_options(cf, &progress));
  KISTE_ASSIGN_OR_RETURN(registry::AccessOptions access, rf.gated_access());
  KISTE_ASSIGN_OR_RETURN(image::CopyResult r, registry::pull_image(store, ref, access, opts));
  summary(cf.quiet, r, t0);
  std::printf("%s\n", r.top.digest.str().c_str());
  return {};
}

}  // namespace

Status pull_for_build(const Globals& g, const RegistryFlags& rf, const image::Reference& ref,
                      const image::Platform& platform) {
  KISTE_ASSIGN_OR_RETURN(image::Store store, image::Store::open(g.root));
  LineProgress progress(false, false);
  KISTE_ASSIGN_OR_RETURN(registry::AccessOptions access, rf.gated_access());
  KISTE_TRY(registry::pull_image(store, ref, access,
                                 {.platform = platform, .progress = &progress}));
  return {};
}

namespace {

Status do_push(Globals& g, const RegistryFlags& rf, const CopyFlags& cf, const std::string& name,
               const std::string& dest_arg) {
  auto t0 = std::chrono::steady_clock::now();
  KISTE_ASSIGN_OR_RETURN(image::Store store, image::Store::open(g.root, {.create = false}));
  KISTE_ASSIGN_OR_RETURN(image::StoreEntry entry, store.resolve(name));
  KISTE_ASSIGN_OR_RETURN(Reference dest,
                         parse_docker_ref(dest_arg.empty() ? entry.name : dest_arg));
  LineProgress progress(cf.quiet, want_tty(cf.progress));
  KISTE_ASSIGN_OR_RETURN(image::CopyOptions opts, copy_options(cf, &progress));
  KISTE_ASSIGN_OR_RETURN(image::CopyResult r,
                         registry::push_image(store, entry, dest, rf.access(), opts));
  summary(cf.quiet, r, t0);
  std::printf("%s\n", r.top.digest.str().c_str());
  return {};
}

Status do_copy(Globals& g, const RegistryFlags& rf, const CopyFlags& cf, const std::string& from,
               const std::string& to) {
  auto t0 = std::chrono::steady_clock::now();
  KISTE_ASSIGN_OR_RETURN(registry::Location src, registry::parse_location(from));
  KISTE_ASSIGN_OR_RETURN(registry::Location dst, registry::parse_location(to));
  LineProgress progress(cf.quiet, want_tty(cf.progress));
  KISTE_ASSIGN_OR_RETURN(image::CopyOptions opts, copy_options(cf, &progress));
  KISTE_ASSIGN_OR_RETURN(registry::AccessOptions access, rf.gated_access());
  KISTE_ASSIGN_OR_RETURN(image::CopyResult r,
                         registry::copy(src, dst, {.store_root = g.root, .access = access}, opts));
  summary(cf.quiet, r, t0);
  if (!cf.quiet && r.referrers_copied > 0) {
    std::fprintf(stderr, "%d signature/attestation artifacts copied\n", r.referrers_copied);
  }
  if (r.referrers_left_out > 0) {
    std::fprintf(stderr,
                 "note: %s cannot hold signatures or attestations: %d referrer%s of the image "
                 "left out (oci-archive: and oci: keep them)\n",
                 to.c_str(), r.referrers_left_out, r.referrers_left_out == 1 ? "" : "s");
  }
  std::printf("%s\n", r.top.digest.str().c_str());
  return {};
}

Status do_promote(const Globals& g, const RegistryFlags& rf, const CopyFlags& cf,
                  const std::string& from, const std::string& to, const std::string& expect,
                  bool no_signatures, const PromoteTrust& pt, const RebuildFlags& rb) {
  auto t0 = std::chrono::steady_clock::now();
  KISTE_ASSIGN_OR_RETURN(Reference s, parse_docker_ref(from));
  KISTE_ASSIGN_OR_RETURN(Reference d, parse_docker_ref(to));
  // Promotion moves no bytes (mounts), so more parallel requests cost no memory.
  registry::PromoteOptions po{.copy_signatures = !no_signatures, .jobs = std::max(cf.jobs, 8)};
  if (!expect.empty()) {
    KISTE_ASSIGN_OR_RETURN(po.expect_digest,
                           with_context(image::Digest::parse(expect), "--expect-digest"));
  }
  // Everything that can refuse is settled before a byte moves: the key (and its passphrase), the
  // policy, the required signer.
  std::optional<trust::PrivateKey> key;
  std::string identity;
  if (!pt.sign_by.empty()) {
    KISTE_ASSIGN_OR_RETURN(key, with_context(load_private_key(pt.sign_by), "--sign-by"));
    KISTE_ASSIGN_OR_RETURN(identity, checked_identity(pt.sign_identity, d));
  }
  KISTE_ASSIGN_OR_RETURN(PromoteGate gate, promote_gate(rf, pt));
  std::optional<RebuildOutcome> rebuilt;
  if (gate || rb.require) {
    // Signatures first (cheap), then the rebuild.
    po.gate = [&](registry::Client& sc, const image::Digest& digest) -> Status {
      if (gate) KISTE_TRY(gate(sc, s, d, digest));
      if (rb.require) {
        KISTE_ASSIGN_OR_RETURN(rebuilt, check_rebuild(g, rf, rb, sc, s, digest));
      }
      return {};
    };
  }
  LineProgress progress(cf.quiet, want_tty(cf.progress));
  po.progress = &progress;
  KISTE_ASSIGN_OR_RETURN(Remote rs, registry::connect(rf.access(), s.registry()));
  Remote rd;
  registry::Client* dc = rs.client.get();
  if (d.registry() != s.registry()) {
    KISTE_ASSIGN_OR_RETURN(rd, registry::connect(rf.access(), d.registry()));
    dc = rd.client.get();
  }
  KISTE_ASSIGN_OR_RETURN(registry::PromoteResult r, registry::promote(*rs.client, s, *dc, d, po));
  summary(cf.quiet, r.copy, t0);
  if (!cf.quiet && r.artifacts_copied > 0) {
    std::fprintf(stderr, "%d signature/attestation/referrer artifacts copied\n",
                 r.artifacts_copied);
  }
  if (rebuilt && rb.attest) {
    KISTE_TRY(with_context(attest_rebuild(*dc, d, r.digest, *rebuilt),
                           fmt::format("promote `{}`: --attest-rebuild", d.str())));
    if (!cf.quiet) std::fprintf(stderr, "Attached the rebuild attestation to %s\n", d.str().c_str());
  }
  if (key) {
    KISTE_TRY(with_context(sign_in_registry(*dc, d, r.digest, *key, identity),
                           fmt::format("promote `{}`: --sign-by", d.str())));
    if (!cf.quiet) std::fprintf(stderr, "Signed %s as %s\n", r.digest.str().c_str(), identity.c_str());
  }
  std::printf("%s\n", r.digest.str().c_str());
  return {};
}

Status do_tags(const RegistryFlags& rf, const std::string& repo_arg) {
  KISTE_ASSIGN_OR_RETURN(Reference ref, parse_docker_ref(repo_arg, {.default_tag = false}));
  KISTE_ASSIGN_OR_RETURN(Remote remote, registry::connect(rf.access(), ref.registry()));
  KISTE_ASSIGN_OR_RETURN(auto tags, remote.client->list_tags(ref.repository()));
  for (const auto& t : tags.names) std::printf("%s\n", t.c_str());
  if (tags.skipped > 0) {
    std::string shown;
    for (const auto& e : tags.examples) shown += (shown.empty() ? "" : ", ") + quote(e);
    if (tags.skipped > tags.examples.size()) {
      shown += fmt::format(" … and {} more", tags.skipped - tags.examples.size());
    }
    std::fprintf(stderr, "kiste: warning: %s: skipped %zu invalid tag%s: %s\n",
                 ref.repository().c_str(), tags.skipped, tags.skipped == 1 ? "" : "s",
                 shown.c_str());
  }
  return {};
}

// A DELETE removes the manifest, and with it every tag that points at it: say which before
// doing it. On a terminal kiste asks; otherwise it refuses unless --force.
Status do_delete(const RegistryFlags& rf, const std::string& arg, bool force) {
  KISTE_ASSIGN_OR_RETURN(Reference ref, parse_docker_ref(arg));
  KISTE_ASSIGN_OR_RETURN(Remote remote, registry::connect(rf.access(), ref.registry()));
  image::Digest d = image::Digest::of("");
  if (ref.digest()) {
    d = *ref.digest();
  } else {
    KISTE_ASSIGN_OR_RETURN(auto h,
                           remote.client->try_head_manifest(ref.repository(), ref.identifier()));
    if (!h) return failf(Errc::NotFound, "delete `{}`: no such manifest", ref.str());
    d = h->digest;
  }
  if (!force) {
    KISTE_ASSIGN_OR_RETURN(auto tags, remote.client->tags_of(ref.repository(), d));
    std::erase_if(tags, [&](const std::string& t) { return ref.tag() && t == *ref.tag(); });
    if (!tags.empty()) {
      std::string list;
      for (const auto& t : tags) list += (list.empty() ? "" : ", ") + t;
      std::string what = fmt::format(
          "delete `{}`: {} is also tagged {} in `{}`; deleting the manifest removes {} too (the "
          "registry deletes manifests, not tags)",
          ref.str(), d.str().substr(0, 19), list, ref.name(),
          tags.size() == 1 ? "that tag" : "those tags");
      if (isatty(STDIN_FILENO) == 0 || isatty(STDERR_FILENO) == 0) {
        return failf(Errc::InvalidArgument, "{}; use --force to delete anyway", what);
      }
      const size_t n = tags.size() + (ref.tag() ? 1 : 0);  // with the one asked for
      std::fprintf(stderr, "kiste: warning: %s\nDelete %zu tag%s? [y/N] ", what.c_str(), n,
                   n == 1 ? "" : "s");
      std::string answer;
      std::getline(std::cin, answer);
      if (answer != "y" && answer != "Y" && answer != "yes") {
        return failf(Errc::Cancelled, "delete `{}`: not confirmed", ref.str());
      }
    }
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

Status do_login(const RegistryFlags& rf, std::string user, std::string password,
                bool password_stdin, const std::string& registry_arg) {
  std::string host = registry_arg;
  if (host.starts_with("docker://")) host = host.substr(9);
  if (!password.empty() && password_stdin) {
    return fail(Errc::InvalidArgument, "login: --password and --password-stdin are exclusive");
  }
  if (!password.empty()) {
    std::fprintf(stderr, "kiste: warning: a password given with --password is visible to other "
                         "users of this host; use --password-stdin\n");
    if (user.empty()) return fail(Errc::InvalidArgument, "login: --password needs --username");
  }
  if (user.empty()) {
    if (!isatty(STDIN_FILENO) || password_stdin) {
      return fail(Errc::InvalidArgument, "login: --username is required with --password-stdin");
    }
    std::fprintf(stderr, "Username: ");
    std::getline(std::cin, user);
  }
  std::string pw = password;
  if (pw.empty()) {
    KISTE_ASSIGN_OR_RETURN(pw, read_password(password_stdin));
  }
  registry::Credential cred{.username = user, .password = pw};
  OneCredential kc(cred);
  KISTE_ASSIGN_OR_RETURN(registry::ClientOptions o, registry::client_options(rf.access(), host, &kc));
  KISTE_ASSIGN_OR_RETURN(auto client, registry::Client::create(host, std::move(o)));
  KISTE_ASSIGN_OR_RETURN(std::optional<std::string> identity_token, client->login());
  if (identity_token) {
    cred.password.clear();
    cred.identity_token = std::move(*identity_token);
  }
  std::filesystem::path file = rf.authfile.empty() ? registry::DockerKeychain::login_file()
                                                   : std::filesystem::path(rf.authfile);
  KISTE_TRY(registry::save_login(file, host, cred));
  std::printf("Login Succeeded\n");
  return {};
}

}  // namespace

Result<std::string> inspect_remote_json(const RegistryFlags& rf, std::string_view arg) {
  KISTE_ASSIGN_OR_RETURN(Reference ref, parse_docker_ref(arg));
  KISTE_ASSIGN_OR_RETURN(Remote remote, registry::connect(rf.access(), ref.registry()));
  KISTE_ASSIGN_OR_RETURN(auto img, registry::RemoteImage::open(*remote.client, ref));
  image::ManifestBlob top = img->top();
  image::InspectInput in{.manifest = top};
  if (top.is_index()) {
    KISTE_ASSIGN_OR_RETURN(auto sel, with_context(image::select_platform(top.index(),
                                                                         image::Platform::host()),
                                                  fmt::format("inspect `{}`", ref.str())));
    KISTE_ASSIGN_OR_RETURN(in.manifest, img->fetch_manifest(sel));
    in.index = std::move(top);
  }
  if (in.manifest.is_index()) {
    return failf(Errc::Unsupported, "inspect `{}`: nested index", ref.str());
  }
  const image::Descriptor& cfg = in.manifest.manifest().config;
  KISTE_ASSIGN_OR_RETURN(auto r, img->open_blob(cfg));
  KISTE_ASSIGN_OR_RETURN(in.config, image::read_bounded(*r, image::kMaxManifestBytes, "config"));
  if (image::Digest::of(in.config) != cfg.digest) {
    return failf(Errc::Corrupt, "inspect `{}`: config does not match {}", ref.str(), cfg.digest);
  }
  // docker's names for what was asked: the tag, and the repository at the digest it resolved to.
  if (ref.tag()) in.repo_tags.push_back(ref.without_digest().familiar());
  std::string repo = ref.without_digest().with_tag("x").familiar();
  repo.resize(repo.size() - 2);  // drop ":x"
  in.repo_digests.push_back(repo + "@" + img->top().digest.str());
  return image::inspect_json(in);
}

void register_registry_commands(CLI::App& app, Globals& g) {
  // Option storage lives as long as the app (callbacks run during parse).
  static RegistryFlags rf;
  static CopyFlags cf;

  {
    auto* cmd = app.add_subcommand("pull", "Pull an image from a registry into the store");
    static std::string ref;
    cmd->add_option("REF", ref, "image reference")->required();
    add_registry_flags(cmd, rf);
    add_policy_flag(cmd, rf);
    add_copy_flags(cmd, cf);
    cmd->callback([&g] { exit_on_error(do_pull(g, rf, cf, ref)); });
  }
  {
    auto* cmd = app.add_subcommand("push", "Push a stored image to a registry");
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
        "Copy an image between docker://REF, oci:DIR[:NAME], dir:DIR, oci-archive:PATH, "
        "docker-archive:PATH and the store");
    static std::string from, to;
    cmd->add_option("SRC", from,
                    "where the image is: docker://REF, oci:DIR[:NAME], dir:DIR, "
                    "oci-archive:PATH, docker-archive:PATH, or a stored image name")
        ->required();
    cmd->add_option("DEST", to, "where it goes (the same forms; a plain name: into the store)")
        ->required();
    add_registry_flags(cmd, rf);
    add_policy_flag(cmd, rf);
    add_copy_flags(cmd, cf);
    cmd->callback([&g] { exit_on_error(do_copy(g, rf, cf, from, to)); });
  }
  {
    auto* cmd = app.add_subcommand(
        "promote",
        "Copy images between repositories byte for byte (mounts, verifies digests); a whole "
        "release with --release FILE or several SRC DEST pairs");
    static std::vector<std::string> pairs;
    static ReleaseFlags relf;
    cmd->add_option("SRC_DEST", pairs,
                    "source and destination, docker://REGISTRY/REPO:TAG (or @sha256:…); several "
                    "pairs promote them as one release");
    cmd->add_option("--expect-digest", relf.expect, "refuse unless the source has this digest");
    cmd->add_flag("--no-signatures", relf.no_signatures,
                  "do not copy .sig/.att/.sbom tags and referrers");
    cmd->add_option("--release", relf.file,
                    "promote the images a release file lists (JSON, or `SRC DEST [DIGEST]` lines): "
                    "verify all, copy all, push all by digest, then move the tags");
    cmd->add_flag("--dry-run", relf.dry_run,
                  "resolve and verify every image and print the plan; copy and tag nothing");
    cmd->add_option("--release-index", relf.index,
                    "also write an OCI index of the release's images to this reference");
    static PromoteTrust pt;
    cmd->add_option("--sign-by", pt.sign_by,
                    "sign the promoted image for its destination identity with this private key");
    cmd->add_option("--sign-identity", pt.sign_identity,
                    "identity for --sign-by (default: DEST without its digest)");
    cmd->add_option("--require-signed-by", pt.require_signed_by,
                    "refuse unless the source carries a cosign signature by this public key");
    static RebuildFlags rb;
    cmd->add_flag("--require-rebuild", rb.require,
                  "rebuild the source from --context in a scratch store (with its provenance's "
                  "inputs) and refuse unless the digest is the same");
    cmd->add_option("--context", rb.context,
                    "build context for --require-rebuild (in a release: for the entries of the "
                    "release file that name no `context`)");
    cmd->add_option("-f,--file", rb.file,
                    "Containerfile for --require-rebuild (default: the provenance's, in --context)");
    cmd->add_flag("--attest-rebuild", rb.attest,
                  "after a matching rebuild, attach a rebuilder attestation to DEST as a referrer");
    cmd->add_option("--build-arg", rb.build_args,
                    "KEY=VALUE for --require-rebuild, over the provenance's (repeatable)")
        ->allow_extra_args(false);
    add_registry_flags(cmd, rf);
    add_policy_flag(cmd, rf);
    add_copy_flags(cmd, cf);
    cmd->callback([&g] {
      if (!rb.require &&
          (!rb.context.empty() || !rb.file.empty() || !rb.build_args.empty() || rb.attest)) {
        exit_on_error(fail(Errc::InvalidArgument,
                           "--context, -f, --build-arg and --attest-rebuild go with --require-rebuild"));
      }
      if (wants_release(relf, pairs)) {
        relf.quiet = cf.quiet;
        relf.jobs = cf.jobs;
        exit_on_error(do_promote_release(g, rf, relf, pt, rb, pairs));
      } else {
        exit_on_error(
            do_promote(g, rf, cf, pairs[0], pairs[1], relf.expect, relf.no_signatures, pt, rb));
      }
    });
  }
  {
    auto* cmd = app.add_subcommand("tags", "List the tags of a repository");
    static std::string repo;
    cmd->add_option("REPO", repo, "repository, [docker://]REGISTRY/REPO")->required();
    add_registry_flags(cmd, rf);
    cmd->callback([] { exit_on_error(do_tags(rf, repo)); });
  }
  {
    auto* cmd = app.add_subcommand("delete", "Delete a manifest from a registry (docker://REF)");
    static std::string ref;
    cmd->add_option("REF", ref, "the manifest to delete, docker://REGISTRY/REPO:TAG or @sha256:…")
        ->required();
    static bool force = false;
    cmd->add_flag("-f,--force", force,
                  "also when other tags point at the same manifest (they are deleted with it)");
    add_registry_flags(cmd, rf);
    cmd->callback([] { exit_on_error(do_delete(rf, ref, force)); });
  }
  {
    auto* cmd =
        app.add_subcommand("login", "Log in to a registry (stores credentials like docker)");
    static std::string user, password, host;
    static bool pw_stdin = false;
    cmd->add_option("--username,-u", user, "user name (asked on a terminal when not given)");
    cmd->add_option("--password,-p", password,
                    "password (visible in the process list: prefer --password-stdin)");
    cmd->add_flag("--password-stdin", pw_stdin, "read the password from stdin");
    cmd->add_option("REGISTRY", host, "registry host[:port], e.g. registry.example.com")
        ->required();
    add_registry_flags(cmd, rf);
    cmd->callback([] { exit_on_error(do_login(rf, user, password, pw_stdin, host)); });
  }
  {
    auto* cmd = app.add_subcommand("logout", "Remove stored credentials for a registry");
    static std::string host;
    cmd->add_option("REGISTRY", host, "registry host[:port]")->required();
    cmd->add_option("--authfile", rf.authfile, "credentials file (default: docker's config.json)");
    cmd->callback([] {
      std::filesystem::path file = rf.authfile.empty() ? registry::DockerKeychain::login_file()
                                                       : std::filesystem::path(rf.authfile);
      exit_on_error(registry::remove_login(file, host));
    });
  }
}

}  // namespace kiste::cli
