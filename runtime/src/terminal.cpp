#include "terminal.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <string_view>

#include <kiste/base/sys.hpp>
#include <kiste/base/unique_fd.hpp>

namespace kiste::runtime::detail {

void relay_terminal(int master, bool forward_stdin, int idle_after_ms, const std::function<void()>& idle) {
  struct termios saved {};
  const bool raw = ::isatty(STDIN_FILENO) && ::tcgetattr(STDIN_FILENO, &saved) == 0;
  if (raw) {
    struct termios t = saved;
    ::cfmakeraw(&t);
    ::tcsetattr(STDIN_FILENO, TCSANOW, &t);
  }
  sigset_t winch, old_mask;
  sigemptyset(&winch);
  sigaddset(&winch, SIGWINCH);
  ::pthread_sigmask(SIG_BLOCK, &winch, &old_mask);
  UniqueFd winch_fd(::signalfd(-1, &winch, SFD_CLOEXEC | SFD_NONBLOCK));
  auto copy_size = [master] {
    struct winsize ws {};
    if (::ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) == 0) ::ioctl(master, TIOCSWINSZ, &ws);
  };
  copy_size();
  bool stdin_open = forward_stdin;
  bool idled = idle_after_ms < 0;
  char buf[8192];
  while (true) {
    struct pollfd fds[3] = {{master, POLLIN, 0}, {winch_fd.get(), POLLIN, 0}, {STDIN_FILENO, POLLIN, 0}};
    int rc = ::poll(fds, stdin_open ? 3 : 2, idled ? -1 : idle_after_ms);
    if (rc < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (rc == 0) {
      if (!idled) {
        idled = true;
        if (idle) idle();
      }
      continue;
    }
    if (fds[1].revents & POLLIN) {
      struct signalfd_siginfo si;
      while (::read(winch_fd.get(), &si, sizeof si) == sizeof si) {
      }
      copy_size();
    }
    if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t r = ::read(master, buf, sizeof buf);
      if (r <= 0) break;  // EIO: every slave fd is closed
      (void)sys::write_all(STDOUT_FILENO, std::string_view(buf, static_cast<size_t>(r)));
    }
    if (stdin_open && (fds[2].revents & (POLLIN | POLLHUP))) {
      ssize_t r = ::read(STDIN_FILENO, buf, sizeof buf);
      if (r <= 0) {
        stdin_open = false;
        char eof = 4;  // ^D
        (void)!::write(master, &eof, 1);
      } else {
        (void)sys::write_all(master, std::string_view(buf, static_cast<size_t>(r)));
      }
    }
  }
  winch_fd.reset();
  ::pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
  if (raw) ::tcsetattr(STDIN_FILENO, TCSANOW, &saved);
}

}  // namespace kiste::runtime::detail
