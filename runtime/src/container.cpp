// The parent side of `run`: flatten the spec, compile seccomp, create the cgroup, clone the
// child into new namespaces (and into its cgroup), wait, report, clean up.
#include <kiste/runtime/container.hpp>
#include <kiste/runtime/exec.hpp>
#include <kiste/runtime/rootless.hpp>

#include <fcntl.h>
#include <linux/capability.h>
#include <linux/sched.h>
#include <malloc.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/uio.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <glob.h>

#include <kiste/base/log.hpp>
#include <kiste/base/sys.hpp>
#include <kiste/base/user_namespace.hpp>
#include <kiste/image/digest.hpp>
#include <kiste/runtime/mount_plan.hpp>
#include <kiste/runtime/seccomp_profile.hpp>

#include "child.hpp"
#include "fd_passing.hpp"
#include "namespace_prep.hpp"
#include "side_job.hpp"
#include "terminal.hpp"
#include "upper_cleanup.hpp"
#include "userns_setup.hpp"

namespace kiste::runtime {

namespace fs = std::filesystem;

std::string ContainerExit::oom_message() const {
  if (!oom_killed) return {};
  if (!memory_limit) return "killed: out of memory";
  int64_t v = *memory_limit;
  std::string lim = v % (1 << 20) == 0 ? fmt::format("{} MiB", v >> 20)
                    : v % 1024 == 0   ? fmt::format("{} KiB", v >> 10)
                                      : fmt::format("{} bytes", v);
  return fmt::format("killed: out of memory (limit {})", lim);
}

namespace {

// Owns the container's init process: SIGKILL + waitpid unless it was reaped.
class ChildProcess {
 public:
  ChildProcess() = default;
  explicit ChildProcess(pid_t pid) : pid_(pid) {}
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  ~ChildProcess() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      int st;
      while (::waitpid(pid_, &st, 0) < 0 && errno == EINTR) {
      }
    }
  }
  [[nodiscard]] pid_t pid() const { return pid_; }
  void own(pid_t pid) { pid_ = pid; }
  // Blocks until the process exits; returns the wait status.
  [[nodiscard]] int wait() {
    int st = 0;
    while (::waitpid(pid_, &st, 0) < 0) {
      if (errno != EINTR) break;
    }
    pid_ = -1;
    return st;
  }

 private:
  pid_t pid_ = -1;
};

// Signals to kiste go to the container (SIGTERM forwarding, like docker run's sig-proxy).
// (SIGWINCH is read from a signalfd by the terminal proxy.)
volatile sig_atomic_t g_forward_pid = 0;

void forward_signal(int sig) {
  pid_t p = g_forward_pid;
  if (p > 0) ::kill(p, sig);
}

constexpr int kForwarded[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};

class SignalForwarding {
 public:
  explicit SignalForwarding(pid_t pid) {
    g_forward_pid = pid;
    struct sigaction sa {};
    sa.sa_handler = forward_signal;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < std::size(kForwarded); ++i) ::sigaction(kForwarded[i], &sa, &old_[i]);
  }
  ~SignalForwarding() {
    for (size_t i = 0; i < std::size(kForwarded); ++i) ::sigaction(kForwarded[i], &old_[i], nullptr);
    g_forward_pid = 0;
  }

 private:
  struct sigaction old_[std::size(kForwarded)];
};

int last_cap() {
  auto t = sys::read_file("/proc/sys/kernel/cap_last_cap", 32);
  if (!t) return 40;
  int v = std::atoi(t->c_str());
  return v > 0 && v < 64 ? v : 40;
}

uint64_t own_permitted_caps() {
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2]{};
  if (::syscall(SYS_capget, &hdr, data) != 0) return 0;
  return data[0].permitted | (static_cast<uint64_t>(data[1].permitted) << 32);
}

// While it only waits, kiste needs almost none of what it mapped (OpenSSL, libarchive, the CLI,
// their read-only data and relocation tables …), yet every page it touched counts in its RSS.
// A private file mapping that is not writable and holds no copied-on-write page (smaps'
// `Anonymous: 0 kB`; RELRO after relocation does hold them) is exactly the file's pages, so
// dropping them is safe: they come back from the page cache if touched again. The ranges are
// collected first and dropped together at the end, so the parsing does not fault back in the
// code it just dropped.
void release_code_pages() {
  std::vector<std::pair<unsigned long, unsigned long>> drop;
  {
    auto smaps = sys::read_file("/proc/self/smaps", 8 << 20);
    if (!smaps) return;
    drop.reserve(512);
    std::string_view m = *smaps;
    unsigned long start = 0, end = 0;
    bool candidate = false;  // the current mapping is private, read-only and file-backed
    while (!m.empty()) {
      size_t nl = m.find('\n');
      std::string_view line = m.substr(0, nl);
      m.remove_prefix(nl == std::string_view::npos ? m.size() : nl + 1);
      if (line.starts_with("Anonymous:")) {
        unsigned long anon = 1;
        std::string l(line);
        if (candidate && std::sscanf(l.c_str(), "Anonymous: %lu", &anon) == 1 && anon == 0 &&
            drop.size() < drop.capacity()) {
          drop.emplace_back(start, end);
        }
        candidate = false;
        continue;
      }
      // A mapping's header: "start-end perms offset dev inode path"; field lines start with a
      // capitalised key and never parse as a range.
      char perms[5] = {};
      int path_at = 0;
      std::string l(line);
      unsigned long s = 0, e = 0;
      if (std::sscanf(l.c_str(), "%lx-%lx %4s %*s %*s %*s %n", &s, &e, perms, &path_at) < 3) {
        continue;
      }
      const std::string_view p(perms);
      start = s;
      end = e;
      candidate = (p == "r-xp" || p == "r--p") && path_at > 0 &&
                  static_cast<size_t>(path_at) < l.size() && l[static_cast<size_t>(path_at)] == '/';
    }
  }
  ::malloc_trim(0);  // the smaps text is gone
  for (const auto& [s, e] : drop) ::madvise(reinterpret_cast<void*>(s), e - s, MADV_DONTNEED);
}

