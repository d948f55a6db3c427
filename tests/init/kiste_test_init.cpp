// kiste_test_init: a static helper copied into test root filesystems. One verb per invocation,
// answers on stdout, so root tests can ask the container what it sees (crun's tests/init.c).
//   hostname | id | cat PATH | mounts | status | caps | fds
//   try-syscall NAME        prints "NAME errno=N" (0 = allowed and succeeded)
//   memhog MIB              allocates and touches MIB MiB, prints "allocated"
//   forkbomb N              tries N forks, prints "forked=X failed=Y"
//   zombies N               leaves N orphaned zombies for PID 1, waits, prints "zombies=Z"
//   open-exe-write PID      tries open("/proc/PID/exe", O_WRONLY), prints "errno=N"
//   no-openat2 CMD ARG…     runs CMD with openat2 returning ENOSYS (seccomp)
//   connect tcp:PORT | unix:@NAME   connects to 127.0.0.1:PORT or an abstract unix socket,
//                           prints "connected" (exit 0) or "errno=N" (exit 1)
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/keyctl.h>
#include <linux/sched.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

namespace {

int cat(const char* path) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    printf("error errno=%d\n", errno);
    return 1;
  }
  char buf[65536];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) fwrite(buf, 1, static_cast<size_t>(n), stdout);
  if (n < 0) printf("error errno=%d\n", errno);
  close(fd);
  return n < 0 ? 1 : 0;
}

int connect_to(const char* where) {
  int fd = -1, rc = -1;
  if (!strncmp(where, "tcp:", 4)) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(atoi(where + 4)));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0) rc = connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  } else if (!strncmp(where, "unix:@", 6)) {
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    size_t n = strlen(where + 6);
    if (n + 1 > sizeof a.sun_path) n = sizeof a.sun_path - 1;
    memcpy(a.sun_path + 1, where + 6, n);  // sun_path[0] = 0: the abstract namespace
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0) {
      rc = connect(fd, reinterpret_cast<sockaddr*>(&a),
                   static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + n));
    }
  } else {
    fprintf(stderr, "connect: tcp:PORT or unix:@NAME\n");
    return 2;
  }
  if (rc != 0) {
    printf("errno=%d\n", errno);
    return 1;
  }
  printf("connected\n");
  close(fd);
  return 0;
}

long try_syscall(const char* name) {
  errno = 0;
  long rc = -1;
  if (!strcmp(name, "unshare")) {
    rc = unshare(CLONE_NEWUTS);
  } else if (!strcmp(name, "mount")) {
    rc = mount("none", "/tmp", "tmpfs", 0, nullptr);
    if (rc == 0) umount("/tmp");
  } else if (!strcmp(name, "keyctl")) {
    rc = syscall(SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0);
  } else if (!strcmp(name, "add_key")) {
    rc = syscall(SYS_add_key, "user", "kiste-test", "x", 1, KEY_SPEC_PROCESS_KEYRING);
  } else if (!strcmp(name, "bpf")) {
    rc = syscall(SYS_bpf, 0, nullptr, 0);
  } else if (!strcmp(name, "ptrace")) {
    pid_t target = getpid() == 1 ? 1 : 1;
    rc = ptrace(PTRACE_ATTACH, target, nullptr, nullptr);
  } else if (!strcmp(name, "clone-newuser")) {
    rc = syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, nullptr, nullptr, nullptr, nullptr);
    if (rc == 0) _exit(0);
    if (rc > 0) waitpid(static_cast<pid_t>(rc), nullptr, 0);
  } else if (!strcmp(name, "clone3")) {
    struct clone_args args {};
    args.exit_signal = SIGCHLD;
    rc = syscall(SYS_clone3, &args, sizeof args);
    if (rc == 0) _exit(0);
    if (rc > 0) waitpid(static_cast<pid_t>(rc), nullptr, 0);
  } else if (!strcmp(name, "mkdir")) {
    rc = mkdir("/tmp/kiste-try-mkdir", 0755);
    if (rc == 0) rmdir("/tmp/kiste-try-mkdir");
  } else if (!strcmp(name, "socket-alg")) {
    rc = socket(38 /* AF_ALG */, SOCK_SEQPACKET, 0);
  } else if (!strcmp(name, "socket-unix")) {
    rc = socket(AF_UNIX, SOCK_STREAM, 0);
  } else if (!strcmp(name, "getpid")) {
    rc = getpid();
  } else if (!strcmp(name, "io_uring_setup")) {
    rc = syscall(SYS_io_uring_setup, 1, nullptr);
  } else if (!strcmp(name, "personality-bad")) {
    rc = syscall(SYS_personality, 0x0040000 /* ADDR_NO_RANDOMIZE */);
  } else {
    fprintf(stderr, "unknown syscall %s\n", name);
    exit(2);
  }
  return rc < 0 ? errno : 0;
}

