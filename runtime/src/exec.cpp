#include <kiste/runtime/exec.hpp>

#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <optional>
#include <sstream>
#include <vector>

#include <kiste/base/sys.hpp>
#include <kiste/base/unique_fd.hpp>

#include "child.hpp"
#include "fd_passing.hpp"
#include "terminal.hpp"

namespace kiste::runtime {

namespace fs = std::filesystem;

namespace {

// What the target process is, read from /proc/<pid>/status.
struct Identity {
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;
  uint64_t cap_inh = 0, cap_prm = 0, cap_eff = 0, cap_bnd = 0;
  bool no_new_privs = false;
};

Result<Identity> read_identity(pid_t pid) {
  const std::string path = fmt::format("/proc/{}/status", pid);
  KISTE_ASSIGN_OR_RETURN(std::string text, sys::read_file(path, 1 << 16));
  Identity id;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    auto value = [&](std::string_view key) -> std::optional<std::string> {
      if (!line.starts_with(key)) return std::nullopt;
      return line.substr(key.size());
    };
    if (auto v = value("Uid:")) id.uid = static_cast<uid_t>(std::stoul(*v));  // real uid first
    if (auto v = value("Gid:")) id.gid = static_cast<gid_t>(std::stoul(*v));
    if (auto v = value("Groups:")) {
      std::istringstream g(*v);
      for (unsigned long x; g >> x;) id.groups.push_back(static_cast<gid_t>(x));
    }
    if (auto v = value("CapInh:")) id.cap_inh = std::stoull(*v, nullptr, 16);
    if (auto v = value("CapPrm:")) id.cap_prm = std::stoull(*v, nullptr, 16);
    if (auto v = value("CapEff:")) id.cap_eff = std::stoull(*v, nullptr, 16);
    if (auto v = value("CapBnd:")) id.cap_bnd = std::stoull(*v, nullptr, 16);
    if (auto v = value("NoNewPrivs:")) id.no_new_privs = std::stoi(*v) != 0;
  }
  return id;
}

// The target's seccomp filters, newest first (empty when it has none).
Result<std::vector<std::vector<sock_filter>>> read_seccomp_filters(pid_t pid) {
  const std::string what = fmt::format("process {}", pid);
  if (::ptrace(PTRACE_SEIZE, pid, 0, 0) != 0) return std::unexpected(sys_error("ptrace seize", what));
  std::vector<std::vector<sock_filter>> filters;
  auto detach = [&] { (void)::ptrace(PTRACE_DETACH, pid, 0, 0); };
  if (::ptrace(PTRACE_INTERRUPT, pid, 0, 0) != 0) {
    auto e = sys_error("ptrace interrupt", what);
    detach();
    return std::unexpected(std::move(e));
  }
  int st = 0;
  while (::waitpid(pid, &st, __WALL) < 0) {
    if (errno != EINTR) {
      auto e = sys_error("wait for", what);
      detach();
      return std::unexpected(std::move(e));
    }
  }
  for (unsigned long i = 0;; ++i) {
    long n = ::ptrace(static_cast<__ptrace_request>(PTRACE_SECCOMP_GET_FILTER), pid, i, nullptr);
    if (n < 0 && (errno == ENOENT || (errno == EINVAL && i == 0))) break;  // past the last / none
    if (n < 0) {
      auto e = sys_error("read the seccomp filters of", what);
      detach();
      return std::unexpected(std::move(e));
    }
    std::vector<sock_filter> prog(static_cast<size_t>(n));
    (void)::ptrace(static_cast<__ptrace_request>(PTRACE_SECCOMP_GET_FILTER), pid, i, prog.data());
    filters.push_back(std::move(prog));
  }
  detach();
  return filters;
}

// The cgroup dirs of the target, from /proc/<pid>/cgroup (v1 hierarchies and the v2 one).
std::vector<fs::path> cgroup_dirs(pid_t pid) {
  std::vector<fs::path> out;
  auto text = sys::read_file(fmt::format("/proc/{}/cgroup", pid), 1 << 16);
  if (!text) return out;
  std::istringstream in(*text);
  std::error_code ec;
  for (std::string line; std::getline(in, line);) {
    const size_t a = line.find(':'), b = line.find(':', a + 1);
    if (a == std::string::npos || b == std::string::npos) continue;
    std::string ctrls = line.substr(a + 1, b - a - 1);
    const std::string rel = line.substr(b + 1);
    fs::path dir;
    if (ctrls.empty()) {
      dir = fs::is_directory("/sys/fs/cgroup/unified", ec) ? fs::path("/sys/fs/cgroup/unified")
                                                             : fs::path("/sys/fs/cgroup");
    } else if (ctrls.starts_with("name=")) {
      dir = fs::path("/sys/fs/cgroup") / ctrls.substr(5);
    } else {
      dir = fs::path("/sys/fs/cgroup") / ctrls;
    }
    dir += rel;
    if (fs::exists(dir / "cgroup.procs", ec)) out.push_back(dir);
  }
  return out;
}

// The failure report of the exec'ing grandchild: {step, errno}.
struct Report {
  int step;
  int err;
};
enum Step { kCgroup = 1, kSetns, kFork, kCwd, kIdentity, kCaps, kNoNewPrivs, kSeccomp, kExec, kTimedOut,
            kStarted /* detach: err is the command's pid */, kTerminal };
const char* step_name(int s) {
  switch (s) {
    case kCgroup: return "join the container's cgroup";
    case kTerminal: return "open a terminal in the container";
    case kSetns: return "join the container's namespaces";
    case kFork: return "fork inside the container";
    case kCwd: return "change to the working directory";
    case kIdentity: return "take the container's user";
    case kCaps: return "take the container's capabilities";
    case kNoNewPrivs: return "set no_new_privs";
    case kSeccomp: return "install the container's seccomp filter";
    default: return "exec";
  }
}

[[noreturn]] void die(int fd, int step, int err) {
  Report r{step, err};
  (void)!::write(fd, &r, sizeof r);
  _exit(step == kExec ? (err == ENOENT || err == ENOTDIR ? 127 : 126) : 125);
}

}  // namespace