// clone3 with the time namespace and CLONE_INTO_CGROUP where asked and the kernel has them,
// dropping what it refuses (time: 5.6, into-cgroup: 5.7), plain clone as the last resort.
pid_t clone_container(uint64_t flags, bool time_ns, int cgroup_fd, bool& cloned_into) {
  cloned_into = false;
  bool into = cgroup_fd >= 0;
  while (into || time_ns) {
    struct clone_args args {};
    args.flags = flags | (time_ns ? CLONE_NEWTIME : 0) | (into ? CLONE_INTO_CGROUP : 0);
    args.exit_signal = SIGCHLD;
    if (into) args.cgroup = static_cast<uint64_t>(cgroup_fd);
    const auto pid = static_cast<pid_t>(::syscall(SYS_clone3, &args, sizeof args));
    if (pid >= 0) {
      cloned_into = into;
      return pid;
    }
    if (errno != EINVAL && errno != ENOSYS && errno != E2BIG && errno != EOPNOTSUPP) return -1;
    if (into) {
      into = false;
    } else {
      time_ns = false;
    }
  }
  return static_cast<pid_t>(::syscall(SYS_clone, flags | SIGCHLD, nullptr, nullptr, nullptr, nullptr));
}

// Docker's extra masked paths that exist only on some machines.
std::vector<std::string> thermal_throttle_paths() {
  std::vector<std::string> out;
  glob_t g{};
  if (::glob("/sys/devices/system/cpu/cpu*/thermal_throttle", GLOB_NOSORT | GLOB_ONLYDIR, nullptr, &g) == 0) {
    for (size_t i = 0; i < g.gl_pathc; ++i) out.emplace_back(g.gl_pathv[i]);
  }
  globfree(&g);
  return out;
}

// The image's /etc as the top-most layer that has it shows it (a whiteout ends the search).
ImageEtc image_etc(const std::vector<fs::path>& lowers) {
  for (auto it = lowers.rbegin(); it != lowers.rend(); ++it) {
    struct stat st {};
    if (::lstat((*it / "etc").c_str(), &st) != 0) {
      if (errno == ENOENT) continue;
      return {};  // unknown: the files are bound instead
    }
    if (S_ISCHR(st.st_mode) && st.st_rdev == 0) return {.kind = ImageEtc::Kind::Absent};
    if (!S_ISDIR(st.st_mode)) return {.kind = ImageEtc::Kind::Other};
    return {.kind = ImageEtc::Kind::Directory, .mode = st.st_mode & 07777, .uid = st.st_uid, .gid = st.st_gid};
  }
  return {.kind = ImageEtc::Kind::Absent};
}

Error child_error(const detail::ChildReport& r, const MountPlan& plan, const ContainerSpec& spec,
                  const std::vector<Hook>& hooks) {
  auto step = static_cast<detail::StepId>(r.step);
  std::string what;
  if (step == detail::StepId::MountOp && r.detail >= 0 &&
      static_cast<size_t>(r.detail) < plan.ops.size()) {
    const MountOp& op = plan.ops[static_cast<size_t>(r.detail)];
    switch (op.kind) {
      case MountOpKind::Mount:
        what = fmt::format("mount {} on {}", op.fstype, op.target);
        break;
      case MountOpKind::Bind:
        what = fmt::format("bind mount {} on {}", quote(op.source), op.target);
        break;
      case MountOpKind::Mknod: what = fmt::format("create device {}", op.target); break;
      case MountOpKind::Symlink: what = fmt::format("create symlink {}", op.target); break;
      case MountOpKind::Mask: what = fmt::format("mask {}", op.target); break;
      case MountOpKind::ReadonlyPath: what = fmt::format("make {} read-only", op.target); break;
      case MountOpKind::RemountReadonly: what = fmt::format("remount {} read-only", op.target); break;
      case MountOpKind::WriteFile: what = fmt::format("write {}", op.target); break;
      case MountOpKind::JoinCgroup: what = "enter the cgroup namespace"; break;
      case MountOpKind::RuntimeFile:
        what = fmt::format("provide {}", op.target);
        if (r.err == ELOOP) {
          return Error{.code = Errc::InvalidArgument,
                       .message = fmt::format("container setup: {}: the image has a symlink there "
                                              "(refused, as runc does)", what)};
        }
        break;
    }
  } else if (step == detail::StepId::CreateContainerHook && r.detail >= 0 &&
             static_cast<size_t>(r.detail) < hooks.size()) {
    const Hook& h = hooks[static_cast<size_t>(r.detail)];
    return Error{.code = Errc::System,
                 .message = detail::hook_failure("createContainer", h.path.c_str(), r.err, h.timeout.value_or(0))};
  } else if (step == detail::StepId::Cwd) {
    what = fmt::format("change to the working directory {}", quote(spec.process.cwd));
    if (r.err == EPERM) {
      return Error{.code = Errc::PermissionDenied,
                   .message = "container setup: " + what + ": it is outside the container's root"};
    }
  } else {
    what = detail::step_name(step);
  }
  Error e = sys_error_code(r.err, "container setup: " + what, "");
  // sys_error_code formats "<call> ``: <reason>" for an empty object; keep it tidy.
  e.message = fmt::format("container setup: {}: {}", what, std::strerror(r.err));
  e.code = Errc::System;
  return e;
}

