// kiste-init: PID 1 of a container run with `kiste run --init` (docker's docker-init, tini).
// kiste bind-mounts this static binary read-only at /dev/init and execs it as
//   /dev/init -- COMMAND [ARG...]
// It starts COMMAND (PATH lookup with the container's environment, which is all it has), reaps
// every process reparented to it, forwards signals to COMMAND, and exits with COMMAND's status
// (128+N after signal N); the kernel then ends the rest of the container's pid namespace.
// Being its own small program (not a fork of kiste) matters: a container with SYS_PTRACE could
// otherwise read kiste's host environment and memory through /proc/1 and reach the host kiste
// binary through /proc/1/exe.
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

// `kiste-init --hold`: the process that holds a systemd scope open for its container (kiste's
// systemd cgroup driver). It has its own tiny memory: the OOM killer of the scope may pick it,
// never kiste. It dies with kiste.
int hold() {
  sigset_t all;
  sigfillset(&all);
  sigprocmask(SIG_SETMASK, &all, nullptr);
  const pid_t parent = getppid();
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) return 0;  // kiste already went
  for (;;) pause();
}

int main(int argc, char** argv) {
  if (argc == 2 && strcmp(argv[1], "--hold") == 0) return hold();
  int first = 1;
  if (first < argc && strcmp(argv[first], "--") == 0) ++first;
  if (first >= argc) {
    fputs("kiste-init: usage: kiste-init [--] COMMAND [ARG...]\n", stderr);
    return 2;
  }
  // Every signal waits in sigwaitinfo. PID 1 of a pid namespace gets no signal it has no handler
  // for, but a blocked signal is never dropped, so blocking them is what lets them be forwarded.
  sigset_t all, old;
  sigfillset(&all);
  if (sigprocmask(SIG_SETMASK, &all, &old) != 0) {
    fprintf(stderr, "kiste-init: sigprocmask: %s\n", strerror(errno));
    return 126;
  }
  pid_t child = fork();
  if (child < 0) {
    fprintf(stderr, "kiste-init: fork: %s\n", strerror(errno));
    return 126;
  }
  if (child == 0) {
    sigprocmask(SIG_SETMASK, &old, nullptr);
    execvp(argv[first], argv + first);
    int e = errno;
    fprintf(stderr, "kiste-init: exec %s: %s\n", argv[first], strerror(e));
    _exit(e == ENOENT ? 127 : 126);
  }
  close(0);  // the command alone holds stdin: its end of input is the container's
  for (;;) {
    siginfo_t si;
    int sig = sigwaitinfo(&all, &si);
    if (sig < 0) continue;
    if (sig == SIGCHLD) {
      int st = 0;
      pid_t p;
      while ((p = waitpid(-1, &st, WNOHANG)) > 0) {
        if (p == child) return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
      }
    } else if (sig != SIGPIPE && sig != SIGTTIN && sig != SIGTTOU) {
      kill(child, sig);
    }
  }
}
