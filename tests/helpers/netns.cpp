#include <kiste/testing/netns.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <string>

#include <kiste/testing/temp_root.hpp>

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

UniqueFd new_peer_netns(const std::string& host_if, const std::string& host_addr,
                        const std::string& peer_addr) {
  UniqueFd ns = new_netns();
  if (!ns) return ns;
  const std::string path = "/proc/" + std::to_string(::getpid()) + "/fd/" + std::to_string(ns.get());
  const std::string in_peer = "nsenter --net=" + path + " ";
  const int rc = run_shell("ip link add " + host_if + " type veth peer name eth0 netns " + path + " && ip addr add " +
                           host_addr + "/24 dev " + host_if + " && ip link set " + host_if + " up && " + in_peer +
                           "ip link set lo up && " + in_peer + "ip addr add " + peer_addr + "/24 dev eth0 && " + in_peer +
                           "ip link set eth0 up");
  if (rc != 0) {
    (void)run_shell("ip link del " + host_if + " 2>/dev/null");
    return {};
  }
  return ns;
}

OneShotServer::OneShotServer(int netns_fd, const std::string& addr) {
  thread_ = std::thread([this, netns_fd, addr] {
    UniqueFd s;
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    if (::setns(netns_fd, CLONE_NEWNET) == 0 && ::inet_pton(AF_INET, addr.c_str(), &sa.sin_addr) == 1) {
      s = UniqueFd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    }
    if (!s || ::bind(s.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 || ::listen(s.get(), 1) != 0) {
      port_ = -1;
      return;
    }
    socklen_t len = sizeof sa;
    ::getsockname(s.get(), reinterpret_cast<sockaddr*>(&sa), &len);
    port_ = ntohs(sa.sin_port);
    pollfd p{s.get(), POLLIN, 0};
    if (::poll(&p, 1, 30000) != 1) return;
    sockaddr_in from{};
    len = sizeof from;
    UniqueFd c(::accept4(s.get(), reinterpret_cast<sockaddr*>(&from), &len, SOCK_CLOEXEC));
    if (!c) return;
    char buf[INET_ADDRSTRLEN] = {};
    ::inet_ntop(AF_INET, &from.sin_addr, buf, sizeof buf);
    peer_ = buf;
    (void)!::write(c.get(), "pong\n", 5);
  });
  while (port_ == 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));
}

std::string OneShotServer::peer() {
  if (thread_.joinable()) thread_.join();
  return peer_;
}

OneShotServer::~OneShotServer() {
  if (thread_.joinable()) thread_.join();
}

}  // namespace kiste::testing
