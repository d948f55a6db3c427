#pragma once
// Seccomp profiles in Docker's JSON format: parsed into plain values (unit-tested), compiled in
// the parent with libseccomp into a classic BPF program; the child only installs the bytes.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <kiste/base/error.hpp>

namespace kiste::runtime {

enum class SeccompAction { Allow, Errno, Kill, KillProcess, Trap, Log, Trace };
enum class SeccompOp { NotEqual, LessThan, LessEqual, Equal, GreaterEqual, GreaterThan, MaskedEqual };

struct SeccompArg {
  unsigned index = 0;
  uint64_t value = 0;
  uint64_t value_two = 0;
  SeccompOp op = SeccompOp::Equal;
  bool operator==(const SeccompArg&) const = default;
};

struct SeccompFilterCond {
  std::vector<std::string> caps;    // "CAP_SYS_ADMIN"
  std::vector<std::string> arches;  // Go names: "amd64", "arm64"
  std::string min_kernel;           // "4.8"
  bool operator==(const SeccompFilterCond&) const = default;
};

struct SeccompRule {
  std::vector<std::string> names;
  SeccompAction action = SeccompAction::Allow;
  std::optional<int> errno_ret;
  std::vector<SeccompArg> args;
  SeccompFilterCond includes, excludes;
};

struct SeccompProfile {
  SeccompAction default_action = SeccompAction::Errno;
  int default_errno = 1;  // EPERM
  std::vector<std::string> arches;  // native + sub-architectures from archMap ("SCMP_ARCH_X86")
  std::vector<SeccompRule> syscalls;

  // Strict: unknown actions/ops, bad types, missing names are errors naming the entry.
  [[nodiscard]] static Result<SeccompProfile> parse(std::string_view docker_json);
};

// Docker's default profile (moby profiles/seccomp default.json), as shipped in the binary.
[[nodiscard]] std::string_view docker_default_seccomp_json();

struct SeccompCompileOptions {
  uint64_t capabilities = 0;       // the container's bounding set: selects caps-conditional rules
  std::string go_arch;             // "amd64"; empty: this machine's
  std::string kernel_release;      // "6.1.0"; empty: uname()
};

// A classic BPF program (struct sock_filter[] as bytes) ready for seccomp(SET_MODE_FILTER).
struct CompiledSeccomp {
  std::string bpf;
  size_t rules = 0;                        // syscall rules added
  std::vector<std::string> unknown_names;  // names this libseccomp/arch does not know (skipped)
};

// Everything the compiled program depends on (libseccomp version, arch, kernel, caps, profile
// text), for caching compiled programs by its digest.
[[nodiscard]] std::string seccomp_cache_key(std::string_view profile_json,
                                            const SeccompCompileOptions& opts);

[[nodiscard]] Result<CompiledSeccomp> compile_seccomp(const SeccompProfile& profile,
                                                      const SeccompCompileOptions& opts);

}  // namespace kiste::runtime
