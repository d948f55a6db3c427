#pragma once
// SIGINT/SIGTERM during a command: the handler only records the signal (async-signal-safe);
// long loops (blob writes, layer extraction, build steps) call check_interrupted() at their
// boundaries and unwind with Errc::Cancelled, so the RAII owners of temp dirs, staging files
// and mounts clean up on the way out. A second signal kills at once (the default action).
#include <kiste/base/error.hpp>

namespace kiste {

// Installs the recording handler for SIGINT and SIGTERM (once per process; cli/ calls it).
void install_interrupt_handlers();
// The signal that interrupted this process, or 0.
[[nodiscard]] int interrupted_by();
// Records `sig` as if it had arrived (async-signal-safe; for handlers that also forward).
void note_interrupt(int sig);
// Errc::Cancelled ("interrupted by SIGINT") once a signal arrived, success otherwise.
[[nodiscard]] Status check_interrupted();

}  // namespace kiste