Result<std::vector<pid_t>> container_pids(pid_t init) {
  const std::string what = fmt::format("/proc/{}/cgroup", init);
  KISTE_ASSIGN_OR_RETURN(std::string text, sys::read_file(what, 1 << 16));
  std::optional<fs::path> v1, v2;
  std::istringstream in(text);
  std::error_code ec;
  for (std::string line; std::getline(in, line);) {
    const size_t a = line.find(':'), b = line.find(':', a + 1);
    if (a == std::string::npos || b == std::string::npos) continue;
    const std::string ctrls = line.substr(a + 1, b - a - 1), rel = line.substr(b + 1);
    std::istringstream names(ctrls);
    for (std::string c; std::getline(names, c, ',');) {
      if (c == "pids") v1 = fs::path("/sys/fs/cgroup/pids") / rel.substr(1);
    }
    if (ctrls.empty()) {
      v2 = (fs::is_directory("/sys/fs/cgroup/unified", ec) ? fs::path("/sys/fs/cgroup/unified")
                                                           : fs::path("/sys/fs/cgroup")) / rel.substr(1);
    }
  }
  const std::optional<fs::path>& dir = v1 ? v1 : v2;
  if (!dir) return failf(Errc::NotFound, "cgroup of process {}: not found in {}", init, quote(what));
  std::vector<pid_t> pids;
  // cgroup.procs of the container's cgroup and of any below it (a nested cgroup the container made).
  auto add = [&](const fs::path& d) -> Status {
    KISTE_ASSIGN_OR_RETURN(std::string procs, sys::read_file(d / "cgroup.procs", 1 << 20));
    std::istringstream p(procs);
    for (long v; p >> v;) pids.push_back(static_cast<pid_t>(v));
    return {};
  };
  KISTE_TRY(add(*dir));
  for (auto it = fs::recursive_directory_iterator(*dir, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (it->is_directory(ec)) (void)add(it->path());
  }
  std::sort(pids.begin(), pids.end());
  return pids;
}

Result<ExecResult> exec_in_container(const ExecRequest& req) {
  if (req.args.empty()) return fail(Errc::InvalidArgument, "exec: no command given");
  const pid_t pid = req.target;
  // Everything is read and allocated here; the children only make syscalls.
  KISTE_ASSIGN_OR_RETURN(Identity id, read_identity(pid));
  if (req.user) {
    id.uid = req.user->uid;
    id.gid = req.user->gid;
    id.groups = req.user->groups;
  }
  std::vector<std::vector<sock_filter>> filters;
  if (req.seccomp_file.empty()) {
    KISTE_ASSIGN_OR_RETURN(filters, read_seccomp_filters(pid));
  } else {
    KISTE_ASSIGN_OR_RETURN(std::string bpf, sys::read_file(req.seccomp_file, 1 << 20));
    if (bpf.size() % sizeof(sock_filter) != 0 || bpf.size() / sizeof(sock_filter) > 0xffff) {
      return failf(Errc::Corrupt, "seccomp filter {}: not a BPF program", req.seccomp_file.native());
    }
    if (!bpf.empty()) {
      filters.emplace_back(bpf.size() / sizeof(sock_filter));
      std::memcpy(filters.back().data(), bpf.data(), bpf.size());
    }
  }
  const std::vector<fs::path> cgroups = req.seccomp_file.empty() ? cgroup_dirs(pid) : std::vector<fs::path>{};
  // The namespaces, user first (joining it is what lets the others be joined when it is not
  // the host's), mnt last (after it, host paths are gone). Only those that differ from ours.
  std::vector<std::pair<UniqueFd, int>> namespaces;
  for (auto [name, type] : {std::pair{"user", CLONE_NEWUSER}, {"ipc", CLONE_NEWIPC},
                            {"uts", CLONE_NEWUTS}, {"net", CLONE_NEWNET},
                            {"cgroup", CLONE_NEWCGROUP}, {"time", CLONE_NEWTIME},
                            {"pid", CLONE_NEWPID}, {"mnt", CLONE_NEWNS}}) {
    const std::string theirs = fmt::format("/proc/{}/ns/{}", pid, name);
    struct stat a {}, b {};
    if (::stat(theirs.c_str(), &a) != 0) {
      if (errno == ENOENT) continue;  // a kernel without time namespaces
      return std::unexpected(sys_error("stat", theirs));
    }
    if (::stat(fmt::format("/proc/self/ns/{}", name).c_str(), &b) == 0 && a.st_ino == b.st_ino &&
        a.st_dev == b.st_dev) {
      continue;
    }
    KISTE_ASSIGN_OR_RETURN(UniqueFd fd, sys::open(theirs, O_RDONLY | O_CLOEXEC));
    namespaces.emplace_back(std::move(fd), type);
  }
  // The environment: the target's, then -e on top.
  KISTE_ASSIGN_OR_RETURN(std::string environ_text,
                         sys::read_file(fmt::format("/proc/{}/environ", pid), 1 << 20));
  std::vector<std::string> env;
  for (size_t at = 0; at < environ_text.size();) {
    size_t end = environ_text.find('\0', at);
    if (end == std::string::npos) end = environ_text.size();
    env.emplace_back(environ_text.substr(at, end - at));
    at = end + 1;
  }
  for (const auto& kv : req.env) {
    const std::string key = kv.substr(0, kv.find('=') + 1);
    std::erase_if(env, [&](const std::string& e) { return e.starts_with(key); });
    env.push_back(kv);
  }
  std::string path_var = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  for (const auto& e : env) {
    if (e.starts_with("PATH=")) path_var = e.substr(5);
  }
  std::vector<std::string> candidates;
  if (req.args[0].find('/') != std::string::npos) {
    candidates.push_back(req.args[0]);
  } else {
    std::istringstream dirs(path_var);
    for (std::string d; std::getline(dirs, d, ':');) candidates.push_back((d.empty() ? "." : d) + "/" + req.args[0]);
  }
  std::vector<char*> argv, envp;
  for (const auto& a : req.args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  for (const auto& e : env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);

  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return std::unexpected(sys_error("pipe2", "exec report"));
  UniqueFd report_r(p[0]), report_w(p[1]);
  const int wfd = report_w.get();
  UniqueFd null_fd;
  if (req.output_fd >= 0) {
    KISTE_ASSIGN_OR_RETURN(null_fd, sys::open("/dev/null", O_RDONLY | O_CLOEXEC));
  }
  // -t for kiste's own exec: the pty master comes back over a socket pair to this process.
  UniqueFd console_ours, console_theirs;
  if (req.terminal) {
    int sp[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) != 0) {
      return std::unexpected(sys_error("socketpair", "exec terminal"));
    }
    console_ours.reset(sp[0]);
    console_theirs.reset(sp[1]);
  }
  const int console_fd = req.terminal ? console_theirs.get() : req.console_fd;
  const pid_t outer = ::fork();
  if (outer < 0) return std::unexpected(sys_error("fork", "exec"));
  if (outer == 0) {
    // Not dumpable while it is a copy of the runtime inside the container's namespaces: nothing
    // there may open /proc/<pid>/exe (the runtime binary) or its fds (CVE-2019-5736,
    // CVE-2016-9962). exec() of the command resets it.
    (void)::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    for (const auto& dir : cgroups) {
      int fd = ::open((dir / "cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC);
      if (fd < 0 || ::write(fd, "0", 1) != 1) die(wfd, kCgroup, errno);
      ::close(fd);
    }
    for (const auto& [fd, type] : namespaces) {
      if (::setns(fd.get(), type) != 0) die(wfd, kSetns, errno);
    }
    // The pid namespace applies to children: the command runs in a second fork.
    const pid_t inner = ::fork();
    if (inner < 0) die(wfd, kFork, errno);
    if (inner == 0) {
      if (!req.detach) (void)::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
      // A command with a timeout leads its own process group, which the timeout kills whole.
      if (req.timeout_ms > 0) (void)::setpgid(0, 0);
      if (console_fd >= 0) {
        // In the container's mount namespace /dev/ptmx is its devpts instance: the pty's name
        // resolves inside. The master goes to the engine; the slave is the command's terminal.
        const int master = ::open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (master < 0) die(wfd, kTerminal, errno);
        int unlock = 0;
        if (::ioctl(master, TIOCSPTLCK, &unlock) != 0) die(wfd, kTerminal, errno);
        const int slave = ::ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY);
        if (slave < 0 || ::fchown(slave, id.uid, static_cast<gid_t>(-1)) != 0) die(wfd, kTerminal, errno);
        if (!detail::send_fds(console_fd, 'T', &master, 1)) die(wfd, kTerminal, errno);
        ::close(master);
        if (::setsid() < 0 || ::ioctl(slave, TIOCSCTTY, 0) != 0) die(wfd, kTerminal, errno);
        for (int to : {STDIN_FILENO, STDOUT_FILENO, STDERR_FILENO}) {
          if (::dup2(slave, to) < 0) die(wfd, kTerminal, errno);
        }
        if (slave > STDERR_FILENO) ::close(slave);
      }
      if (req.output_fd >= 0 && (::dup2(null_fd.get(), STDIN_FILENO) < 0 ||
                                 ::dup2(req.output_fd, STDOUT_FILENO) < 0 ||
                                 ::dup2(req.output_fd, STDERR_FILENO) < 0)) {
        die(wfd, kExec, errno);
      }
      if (::chdir(req.cwd.c_str()) != 0) die(wfd, kCwd, errno);
      for (int cap = 0; cap <= 63; ++cap) {
        if (!((id.cap_bnd >> cap) & 1) && ::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL) {
          die(wfd, kCaps, errno);
        }
      }
      (void)::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
      if (::prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0) die(wfd, kCaps, errno);
      if (::setgroups(id.groups.size(), id.groups.data()) != 0 ||
          ::setresgid(id.gid, id.gid, id.gid) != 0 || ::setresuid(id.uid, id.uid, id.uid) != 0) {
        die(wfd, kIdentity, errno);
      }
      if (id.no_new_privs && ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) die(wfd, kNoNewPrivs, errno);
      if (!filters.empty()) {
        // The permitted set is still the caller's (KEEPCAPS): effective for the install.
        __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
        __user_cap_data_struct cur[2]{};
        if (::syscall(SYS_capget, &hdr, cur) != 0) die(wfd, kCaps, errno);
        const uint64_t perm = cur[0].permitted | (static_cast<uint64_t>(cur[1].permitted) << 32);
        if (detail::capset_raw(perm, perm, 0) != 0) die(wfd, kCaps, errno);
      }
      // Oldest filter first, as the container stacked them.
      for (auto it = filters.rbegin(); it != filters.rend(); ++it) {
        sock_fprog prog{static_cast<unsigned short>(it->size()), it->data()};
        if (::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) != 0) die(wfd, kSeccomp, errno);
      }
      if (detail::capset_raw(id.cap_eff, id.cap_prm, id.cap_inh) != 0) die(wfd, kCaps, errno);
      (void)::prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0);
      int err = ENOENT;
      for (const auto& c : candidates) {
        ::execve(c.c_str(), argv.data(), envp.data());
        if (errno != ENOENT || err == ENOENT) err = errno;
      }
      die(wfd, kExec, err);
    }
    if (req.detach) {
      // The command is the caller's subreaper's child from now on (conmon, a shim).
      Report r{kStarted, inner};
      (void)!::write(wfd, &r, sizeof r);
      _exit(0);
    }
    if (req.timeout_ms > 0) {
      (void)::setpgid(inner, inner);  // either side may get there first
      int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, inner, 0));
      struct pollfd p {pidfd, POLLIN, 0};
      int rc;
      do {
        rc = ::poll(&p, 1, static_cast<int>(std::min<int64_t>(req.timeout_ms, INT32_MAX)));
      } while (rc < 0 && errno == EINTR);
      if (pidfd >= 0 && rc == 0) {
        (void)::kill(-inner, SIGKILL);
        (void)::kill(inner, SIGKILL);
        Report r{kTimedOut, 0};
        (void)!::write(wfd, &r, sizeof r);
      }
    }
    int st = 0;
    while (::waitpid(inner, &st, 0) < 0 && errno == EINTR) {
    }
    _exit(WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
  }
  report_w.reset();
  if (req.terminal) {
    console_theirs.reset();  // EOF below when the children end without sending the master
    char tag = 0;
    int fds[detail::kMaxPassedFds];
    size_t n = 0;
    if (detail::recv_fds(console_ours.get(), &tag, fds, &n) > 0) {
      std::vector<UniqueFd> got;
      for (size_t i = 0; i < n; ++i) got.emplace_back(fds[i]);
      if (n == 1) detail::relay_terminal(got.front().get(), req.forward_stdin, -1, {});
    }
  }
  int st = 0;
  while (::waitpid(outer, &st, 0) < 0) {
    if (errno != EINTR) return std::unexpected(sys_error("wait for", "the exec'd process"));
  }
  ExecResult r;
  r.exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  Report rep{};
  // detach: the started report and, unless the command exec'd (EOF), its failure, either first.
  while (req.detach && ::read(report_r.get(), &rep, sizeof rep) == static_cast<ssize_t>(sizeof rep)) {
    if (rep.step != kStarted) break;
    r.pid = rep.err;
    rep = Report{};
  }
  if (req.detach && rep.step == 0 && r.pid > 0) {
    r.exit_code = 0;
    return r;
  }
  if (req.detach) {
    r.pid = 0;
    r.exit_code = rep.err == ENOENT || rep.err == ENOTDIR ? 127 : 126;
  }
  if (rep.step != 0 || ::read(report_r.get(), &rep, sizeof rep) == static_cast<ssize_t>(sizeof rep)) {
    if (rep.step == kTimedOut) {
      r.timed_out = true;
      return r;
    }
    if (rep.step != kExec) {
      return failf(Errc::System, "exec: {}: {}", step_name(rep.step), std::strerror(rep.err));
    }
    if (rep.err == ENOENT && req.args[0].find('/') == std::string::npos) {
      r.exec_error = fmt::format("exec {}: executable file not found in $PATH", quote(req.args[0]));
    } else {
      r.exec_error = fmt::format("exec {}: {}", quote(req.args[0]), std::strerror(rep.err));
    }
  }
  return r;
}

}  // namespace kiste::runtime
