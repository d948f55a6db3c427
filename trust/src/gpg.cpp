// GPG simple signing, checked by running gpgv (Debian's gpgv/gnupg) in a private temp dir.
#include <kiste/trust/gpg.hpp>

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <vector>

#include <kiste/base/sys.hpp>
#include <kiste/base/temp_dir.hpp>
#include <kiste/base/unique_fd.hpp>
#include <kiste/trust/keys.hpp>
#include <kiste/trust/sigstore.hpp>

extern char** environ;

namespace kiste::trust {

namespace {

// Runs `args` (argv[0] found on PATH) with fds 0, 1 and 2 from `in`, `out` and `err`, and waits;
// its exit status (128+N after signal N). `package` is the Debian package to name when missing.
Result<int> run_with_fds(std::vector<std::string> args, int in, int out, int err, std::string_view package) {
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in, 0);
  posix_spawn_file_actions_adddup2(&fa, out, 1);
  posix_spawn_file_actions_adddup2(&fa, err, 2);
  pid_t pid = 0;
  int rc = posix_spawnp(&pid, argv[0], &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) {
    return failf(Errc::Unavailable, "run `{}`: {} (install Debian's {})", args[0], std::strerror(rc), package);
  }
  int st = 0;
  while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

}  // namespace

Result<std::string> dearmor_public_keys(std::string_view keys) {
  if (keys.size() > kMaxGpgKeyringBytes) return fail(Errc::InvalidArgument, "GPG keys: larger than 1 MiB");
  constexpr std::string_view kBegin = "-----BEGIN PGP PUBLIC KEY BLOCK-----";
  constexpr std::string_view kEnd = "-----END PGP PUBLIC KEY BLOCK-----";
  if (keys.find(kBegin) == std::string_view::npos) return std::string(keys);
  std::string out;
  size_t pos = 0;
  while ((pos = keys.find(kBegin, pos)) != std::string_view::npos) {
    size_t end = keys.find(kEnd, pos);
    if (end == std::string_view::npos) return fail(Errc::InvalidArgument, "GPG keys: armor block not closed");
    std::string_view block = keys.substr(pos + kBegin.size(), end - pos - kBegin.size());
    // Header lines ("Version: …") end at the first empty line; the body ends at the "=CRC" line.
    std::string b64;
    bool in_body = false;
    size_t start = 0;
    while (start <= block.size()) {
      size_t nl = block.find('\n', start);
      std::string_view line = block.substr(start, nl == std::string_view::npos ? std::string_view::npos : nl - start);
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      if (!in_body) {
        if (line.empty() && start > 0) in_body = true;
        else if (line.find(':') == std::string_view::npos && !line.empty()) {
          in_body = true;  // no headers at all
          b64 += line;
        }
      } else {
        if (line.starts_with("=")) break;
        b64 += line;
      }
      if (nl == std::string_view::npos) break;
      start = nl + 1;
    }
    KISTE_ASSIGN_OR_RETURN(std::string bytes, with_context(base64_decode(b64), "GPG keys: armor"));
    out += bytes;
    pos = end + kEnd.size();
  }
  return out;
}

Result<GpgVerified> gpgv_verify(std::string_view keyring, std::string_view signature) {
  if (signature.size() > kMaxGpgSignatureBytes) {
    return fail(Errc::Corrupt, "GPG signature: larger than 64 KiB");
  }
  const char* tmp_env = std::getenv("TMPDIR");
  KISTE_ASSIGN_OR_RETURN(TempDir dir, TempDir::create(tmp_env && *tmp_env ? tmp_env : "/tmp", "kiste-gpgv-"));
  const std::filesystem::path keys = dir.path() / "keys.gpg";
  const std::filesystem::path sig = dir.path() / "signature";
  const std::filesystem::path payload = dir.path() / "payload";
  const std::filesystem::path status = dir.path() / "status";
  KISTE_TRY(sys::write_file_atomic(keys, keyring, 0600, sys::Sync::No));
  KISTE_TRY(sys::write_file_atomic(sig, signature, 0600, sys::Sync::No));
  KISTE_ASSIGN_OR_RETURN(UniqueFd status_fd, sys::open(status, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  KISTE_ASSIGN_OR_RETURN(UniqueFd null_fd, sys::open("/dev/null", O_RDWR | O_CLOEXEC, 0));
  std::string homedir = dir.path().string();
  std::string keys_s = keys.string(), sig_s = sig.string(), payload_s = payload.string();
  std::vector<std::string> args = {"gpgv",   "--homedir", homedir,   "--keyring", keys_s,
                                   "--status-fd", "1",     "--output", payload_s, sig_s};
  KISTE_ASSIGN_OR_RETURN(int exit_code, run_with_fds(std::move(args), null_fd.get(), status_fd.get(),
                                                    null_fd.get(), "gpgv"));
  if (exit_code != 0) {
    return fail(Errc::PermissionDenied, "GPG signature does not verify with the given keys");
  }
  KISTE_ASSIGN_OR_RETURN(std::string status_text, sys::read_file(status, 1 << 20));
  GpgVerified v;
  constexpr std::string_view kValid = "[GNUPG:] VALIDSIG ";
  size_t at = status_text.find(kValid);
  if (at == std::string::npos) {
    return fail(Errc::PermissionDenied, "GPG signature: gpgv reported no valid signature");
  }
  size_t fs = at + kValid.size();
  v.fingerprint = status_text.substr(fs, status_text.find_first_of(" \n", fs) - fs);
  KISTE_ASSIGN_OR_RETURN(v.payload, with_context(sys::read_file(payload, kMaxPayloadBytes),
                                                 "GPG signature payload"));
  return v;
}

namespace {

// Runs `args` with stdin and stdout on /dev/null and stderr into `err_file`; its exit status.
Result<int> run_quietly(std::vector<std::string> args, const std::filesystem::path& err_file) {
  KISTE_ASSIGN_OR_RETURN(UniqueFd null_fd, sys::open("/dev/null", O_RDWR | O_CLOEXEC, 0));
  KISTE_ASSIGN_OR_RETURN(UniqueFd err_fd,
                         sys::open(err_file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  return run_with_fds(std::move(args), null_fd.get(), null_fd.get(), err_fd.get(), "gnupg");
}

// The last non-empty line of gpg's messages, for an error.
std::string last_line(const std::filesystem::path& f) {
  auto text = sys::read_file(f, 64 * 1024);
  if (!text) return "";
  std::string t = *text;
  while (!t.empty() && (t.back() == '\n' || t.back() == '\r')) t.pop_back();
  return t.substr(t.rfind('\n') == std::string::npos ? 0 : t.rfind('\n') + 1);
}

}  // namespace

Result<std::string> make_gpg_signature(std::string_view fingerprint, std::string_view identity,
                                       const image::Digest& digest) {
  if (fingerprint.empty() || fingerprint.find_first_not_of("0123456789abcdefABCDEF") !=
                                 std::string_view::npos) {
    return failf(Errc::InvalidArgument, "--sign-by `{}`: expected a key fingerprint (hex)",
                 fingerprint);
  }
  const char* tmp_env = std::getenv("TMPDIR");
  KISTE_ASSIGN_OR_RETURN(TempDir dir,
                         TempDir::create(tmp_env && *tmp_env ? tmp_env : "/tmp", "kiste-gpg-"));
  const std::filesystem::path payload = dir.path() / "payload";
  const std::filesystem::path signed_msg = dir.path() / "signature";
  const std::filesystem::path pub = dir.path() / "key.gpg";
  const std::filesystem::path err = dir.path() / "stderr";
  KISTE_TRY(sys::write_file_atomic(payload, make_atomic_payload(identity, digest), 0600,
                                   sys::Sync::No));
  std::string fpr(fingerprint);
  KISTE_ASSIGN_OR_RETURN(int rc, run_quietly({"gpg", "--batch", "--no-tty", "--yes",
                                              "--local-user", fpr, "--output",
                                              signed_msg.string(), "--sign", payload.string()},
                                             err));
  if (rc != 0) {
    return failf(Errc::PermissionDenied, "gpg --sign with key `{}` failed: {}", fpr,
                 last_line(err));
  }
  // Checked as a verifier will: gpgv against the key's public part only.
  KISTE_ASSIGN_OR_RETURN(rc, run_quietly({"gpg", "--batch", "--no-tty", "--yes", "--output",
                                          pub.string(), "--export", fpr},
                                         err));
  if (rc != 0) return failf(Errc::System, "gpg --export `{}` failed: {}", fpr, last_line(err));
  KISTE_ASSIGN_OR_RETURN(std::string sig, sys::read_file(signed_msg, kMaxGpgSignatureBytes));
  KISTE_ASSIGN_OR_RETURN(std::string keyring, sys::read_file(pub, kMaxGpgKeyringBytes));
  KISTE_TRY(with_context(verify_gpg_signature(keyring, sig, digest),
                         fmt::format("the new signature by `{}`", fpr)));
  return sig;
}

Result<SimpleSigningPayload> verify_gpg_signature(std::string_view keyring,
                                                  std::string_view signature,
                                                  const image::Digest& digest) {
  KISTE_ASSIGN_OR_RETURN(GpgVerified v, gpgv_verify(keyring, signature));
  KISTE_ASSIGN_OR_RETURN(SimpleSigningPayload p, parse_simple_signing(v.payload));
  if (p.type != kAtomicSignatureType) {
    return failf(Errc::PermissionDenied, "GPG-signed payload has type `{}`, not `{}`", p.type,
                 kAtomicSignatureType);
  }
  if (p.manifest_digest != digest) {
    return failf(Errc::PermissionDenied, "GPG signature (key {}) is for {}, not for {}",
                 v.fingerprint, p.manifest_digest, digest);
  }
  return p;
}

}  // namespace kiste::trust