// libseccomp needs ~30 ms for Docker's profile; the program only depends on its inputs, so it
// is compiled once per (profile, caps, kernel, libseccomp) and kept by digest.
Result<CompiledSeccomp> compiled_seccomp(const ContainerSpec& spec, const fs::path& cache_dir) {
  std::string_view text = spec.seccomp.profile_json.empty()
                              ? docker_default_seccomp_json()
                              : std::string_view(spec.seccomp.profile_json);
  SeccompCompileOptions opts{.capabilities = spec.process.capabilities.bounding};
  fs::path cached;
  if (!cache_dir.empty()) {
    const std::string key = seccomp_cache_key(text, opts);
    if (spec.seccomp.profile_json.empty()) {
      // The built-in profile: every input is kiste's own (compiled-in text, caps, kernel,
      // libseccomp), so a cheap FNV-1a name is enough and spares OpenSSL's start-up.
      uint64_t h = 0xcbf29ce484222325ULL;
      for (unsigned char c : key) h = (h ^ c) * 0x100000001b3ULL;
      cached = cache_dir / fmt::format("default-{:016x}.bpf", h);
    } else {
      cached = cache_dir / (std::string(image::Digest::of(key).hex()) + ".bpf");
    }
    auto bytes = sys::read_file(cached, 1 << 20);
    if (bytes && !bytes->empty() && bytes->size() % sizeof(sock_filter) == 0) {
      return CompiledSeccomp{.bpf = std::move(*bytes)};
    }
  }
  auto profile = SeccompProfile::parse(text);
  if (!profile) return std::unexpected(std::move(profile).error());
  auto compiled = compile_seccomp(*profile, opts);
  if (!compiled) return compiled;
  if (!cached.empty()) {
    auto w = sys::mkdir_all(cache_dir, 0700);
    if (w) w = sys::write_file_atomic(cached, compiled->bpf, 0600);
    if (!w) log::warn("seccomp cache: {}", w.error().to_string());
  }
  return compiled;
}

