// Signing commands: key generate, sign, verify (cosign's key and signature formats). Wiring only:
// keys and checks are trust/, the registry layout is registry::attachments.
#include <fcntl.h>
#include <termios.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <kiste/base/sys.hpp>
#include <kiste/base/unique_fd.hpp>
#include <kiste/registry/attachments.hpp>
#include <kiste/registry/lookaside.hpp>
#include <kiste/registry/transport.hpp>
#include <kiste/trust/gpg.hpp>
#include <kiste/trust/keys.hpp>
#include <kiste/trust/policy.hpp>
#include <kiste/trust/sigstore.hpp>

#include "globals.hpp"
#include "registry_flags.hpp"
#include "trust_commands.hpp"
#include "trust_gate.hpp"

namespace kiste::cli {

namespace {

namespace fs = std::filesystem;

// One line from the terminal without echo.
Result<std::string> ask_tty(const char* prompt) {
  int fd = ::open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    return fail(Errc::InvalidArgument,
                "no passphrase: set KISTE_PASSWORD (or COSIGN_PASSWORD), or run on a terminal");
  }
  UniqueFd tty(fd);
  KISTE_TRY(sys::write_all(tty.get(), prompt, "/dev/tty"));
  termios old{};
  bool have_termios = tcgetattr(tty.get(), &old) == 0;
  if (have_termios) {
    termios quiet = old;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    tcsetattr(tty.get(), TCSANOW, &quiet);
  }
  std::string line;
  char c = 0;
  while (::read(tty.get(), &c, 1) == 1 && c != '\n') {
    if (line.size() < 4096) line += c;
  }
  if (have_termios) tcsetattr(tty.get(), TCSANOW, &old);
  (void)sys::write_all(tty.get(), "\n", "/dev/tty");
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line;
}

Result<std::string> passphrase(bool confirm) {
  for (const char* var : {"KISTE_PASSWORD", "COSIGN_PASSWORD"}) {
    if (const char* v = std::getenv(var)) return std::string(v);
  }
  KISTE_ASSIGN_OR_RETURN(std::string p, ask_tty("Enter passphrase for the private key: "));
  if (confirm) {
    KISTE_ASSIGN_OR_RETURN(std::string again, ask_tty("Enter passphrase again: "));
    if (again != p) return fail(Errc::InvalidArgument, "passphrases do not match");
  }
  return p;
}

Status do_key_generate(const std::string& prefix) {
  fs::path key = prefix + ".key";
  fs::path pub = prefix + ".pub";
  for (const auto& p : {key, pub}) {
    std::error_code ec;
    if (fs::exists(fs::symlink_status(p, ec))) {
      return failf(Errc::AlreadyExists, "key generate: `{}` exists; not overwriting it",
                   p.string());
    }
  }
  KISTE_ASSIGN_OR_RETURN(std::string pass, passphrase(true));
  KISTE_ASSIGN_OR_RETURN(trust::PrivateKey k, trust::PrivateKey::generate());
  KISTE_ASSIGN_OR_RETURN(std::string enc, k.encrypted_pem(pass));
  KISTE_ASSIGN_OR_RETURN(std::string pub_pem, k.public_pem());
  KISTE_TRY(with_context(sys::write_file_atomic(key, enc, 0600), "key generate"));
  if (auto r = sys::write_file_atomic(pub, pub_pem, 0644); !r) {
    (void)::unlink(key.c_str());  // nothing half made
    return std::unexpected(std::move(r).error().with_context("key generate"));
  }
  std::fprintf(stderr, "Private key written to %s\nPublic key written to %s\n", key.c_str(),
               pub.c_str());
  return {};
}

// The reference, a client for its registry and the manifest digest it names now.
struct Resolved {
  image::Reference ref;
  registry::Remote remote;
  image::Digest digest = image::Digest::of("");
};

Result<Resolved> resolve_remote(const RegistryFlags& rf, const std::string& arg) {
  KISTE_ASSIGN_OR_RETURN(image::Reference ref, registry::parse_docker_ref(arg));
  KISTE_ASSIGN_OR_RETURN(registry::Remote remote, registry::connect(rf.access(), ref.registry()));
  image::Digest d = image::Digest::of("");
  if (ref.digest()) {
    d = *ref.digest();
  } else {
    KISTE_ASSIGN_OR_RETURN(auto head,
                           remote.client->try_head_manifest(ref.repository(), ref.identifier()));
    if (!head) return failf(Errc::NotFound, "`{}`: no such manifest", ref.str());
    d = head->digest;
  }
  return Resolved{std::move(ref), std::move(remote), d};
}

// The identity a signature claims by default: the reference as given, without its digest (a
// tag stays; a digest-only reference signs the repository, as cosign does).
std::string default_identity(const image::Reference& ref) {
  image::Reference r = ref.without_digest();
  if (ref.digest() && !ref.tag()) return r.name();
  return r.str();
}

}  // namespace

