// The container child (runs after clone, in the new namespaces). noexcept throughout; it reads
// only what the parent flattened into ChildConfig and never allocates on its failure path: a
// failing step sends {step, errno, detail} over the sync socket and _exit(127)s.
#include "child.hpp"
#include "fd_passing.hpp"
#include "namespace_prep.hpp"

#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/close_range.h>
#include <linux/openat2.h>
#include <linux/seccomp.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <ctime>

namespace kiste::runtime::detail {

const char* step_name(StepId s) {
  switch (s) {
    case StepId::RuntimeFiles: return "write /etc/hosts, /etc/hostname and /etc/resolv.conf";
    case StepId::JoinCgroup: return "join the container cgroup";
    case StepId::CgroupNamespace: return "unshare the cgroup namespace";
    case StepId::MountPrivate: return "make mounts private";
    case StepId::MountOverlay: return "mount the overlay root";
    case StepId::OpenRoot: return "open the root";
    case StepId::MountOp: return "mount";
    case StepId::ReadonlyRoot: return "make the root read-only";
    case StepId::Pivot: return "pivot_root";
    case StepId::Loopback: return "bring up the loopback interface";
    case StepId::Hostname: return "set the hostname";
    case StepId::Rlimits: return "set rlimit";
    case StepId::Capabilities: return "set capabilities";
    case StepId::User: return "switch user";
    case StepId::NoNewPrivileges: return "set no_new_privs";
    case StepId::Seccomp: return "install the seccomp filter";
    case StepId::Terminal: return "open the terminal";
    case StepId::Stdio: return "set up stdio";
    case StepId::CloseFds: return "close inherited fds";
    case StepId::Cwd: return "change to the working directory";
    case StepId::Exec: return "exec";
    case StepId::UserNamespace: return "enter the user namespace";
    case StepId::JoinNamespaces: return "enter the network, IPC, UTS and mount namespaces";
    case StepId::BindRoot: return "bind the root filesystem";
    case StepId::Created: return "created";
    case StepId::ExecFifo: return "wait on the exec fifo";
    case StepId::OomScoreAdj: return "set oom_score_adj";
    case StepId::CreateContainerHook: return "createContainer hook";
    case StepId::MountsReady: return "wait for the runtime's hooks";
  }
  return "setup";
}

std::string hook_failure(std::string_view kind, const char* path, int32_t code, int timeout) {
  std::string how;
  if (code == kHookTimedOut) {
    how = "timed out after " + std::to_string(timeout) + " s";
  } else if ((code & kHookEnded) != 0) {
    const int st = code & 0xffff;
    how = WIFEXITED(st) ? "exit status " + std::to_string(WEXITSTATUS(st))
                        : "killed by signal " + std::to_string(WTERMSIG(st));
  } else {
    how = std::strerror(code);
  }
  return std::string(kind) + " hook `" + path + "`: " + how;
}

int capset_raw(uint64_t eff, uint64_t perm, uint64_t inh) noexcept {
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {
      {static_cast<uint32_t>(eff), static_cast<uint32_t>(perm), static_cast<uint32_t>(inh)},
      {static_cast<uint32_t>(eff >> 32), static_cast<uint32_t>(perm >> 32),
       static_cast<uint32_t>(inh >> 32)}};
  return static_cast<int>(::syscall(SYS_capset, &hdr, data));
}

namespace {

class ContainerInit {
 public:
  explicit ContainerInit(const ChildConfig& cfg) noexcept : c_(cfg) {}
  [[noreturn]] void run() noexcept;

 private:
  [[noreturn]] void die(StepId step, int err, int detail = 0) noexcept {
    ChildReport r{static_cast<int32_t>(step), err, detail};
    (void)!::send(c_.sync_fd, &r, sizeof r, MSG_NOSIGNAL);
    ::_exit(127);
  }
  void check(bool ok, StepId step, int detail = 0) noexcept {
    if (!ok) die(step, errno, detail);
  }
  void wait_for_go() noexcept;  // one byte from the runtime on the sync socket
  void join_cgroup() noexcept;
  void enter_userns() noexcept;
  void write_runtime_files() noexcept;
  void write_runtime_layer() noexcept;
  void mount_root() noexcept;
  void apply_ops() noexcept;
  void pivot() noexcept;
  void set_limits_and_identity() noexcept;
  void open_terminal() noexcept;
  void setup_stdio() noexcept;
  void enter_cwd() noexcept;
  void wait_for_start() noexcept;
  void learn_host_pid() noexcept;
  [[nodiscard]] int32_t run_hook(const ChildHook& h, const char* status) noexcept;
  void run_create_hooks() noexcept;
  void await_runtime_hooks() noexcept;
  [[noreturn]] void exec() noexcept;

