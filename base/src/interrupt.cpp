#include <kiste/base/interrupt.hpp>

#include <signal.h>
#include <string.h>

namespace kiste {

namespace {

volatile sig_atomic_t g_signal = 0;

void record(int sig) { g_signal = sig; }

}  // namespace

void install_interrupt_handlers() {
  struct sigaction sa {};
  sa.sa_handler = record;
  sigemptyset(&sa.sa_mask);
  // SA_RESETHAND: the first signal asks for a clean stop, a second one kills as before.
  sa.sa_flags = SA_RESTART | SA_RESETHAND;
  for (int sig : {SIGINT, SIGTERM}) ::sigaction(sig, &sa, nullptr);
}

int interrupted_by() { return g_signal; }

void note_interrupt(int sig) { g_signal = sig; }

Status check_interrupted() {
  const int sig = g_signal;
  if (sig == 0) return {};
  return failf(Errc::Cancelled, "interrupted by {}", sig == SIGINT    ? "SIGINT"
                                                     : sig == SIGTERM ? "SIGTERM"
                                                                      : sigabbrev_np(sig));
}

}  // namespace kiste