Result<trust::PrivateKey> load_private_key(const std::string& path) {
  KISTE_ASSIGN_OR_RETURN(std::string pem,
                         with_context(sys::read_file(path, 64 * 1024), fmt::format("key `{}`", path)));
  KISTE_ASSIGN_OR_RETURN(std::string pass, passphrase(false));
  return with_context(trust::PrivateKey::load_encrypted(pem, pass), fmt::format("key `{}`", path));
}

Result<image::Digest> sign_in_registry(registry::Client& c, const image::Reference& ref,
                                       const image::Digest& digest, const trust::PrivateKey& key,
                                       const std::string& identity) {
  KISTE_ASSIGN_OR_RETURN(trust::SigstoreSignature sig,
                         trust::make_sigstore_signature(key, identity, digest));
  return with_context(
      registry::append_attached_layer(c, ref.repository(), trust::signature_tag(digest),
                                      trust::kSimpleSigningMediaType, sig.payload,
                                      sig.annotations),
      fmt::format("store the signature of `{}`", ref.str()));
}

Result<image::Digest> sign_as_referrer(registry::Client& c, const image::Reference& ref,
                                       const image::Digest& digest, const trust::PrivateKey& key,
                                       const std::string& identity) {
  std::string ctx = fmt::format("store the signature of `{}` as a referrer", ref.str());
  KISTE_ASSIGN_OR_RETURN(auto subject,
                         with_context(c.try_head_manifest(ref.repository(), digest.str()), ctx));
  if (!subject) return failf(Errc::NotFound, "{}: {} is not in `{}`", ctx, digest, ref.name());
  KISTE_ASSIGN_OR_RETURN(trust::SigstoreSignature sig,
                         trust::make_sigstore_signature(key, identity, digest));
  KISTE_ASSIGN_OR_RETURN(
      image::Descriptor d,
      with_context(registry::push_referrer_layer(
                       c, ref.repository(), *subject, trust::kSignatureArtifactType,
                       trust::kSimpleSigningMediaType,
                       registry::AttachedLayer{std::move(sig.payload), std::move(sig.annotations)}),
                   ctx));
  return d.digest;
}

Result<std::string> checked_identity(const std::string& identity, const image::Reference& ref) {
  if (identity.empty()) return default_identity(ref);
  KISTE_ASSIGN_OR_RETURN(image::Reference id,
                         with_context(image::Reference::parse(identity, {.default_tag = false}),
                                      fmt::format("--identity `{}`", identity)));
  if (id.digest()) {
    return failf(Errc::InvalidArgument, "--identity `{}`: an identity names a repository or a tag, not a digest", identity);
  }
  return id.str();
}

