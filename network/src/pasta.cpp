#include <kiste/network/pasta.hpp>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include <fmt/format.h>

#include <kiste/base/split.hpp>
#include <kiste/base/sys.hpp>
#include <kiste/base/unique_fd.hpp>

extern char** environ;

namespace kiste::network {

namespace {

constexpr int kReadyTimeoutMs = 10'000;  // pasta is ready in ~0.1 s; a hung one is killed

// "-t 127.0.0.1/18080:8080": pasta's SPEC is [ADDRESS/]HOSTPORT:NAMESPACEPORT.
std::string pasta_spec(const PortMapping& m) {
  std::string spec = m.host_ip ? m.host_ip->to_string() + "/" : "";
  return spec + fmt::format("{}:{}", m.host_port, m.container_port);
}

// pasta's last line of complaint (it also tells syslog, which may not be there).
std::string pasta_complaint(int memfd) {
  ::lseek(memfd, 0, SEEK_SET);
  const std::string text = sys::read_all(memfd, "pasta's output", 1 << 20).value_or("");
  std::string_view last;
  for (std::string_view line : split(text, '\n')) {
    if (!line.empty() && line.find("syslog") == std::string_view::npos) last = line;
  }
  return last.empty() ? "no message" : std::string(last);
}

void reap(pid_t pid) {
  ::kill(pid, SIGKILL);
  while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
  }
}

}  // namespace

std::vector<std::string> pasta_arguments(const std::vector<PortMapping>& ports,
                                         const std::string& netns_path, const std::string& pid_path) {
  std::vector<std::string> args = {"--foreground", "--quiet",       "--config-net",  "--ns-ifname",
                                   "eth0",         "--no-map-gw",   "--no-netns-quit", "-T",
                                   "none",         "-U",            "none"};
  bool tcp = false;
  bool udp = false;
  for (const PortMapping& m : ports) {
    const bool is_udp = m.protocol == "udp";
    (is_udp ? udp : tcp) = true;
    args.insert(args.end(), {is_udp ? "-u" : "-t", pasta_spec(m)});
  }
  if (!tcp) args.insert(args.end(), {"-t", "none"});
  if (!udp) args.insert(args.end(), {"-u", "none"});
  args.insert(args.end(), {"--netns", netns_path, "--pid", pid_path});
  return args;
}

Status choose_free_ports(std::vector<PortMapping>& ports) {
  for (PortMapping& m : ports) {
    // Bound and closed again: the port is free now (or the error says why not), and pasta binds
    // it a few milliseconds later.
    KISTE_ASSIGN_OR_RETURN(UniqueFd probe, bind_host_port(m));
  }
  return {};
}

Result<Pasta> Pasta::start(int netns_fd, const std::vector<PortMapping>& ports) {
  const char* path_env = std::getenv("PATH");
  const std::string exe = sys::find_on_path("pasta", path_env ? path_env : "/usr/local/bin:/usr/bin:/bin");
  if (exe.empty()) {
    return fail(Errc::Unavailable, "network pasta: pasta not found on PATH: install Debian's `passt` "
                                   "package (apt-get install passt)");
  }
  // pasta opens the tun device inside the container's namespace as this user; name the fix
  // rather than pass on pasta's "Failed to open tun socket in namespace".
  if (::access("/dev/net/tun", R_OK | W_OK) != 0) {
    return failf(Errc::Unavailable,
                 "network pasta: /dev/net/tun: {}: pasta needs the tun device readable and writable "
                 "(mode 0666, as udev's default rules make it)",
                 std::strerror(errno));
  }
  int ready[2];
  if (::pipe2(ready, O_CLOEXEC) != 0) return std::unexpected(sys_error("pipe2", "pasta"));
  UniqueFd ready_r(ready[0]);
  UniqueFd ready_w(ready[1]);
  UniqueFd log(::memfd_create("kiste-pasta-log", MFD_CLOEXEC));
  if (!log) return std::unexpected(sys_error("memfd_create", "pasta"));
  UniqueFd devnull(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (!devnull) return std::unexpected(sys_error("open", "/dev/null"));

  // Everything the child needs is made before fork: after it only async-signal-safe calls.
  std::vector<std::string> args = pasta_arguments(ports, fmt::format("/proc/self/fd/{}", netns_fd),
                                                  fmt::format("/proc/self/fd/{}", ready_w.get()));
  args.insert(args.begin(), exe);
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t parent = ::getpid();

  const pid_t pid = ::fork();
  if (pid < 0) return std::unexpected(sys_error("fork", "pasta"));
  if (pid == 0) {
    // The parent's blocked or ignored signals would otherwise be pasta's too.
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGPIPE, SIGCHLD}) ::sigaction(sig, &dfl, nullptr);
    ::setsid();  // Ctrl-C at the terminal is for the container, not for its network
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(1);
    ::dup2(devnull.get(), STDIN_FILENO);
    ::dup2(log.get(), STDOUT_FILENO);
    ::dup2(log.get(), STDERR_FILENO);
    ::fcntl(netns_fd, F_SETFD, 0);
    ::fcntl(ready_w.get(), F_SETFD, 0);
    ::execve(exe.c_str(), argv.data(), environ);
    ::_exit(127);
  }
  ready_w.reset();
  // pasta writes its pid to the "pid file" (our pipe) once the namespace is configured and every
  // port is bound; it closes the pipe without a word when it gives up.
  std::string got;
  pollfd p{.fd = ready_r.get(), .events = POLLIN, .revents = 0};
  while (got.find('\n') == std::string::npos) {
    int n = ::poll(&p, 1, kReadyTimeoutMs);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      reap(pid);
      return failf(Errc::Unavailable, "network pasta: pasta did not get ready in {} s", kReadyTimeoutMs / 1000);
    }
    char buf[32];
    ssize_t r = ::read(ready_r.get(), buf, sizeof buf);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    got.append(buf, static_cast<size_t>(r));
  }
  if (got.find('\n') == std::string::npos) {
    int st = 0;
    while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    if (WIFEXITED(st) && WEXITSTATUS(st) == 127) {
      return failf(Errc::System, "network pasta: could not execute {}", exe);
    }
    return failf(Errc::System, "network pasta: pasta: {}", pasta_complaint(log.get()));
  }
  return Pasta(pid);
}

Pasta::~Pasta() {
  if (pid_ > 0) reap(pid_);
}

}  // namespace kiste::network
