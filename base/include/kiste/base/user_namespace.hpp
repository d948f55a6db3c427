#pragma once
// Which user namespace this process is in.

namespace kiste::sys {

// False inside a user namespace other than the initial one (rootless kiste, a container):
// /proc/self/uid_map is not the identity map of every id. Overlay there keeps its state in
// `user.overlay.*` xattrs (`userxattr`), since `trusted.*` needs CAP_SYS_ADMIN in the initial
// namespace. Read on every call (a process may move into a new namespace).
[[nodiscard]] bool in_initial_user_namespace();

}  // namespace kiste::sys
