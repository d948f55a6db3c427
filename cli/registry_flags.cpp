#include "registry_flags.hpp"

#include <unistd.h>

#include <cstdio>

#include <kiste/base/log.hpp>

#include "trust_gate.hpp"

namespace kiste::cli {

void add_registry_flags(CLI::App* cmd, RegistryFlags& f) {
  cmd->add_option("--tls-verify", f.tls_verify,
                  "verify TLS (default true; false also allows plain HTTP)")
      ->check(CLI::IsMember({"true", "false"}));
  cmd->add_option("--cert-dir", f.cert_dir, "directory with ca.crt / client *.cert + *.key");
  cmd->add_option("--authfile", f.authfile, "credentials file (default: docker/podman locations)");
}

void add_policy_flag(CLI::App* cmd, RegistryFlags& f) {
  cmd->add_option("--policy", f.policy,
                  "signature policy, containers-policy.json (default $KISTE_POLICY, else "
                  "/etc/containers/policy.json when present)");
  cmd->add_option("--registries.d", f.registries_d,
                  "registries.d directory naming lookaside storage for GPG signatures (default "
                  "/etc/containers/registries.d)");
}

Result<registry::AccessOptions> RegistryFlags::gated_access() const {
  registry::AccessOptions a = access();
  KISTE_ASSIGN_OR_RETURN(a.gate, policy_gate(policy, registries_d));
  return a;
}

registry::AccessOptions RegistryFlags::access() const {
  registry::AccessOptions a{.cert_dir = cert_dir, .authfile = authfile};
  if (!tls_verify.empty()) a.tls_verify = tls_verify == "true";
  // A wait for a retry is visible on a terminal; otherwise it goes to the log (--log-level info).
  a.on_retry = [](const std::string& line) {
    if (isatty(STDERR_FILENO) != 0) {
      std::fprintf(stderr, "kiste: %s\n", line.c_str());
    } else {
      log::info("{}", line);
    }
  };
  return a;
}

}  // namespace kiste::cli
