// SeccompProfile -> BPF bytes with libseccomp (parent side; the child only installs them).
#include <sys/mman.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>

#include <seccomp.h>
#include <sys/capability.h>

#include <kiste/base/sys.hpp>
#include <kiste/runtime/seccomp_profile.hpp>

namespace kiste::runtime {

namespace {

struct ScmpRelease {
  void operator()(void* ctx) const { seccomp_release(static_cast<scmp_filter_ctx>(ctx)); }
};
using ScmpCtx = std::unique_ptr<void, ScmpRelease>;

uint32_t to_scmp(SeccompAction a, int err) {
  switch (a) {
    case SeccompAction::Allow: return SCMP_ACT_ALLOW;
    case SeccompAction::Errno: return SCMP_ACT_ERRNO(static_cast<uint16_t>(err));
    case SeccompAction::Kill: return SCMP_ACT_KILL_THREAD;
    case SeccompAction::KillProcess: return SCMP_ACT_KILL_PROCESS;
    case SeccompAction::Trap: return SCMP_ACT_TRAP;
    case SeccompAction::Log: return SCMP_ACT_LOG;
    case SeccompAction::Trace: return SCMP_ACT_TRACE(static_cast<uint16_t>(err));
  }
  return SCMP_ACT_KILL_PROCESS;
}

scmp_compare to_scmp(SeccompOp op) {
  switch (op) {
    case SeccompOp::NotEqual: return SCMP_CMP_NE;
    case SeccompOp::LessThan: return SCMP_CMP_LT;
    case SeccompOp::LessEqual: return SCMP_CMP_LE;
    case SeccompOp::Equal: return SCMP_CMP_EQ;
    case SeccompOp::GreaterEqual: return SCMP_CMP_GE;
    case SeccompOp::GreaterThan: return SCMP_CMP_GT;
    case SeccompOp::MaskedEqual: return SCMP_CMP_MASKED_EQ;
  }
  return SCMP_CMP_EQ;
}

std::string native_go_arch() {
#if defined(__x86_64__)
  return "amd64";
#elif defined(__aarch64__)
  return "arm64";
#else
  return "unknown";
#endif
}

// "6.1.0-13-amd64" >= "4.8"?
bool kernel_at_least(std::string_view release, std::string_view min) {
  auto parse = [](std::string_view s, int& major, int& minor) {
    major = minor = 0;
    size_t i = 0;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) major = major * 10 + (s[i++] - '0');
    if (i < s.size() && s[i] == '.') ++i;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) minor = minor * 10 + (s[i++] - '0');
  };
  int a, b, c, d;
  parse(release, a, b);
  parse(min, c, d);
  return a != c ? a > c : b >= d;
}

bool has_cap(uint64_t mask, const std::string& name) {
  cap_value_t v;
  std::string lower = name;
  std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
  if (cap_from_name(lower.c_str(), &v) != 0) return false;
  return v >= 0 && v < 64 && (mask >> v) & 1;
}

bool applies(const SeccompRule& r, const SeccompCompileOptions& o) {
  const auto& in = r.includes;
  const auto& ex = r.excludes;
  if (!in.arches.empty() && std::find(in.arches.begin(), in.arches.end(), o.go_arch) == in.arches.end()) return false;
  if (!ex.arches.empty() && std::find(ex.arches.begin(), ex.arches.end(), o.go_arch) != ex.arches.end()) return false;
  for (const auto& c : in.caps) {
    if (!has_cap(o.capabilities, c)) return false;
  }
  for (const auto& c : ex.caps) {
    if (has_cap(o.capabilities, c)) return false;
  }
  if (!in.min_kernel.empty() && !kernel_at_least(o.kernel_release, in.min_kernel)) return false;
  if (!ex.min_kernel.empty() && kernel_at_least(o.kernel_release, ex.min_kernel)) return false;
  return true;
}

SeccompCompileOptions complete(const SeccompCompileOptions& in_opts) {
  SeccompCompileOptions opts = in_opts;
  if (opts.go_arch.empty()) opts.go_arch = native_go_arch();
  if (opts.kernel_release.empty()) {
    struct utsname u {};
    ::uname(&u);
    opts.kernel_release = u.release;
  }
  return opts;
}

}  // namespace

