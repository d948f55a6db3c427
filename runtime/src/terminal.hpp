#pragma once
// The caller's side of a container's pty (`run -t`, `exec -t`): the pty's output to stdout,
// stdin to the pty (when forwarded), the caller's terminal size to the pty at the start and on
// SIGWINCH (through a signalfd: no handler, no global), and the caller's terminal in raw mode
// meanwhile (restored after).
#include <functional>

namespace kiste::runtime::detail {

// Returns when the pty hangs up (every slave fd closed). `idle` runs once, after `idle_after_ms`
// without traffic (< 0: never).
void relay_terminal(int master, bool forward_stdin, int idle_after_ms, const std::function<void()>& idle);

}  // namespace kiste::runtime::detail