namespace {

Status do_sign(const RegistryFlags& rf, const std::string& arg, const std::string& key_path,
               const std::string& identity_arg, const std::string& referrers_mode) {
  KISTE_ASSIGN_OR_RETURN(trust::PrivateKey key, load_private_key(key_path));
  KISTE_ASSIGN_OR_RETURN(Resolved r, resolve_remote(rf, arg));
  KISTE_ASSIGN_OR_RETURN(std::string identity, checked_identity(identity_arg, r.ref));
  std::string where = trust::signature_tag(r.digest);
  if (referrers_mode == "oci-1-1") {
    KISTE_ASSIGN_OR_RETURN(image::Digest art,
                           with_context(sign_as_referrer(*r.remote.client, r.ref, r.digest, key,
                                                         identity),
                                        fmt::format("sign `{}`", r.ref.str())));
    where = fmt::format("referrer {}", art);
  } else {
    KISTE_TRY(with_context(sign_in_registry(*r.remote.client, r.ref, r.digest, key, identity),
                           fmt::format("sign `{}`", r.ref.str())));
  }
  std::fprintf(stderr, "Signed %s as %s (%s)\n", r.digest.str().c_str(), identity.c_str(),
               where.c_str());
  std::printf("%s\n", r.digest.str().c_str());
  return {};
}

// `sign --sign-by FINGERPRINT`: a GPG simple signing in the lookaside storage registries.d names
// for the image, as skopeo --sign-by writes it.
Status do_sign_gpg(const RegistryFlags& rf, const std::string& arg, const std::string& fingerprint,
                   const std::string& identity_arg) {
  KISTE_ASSIGN_OR_RETURN(Resolved r, resolve_remote(rf, arg));
  KISTE_ASSIGN_OR_RETURN(std::string identity, checked_identity(identity_arg, r.ref));
  std::string what = fmt::format("sign `{}`", r.ref.str());
  std::string dir = rf.registries_d.empty() ? "/etc/containers/registries.d" : rf.registries_d;
  KISTE_ASSIGN_OR_RETURN(registry::LookasideConfig conf,
                         with_context(registry::load_registries_d(dir), what));
  std::optional<std::string> url = conf.lookaside_for(r.ref);
  if (!url) {
    return failf(Errc::InvalidArgument,
                 "{}: no lookaside storage for `{}` in `{}` (add `lookaside: file://DIR` for it)",
                 what, r.ref.name(), dir);
  }
  KISTE_ASSIGN_OR_RETURN(std::string sig, with_context(trust::make_gpg_signature(
                                                           fingerprint, identity, r.digest),
                                                       what));
  KISTE_ASSIGN_OR_RETURN(std::filesystem::path path,
                         with_context(registry::write_lookaside_signature(*url, r.ref, r.digest, sig),
                                      what));
  std::fprintf(stderr, "Signed %s as %s with GPG key %s (%s)\n", r.digest.str().c_str(),
               identity.c_str(), fingerprint.c_str(), path.c_str());
  std::printf("%s\n", r.digest.str().c_str());
  return {};
}

Status do_verify(const RegistryFlags& rf, const std::string& arg, const std::string& pub_path,
                 const std::string& identity) {
  KISTE_ASSIGN_OR_RETURN(std::string pem, with_context(sys::read_file(pub_path, 64 * 1024),
                                                       fmt::format("key `{}`", pub_path)));
  KISTE_ASSIGN_OR_RETURN(trust::PublicKey key,
                         with_context(trust::PublicKey::parse_pem(pem), fmt::format("key `{}`", pub_path)));
  KISTE_ASSIGN_OR_RETURN(Resolved r, resolve_remote(rf, arg));
  trust::IdentityRule rule;
  if (!identity.empty()) {
    KISTE_ASSIGN_OR_RETURN(image::Reference id,
                           with_context(image::Reference::parse(identity, {.default_tag = false}),
                                        fmt::format("--identity `{}`", identity)));
    rule = trust::IdentityRule{.kind = id.tag() || id.digest() ? trust::IdentityRule::Kind::ExactReference
                                            : trust::IdentityRule::Kind::ExactRepository,
            .reference = identity};
  }
  std::string what = fmt::format("verify `{}`", r.ref.str());
  KISTE_ASSIGN_OR_RETURN(auto sigs, with_context(fetch_sigstore_signatures(*r.remote.client, r.ref.repository(), r.digest), what));
  if (sigs.empty()) {
    return failf(Errc::PermissionDenied,
                 "{}: no signature for {} (no `{}` in `{}`, no signature referrer)", what,
                 r.digest, trust::signature_tag(r.digest), r.ref.name());
  }
  std::vector<std::string> good;
  std::string first_failure;
  for (const auto& s : sigs) {
    auto p = trust::verify_sigstore_signature(key, s, r.digest);
    if (!p) {
      if (first_failure.empty()) first_failure = p.error().message;
      continue;
    }
    auto m = trust::identity_matches(rule, r.ref, p->docker_reference);
    if (!m || !*m) {
      if (first_failure.empty()) {
        first_failure = m ? fmt::format("signed identity `{}` does not match `{}`",
                                        p->docker_reference,
                                        identity.empty() ? r.ref.str() : identity)
                          : m.error().message;
      }
      continue;
    }
    good.push_back(s.payload);
  }
  if (good.empty()) {
    return failf(Errc::PermissionDenied, "{}: {} signature{}, none verified with key `{}`: {}",
                 what, sigs.size(), sigs.size() == 1 ? "" : "s", pub_path, first_failure);
  }
  std::fprintf(stderr, "Verified %s: %zu of %zu signature%s by key %s\n", r.digest.str().c_str(),
               good.size(), sigs.size(), sigs.size() == 1 ? "" : "s", pub_path.c_str());
  for (const auto& g : good) std::printf("%s\n", g.c_str());
  return {};
}

}  // namespace

