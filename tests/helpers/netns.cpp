#include <kiste/testing/netns.hpp>

#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <string>

namespace kiste::testing {

bool enter_own_netns() {
  if (::geteuid() != 0 || ::unshare(CLONE_NEWNET) != 0) return false;
  UniqueFd s(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!s) return false;
  struct ifreq ifr {};
  std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  if (::ioctl(s.get(), SIOCGIFFLAGS, &ifr) != 0) return false;
  ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP);
  return ::ioctl(s.get(), SIOCSIFFLAGS, &ifr) == 0;
}

UniqueFd new_netns() {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return {};
  pid_t pid = ::fork();
  if (pid == 0) {
    char c = ::unshare(CLONE_NEWNET) == 0 ? 'y' : 'n';
    (void)!::write(p[1], &c, 1);
    ::pause();
    ::_exit(0);
  }
  ::close(p[1]);
  char c = 0;
  UniqueFd fd;
  if (pid > 0 && ::read(p[0], &c, 1) == 1 && c == 'y') {
    const std::string path = "/proc/" + std::to_string(pid) + "/ns/net";
    fd = UniqueFd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  }
  ::close(p[0]);
  if (pid > 0) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
  }
  return fd;
}

}  // namespace kiste::testing