  const ChildConfig& c_;
  int root_fd_ = -1;
  int userns_root_fd_ = -1;  // the overlay root built by the parent (userns)
  int rt_fd_ = -1;  // the tmpfs with the runtime's files (under the overlay)
  int tty_slave_ = -1;  // -t: the pty's slave, made by open_terminal()
  char host_pid_[16] = "0";  // this process's pid in the runtime's pid namespace (for hooks)
};

// "f<index>" into buf (no allocation): the name of a runtime file on its tmpfs.
void runtime_file_name(char (&buf)[16], size_t index) noexcept {
  char digits[12];
  size_t n = 0;
  do {
    digits[n++] = static_cast<char>('0' + index % 10);
    index /= 10;
  } while (index != 0 && n < sizeof digits);
  buf[0] = 'f';
  for (size_t k = 0; k < n; ++k) buf[1 + k] = digits[n - 1 - k];
  buf[1 + n] = '\0';
}

// Creates dir_fd/name (mode 0644, never through a symlink) holding `data`; false with errno set.
bool write_new_file(int dir_fd, const char* name, const std::string& data) noexcept {
  int f = ::openat(dir_fd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (f < 0) return false;
  for (size_t off = 0; off < data.size();) {
    ssize_t w = ::write(f, data.data() + off, data.size() - off);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      const int e = w < 0 ? errno : EIO;
      ::close(f);
      errno = e;
      return false;
    }
    off += static_cast<size_t>(w);
  }
  return ::close(f) == 0 || errno == EINTR;
}

// Writes all of data to fd; false with errno set.
bool write_all_fd(int fd, const char* data, size_t len) noexcept {
  for (size_t off = 0; off < len;) {
    const ssize_t w = ::write(fd, data + off, len - off);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      if (w == 0) errno = EIO;
      return false;
    }
    off += static_cast<size_t>(w);
  }
  return true;
}

// "/proc/self/fd/<fd>" into buf (no allocation).
const char* fd_path(char (&buf)[32], int fd) noexcept {
  char digits[12];
  int n = 0;
  unsigned v = static_cast<unsigned>(fd);
  do {
    digits[n++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0);
  std::memcpy(buf, "/proc/self/fd/", 14);
  int i = 14;
  while (n > 0) buf[i++] = digits[--n];
  buf[i] = '\0';
  return buf;
}

// Component walk below root_fd that never follows a symlink and creates what is missing.
// Returns an O_PATH fd or -errno.
int walk_create(int root_fd, const char* path, CreateKind create) noexcept {
  char buf[PATH_MAX];
  size_t len = std::strlen(path);
  if (len >= sizeof buf) return -ENAMETOOLONG;
  std::memcpy(buf, path, len + 1);
  int cur = ::fcntl(root_fd, F_DUPFD_CLOEXEC, 3);
  if (cur < 0) return -errno;
  char* p = buf;
  while (true) {
    while (*p == '/') ++p;
    if (*p == '\0') return cur;  // the root itself
    char* end = std::strchr(p, '/');
    bool last = end == nullptr;
    if (!last) {
      *end = '\0';
      const char* rest = end + 1;
      while (*rest == '/') ++rest;
      last = *rest == '\0';
    }
    int flags = O_PATH | O_NOFOLLOW | O_CLOEXEC | (last ? 0 : O_DIRECTORY);
    int fd = ::openat(cur, p, flags);
    if (fd < 0 && errno == ENOENT && create != CreateKind::None) {
      if (!last || create == CreateKind::Dir) {
        if (::mkdirat(cur, p, 0755) != 0 && errno != EEXIST) {
          int e = errno;
          ::close(cur);
          return -e;
        }
      } else {
        int f = ::openat(cur, p, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (f < 0 && errno != EEXIST) {
          int e = errno;
          ::close(cur);
          return -e;
        }
        if (f >= 0) ::close(f);
      }
      fd = ::openat(cur, p, flags);
    }
    int e = errno;
    ::close(cur);
    if (fd < 0) return -(e == ENOTDIR ? ELOOP : e);
    struct stat st;
    if (::fstat(fd, &st) != 0 || S_ISLNK(st.st_mode)) {
      ::close(fd);
      return -ELOOP;
    }
    if (last) return fd;
    cur = fd;
    p = end + 1;
  }
}

// Resolves `path` inside root_fd: openat2(RESOLVE_IN_ROOT) (symlinks stay inside the root);
// a missing last component is created inside its resolved (and created) parent, never through
// a symlink. Without openat2 (ENOSYS): the creating walk that never follows symlinks.
int open_in_container(int root_fd, const char* path, CreateKind create) noexcept {
  struct open_how how {};
  how.flags = O_PATH | O_CLOEXEC;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  long fd = ::syscall(SYS_openat2, root_fd, path, &how, sizeof how);
  if (fd >= 0) return static_cast<int>(fd);
  if (errno == ENOSYS) return walk_create(root_fd, path, create);
  if (errno != ENOENT || create == CreateKind::None) return -errno;
  char parent[PATH_MAX];
  size_t len = std::strlen(path);
  while (len > 1 && path[len - 1] == '/') --len;
  if (len >= sizeof parent) return -ENAMETOOLONG;
  std::memcpy(parent, path, len);
  parent[len] = '\0';
  char* slash = std::strrchr(parent, '/');
  if (slash == nullptr || slash[1] == '\0') return -EINVAL;
  char name[NAME_MAX + 1];
  if (std::strlen(slash + 1) > NAME_MAX) return -ENAMETOOLONG;
  std::strcpy(name, slash + 1);
  if (slash == parent) {
    parent[1] = '\0';
  } else {
    *slash = '\0';
  }
  int pfd = open_in_container(root_fd, parent, CreateKind::Dir);
  if (pfd < 0) return pfd;
  int rc = 0;
  if (create == CreateKind::Dir) {
    rc = ::mkdirat(pfd, name, 0755);
  } else {
    rc = ::openat(pfd, name, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (rc >= 0) rc = ::close(rc);
  }
  if (rc < 0 && errno != EEXIST) {
    int e = errno;
    ::close(pfd);
    return -e;
  }
  int out = ::openat(pfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
  int e = errno;
  ::close(pfd);
  if (out < 0) return -e;
  struct stat st;
  if (::fstat(out, &st) != 0 || S_ISLNK(st.st_mode)) {
    ::close(out);
    return -ELOOP;  // a dangling symlink: never create through it
  }
  return out;
}

// Parent directory fd of `path` (created) and its last component.
int open_parent(int root_fd, const char* path, char (&name)[NAME_MAX + 1]) noexcept {
  char dir[PATH_MAX];
  size_t len = std::strlen(path);
  if (len >= sizeof dir) return -ENAMETOOLONG;
  std::memcpy(dir, path, len + 1);
  char* slash = std::strrchr(dir, '/');
  if (slash == nullptr || std::strlen(slash + 1) > NAME_MAX) return -EINVAL;
  std::strcpy(name, slash + 1);
  if (slash == dir) {
    dir[1] = '\0';
  } else {
    *slash = '\0';
  }
  return open_in_container(root_fd, dir, CreateKind::Dir);
}

void ContainerInit::wait_for_go() noexcept {
  char go = 0;
  ssize_t n;
  do {
    n = ::recv(c_.sync_fd, &go, 1, 0);
  } while (n < 0 && errno == EINTR);
  if (n != 1) ::_exit(127);  // the runtime went away (or failed, and reports why)
}

void ContainerInit::join_cgroup() noexcept {
  if (c_.wait_release) wait_for_go();
  // This process is one thread, so it moves itself: "0" is the writer (see open_self_join).
  for (size_t i = 0; i < c_.njoin; ++i) {
    const bool ok = ::write(c_.join_fds[i], "0", 1) == 1;
    const int err = errno;
    ::close(c_.join_fds[i]);
    if (!ok) die(StepId::JoinCgroup, err);
  }
  if (c_.cgroup_ns_fd >= 0) {
    check(::setns(c_.cgroup_ns_fd, CLONE_NEWCGROUP) == 0, StepId::CgroupNamespace);
    ::close(c_.cgroup_ns_fd);
  } else if (c_.unshare_cgroup) {
    check(::unshare(CLONE_NEWCGROUP) == 0, StepId::CgroupNamespace);
  }
}

void ContainerInit::enter_userns() noexcept {
  char tag = 0;
  int fds[kMaxPassedFds];
  size_t nfds = 0;
  const ssize_t n = recv_fds(c_.sync_fd, &tag, fds, &nfds);
  if (n < 0 && errno == EMSGSIZE) die(StepId::UserNamespace, EPROTO);
  if (n != 1) ::_exit(127);  // the runtime went away (or failed and reports it)
  if (tag != 'U' || nfds != 1) die(StepId::UserNamespace, EPROTO);
  userns_root_fd_ = fds[0];
  // The mount namespace is made now, inside the user namespace, so it belongs to it; the cwd
  // (the merged dir) moves into it, and the root is attached there.
  check(::fchdir(c_.merged_fd) == 0, StepId::UserNamespace);
  check(::unshare(CLONE_NEWNS) == 0, StepId::UserNamespace);
  // Become the container's root now: what setup creates (mount points, device files) is its.
  check(::syscall(SYS_setresgid, 0, 0, 0) == 0, StepId::UserNamespace);
  check(::syscall(SYS_setgroups, 0, nullptr) == 0, StepId::UserNamespace);
  check(::syscall(SYS_setresuid, 0, 0, 0) == 0, StepId::UserNamespace);
  // A credential change clears these.
  (void)::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
  (void)::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}

// The files the runtime provides (/etc/hosts, …) go on a small tmpfs mounted on the root's
// mount point before the overlay covers it: reachable only through rt_fd_ for the binds, gone
// from every view with the old root, and nothing of them on the host's disk.
void ContainerInit::write_runtime_files() noexcept {
  const MountPlan& p = *c_.plan;
  if (p.runtime_layer) {
    write_runtime_layer();
    return;
  }
  bool any = false;
  for (const MountOp& op : p.ops) any = any || op.kind == MountOpKind::RuntimeFile;
  if (!any) return;
  if (c_.userns) {
    // The mapped root cannot name the merged dir; a detached tmpfs needs no name at all.
    int fs = ::fsopen("tmpfs", FSOPEN_CLOEXEC);
    check(fs >= 0, StepId::RuntimeFiles);
    check(::fsconfig(fs, FSCONFIG_SET_STRING, "mode", "755", 0) == 0 &&
              ::fsconfig(fs, FSCONFIG_SET_STRING, "size", "1m", 0) == 0 &&
              ::fsconfig(fs, FSCONFIG_CMD_CREATE, nullptr, nullptr, 0) == 0,
          StepId::RuntimeFiles);
    rt_fd_ = ::fsmount(fs, FSMOUNT_CLOEXEC, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC);
    check(rt_fd_ >= 0, StepId::RuntimeFiles);
    ::close(fs);
  } else {
    check(::mount("tmpfs", p.merged_dir.c_str(), "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                  "mode=755,size=1m") == 0,
          StepId::RuntimeFiles);
    rt_fd_ = ::open(p.merged_dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    check(rt_fd_ >= 0, StepId::RuntimeFiles);
  }
  for (size_t i = 0; i < p.ops.size(); ++i) {
    const MountOp& op = p.ops[i];
    if (op.kind != MountOpKind::RuntimeFile) continue;
    char name[16];
    runtime_file_name(name, i);
    check(write_new_file(rt_fd_, name, op.data), StepId::RuntimeFiles);
  }
}

// The runtime layer (mount_plan.hpp): the files in `etc` of a tmpfs on the root's mount point,
// which the overlay names as its top lower layer and then covers.
void ContainerInit::write_runtime_layer() noexcept {
  const MountPlan& p = *c_.plan;
  const RuntimeLayer& layer = *p.runtime_layer;
  check(::mount("tmpfs", p.merged_dir.c_str(), "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                "mode=755,size=1m") == 0,
        StepId::RuntimeFiles);
  const int rt = ::open(p.merged_dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  check(rt >= 0, StepId::RuntimeFiles);
  check(::mkdirat(rt, "etc", layer.etc_mode & 0777) == 0, StepId::RuntimeFiles);
  if (layer.etc_uid != 0 || layer.etc_gid != 0) {
    check(::fchownat(rt, "etc", layer.etc_uid, layer.etc_gid, AT_SYMLINK_NOFOLLOW) == 0,
          StepId::RuntimeFiles);
  }
  if ((layer.etc_mode & 07000) != 0) {  // mkdir drops set-id bits; chown clears them
    check(::fchmodat(rt, "etc", layer.etc_mode & 07777, 0) == 0, StepId::RuntimeFiles);
  }
  const int etc = ::openat(rt, "etc", O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  check(etc >= 0, StepId::RuntimeFiles);
  ::close(rt);
  for (const auto& [name, data] : layer.files) {
    check(write_new_file(etc, name.c_str(), data), StepId::RuntimeFiles);
  }
  ::close(etc);
}

void ContainerInit::mount_root() noexcept {
  check(::mount(nullptr, "/", nullptr, MS_REC | c_.plan->root_propagation, nullptr) == 0,
        StepId::MountPrivate);
  const MountPlan& p = *c_.plan;
  // With 100+ layers the lower dirs are short relative links in lower_link_dir (one page). The
  // cwd goes there before the runtime's tmpfs may cover the container dir, and keeps naming it.
  if (!c_.userns && !p.lower_link_dir.empty()) {
    check(::chdir(p.lower_link_dir.c_str()) == 0, StepId::MountOverlay);
  }
  if (!c_.userns && p.upper_fd >= 0) {
    // The options name upper and work as /proc/self/fd/N: reopened here, in this mount
    // namespace, before the runtime's tmpfs may cover the container dir.
    const int dir = ::open(p.merged_dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    check(dir >= 0, StepId::MountOverlay);
    for (auto [name, num] : {std::pair{"upper", p.upper_fd}, std::pair{"work", p.work_fd}}) {
      const int fd = ::openat(dir, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      check(fd >= 0 && ::dup3(fd, num, O_CLOEXEC) == num, StepId::MountOverlay);
      ::close(fd);
    }
    ::close(dir);
  }
  write_runtime_files();
  if (c_.userns) {
    // The cwd is the (private, 0700) container dir: the mapped root may not look up even "."
    // there, so the target is the cwd itself, with no lookup at all.
    check(::move_mount(userns_root_fd_, "", AT_FDCWD, "",
                       MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) == 0,
          StepId::MountOverlay);
    root_fd_ = userns_root_fd_;
    return;
  }
  if (!p.bind_root.empty()) {
    check(::mount(p.bind_root.c_str(), p.bind_root.c_str(), nullptr, MS_BIND | MS_REC, nullptr) == 0,
          StepId::BindRoot);
    root_fd_ = ::open(p.merged_dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    check(root_fd_ >= 0, StepId::OpenRoot);
    return;
  }
  int rc = ::mount("overlay", p.merged_dir.c_str(), "overlay", 0, p.overlay_data.c_str());
  if (rc != 0 && errno == EINVAL && !p.overlay_data_plain.empty()) {  // no `volatile` (< 5.10)
    rc = ::mount("overlay", p.merged_dir.c_str(), "overlay", 0, p.overlay_data_plain.c_str());
  }
  check(rc == 0, StepId::MountOverlay);
  root_fd_ = ::open(p.merged_dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  check(root_fd_ >= 0, StepId::OpenRoot);
}

void ContainerInit::apply_ops() noexcept {
  const auto& ops = c_.plan->ops;
  char pbuf[32], pbuf2[32];
  bool joined = false;
  for (size_t i = 0; i < ops.size(); ++i) {
    const MountOp& op = ops[i];
    const int idx = static_cast<int>(i);
    auto fail_if = [&](int rc) {
      if (rc < 0) die(StepId::MountOp, -rc, idx);
    };
    switch (op.kind) {
      case MountOpKind::Mount: {
        int fd = open_in_container(root_fd_, op.target.c_str(), CreateKind::Dir);
        fail_if(fd);
        check(::mount(op.source.c_str(), fd_path(pbuf, fd), op.fstype.c_str(), op.flags,
                      op.data.empty() ? nullptr : op.data.c_str()) == 0,
              StepId::MountOp, idx);
        ::close(fd);
        break;
      }
      case MountOpKind::Bind: {
        int fd = open_in_container(root_fd_, op.target.c_str(), op.create);
        fail_if(fd);
        if (c_.op_fds != nullptr && c_.op_fds[i] >= 0) {
          check(::move_mount(c_.op_fds[i], "", fd, "",
                             MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) == 0,
                StepId::MountOp, idx);
        } else {
          check(::mount(op.source.c_str(), fd_path(pbuf, fd), nullptr, MS_BIND | MS_REC, nullptr) == 0,
                StepId::MountOp, idx);
        }
        ::close(fd);
        if (op.flags & (MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC)) {
          fd = open_in_container(root_fd_, op.target.c_str(), CreateKind::None);
          fail_if(fd);
          check(::mount(nullptr, fd_path(pbuf, fd), nullptr,
                        MS_BIND | MS_REMOUNT | MS_REC |
                            (op.flags & (MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC)),
                        nullptr) == 0,
                StepId::MountOp, idx);
          ::close(fd);
        }
        if (op.propagation != 0) {  // on the new mount: resolve the target again
          fd = open_in_container(root_fd_, op.target.c_str(), CreateKind::None);
          fail_if(fd);
          check(::mount(nullptr, fd_path(pbuf, fd), nullptr, op.propagation, nullptr) == 0,
                StepId::MountOp, idx);
          ::close(fd);
        }
        break;
      }
      case MountOpKind::RuntimeFile: {
        char name[16];
        runtime_file_name(name, i);
        int src = ::openat(rt_fd_, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
        check(src >= 0, StepId::MountOp, idx);
        // Never through a symlink the image put there (runc refuses them too): /etc/hosts ->
        // /etc/passwd would cover the image's passwd with the runtime's hosts file.
        char leaf[NAME_MAX + 1];
        int dfd = open_parent(root_fd_, op.target.c_str(), leaf);
        fail_if(dfd);
        int fd = ::openat(dfd, leaf, O_PATH | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0 && errno == ENOENT) {
          int f = ::openat(dfd, leaf, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644);
          if (f >= 0) ::close(f);
          fd = ::openat(dfd, leaf, O_PATH | O_NOFOLLOW | O_CLOEXEC);
        }
        check(fd >= 0, StepId::MountOp, idx);
        ::close(dfd);
        struct stat st;
        check(::fstat(fd, &st) == 0, StepId::MountOp, idx);
        if (S_ISLNK(st.st_mode)) die(StepId::MountOp, ELOOP, idx);
        check(::mount(fd_path(pbuf, src), fd_path(pbuf2, fd), nullptr, MS_BIND, nullptr) == 0,
              StepId::MountOp, idx);
        ::close(fd);
        ::close(src);
        break;
      }
      case MountOpKind::Mknod: {
        char name[NAME_MAX + 1];
        int dfd = open_parent(root_fd_, op.target.c_str(), name);
        fail_if(dfd);
        const mode_t type = op.node == DeviceType::Block ? S_IFBLK
                            : op.node == DeviceType::Fifo ? S_IFIFO
                                                          : S_IFCHR;
        if (::mknodat(dfd, name, type | op.mode, static_cast<dev_t>(op.dev)) == 0) {
          if ((op.uid != 0 || op.gid != 0) && ::fchownat(dfd, name, op.uid, op.gid, AT_SYMLINK_NOFOLLOW) != 0) {
            die(StepId::MountOp, errno, idx);
          }
        } else if (errno != EEXIST) {
          // Without CAP_MKNOD (user namespaces): bind the host's node instead.
          int e = errno;
          int f = ::openat(dfd, name, O_CREAT | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0666);
          if (f < 0) die(StepId::MountOp, e, idx);
          char host[NAME_MAX + 8] = "/dev/";
          std::memcpy(host + 5, name, std::strlen(name) + 1);
          check(::mount(host, fd_path(pbuf, f), nullptr, MS_BIND, nullptr) == 0, StepId::MountOp, idx);
          ::close(f);
        }
        ::close(dfd);
        break;
      }
      case MountOpKind::Symlink: {
        char name[NAME_MAX + 1];
        int dfd = open_parent(root_fd_, op.target.c_str(), name);
        fail_if(dfd);
        check(::symlinkat(op.source.c_str(), dfd, name) == 0 || errno == EEXIST, StepId::MountOp, idx);
        ::close(dfd);
        break;
      }
      case MountOpKind::Mask: {
        int fd = open_in_container(root_fd_, op.target.c_str(), CreateKind::None);
        if (fd == -ENOENT) break;
        fail_if(fd);
        struct stat st;
        check(::fstat(fd, &st) == 0, StepId::MountOp, idx);
        if (S_ISDIR(st.st_mode)) {
          check(::mount("tmpfs", fd_path(pbuf, fd), "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
                        "size=0") == 0,
                StepId::MountOp, idx);
        } else {
          check(::mount(op.source.c_str(), fd_path(pbuf, fd), nullptr, MS_BIND, nullptr) == 0,
                StepId::MountOp, idx);
        }
        ::close(fd);
        break;
      }
      case MountOpKind::ReadonlyPath: {
        int fd = open_in_container(root_fd_, op.target.c_str(), CreateKind::None);
        if (fd == -ENOENT) break;
        fail_if(fd);
        fd_path(pbuf, fd);
        check(::mount(pbuf, pbuf, nullptr, MS_BIND | MS_REC, nullptr) == 0, StepId::MountOp, idx);
        int fd2 = open_in_container(root_fd_, op.target.c_str(), CreateKind::None);
        fail_if(fd2);
        check(::mount(nullptr, fd_path(pbuf2, fd2), nullptr,
                      MS_BIND | MS_REMOUNT | MS_RDONLY | MS_REC | MS_NOSUID | MS_NODEV | MS_NOEXEC,
                      nullptr) == 0,
              StepId::MountOp, idx);
        ::close(fd2);
        ::close(fd);
        break;
      }
      case MountOpKind::WriteFile: {
        int fd = open_in_container(root_fd_, op.target.c_str(), CreateKind::None);
        fail_if(fd);
        int w = ::open(fd_path(pbuf, fd), O_WRONLY | O_CLOEXEC);
        check(w >= 0, StepId::MountOp, idx);
        check(::write(w, op.data.data(), op.data.size()) == static_cast<ssize_t>(op.data.size()),
              StepId::MountOp, idx);
        ::close(w);
        ::close(fd);
        break;
      }
      case MountOpKind::JoinCgroup:
        join_cgroup();
        joined = true;
        break;
      case MountOpKind::RemountReadonly: {
        int fd = open_in_container(root_fd_, op.target.c_str(), CreateKind::None);
        fail_if(fd);
        check(::mount(nullptr, fd_path(pbuf, fd), nullptr,
                      MS_REMOUNT | MS_BIND | MS_RDONLY | op.flags, nullptr) == 0,
              StepId::MountOp, idx);
        ::close(fd);
        break;
      }
    }
  }
  if (!joined) join_cgroup();
  if (c_.plan->readonly_root) {
    // userns: the merged dir cannot be looked up by the mapped root; the root's fd can.
    const char* root = c_.userns ? fd_path(pbuf, root_fd_) : c_.plan->merged_dir.c_str();
    check(::mount(nullptr, root, nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY, nullptr) == 0,
          StepId::ReadonlyRoot);
  }
}

void ContainerInit::pivot() noexcept {
  // pivot_root(".", "."): the old root ends up stacked on the new one and is detached at once;
  // nothing of the host stays reachable.
  check(::fchdir(root_fd_) == 0, StepId::Pivot);
  check(::syscall(SYS_pivot_root, ".", ".") == 0, StepId::Pivot);
  // rslave instead of rprivate when a volume asks for slave propagation ("." is the new root:
  // rprivate would cut the volume from its master; a private mount stays private either way).
  check(::mount(nullptr, ".", nullptr, MS_REC | c_.plan->root_propagation, nullptr) == 0,
        StepId::Pivot);
  check(::umount2(".", MNT_DETACH) == 0, StepId::Pivot);
  check(::chdir("/") == 0, StepId::Pivot);
  ::close(root_fd_);
  root_fd_ = -1;
}

void ContainerInit::set_limits_and_identity() noexcept {
  if (c_.loopback_up) {
    if (int e = loopback_up(); e != 0) die(StepId::Loopback, e);
  }
  if (c_.hostname != nullptr) {
    check(::sethostname(c_.hostname, std::strlen(c_.hostname)) == 0, StepId::Hostname);
  }
  if (c_.oom_score_adj != nullptr) {
    const int fd = ::open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
    check(fd >= 0, StepId::OomScoreAdj);
    check(::write(fd, c_.oom_score_adj, std::strlen(c_.oom_score_adj)) > 0, StepId::OomScoreAdj);
    ::close(fd);
  }
  for (size_t i = 0; i < c_.nrlimits; ++i) {
    check(::setrlimit(static_cast<__rlimit_resource>(c_.rlimit_resources[i]), &c_.rlimits[i]) == 0,
          StepId::Rlimits, c_.rlimit_resources[i]);
  }
  // Bounding set first (needs CAP_SETPCAP), ambient cleared, then the user switch keeping
  // the permitted set so seccomp can still be installed.
  for (int cap = 0; cap <= c_.last_cap; ++cap) {
    if (!((c_.cap_bounding >> cap) & 1)) {
      check(::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) == 0 || errno == EINVAL, StepId::Capabilities, cap);
    }
  }
  (void)::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
  check(::prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) == 0, StepId::Capabilities);
  // Raw syscalls: glibc's wrappers broadcast set*id to every thread it knows of, and the
  // runtime's other threads do not exist in this child (they would wait forever).
  check(::syscall(SYS_setgroups, c_.ngids, c_.gids) == 0, StepId::User);
  check(::syscall(SYS_setresgid, c_.gid, c_.gid, c_.gid) == 0, StepId::User);
  check(::syscall(SYS_setresuid, c_.uid, c_.uid, c_.uid) == 0, StepId::User);
  (void)::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);  // a uid change cleared it
  if (c_.no_new_privileges) {
    check(::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0, StepId::NoNewPrivileges);
  }
  if (c_.seccomp != nullptr) {
    // Still holding CAP_SYS_ADMIN in the permitted set: make it effective for the install.
    __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct cur[2]{};
    check(::syscall(SYS_capget, &hdr, cur) == 0, StepId::Capabilities);
    uint64_t perm = cur[0].permitted | (static_cast<uint64_t>(cur[1].permitted) << 32);
    check(capset_raw(perm, perm, 0) == 0, StepId::Capabilities);
    sock_fprog prog{c_.seccomp_len, const_cast<sock_filter*>(c_.seccomp)};
    check(::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) == 0, StepId::Seccomp);
  }
  check(capset_raw(c_.cap_effective, c_.cap_permitted, c_.cap_inheritable) == 0, StepId::Capabilities);
  for (int cap = 0; cap <= c_.last_cap; ++cap) {
    if ((c_.cap_ambient >> cap) & 1) (void)::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0);
  }
  (void)::prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0);
}

// -t: the pty lives in the container's devpts instance, so its name resolves inside. It is made
// while the child is still root with its capabilities, because its slave is also bound on
// /dev/console (docker and runc do the same), and then given to the container's user.
void ContainerInit::open_terminal() noexcept {
  if (!c_.terminal) return;
  int master = ::open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
  check(master >= 0, StepId::Terminal);
  int unlock = 0;
  check(::ioctl(master, TIOCSPTLCK, &unlock) == 0, StepId::Terminal);
  unsigned int n = 0;
  check(::ioctl(master, TIOCGPTN, &n) == 0, StepId::Terminal);
  int slave = ::ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY);
  check(slave >= 0, StepId::Terminal);
  check(::fchown(slave, c_.uid, static_cast<gid_t>(-1)) == 0, StepId::Terminal);
  if (c_.rows != 0 && c_.cols != 0) {
    struct winsize ws {};
    ws.ws_row = c_.rows;
    ws.ws_col = c_.cols;
    (void)::ioctl(slave, TIOCSWINSZ, &ws);
  }
  char pts[32] = "/dev/pts/";
  size_t at = std::strlen(pts);
  char digits[12];
  int nd = 0;
  do {
    digits[nd++] = static_cast<char>('0' + n % 10);
    n /= 10;
  } while (n != 0);
  while (nd > 0) pts[at++] = digits[--nd];
  pts[at] = '\0';
  // /dev is the runtime's own tmpfs: the mount point is made there, never in the image.
  int f = ::open("/dev/console", O_CREAT | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0600);
  check(f >= 0, StepId::Terminal);
  ::close(f);
  check(::mount(pts, "/dev/console", nullptr, MS_BIND, nullptr) == 0, StepId::Terminal);
  check(send_fds(c_.sync_fd, 'T', &master, 1), StepId::Terminal);
  ::close(master);
  tty_slave_ = slave;
}

void ContainerInit::setup_stdio() noexcept {
  if (c_.terminal) {
    const int slave = tty_slave_;
    check(::setsid() >= 0, StepId::Stdio);
    check(::ioctl(slave, TIOCSCTTY, 0) == 0, StepId::Stdio);
    for (int i = 0; i < 3; ++i) check(::dup2(slave, i) == i, StepId::Stdio);
    if (slave > 2) ::close(slave);
  } else if (c_.stdin_fd >= 0) {
    check(::dup2(c_.stdin_fd, 0) == 0, StepId::Stdio);
  }
  // Only stdio, the preserved fds and the sync socket and exec fifo (both close-on-exec)
  // survive; everything else is closed now, so no host fd can serve as a way out
  // (CVE-2024-21626).
  const unsigned first = 3U + static_cast<unsigned>(c_.preserve_fds);
  int keep[2] = {c_.sync_fd, c_.exec_fifo_fd};
  if (keep[1] >= 0 && keep[1] < keep[0]) {
    keep[1] = keep[0];
    keep[0] = c_.exec_fifo_fd;
  }
  unsigned from = first;
  for (int k : keep) {
    if (k < 0) continue;
    if (static_cast<unsigned>(k) < first) die(StepId::CloseFds, EBADF);
    if (static_cast<unsigned>(k) > from) {
      check(::syscall(SYS_close_range, from, static_cast<unsigned>(k - 1), 0U) == 0, StepId::CloseFds);
    }
    from = static_cast<unsigned>(k) + 1;
  }
  check(::syscall(SYS_close_range, from, ~0U, 0U) == 0, StepId::CloseFds);
}

// Calls `try_one` with each entry of `path` (the container's PATH, or the default one) joined with
// `file`, in execvp's order ("" meaning "."), until it returns true; whether one did. Allocates
// nothing: it runs in the cloned child.
template <class TryOne>
bool each_path_candidate(const char* path, const char* file, TryOne try_one) noexcept {
  if (path == nullptr) path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  char buf[PATH_MAX];
  const size_t flen = std::strlen(file);
  for (const char* p = path;; ++p) {
    const char* end = std::strchr(p, ':');
    const size_t dlen = end ? static_cast<size_t>(end - p) : std::strlen(p);
    if (dlen + flen + 2 < sizeof buf) {
      std::memcpy(buf, p, dlen);
      size_t n = dlen;
      if (n == 0) buf[n++] = '.';
      buf[n++] = '/';
      std::memcpy(buf + n, file, flen + 1);
      if (try_one(static_cast<const char*>(buf))) return true;
    }
    if (end == nullptr) return false;
    p = end;
  }
}

// create_container(): the command must be executable before `create` succeeds (as runc checks),
// then the child reports "created" and blocks on the exec fifo until `start` reads it. Its
// parent (the `create` process) exits meanwhile, so the parent-death signal goes first.
void ContainerInit::wait_for_start() noexcept {
  const char* file = c_.argv[0];
  if (std::strchr(file, '/') != nullptr) {
    check(::access(file, X_OK) == 0, StepId::Exec);
  } else {
    const bool found = each_path_candidate(c_.path_env, file, [](const char* candidate) {
      return ::access(candidate, X_OK) == 0;
    });
    if (!found) die(StepId::Exec, ENOENT);
  }
  (void)::prctl(PR_SET_PDEATHSIG, 0, 0, 0, 0);
  ChildReport created{static_cast<int32_t>(StepId::Created), 0, 0};
  check(::send(c_.sync_fd, &created, sizeof created, MSG_NOSIGNAL) == sizeof created, StepId::ExecFifo);
  char path[32];
  int fifo;
  do {
    fifo = ::open(fd_path(path, c_.exec_fifo_fd), O_WRONLY | O_CLOEXEC);
  } while (fifo < 0 && errno == EINTR);
  if (fifo < 0) ::_exit(127);  // nobody to report to any more
  const char zero = 0;
  if (::write(fifo, &zero, 1) != 1) ::_exit(127);
  ::close(c_.exec_fifo_fd);
  // startContainer hooks: `start` reads on until the fifo closes, at exec (close-on-exec), or
  // until a failed hook's {index, outcome} arrives; then the container ends.
  for (size_t i = 0; i < c_.nstart_hooks; ++i) {
    const int32_t code = run_hook(c_.start_hooks[i], "created");
    if (code != 0) {
      const int32_t failed[2] = {static_cast<int32_t>(i), code};
      (void)!::write(fifo, failed, sizeof failed);
      ::_exit(127);
    }
  }
  if (c_.nstart_hooks == 0) ::close(fifo);
}

// Before pivot_root, /proc is still the runtime's: its `self` names this process as the runtime
// and the engine see it (inside, it is 1).
void ContainerInit::learn_host_pid() noexcept {
  char buf[sizeof host_pid_];
  const ssize_t n = ::readlink("/proc/self", buf, sizeof buf - 1);
  if (n <= 0) return;
  std::memcpy(host_pid_, buf, static_cast<size_t>(n));
  host_pid_[n] = '\0';
}

// One hook, its state on stdin from a memfd (nothing blocks on a hook that does not read it);
// 0 when it exited 0, else a HookOutcome code (child.hpp). The hook is this process's child, so
// it is in every namespace and the cgroup of the container.
int32_t ContainerInit::run_hook(const ChildHook& h, const char* status) noexcept {
  const int state = static_cast<int>(::syscall(SYS_memfd_create, "state", MFD_CLOEXEC));
  if (state < 0) return errno;
  bool ok = write_all_fd(state, c_.hook_state, c_.hook_state_len);
  for (const char* part : {",\"status\":\"", status, "\",\"pid\":", static_cast<const char*>(host_pid_), "}"}) {
    ok = ok && write_all_fd(state, part, std::strlen(part));
  }
  if (!ok || ::lseek(state, 0, SEEK_SET) != 0) {
    const int e = errno;
    ::close(state);
    return e;
  }
  const auto pid = static_cast<pid_t>(::syscall(SYS_clone, SIGCHLD, nullptr, nullptr, nullptr, nullptr));
  if (pid < 0) {
    const int e = errno;
    ::close(state);
    return e;
  }
  if (pid == 0) {
    if (::dup2(state, STDIN_FILENO) != STDIN_FILENO) ::_exit(127);
    (void)::umask(022);
    ::execve(h.path, h.argv, h.envp);
    ::_exit(127);
  }
  ::close(state);
  struct timespec start {};
  ::clock_gettime(CLOCK_MONOTONIC, &start);
  int st = 0;
  while (true) {
    const pid_t got = ::waitpid(pid, &st, h.timeout > 0 ? WNOHANG : 0);
    if (got == pid) break;
    if (got < 0 && errno != EINTR) return errno;
    if (got == 0) {
      struct timespec now {};
      ::clock_gettime(CLOCK_MONOTONIC, &now);
      if (now.tv_sec - start.tv_sec >= h.timeout) {
        ::kill(pid, SIGKILL);
        while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
        }
        return kHookTimedOut;
      }
      struct timespec tick {0, 5'000'000};
      ::nanosleep(&tick, nullptr);
    }
  }
  return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : kHookEnded | (st & 0xffff);
}

void ContainerInit::await_runtime_hooks() noexcept {
  if (!c_.wait_mounts_ready) return;
  ChildReport ready{static_cast<int32_t>(StepId::MountsReady), 0, 0};
  check(::send(c_.sync_fd, &ready, sizeof ready, MSG_NOSIGNAL) == sizeof ready, StepId::MountsReady);
  wait_for_go();  // none comes when the runtime's hooks failed
}

void ContainerInit::run_create_hooks() noexcept {
  for (size_t i = 0; i < c_.ncreate_hooks; ++i) {
    const int32_t code = run_hook(c_.create_hooks[i], "creating");
    if (code != 0) die(StepId::CreateContainerHook, code, static_cast<int>(i));
  }
}

void ContainerInit::enter_cwd() noexcept {
  if (::chdir(c_.cwd) != 0) {
    int e = errno;
    if (e != ENOENT) die(StepId::Cwd, e);
    // Like runc: create a missing working directory (inside the new root; no host is left).
    char buf[PATH_MAX];
    size_t len = std::strlen(c_.cwd);
    if (len >= sizeof buf) die(StepId::Cwd, ENAMETOOLONG);
    std::memcpy(buf, c_.cwd, len + 1);
    for (char* p = buf + 1; *p; ++p) {
      if (*p == '/') {
        *p = '\0';
        (void)::mkdir(buf, 0755);
        *p = '/';
      }
    }
    (void)::mkdir(buf, 0755);
    check(::chdir(c_.cwd) == 0, StepId::Cwd);
  }
  // The cwd must be inside the root: a leaked directory fd (/proc/self/fd/N) would give a cwd
  // that getcwd cannot name.
  char buf[PATH_MAX];
  if (::syscall(SYS_getcwd, buf, sizeof buf) < 0 || buf[0] != '/') die(StepId::Cwd, EPERM);
}

[[noreturn]] void ContainerInit::exec() noexcept {
  (void)::umask(022);
  const char* file = c_.argv[0];
  if (std::strchr(file, '/') != nullptr) {
    ::execve(file, c_.argv, c_.envp);
    die(StepId::Exec, errno);
  }
  // execvp semantics with the container's PATH.
  int best = ENOENT;
  each_path_candidate(c_.path_env, file, [&](const char* candidate) {
    ::execve(candidate, c_.argv, c_.envp);
    if (errno != ENOENT && errno != ENOTDIR) best = errno;
    return false;
  });
  die(StepId::Exec, best);
}

[[noreturn]] void ContainerInit::run() noexcept {
  (void)::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
  // Not dumpable until exec: nothing in the container can open /proc/<pid>/exe or mem of this
  // copy of the runtime (CVE-2019-5736, CVE-2016-9962). In a user namespace of its own only once
  // the parent wrote its maps (enter_userns): a non-dumpable process's /proc files are the
  // initial namespace's root's, which rootless kiste cannot open. Until then nothing of the
  // container runs: the child waits for the parent in enter_userns.
  if (!c_.userns) (void)::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  (void)::umask(0);
  for (auto [fd, type] : {std::pair{c_.net_fd, CLONE_NEWNET}, std::pair{c_.ipc_fd, CLONE_NEWIPC},
                          std::pair{c_.uts_fd, CLONE_NEWUTS}, std::pair{c_.mnt_fd, CLONE_NEWNS}}) {
    if (fd < 0) continue;
    check(::setns(fd, type) == 0, StepId::JoinNamespaces);
    ::close(fd);
  }
  if (c_.userns) enter_userns();
  mount_root();                 // 2, 3
  apply_ops();                  // 4, with 1 (join the cgroup) at the plan's JoinCgroup
  if (c_.ncreate_hooks + c_.nstart_hooks > 0) learn_host_pid();
  await_runtime_hooks();         // prestart, createRuntime
  run_create_hooks();
  pivot();                      // 5
  open_terminal();              // -t: the pty and /dev/console, before the identity changes
  setup_stdio();                // before seccomp: the spec's filter may deny close_range
  if (c_.wait_network) wait_for_go();  // the network, connected meanwhile
  set_limits_and_identity();    // 6, 7, 8, 9
  enter_cwd();
  if (c_.exec_fifo_fd >= 0) wait_for_start();
  exec();                       // 10, 11: the sync socket closes on exec = "ready"
}

}  // namespace

void container_child_main(const ChildConfig& cfg) noexcept {
  ContainerInit init(cfg);
  init.run();
}

}  // namespace kiste::runtime::detail