void register_trust_commands(CLI::App& app, Globals&) {
  static RegistryFlags rf;
  {
    auto* key = app.add_subcommand("key", "Signing keys (cosign's formats)");
    key->require_subcommand(1);
    auto* gen = key->add_subcommand(
        "generate",
        "Make an ECDSA P-256 key pair: PREFIX.key (encrypted with a passphrase from "
        "$KISTE_PASSWORD/$COSIGN_PASSWORD or the terminal) and PREFIX.pub");
    static std::string prefix = "cosign";
    gen->add_option("--output-key-prefix", prefix, "file name prefix (default: cosign)");
    gen->callback([] { exit_on_error(do_key_generate(prefix)); });
  }
  {
    auto* cmd = app.add_subcommand(
        "sign", "Sign a registry image (cosign layout: the sha256-<hex>.sig tag)");
    static std::string ref, key, identity;
    cmd->add_option("IMAGE", ref, "[docker://]REGISTRY/REPO:TAG or @sha256:…")->required();
    auto* key_opt = cmd->add_option("--key", key, "private key (cosign's encrypted format)");
    static std::string gpg_key;
    auto* gpg_opt = cmd->add_option(
        "--sign-by", gpg_key,
        "sign with this GPG key (fingerprint, from $GNUPGHOME) into lookaside storage, as skopeo "
        "--sign-by does");
    key_opt->excludes(gpg_opt);
    cmd->add_option("--registries.d", rf.registries_d,
                    "where --sign-by finds the lookaside storage (default: "
                    "/etc/containers/registries.d)");
    cmd->add_option("--identity", identity,
                    "identity the signature claims (default: IMAGE without its digest)");
    static std::string referrers_mode = "legacy";
    cmd->add_option("--registry-referrers-mode", referrers_mode,
                    "legacy (default): the sha256-<hex>.sig tag, which skopeo and podman read; "
                    "oci-1-1: an OCI 1.1 referrer (cosign's shape; the referrers API, else the "
                    "sha256-<hex> referrers tag)")
        ->check(CLI::IsMember({"legacy", "oci-1-1"}));
    add_registry_flags(cmd, rf);
    cmd->callback([] {
      if (!gpg_key.empty()) {
        exit_on_error(do_sign_gpg(rf, ref, gpg_key, identity));
      } else if (key.empty()) {
        exit_on_error(fail(Errc::InvalidArgument, "sign: give --key KEY or --sign-by FINGERPRINT"));
      } else {
        exit_on_error(do_sign(rf, ref, key, identity, referrers_mode));
      }
    });
  }
  {
    auto* cmd = app.add_subcommand(
        "verify", "Check a registry image's cosign signatures with a public key");
    static std::string ref, key, identity;
    cmd->add_option("IMAGE", ref, "[docker://]REGISTRY/REPO:TAG or @sha256:…")->required();
    cmd->add_option("--key", key, "public key (PEM)")->required();
    cmd->add_option("--identity", identity,
                    "the identity signatures must claim (default: IMAGE's repository and tag)");
    add_registry_flags(cmd, rf);
    cmd->callback([] { exit_on_error(do_verify(rf, ref, key, identity)); });
  }
}

}  // namespace kiste::cli
