// kiste cp CONTAINER:SRC DEST | SRC CONTAINER:DEST: wiring only; the copy and its safety are
// runtime::copy_path (container_copy.hpp). A running container's root is /proc/PID/root of its
// init; a stopped one's is its overlay, mounted in a child's own mount namespace.
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>

#include <fmt/format.h>

#include <kiste/base/sys.hpp>
#include <kiste/runtime/container_copy.hpp>
#include <kiste/runtime/container_store.hpp>

#include "globals.hpp"

namespace kiste::cli {

namespace {

struct CpArg {
  std::string container;  // empty: a host path
  std::string path;
};

// docker's rule: CONTAINER:PATH, unless the word starts like a path ("/", "./", "../").
CpArg parse_cp_arg(const std::string& word) {
  if (word.starts_with('/') || word.starts_with('.')) return {.path = word};
  size_t colon = word.find(':');
  if (colon == std::string::npos) return {.path = word};
  std::string path = word.substr(colon + 1);
  return {.container = word.substr(0, colon), .path = path.empty() ? "/" : path};
}

Status cp(const Globals& g, const std::string& from, const std::string& to) {
  if (to == "-") {
    return fail(Errc::Unsupported, "cp: writing a tar stream (`-` as DEST) is not supported yet; name a file or directory");
  }
  const bool tar_in = from == "-";  // a tar stream on stdin, unpacked into the DEST directory
  const CpArg src = tar_in ? CpArg{.container = "", .path = "-"} : parse_cp_arg(from);
  const CpArg dst = parse_cp_arg(to);
  if (!src.container.empty() && !dst.container.empty()) {
    return fail(Errc::InvalidArgument, "cp: copying between containers is not supported");
  }
  if (src.container.empty() && dst.container.empty()) {
    return fail(Errc::InvalidArgument, "cp: SRC or DEST must be CONTAINER:PATH");
  }
  const runtime::ContainerStore store(g.root);
  const std::string& ref = src.container.empty() ? dst.container : src.container;
  KISTE_ASSIGN_OR_RETURN(std::string id, store.resolve(ref));
  KISTE_ASSIGN_OR_RETURN(runtime::ContainerState s, store.load(id));
  runtime::CopyStats stats;
  auto copy = [&](int root_fd) -> Status {
    if (tar_in) return runtime::extract_tar_into(root_fd, dst.path, STDIN_FILENO);
    runtime::CopyEnd a{.root_fd = src.container.empty() ? -1 : root_fd, .path = src.path};
    runtime::CopyEnd b{.root_fd = dst.container.empty() ? -1 : root_fd, .path = dst.path};
    KISTE_ASSIGN_OR_RETURN(stats, runtime::copy_path(a, b));
    return {};
  };
  const bool alive = store.monitor_alive(id);
  if (s.status == "running" && s.pid > 0 && alive) {
    KISTE_ASSIGN_OR_RETURN(UniqueFd root, sys::open(fmt::format("/proc/{}/root", s.pid), O_PATH | O_DIRECTORY | O_CLOEXEC));
    KISTE_TRY(copy(root.get()));
  } else if (alive) {
    return failf(Errc::Unavailable, "container {}: it is {}; try again once it runs or is stopped", s.name,
                 s.status == "running" ? "starting" : s.status);
  } else {
    std::optional<FileLock> lease;
    KISTE_ASSIGN_OR_RETURN(auto lowers, container_lower_dirs(g, s, lease));
    // The child process that mounts the root does the copy; the byte count stays there.
    KISTE_TRY(runtime::with_stopped_root(store.dir(id), lowers, copy));
    std::fprintf(stderr, "Successfully copied to %s\n", to.c_str());
    return {};
  }
  if (tar_in) {
    std::fprintf(stderr, "Successfully copied to %s\n", to.c_str());
    return {};
  }
  std::fprintf(stderr, "Successfully copied %s to %s\n", human_size(static_cast<int64_t>(stats.bytes)).c_str(),
               to.c_str());
  return {};
}

}  // namespace

void register_cp_command(CLI::App& app, Globals& g) {
  auto from = std::make_shared<std::string>();
  auto to = std::make_shared<std::string>();
  auto* cmd = app.add_subcommand("cp", "Copy files between a container (running or stopped) and the host");
  cmd->footer(
      "Arguments: CONTAINER:SRC DEST, SRC CONTAINER:DEST, or - CONTAINER:DIR (a tar stream on stdin).\n"
      "docker's rules: SRC/. copies a directory's contents; a DEST that is a directory gets SRC under\n"
      "its name. Paths in the container resolve as the container sees them and never leave its root;\n"
      "symlinks are copied as symlinks.");
  cmd->add_option("SRC", *from, "CONTAINER:PATH or a host path")->required();
  cmd->add_option("DEST", *to, "CONTAINER:PATH or a host path")->required();
  cmd->callback([&g, from, to] { exit_on_error(cp(g, *from, *to)); });
}

}  // namespace kiste::cli