// The container dir with its upper and work dirs, these two opened for the plan to name them by
// fd (MountPlanContext::upper_fd).
Status make_container_dirs(const fs::path& dir, UniqueFd& upper, UniqueFd& work) {
  KISTE_TRY(sys::mkdir_all(dir, 0700));
  for (auto [name, fd] : {std::pair{"upper", &upper}, std::pair{"work", &work}}) {
    const fs::path sub = dir / name;
    if (::mkdir(sub.c_str(), 0755) != 0 && errno != EEXIST) {
      return std::unexpected(sys_error("mkdir", sub.native()));
    }
    KISTE_ASSIGN_OR_RETURN(*fd, sys::open(sub, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  }
  return {};
}

// The short lower/N links, when the plan needs them.
Status make_lower_links(const MountPlan& plan) {
  if (plan.lower_link_dir.empty()) return {};
  if (::mkdir(plan.lower_link_dir.c_str(), 0755) != 0 && errno != EEXIST) {
    return std::unexpected(sys_error("mkdir", plan.lower_link_dir.native()));
  }
  for (const auto& [name, target] : plan.lower_links) {
    fs::path link = plan.lower_link_dir / name;
    ::unlink(link.c_str());
    if (::symlink(target.c_str(), link.c_str()) != 0) {
      return std::unexpected(sys_error("symlink", link.native()));
    }
  }
  return {};
}

// What a container that wrote nothing leaves in its dir, in two chains that can be removed at
// the same time (each freed directory block may wait for a discard; see run_container):
// overlayfs's work/work (with incompat/volatile/dirty for a volatile upper), and the rest.
constexpr const char* kWorkChain[] = {"work/work/incompat/volatile/dirty", "work/work/incompat/volatile",
                                      "work/work/incompat", "work/work", "work"};
constexpr const char* kTopDirs[] = {"upper", "merged"};

// Removes the given names below `dir`, deepest first, by name (what is not empty stays).
template <size_t N>
void remove_known(const fs::path& dir, const char* const (&names)[N]) {
  UniqueFd d(::open(dir.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!d) return;
  for (const char* sub : names) {
    if (::unlinkat(d.get(), sub, AT_REMOVEDIR) != 0 && errno == ENOTDIR) (void)::unlinkat(d.get(), sub, 0);
  }
}

}  // namespace

Status remove_container_dir(const fs::path& dir) {
  remove_known(dir, kWorkChain);
  remove_known(dir, kTopDirs);
  (void)::unlink((dir / kSeccompFile).c_str());  // a rootless container's (exec reads it)
  if (::rmdir(dir.c_str()) == 0 || errno == ENOENT) return {};
  return sys::remove_tree(dir);
}

namespace {

std::string etc_hosts(const ContainerSpec& spec) {
  std::string s = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n";
  if (spec.extra_hosts.empty()) s += fmt::format("127.0.1.1\t{}\n", spec.hostname);
  for (const std::string& line : spec.extra_hosts) s += line + "\n";
  return s;
}

// One run of a container, in named phases as crun runs one: prepare (plans and checks, before
// anything is created, and everything the child reads, flattened), spawn (the cgroup, then
// clone), await_ready (the child's report, or EOF once it exec'd), proxy_terminal (-t) and reap
// (the exit status, cgroup stats and removal, --rm, the upper dir's cleanup). Members are
// declared in the order the resources are made, so they are released in reverse on any path.
class Launch {
 public:
  Launch(const ContainerSpec& spec, const RunContext& ctx)
      : spec_(spec),
        ctx_(ctx),
        own_userns_(spec.userns.mode != UsernsMode::Host),
        // The network and IPC namespaces are made on a helper thread meanwhile
        // (namespace_prep.hpp). With a user namespace they must belong to it, so clone makes them.
        ns_prep_(!own_userns_ && spec.namespaces.network && spec.namespaces.network_path.empty(),
                 !own_userns_ && spec.namespaces.ipc_path.empty()) {}

  [[nodiscard]] Status prepare();
  [[nodiscard]] Status spawn();
  // True once the command runs; false when its exec failed (exit() then says why).
  [[nodiscard]] Result<bool> await_ready();
  void proxy_terminal();
  [[nodiscard]] Result<ContainerExit> reap();
  [[nodiscard]] const ContainerExit& exit() const { return result_; }
  [[nodiscard]] bool created() const { return created_; }
  [[nodiscard]] CreatedContainer hand_over();

 private:
  [[nodiscard]] Status plan();
  void flatten();
  void flatten_hooks();
  void wait_for_exit();

  const ContainerSpec& spec_;
  const RunContext& ctx_;
  const bool own_userns_;
  detail::NamespacePrep ns_prep_;
  CgroupMode mode_ = CgroupMode::Legacy;
  std::optional<CgroupPlan> cg_plan_;
  std::unique_ptr<CgroupDriver> driver_;
  UniqueFd upper_fd_, work_fd_;  // the child inherits them; closed here after clone
  std::optional<MountPlan> plan_;
  CompiledSeccomp seccomp_;
  detail::UsernsSetup userns_;
  std::vector<char*> argv_, envp_;
  std::vector<struct rlimit> rlims_;
  std::vector<int> rres_;
  UniqueFd devnull_;
  UniqueFd pty_master_;  // received from the child (its pty is in the container's devpts)
  UniqueFd parent_sock_, child_sock_;
  detail::ChildConfig cfg_;
  CgroupGuard cgroup_;
  UniqueFd clone_target_;
  std::vector<UniqueFd> join_;
  std::vector<int> join_fds_;
  bool cloned_into_ = false;
  bool released_ = true;
  ChildProcess child_;
  std::optional<SignalForwarding> forwarding_;
  ContainerExit result_;
  bool released_pages_ = false;
  UniqueFd join_net_, join_ipc_, join_uts_, join_cgroup_, join_pid_, join_mnt_;  // Namespaces::*_path
  UniqueFd own_pid_ns_;  // joining a pid namespace: the runtime's own, to return to after clone
  // RunContext's createContainer and startContainer hooks, flattened for the child.
  std::vector<std::vector<char*>> hook_strings_;
  std::vector<detail::ChildHook> create_hooks_, start_hooks_;
  std::string hook_state_;
  bool created_ = false;          // the child reported StepId::Created
  std::string oom_text_;
};

// Plans and checks, all before anything is created.
Status Launch::plan() {
  KISTE_ASSIGN_OR_RETURN(struct stat null_st, sys::lstat("/dev/null"));
  if (!S_ISCHR(null_st.st_mode) || major(null_st.st_rdev) != 1 || minor(null_st.st_rdev) != 3) {
    return fail(Errc::Corrupt, "/dev/null on the host is not the null device (char 1:3)");
  }
  if (ctx_.cgroup_mode) {
    mode_ = *ctx_.cgroup_mode;
  } else {
    KISTE_ASSIGN_OR_RETURN(mode_, detect_cgroup_mode());
  }
  if (ctx_.cgroups.manager == CgroupManager::None) {
    if (std::string_view flag = first_limit_flag(spec_.resources); !flag.empty()) {
      const std::string& why = ctx_.cgroups.no_cgroup_reason;
      return failf(Errc::Unsupported,
                   "{}: this container runs without a cgroup ({}), so no limit can be set", flag,
                   why.empty() ? "none was asked for" : why);
    }
  }
  KISTE_ASSIGN_OR_RETURN(cg_plan_, CgroupPlan::from_resources(spec_.resources, mode_, spec_.privileged));
  KISTE_ASSIGN_OR_RETURN(
      driver_,
      with_context(make_cgroup_driver(mode_, ctx_.cgroups,
                                      ctx_.cgroup_v2_mount.empty() ? "/sys/fs/cgroup" : ctx_.cgroup_v2_mount),
                   "container cgroup"));

  MountPlanContext mctx;
  mctx.cgroup_v2 = mode_ == CgroupMode::Unified;
  if (!mctx.cgroup_v2) {
    for (auto& [name, opts] : driver_->v1_hierarchies()) mctx.cgroup_v1.push_back({name, opts});
  }
  mctx.page_size = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  const bool bind_root = !spec_.root.rootfs.empty();
  if (!bind_root) {
    mctx.runtime_files = {
        {"/etc/hostname", spec_.hostname + "\n"},
        {"/etc/hosts", etc_hosts(spec_)},
        {"/etc/resolv.conf", spec_.resolv_conf ? *spec_.resolv_conf
                                               : sys::read_file("/etc/resolv.conf", 1 << 16).value_or("")}};
  }
  if (!spec_.privileged) mctx.extra_masked_paths = thermal_throttle_paths();
  // Rootless kiste: the container shares kiste's user namespace, which cannot mount sysfs for
  // the host's network namespace either (MountPlanContext::userns), and overlay keeps its state
  // in user.overlay.* xattrs.
  mctx.userns = own_userns_ || !sys::in_initial_user_namespace();
  mctx.userxattr = !sys::in_initial_user_namespace();
  if (!bind_root) {
    if (!own_userns_ && !spec_.root.readonly) mctx.image_etc = image_etc(spec_.root.lower_dirs);
    KISTE_TRY(make_container_dirs(spec_.root.container_dir, upper_fd_, work_fd_));
    mctx.upper_fd = upper_fd_.get();
    mctx.work_fd = work_fd_.get();
  }
  for (auto [path, fd] : {std::pair{&spec_.namespaces.network_path, &join_net_},
                          std::pair{&spec_.namespaces.ipc_path, &join_ipc_},
                          std::pair{&spec_.namespaces.uts_path, &join_uts_},
                          std::pair{&spec_.namespaces.cgroup_path, &join_cgroup_},
                          std::pair{&spec_.namespaces.pid_path, &join_pid_},
                          std::pair{&spec_.namespaces.mount_path, &join_mnt_}}) {
    if (path->empty()) continue;
    KISTE_ASSIGN_OR_RETURN(*fd, with_context(sys::open(*path, O_RDONLY | O_CLOEXEC), "join namespace"));
  }
  if (join_mnt_ && own_userns_) {
    return fail(Errc::Unsupported, "joining a mount namespace from a new user namespace is not supported");
  }
  if (join_pid_) {
    KISTE_ASSIGN_OR_RETURN(own_pid_ns_, sys::open("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC));
  }
  KISTE_ASSIGN_OR_RETURN(plan_, MountPlan::from_spec(spec_, mctx));

  if (!spec_.seccomp.unconfined) {
    KISTE_ASSIGN_OR_RETURN(seccomp_, compiled_seccomp(spec_, ctx_.seccomp_cache_dir));
    if (seccomp_.bpf.size() / sizeof(sock_filter) > 0xffff) {
      return fail(Errc::InvalidArgument, "seccomp profile: the compiled filter is too large");
    }
  }
  // Rootless, exec cannot read the container's filter back (PTRACE_SECCOMP_GET_FILTER needs
  // CAP_SYS_ADMIN in the initial namespace): it reads it here (empty: no filter).
  if (running_rootless() && upper_fd_) {
    KISTE_TRY(with_context(sys::write_file_atomic(spec_.root.container_dir / kSeccompFile, seccomp_.bpf, 0600),
                           "record the seccomp filter"));
  }

  KISTE_TRY(make_lower_links(*plan_));
  KISTE_ASSIGN_OR_RETURN(userns_,
                         with_context(detail::UsernsSetup::prepare(
                                          spec_, *plan_, {ctx_.userns_lock_dir, ctx_.id_ranges}),
                                      "user namespace"));
  return {};
}

// Everything the child reads, flattened into storage that outlives it (it allocates nothing).
void Launch::flatten() {
  for (const auto& a : spec_.process.args) argv_.push_back(const_cast<char*>(a.c_str()));
  argv_.push_back(nullptr);
  const char* path_env = nullptr;
  for (const auto& e : spec_.process.env) {
    envp_.push_back(const_cast<char*>(e.c_str()));
    if (e.starts_with("PATH=")) path_env = e.c_str() + 5;
  }
  envp_.push_back(nullptr);
  for (const Rlimit& r : spec_.process.rlimits) {
    rlims_.push_back({static_cast<rlim_t>(r.soft), static_cast<rlim_t>(r.hard)});
    rres_.push_back(r.resource);
  }
  struct winsize host_ws {};
  const bool have_ws = spec_.process.terminal && ::ioctl(STDIN_FILENO, TIOCGWINSZ, &host_ws) == 0;

  cfg_.plan = &*plan_;
  cfg_.argv = argv_.data();
  cfg_.envp = envp_.data();
  cfg_.path_env = path_env;
  cfg_.cwd = spec_.process.cwd.c_str();
  cfg_.hostname = spec_.hostname.empty() ? nullptr : spec_.hostname.c_str();
  cfg_.uid = spec_.process.uid;
  cfg_.gid = spec_.process.gid;
  cfg_.gids = spec_.process.additional_gids.data();
  cfg_.ngids = spec_.process.additional_gids.size();
  cfg_.rlimits = rlims_.data();
  cfg_.rlimit_resources = rres_.data();
  cfg_.nrlimits = rlims_.size();
  const CapabilitySets& caps = spec_.process.capabilities;
  cfg_.last_cap = last_cap();
  // "ALL" may name more capabilities than this kernel has, or than kiste itself holds (e.g. no
  // CAP_SYS_RESOURCE in a nested environment); capset refuses those, so they are left out.
  uint64_t known = own_permitted_caps();
  // CAP_MKNOD is safe on v2 as on v1: the eBPF device filter (device_filter.hpp) enforces
  // Docker's device rules there.
  cfg_.cap_bounding = caps.bounding & known;
  cfg_.cap_effective = caps.effective & known;
  cfg_.cap_permitted = caps.permitted & known;
  cfg_.cap_inheritable = caps.inheritable & known;
  cfg_.cap_ambient = caps.ambient & known;
  cfg_.loopback_up = spec_.namespaces.network;
  cfg_.no_new_privileges = spec_.process.no_new_privileges;
  if (!spec_.seccomp.unconfined) {
    cfg_.seccomp = reinterpret_cast<const sock_filter*>(seccomp_.bpf.data());
    cfg_.seccomp_len = static_cast<unsigned short>(seccomp_.bpf.size() / sizeof(sock_filter));
  }
  cfg_.unshare_cgroup = spec_.namespaces.cgroup;
  cfg_.sync_fd = child_sock_.get();
  cfg_.stdin_fd = devnull_ ? devnull_.get() : -1;
  cfg_.terminal = spec_.process.terminal;
  cfg_.rows = have_ws ? host_ws.ws_row : 24;
  cfg_.cols = have_ws ? host_ws.ws_col : 80;
  cfg_.userns = userns_.active();
  cfg_.merged_fd = userns_.merged_fd();
  cfg_.op_fds = userns_.active() ? userns_.op_fds().data() : nullptr;
  cfg_.exec_fifo_fd = ctx_.exec_fifo_fd;
  cfg_.wait_mounts_ready = static_cast<bool>(ctx_.hooks.mounts_ready);
  cfg_.preserve_fds = ctx_.preserve_fds;
  if (spec_.process.oom_score_adj) {
    oom_text_ = std::to_string(*spec_.process.oom_score_adj);
    cfg_.oom_score_adj = oom_text_.c_str();
  }
  flatten_hooks();
}

void Launch::flatten_hooks() {
  // Pointers into the hooks of ctx_, which outlives the child's setup.
  auto strings = [this](const std::vector<std::string>& list, const std::string* alone) {
    std::vector<char*>& v = hook_strings_.emplace_back();
    if (alone != nullptr) v.push_back(const_cast<char*>(alone->c_str()));
    for (const std::string& s : list) v.push_back(const_cast<char*>(s.c_str()));
    v.push_back(nullptr);
    return v.data();
  };
  hook_strings_.reserve(2 * (ctx_.create_container_hooks.size() + ctx_.start_container_hooks.size()));
  for (auto [from, to] : {std::pair{&ctx_.create_container_hooks, &create_hooks_},
                          std::pair{&ctx_.start_container_hooks, &start_hooks_}}) {
    for (const Hook& h : *from) {
      detail::ChildHook c{.path = h.path.c_str(), .timeout = h.timeout.value_or(0)};
      c.argv = strings(h.args, h.args.empty() ? &h.path : nullptr);  // no args: the path is argv[0]
      c.envp = strings(h.env, nullptr);
      to->push_back(c);
    }
  }
  cfg_.create_hooks = create_hooks_.data();
  cfg_.ncreate_hooks = create_hooks_.size();
  cfg_.start_hooks = start_hooks_.data();
  cfg_.nstart_hooks = start_hooks_.size();
  // {"id":…} -> {"id":… (the child closes it)
  hook_state_ = ctx_.hook_state.empty() ? std::string("{") : ctx_.hook_state.substr(0, ctx_.hook_state.rfind('}'));
  cfg_.hook_state = hook_state_.c_str();
  cfg_.hook_state_len = hook_state_.size();
}

Status Launch::prepare() {
  KISTE_TRY(plan());
  if (!spec_.process.interactive && !spec_.process.terminal) {
    KISTE_ASSIGN_OR_RETURN(devnull_, sys::open("/dev/null", O_RDONLY | O_CLOEXEC));
  }
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
    return std::unexpected(sys_error("socketpair", "sync"));
  }
  parent_sock_.reset(sv[0]);
  child_sock_.reset(sv[1]);
  flatten();
  return {};
}

// The cgroup exists, with its limits, before the child does, and the guard outlives the child.
// On v2 the child is cloned into it; on v1 it inherits each hierarchy's `tasks` and moves itself
// in at its JoinCgroup step, before anything of the container can run. Neither needs the runtime
// after clone: the child never waits for it. Only where the kernel offers neither does the
// runtime move the child in and then release it. Then clone into new namespaces (those the
// helper made are entered by the child instead).
Status Launch::spawn() {
  cgroup_ = CgroupGuard(std::move(driver_));
  KISTE_TRY(with_context(
      cgroup_->create(ctx_.cgroup_name.empty() ? "kiste-" + spec_.id : ctx_.cgroup_name, *cg_plan_),
      "container cgroup"));
  if (ctx_.hooks.cgroup_created) KISTE_TRY(ctx_.hooks.cgroup_created(cgroup_->paths(), cgroup_->unit()));
  KISTE_TRY(with_context(cgroup_->apply(*cg_plan_), "container cgroup"));
  if (!ctx_.migrate_after_clone) {
    // v2 (and a hybrid host's cgroup2 hierarchy): cloned into; v1 hierarchies: self-join.
    KISTE_ASSIGN_OR_RETURN(clone_target_, with_context(cgroup_->open_clone_target(), "container cgroup"));
    if (mode_ != CgroupMode::Unified) {
      KISTE_ASSIGN_OR_RETURN(join_, with_context(cgroup_->open_self_join(), "container cgroup"));
    }
  }
  for (const UniqueFd& fd : join_) join_fds_.push_back(fd.get());
  cfg_.join_fds = join_fds_.data();
  cfg_.njoin = join_fds_.size();

  uint64_t flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC;
  if (spec_.namespaces.network) flags |= CLONE_NEWNET;
  if (userns_.active()) flags = (flags & ~uint64_t{CLONE_NEWNS}) | CLONE_NEWUSER;  // see userns_setup.hpp
  if (auto made = ns_prep_.wait(); !made) {
    log::debug("{}; clone makes them", made.error().to_string());
  } else {
    if (ns_prep_.net_fd() >= 0) {
      flags &= ~uint64_t{CLONE_NEWNET};
      cfg_.net_fd = ns_prep_.net_fd();
      cfg_.loopback_up = false;  // the helper did
    }
    if (ns_prep_.ipc_fd() >= 0) {
      flags &= ~uint64_t{CLONE_NEWIPC};
      cfg_.ipc_fd = ns_prep_.ipc_fd();
    }
  }
  if (join_net_) {
    flags &= ~uint64_t{CLONE_NEWNET};
    cfg_.net_fd = join_net_.get();
    cfg_.loopback_up = false;  // its owner's
  }
  if (join_ipc_) {
    flags &= ~uint64_t{CLONE_NEWIPC};
    cfg_.ipc_fd = join_ipc_.get();
  }
  if (join_uts_) {
    flags &= ~uint64_t{CLONE_NEWUTS};
    cfg_.uts_fd = join_uts_.get();
  }
  cfg_.cgroup_ns_fd = join_cgroup_ ? join_cgroup_.get() : -1;
  if (join_mnt_) {
    flags &= ~uint64_t{CLONE_NEWNS};
    cfg_.mnt_fd = join_mnt_.get();
  }
  if (attached_by_caller(spec_.network)) {
    if (ns_prep_.net_fd() < 0) {
      return fail(Errc::Unsupported,
                  "a bridge or pasta network needs the container's network namespace before clone "
                  "(not with --userns yet)");
    }
    cfg_.wait_network = static_cast<bool>(ctx_.hooks.network_ready);
  }
  std::fflush(nullptr);
  // A pid namespace holds only processes made after the join: this thread enters it for the
  // clone (its pid_for_children) and returns to its own right after.
  if (join_pid_) {
    flags &= ~uint64_t{CLONE_NEWPID};
    if (::setns(join_pid_.get(), CLONE_NEWPID) != 0) {
      return std::unexpected(sys_error("join namespace", spec_.namespaces.pid_path.native()));
    }
  }
  const pid_t pid = clone_container(flags, spec_.namespaces.time, clone_target_.get(), cloned_into_);
  if (pid > 0 && join_pid_ && ::setns(own_pid_ns_.get(), CLONE_NEWPID) != 0) {
    KISTE_CHECK(false && "cannot return to the runtime's own pid namespace");
  }
  if (pid < 0) {
    const int e = errno;
    if (join_pid_) (void)::setns(own_pid_ns_.get(), CLONE_NEWPID);
    errno = e;
    return std::unexpected(sys_error("clone", "container"));
  }
  const bool needs_release = !cloned_into_ && join_.empty();
  if (pid == 0) {
    parent_sock_.reset();
    cfg_.wait_release = needs_release;
    detail::container_child_main(cfg_);
  }
  child_.own(pid);
  // The network is connected while the child mounts its root (a veth is milliseconds of kernel
  // work, as long as the rest of a start); the child waits for it before its identity steps.
  // On this thread, not a helper: pasta's parent-death signal follows the thread that forks it.
  Status connected;
  if (cfg_.wait_network) connected = ctx_.hooks.network_ready(ns_prep_.net_fd());
  // A kernel without CLONE_INTO_CGROUP on a hybrid host: the child joins its v1 hierarchies
  // itself; the cgroup2 one is written here (add_process also rewrites the v1 ones: no-ops).
  const bool hybrid_fallback = clone_target_ && !cloned_into_ && !join_.empty();
  child_sock_.reset();
  devnull_.reset();
  join_.clear();
  clone_target_.reset();
  ns_prep_.close_fds();
  join_net_.reset();
  join_ipc_.reset();
  join_uts_.reset();
  join_cgroup_.reset();
  join_pid_.reset();
  join_mnt_.reset();
  own_pid_ns_.reset();
  upper_fd_.reset();
  work_fd_.reset();

  forwarding_.emplace(pid);
  KISTE_TRY(with_context(userns_.start(pid, parent_sock_.get()), "user namespace"));
  // The child may already have failed (its report is waiting in the socket): a failed send is
  // not the error to show, the report below is.
  if (hybrid_fallback) KISTE_TRY(with_context(cgroup_->add_process(pid), "container cgroup"));
  if (needs_release) {
    KISTE_TRY(with_context(cgroup_->add_process(pid), "container cgroup"));
    const char go = 1;
    released_ = ::send(parent_sock_.get(), &go, 1, MSG_NOSIGNAL) == 1;
  }
  if (cfg_.wait_network) {
    KISTE_TRY(connected);  // the child, still waiting, is killed with child_
    // A child that failed meanwhile has its report in the socket: the send's error is not the one.
    const char go = 1;
    (void)::send(parent_sock_.get(), &go, 1, MSG_NOSIGNAL);
  }
  return {};
}

// The setup's result: EOF once the command was exec'd (the socket is close-on-exec), or a
// report; the pty master (-t) comes first, as a message of its own.
Result<bool> Launch::await_ready() {
  detail::ChildReport report{};
  ssize_t n;
  while (true) {
    int fds[detail::kMaxPassedFds];
    size_t nfds = 0;
    n = detail::recv_msg(parent_sock_.get(), &report, sizeof report, fds, &nfds);
    if (n == 1 && nfds == 1) {
      pty_master_.reset(fds[0]);  // the terminal; the report (or EOF at exec) follows
      continue;
    }
    for (size_t i = 0; i < nfds; ++i) ::close(fds[i]);
    if (n == sizeof report && report.step == static_cast<int32_t>(detail::StepId::MountsReady)) {
      KISTE_TRY(ctx_.hooks.mounts_ready(child_.pid()));  // on error, child_ kills it
      const char go = 1;
      if (::send(parent_sock_.get(), &go, 1, MSG_NOSIGNAL) != 1) {
        return std::unexpected(sys_error("send", "the container's go"));
      }
      continue;
    }
    break;
  }
  result_.cloned_into_cgroup = cloned_into_;
  if (n != sizeof report && !released_) {
    (void)child_.wait();
    return fail(Errc::System, "container setup: the container process ended before it was ready");
  }
  if (n == sizeof report) {
    auto step = static_cast<detail::StepId>(report.step);
    if (step == detail::StepId::Created && ctx_.exec_fifo_fd >= 0) {
      created_ = true;
      return true;
    }
    if (step != detail::StepId::Exec) {
      (void)child_.wait();
      return std::unexpected(child_error(report, *plan_, spec_, ctx_.create_container_hooks));
    }
    const std::string& cmd = spec_.process.args.front();
    result_.exit_code = (report.err == ENOENT || report.err == ENOTDIR) ? 127 : 126;
    result_.exec_error = fmt::format("exec {}: {}", quote(cmd), std::strerror(report.err));
    if (report.err == ENOENT && cmd.find('/') != std::string::npos) {
      // lower case, as runc and docker say it: docker's `run` exits 127 (not 125) on an engine
      // error only when it finds "no such file or directory" in it
      result_.exec_error = fmt::format("exec {}: no such file or directory (is the interpreter missing?)", quote(cmd));
    } else if (report.err == ENOENT) {
      result_.exec_error = fmt::format("exec {}: executable file not found in $PATH", quote(cmd));
    }
    (void)child_.wait();
    return false;
  }
  if (ctx_.hooks.started) ctx_.hooks.started(child_.pid());
  // A container that keeps running gets a runtime with as little of itself in memory as
  // possible; a short one is not slowed down by re-reading the code it dropped (under memory
  // pressure that is disk I/O).
  ::malloc_trim(0);
  return true;
}

constexpr int kReleaseAfterMs = 250;

// -t: terminal.hpp relays; the code pages go once the container has run for a while.
void Launch::proxy_terminal() {
  if (!pty_master_) return;
  detail::relay_terminal(pty_master_.get(), spec_.process.interactive, released_pages_ ? -1 : kReleaseAfterMs,
                         [this] {
                           released_pages_ = true;
                           release_code_pages();
                         });
}

// Waits for the container's init; its code pages go once it has run for a while.
void Launch::wait_for_exit() {
  if (!released_pages_) {
    UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, child_.pid(), 0)));
    bool release = true;
    if (pidfd) {
      struct pollfd p {pidfd.get(), POLLIN, 0};
      int rc;
      do {
        rc = ::poll(&p, 1, kReleaseAfterMs);
      } while (rc < 0 && errno == EINTR);
      release = rc == 0;
    }
    if (release) {
      released_pages_ = true;
      release_code_pages();
    }
  }
  const int status = child_.wait();
  if (WIFEXITED(status)) {
    result_.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    result_.signal = WTERMSIG(status);
    result_.exit_code = 128 + result_.signal;
  }
}

// Every mount of the container went with its mount namespace, when its last process ended.
// With --rm the container dir goes at the same time as the cgroup: overlay's work chain on
// another CPU, the rest here once the cgroup is gone (each rmdir can wait for a discard of the
// freed block: ~0.1 ms apiece on this host's discard-mounted ext4).
Result<ContainerExit> Launch::reap() {
  wait_for_exit();
  detail::SideJob exited;  // joined last, on every path
  if (ctx_.hooks.exited && !exited.start(ctx_.hooks.exited)) ctx_.hooks.exited();
  detail::SideJob remover;
  if (ctx_.remove_container_dir) {
    const fs::path& dir = spec_.root.container_dir;
    if (!remover.start([&dir] { remove_known(dir, kWorkChain); })) remove_known(dir, kWorkChain);
  }
  auto stats = cgroup_->stats();
  if (stats) {
    result_.oom_killed = stats->oom_killed;
    result_.memory_limit = stats->memory_limit;
    result_.memory_peak = stats->memory_peak;
  }
  Status destroyed = with_context(cgroup_->destroy(), "remove the container cgroup");
  if (ctx_.remove_container_dir) {
    remove_known(spec_.root.container_dir, kTopDirs);
    remover.join();
    KISTE_TRY(remove_container_dir(spec_.root.container_dir));
  }
  KISTE_TRY(std::move(destroyed));
  if (spec_.root.clean_upper && !ctx_.remove_container_dir) {  // every process has ended
    KISTE_TRY(with_context(detail::clean_upper(spec_.root.container_dir / "upper",
                                               spec_.root.lower_dirs,
                                               detail::upper_leftovers(*plan_)),
                           "clean the upper dir"));
  }
  return result_;
}

CreatedContainer Launch::hand_over() {
  CreatedContainer out;
  out.pid = child_.pid();
  out.cgroup_paths = cgroup_->paths();
  out.cgroup_unit = cgroup_->unit();
  out.pty_master = std::move(pty_master_);
  cgroup_.release();
  child_.own(-1);
  return out;
}

}  // namespace

Result<CreatedContainer> create_container(const ContainerSpec& spec, const RunContext& ctx) {
  if (ctx.exec_fifo_fd < 0) return fail(Errc::InvalidArgument, "create container: no exec fifo");
  Launch launch(spec, ctx);
  KISTE_TRY(launch.prepare());
  KISTE_TRY(launch.spawn());
  KISTE_ASSIGN_OR_RETURN(bool ready, launch.await_ready());
  if (!ready) return fail(Errc::InvalidArgument, launch.exit().exec_error);
  if (!launch.created()) {
    return fail(Errc::System, "container setup: the container did not report it was created");
  }
  return launch.hand_over();
}

Result<ContainerExit> run_container(const ContainerSpec& spec, const RunContext& ctx) {
  Launch launch(spec, ctx);
  KISTE_TRY(launch.prepare());
  KISTE_TRY(launch.spawn());
  KISTE_ASSIGN_OR_RETURN(bool running, launch.await_ready());
  if (!running) return launch.exit();
  launch.proxy_terminal();
  return launch.reap();
}

}  // namespace kiste::runtime