std::string seccomp_cache_key(std::string_view profile_json, const SeccompCompileOptions& in_opts) {
  SeccompCompileOptions opts = complete(in_opts);
  const scmp_version* v = seccomp_version();
  return fmt::format("kiste-seccomp-v2\nlibseccomp {}.{}.{}\narch {}\nkernel {}\ncaps {:x}\n{}",
                     v->major, v->minor, v->micro, opts.go_arch, opts.kernel_release,
                     opts.capabilities, profile_json);
}

Result<CompiledSeccomp> compile_seccomp(const SeccompProfile& profile,
                                        const SeccompCompileOptions& in_opts) {
  SeccompCompileOptions opts = complete(in_opts);
  const uint32_t def = to_scmp(profile.default_action, profile.default_errno);
  ScmpCtx ctx(seccomp_init(def));
  if (!ctx) return fail(Errc::System, "seccomp: cannot initialise a filter");
  // Keep the kernel's default for "no new privs" (we set it ourselves when asked).
  seccomp_attr_set(ctx.get(), SCMP_FLTATR_CTL_NNP, 0);
  // A binary tree over the syscall numbers instead of libseccomp's default linear chain: every
  // syscall of the container is checked in ~log2(n) steps, and the program is shorter to load.
  seccomp_attr_set(ctx.get(), SCMP_FLTATR_CTL_OPTIMIZE, 2);
  for (const std::string& a : profile.arches) {
    uint32_t token = seccomp_arch_resolve_name(
        a.starts_with("SCMP_ARCH_") ? std::string(a.substr(10)).c_str() : a.c_str());
    if (token == 0) {
      // libseccomp spells them in lower case.
      std::string lower = a.starts_with("SCMP_ARCH_") ? a.substr(10) : a;
      std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
      token = seccomp_arch_resolve_name(lower.c_str());
    }
    if (token == 0) continue;
    int rc = seccomp_arch_add(ctx.get(), token);
    if (rc != 0 && rc != -EEXIST) {
      return failf(Errc::System, "seccomp: add architecture {}: {}", quote(a), std::strerror(-rc));
    }
  }
  CompiledSeccomp out;
  for (const SeccompRule& r : profile.syscalls) {
    if (!applies(r, opts)) continue;
    const uint32_t act = to_scmp(r.action, r.errno_ret.value_or(1));
    if (act == def) continue;  // libseccomp refuses rules equal to the default
    // Docker: the same argument index twice means "any of these" (one rule each), else all must hold.
    bool repeated = false;
    for (size_t i = 0; i < r.args.size(); ++i) {
      for (size_t k = i + 1; k < r.args.size(); ++k) repeated = repeated || r.args[i].index == r.args[k].index;
    }
    std::vector<std::vector<scmp_arg_cmp>> groups;
    if (repeated) {
      for (const SeccompArg& a : r.args) {
        groups.push_back({scmp_arg_cmp{a.index, to_scmp(a.op), a.value, a.value_two}});
      }
    } else {
      groups.emplace_back();
      for (const SeccompArg& a : r.args) {
        groups.back().push_back(scmp_arg_cmp{a.index, to_scmp(a.op), a.value, a.value_two});
      }
    }
    for (const std::string& name : r.names) {
      int nr = seccomp_syscall_resolve_name(name.c_str());
      if (nr == __NR_SCMP_ERROR) {
        out.unknown_names.push_back(name);
        continue;
      }
      for (const auto& g : groups) {
        int rc = seccomp_rule_add_array(ctx.get(), act, nr, static_cast<unsigned>(g.size()),
                                        g.empty() ? nullptr : g.data());
        if (rc != 0) {
          return failf(Errc::InvalidArgument, "seccomp: rule for {}: {}", quote(name),
                       std::strerror(-rc));
        }
        ++out.rules;
      }
    }
  }
  int mfd = ::memfd_create("kiste-seccomp", MFD_CLOEXEC);
  if (mfd < 0) return std::unexpected(sys_error("memfd_create", "seccomp"));
  UniqueFd fd(mfd);
  int rc = seccomp_export_bpf(ctx.get(), fd.get());
  if (rc != 0) return failf(Errc::System, "seccomp: export BPF: {}", std::strerror(-rc));
  if (::lseek(fd.get(), 0, SEEK_SET) != 0) return std::unexpected(sys_error("lseek", "seccomp memfd"));
  KISTE_ASSIGN_OR_RETURN(out.bpf, sys::read_all(fd.get(), "seccomp memfd"));
  if (out.bpf.empty() || out.bpf.size() % 8 != 0) {
    return fail(Errc::System, "seccomp: exported BPF has an odd size");
  }
  return out;
}

}  // namespace kiste::runtime
