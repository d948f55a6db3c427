#pragma once
// One tagged byte with file descriptors over the runtime's sync socket (SCM_RIGHTS), both
// ways: the runtime releases the child with the cgroup files it moves itself in through, gives
// it the overlay root in a user namespace, and the child hands back its pty master. Both sides
// use it, so it allocates nothing (the child runs between clone and exec).
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>

namespace kiste::runtime::detail {

// At most this many fds travel in one message (one per v1 cgroup hierarchy is the most).
inline constexpr size_t kMaxPassedFds = 16;

// Sends `tag` and fds[0..n); true when the byte went out. n > kMaxPassedFds is refused.
inline bool send_fds(int sock, char tag, const int* fds, size_t n) noexcept {
  if (n > kMaxPassedFds) return false;
  struct iovec iov {&tag, 1};
  struct msghdr msg {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxPassedFds)] = {};
  if (n > 0) {
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * n);
    struct cmsghdr* cm = CMSG_FIRSTHDR(&msg);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int) * n);
    std::memcpy(CMSG_DATA(cm), fds, sizeof(int) * n);
  }
  return ::sendmsg(sock, &msg, MSG_NOSIGNAL) == 1;
}

// Receives one message: its tag byte and up to kMaxPassedFds fds (close-on-exec) into fds,
// their count in *nfds. Returns recvmsg's result (1 for a message, 0 at EOF, -1 with errno;
// EMSGSIZE when fds were cut off, in which case the ones that came are closed).
inline ssize_t recv_fds(int sock, char* tag, int* fds, size_t* nfds) noexcept;

// The same for a message of up to `len` bytes into `buf` (the child's setup report, or the
// one-byte message that carries its pty master).
inline ssize_t recv_msg(int sock, void* buf, size_t len, int* fds, size_t* nfds) noexcept {
  *nfds = 0;
  struct iovec iov {buf, len};
  struct msghdr msg {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxPassedFds)] = {};
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ssize_t n;
  do {
    n = ::recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n <= 0) return n;
  for (struct cmsghdr* cm = CMSG_FIRSTHDR(&msg); cm != nullptr; cm = CMSG_NXTHDR(&msg, cm)) {
    if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS) continue;
    const size_t count = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count && *nfds < kMaxPassedFds; ++i) {
      std::memcpy(&fds[*nfds], CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
      ++*nfds;
    }
  }
  if ((msg.msg_flags & MSG_CTRUNC) != 0) {
    for (size_t i = 0; i < *nfds; ++i) ::close(fds[i]);
    *nfds = 0;
    errno = EMSGSIZE;
    return -1;
  }
  return n;
}

inline ssize_t recv_fds(int sock, char* tag, int* fds, size_t* nfds) noexcept {
  return recv_msg(sock, tag, 1, fds, nfds);
}

}  // namespace kiste::runtime::detail
