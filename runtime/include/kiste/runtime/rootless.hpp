#pragma once
// Rootless kiste: an ordinary user's paths and the user namespace kiste runs in.
//
// A non-root kiste keeps its store under $XDG_DATA_HOME/kiste (~/.local/share/kiste) and its
// runtime state under $XDG_RUNTIME_DIR/kiste, and before it touches either it moves itself into
// a user namespace (and a mount namespace of its own) in which uid/gid 0 is the user and
// 1..N are the user's subordinate range from /etc/subuid and /etc/subgid, written by the setuid
// `newuidmap`/`newgidmap` (Debian's `uidmap`). Every invocation maps the same ranges, so the
// owners on disk are the same every time: layers are unpacked with their real owners once (no
// chown pass at run time), and a layer a rootless build writes records the same ids a root
// build does. Containers share this namespace (with their own mount, pid, ipc, uts and net
// namespaces), so `id -u` in a container is 0 and the map is the user's.
//
// There is no fallback to a single-id map: without newuidmap or a subordinate range the error
// says what to install or add.
#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <kiste/base/error.hpp>
#include <kiste/runtime/cgroup.hpp>
#include <kiste/runtime/id_map.hpp>
#include <kiste/runtime/spec.hpp>

namespace kiste::runtime {

// Looks up an environment variable (nullptr when unset); tests pass their own.
using EnvLookup = std::function<const char*(const char*)>;

struct UserPaths {
  std::filesystem::path store;  // $XDG_DATA_HOME/kiste, else $HOME/.local/share/kiste
  std::filesystem::path state;  // $XDG_RUNTIME_DIR/kiste
};

// The paths of a non-root user. XDG_RUNTIME_DIR unset (or not absolute) and no usable HOME are
// errors that say what to set.
[[nodiscard]] Result<UserPaths> user_paths(const EnvLookup& env);

// The user's lines in /etc/subuid and /etc/subgid, by name or by numeric uid (as shadow's
// tools accept both). The first matching line wins.
struct SubordinateIds {
  SubIdRange uids, gids;
};
// `subuid_text`/`subgid_text` are the files' contents (empty when a file is missing). No line
// for the user is an error that prints the exact `usermod` line to add one, with a range that
// overlaps nobody's.
[[nodiscard]] Result<SubordinateIds> find_subordinate_ids(std::string_view user, uid_t uid,
                                                          std::string_view subuid_text,
                                                          std::string_view subgid_text);

// The maps of kiste's user namespace: 0 is the user, 1..count the subordinate range.
[[nodiscard]] std::vector<IdMapping> rootless_uid_map(uid_t uid, const SubIdRange& r);

struct RootlessPlan {
  uid_t uid = 0;
  gid_t gid = 0;
  SubordinateIds ids;
  std::string newuidmap, newgidmap;  // absolute paths
};

// Everything checked before anything is made: newuidmap/newgidmap on PATH (else: install
// `uidmap`), the user's subordinate ranges (/etc/subuid, /etc/subgid).
[[nodiscard]] Result<RootlessPlan> plan_rootless(uid_t uid, gid_t gid, std::string_view user,
                                                 const EnvLookup& env,
                                                 const std::filesystem::path& subuid = "/etc/subuid",
                                                 const std::filesystem::path& subgid = "/etc/subgid");

// Moves the calling process (which must be single-threaded) into a new user namespace with
// the plan's maps, then into a new mount namespace (rprivate), as uid/gid 0 there. A helper
// forked before the unshare runs newuidmap/newgidmap on this pid (a setuid program cannot gain
// its rights from inside the unmapped namespace). On failure the process is where it was.
[[nodiscard]] Status enter_rootless_namespace(const RootlessPlan& plan);

// For `exec` as an ordinary user: joins the user namespace of process `pid` (a container of
// this user: the namespace its kiste made, which the user owns) as its uid and gid 0, in a
// mount namespace of its own. A fresh namespace of our own would be a sibling of the
// container's, from which nothing of it can be entered.
[[nodiscard]] Status join_rootless_namespace_of(pid_t pid);

// --userns=keep-id (podman's): in a user namespace nested in kiste's, the user's own uid and gid
// are the same ids inside, the rest of kiste's range around them: container ids [0, U) are
// kiste's [1, U+1) (the subordinate range's start), U is kiste's 0 (the user), and (U, N] are
// kiste's own. `own_uid_map`/`own_gid_map` are /proc/self/uid_map and gid_map of kiste's
// namespace ("0 U 1" then "1 S N"). The maps are in kiste's ids (what the nested namespace's
// maps are written in). An id beyond the range (U > N) is an error that says so.
struct KeepIdMaps {
  uint32_t uid = 0, gid = 0;  // the user's, inside and outside alike
  std::vector<IdMapping> uid_map, gid_map;
};
[[nodiscard]] Result<KeepIdMaps> keep_id_maps(std::string_view own_uid_map,
                                              std::string_view own_gid_map);

// Where a rootless container's cgroup goes when no --cgroup-manager is given: a scope of the
// user's own systemd (SystemdInstance::User) on a pure cgroup v2 host booted with systemd whose
// user manager has a bus ($DBUS_SESSION_BUS_ADDRESS's unix:path, else $XDG_RUNTIME_DIR/bus);
// else CgroupManager::None, with the reason that the warning and a refused limit name.
[[nodiscard]] CgroupPlacement rootless_cgroup_placement(CgroupMode mode, bool systemd_booted,
                                                        const EnvLookup& env);

// True in the namespace enter_rootless_namespace() made (or any user namespace that is not the
// initial one, as a rootless engine's): the process is "root" there, not on the host.
[[nodiscard]] bool running_rootless();

}  // namespace kiste::runtime