int memhog(long mib) {
  size_t len = static_cast<size_t>(mib) << 20;
  char* p = static_cast<char*>(mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  if (p == MAP_FAILED) {
    printf("mmap errno=%d\n", errno);
    return 1;
  }
  for (size_t i = 0; i < len; i += 4096) p[i] = 1;
  printf("allocated\n");
  return 0;
}

int forkbomb(int n) {
  int forked = 0, failed = 0;
  pid_t pids[4096];
  for (int i = 0; i < n && i < 4096; ++i) {
    pid_t p = fork();
    if (p == 0) {
      pause();
      _exit(0);
    }
    if (p < 0) {
      ++failed;
    } else {
      pids[forked++] = p;
    }
  }
  for (int i = 0; i < forked; ++i) kill(pids[i], SIGKILL);
  for (int i = 0; i < forked; ++i) waitpid(pids[i], nullptr, 0);
  printf("forked=%d failed=%d\n", forked, failed);
  return 0;
}

int count_zombies() {
  int z = 0;
  DIR* d = opendir("/proc");
  if (!d) return -1;
  while (struct dirent* e = readdir(d)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    char path[300], buf[512];
    snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
    int fd = open(path, O_RDONLY);
    if (fd < 0) continue;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) continue;
    buf[n] = 0;
    char* rp = strrchr(buf, ')');
    if (rp && rp[1] == ' ' && rp[2] == 'Z') ++z;
  }
  closedir(d);
  return z;
}

int zombies(int n) {
  // A child forks n grandchildren that exit at once, then exits itself: the grandchildren are
  // reparented to PID 1, which must reap them.
  // Each holds the write end of a pipe until it exits, so EOF on the read end means all of
  // them have exited (their files are closed before they become zombies).
  int p[2];
  if (pipe(p) != 0) return 1;
  pid_t c = fork();
  if (c == 0) {
    close(p[0]);
    for (int i = 0; i < n; ++i) {
      if (fork() == 0) _exit(0);
    }
    _exit(0);
  }
  close(p[1]);
  char b;
  while (read(p[0], &b, 1) > 0) {
  }
  close(p[0]);
  waitpid(c, nullptr, 0);
  // Wait (bounded) for PID 1 to reap them; report what is left.
  int z = 0;
  for (int i = 0; i < 200; ++i) {
    z = count_zombies();
    if (z == 0) break;
    usleep(10000);
  }
  printf("zombies=%d\n", z);
  return 0;
}

int no_openat2(char** argv) {
  struct sock_filter filter[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_openat2, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  struct sock_fprog prog = {sizeof filter / sizeof filter[0], filter};
  if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) != 0) {
    perror("seccomp");
    return 125;
  }
  execv(argv[0], argv);
  perror("execv");
  return 127;
}

int fds() {
  DIR* d = opendir("/proc/self/fd");
  if (!d) return 1;
  int self = dirfd(d);
  while (struct dirent* e = readdir(d)) {
    if (e->d_name[0] == '.' || atoi(e->d_name) == self) continue;
    printf("%s\n", e->d_name);
  }
  closedir(d);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  setvbuf(stdout, nullptr, _IOLBF, 0);
  if (argc < 2) {
    fprintf(stderr, "usage: kiste_test_init VERB [ARG…]\n");
    return 2;
  }
  const char* verb = argv[1];
  if (!strcmp(verb, "hostname")) {
    char h[256] = {};
    gethostname(h, sizeof h - 1);
    printf("%s\n", h);
  } else if (!strcmp(verb, "id")) {
    gid_t groups[64];
    int n = getgroups(64, groups);
    printf("uid=%d gid=%d groups=", getuid(), getgid());
    for (int i = 0; i < n; ++i) printf(i ? ",%d" : "%d", groups[i]);
    printf("\n");
  } else if (!strcmp(verb, "cat") && argc > 2) {
    return cat(argv[2]);
  } else if (!strcmp(verb, "mounts")) {
    return cat("/proc/self/mountinfo");
  } else if (!strcmp(verb, "status") || !strcmp(verb, "caps")) {
    return cat("/proc/self/status");
  } else if (!strcmp(verb, "try-syscall") && argc > 2) {
    for (int i = 2; i < argc; ++i) printf("%s errno=%ld\n", argv[i], try_syscall(argv[i]));
  } else if (!strcmp(verb, "memhog") && argc > 2) {
    return memhog(atol(argv[2]));
  } else if (!strcmp(verb, "forkbomb") && argc > 2) {
    return forkbomb(atoi(argv[2]));
  } else if (!strcmp(verb, "zombies") && argc > 2) {
    return zombies(atoi(argv[2]));
  } else if (!strcmp(verb, "open-exe-write") && argc > 2) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%s/exe", argv[2]);
    int fd = open(path, O_WRONLY);
    printf("errno=%d\n", fd < 0 ? errno : 0);
  } else if (!strcmp(verb, "no-openat2") && argc > 2) {
    return no_openat2(argv + 2);
  } else if (!strcmp(verb, "connect") && argc > 2) {
    return connect_to(argv[2]);
  } else if (!strcmp(verb, "fds")) {
    return fds();
  } else if (!strcmp(verb, "survive-parent") && argc > 2) {
    // A PID 1 that clears the parent-death signal, with a child of its own: what a SIGKILLed
    // kiste must still be able to kill.
    prctl(PR_SET_PDEATHSIG, 0);
    if (fork() == 0) {
      for (;;) pause();
    }
    int fd = open(argv[2], O_WRONLY | O_CREAT, 0644);
    if (fd >= 0) close(fd);
    for (;;) pause();
  } else {
    fprintf(stderr, "kiste_test_init: unknown verb %s\n", verb);
    return 2;
  }
  return 0;
}
