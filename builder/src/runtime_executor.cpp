// RUN steps through kiste's runtime: a fresh container per step on an overlay of the stage's
// snapshots; the upper dir stays behind for the builder to turn into a layer.
#include <kiste/base/sys.hpp>
#include <kiste/builder/builder.hpp>
#include <kiste/runtime/container.hpp>
#include <kiste/runtime/run_options.hpp>
#include <kiste/runtime/runner.hpp>

namespace kiste::builder {
namespace {

class RuntimeExecutor final : public RunExecutor {
 public:
  explicit RuntimeExecutor(RuntimeExecutorOptions o)
      : o_(std::move(o)), runner_({.root = o_.root, .cgroups = o_.cgroups}) {}

  Result<int> run(const RunRequest& req) override {
    runtime::RunOptions ro;
    ro.command = req.argv;
    ro.env = req.env;
    ro.workdir = req.cwd;
    ro.user = req.user;
    ro.network = req.network_host ? "host" : "none";
    ro.memory = o_.memory;
    ro.memory_swap = o_.memory_swap;
    ro.cpus = o_.cpus;
    ro.pids_limit = o_.pids_limit;
    for (const auto& m : req.mounts) {
      if (m.source.native().find(',') != std::string::npos ||
          m.destination.find(',') != std::string::npos) {
        return failf(Errc::InvalidArgument, "mount {}: paths with `,` are not supported",
                     quote(m.destination));
      }
      if (m.type == RunRequest::Mount::Type::Tmpfs) {
        ro.mounts.push_back(fmt::format("type=tmpfs,target={}{}", m.destination,
                                        m.tmpfs_size.empty() ? "" : ",tmpfs-size=" + m.tmpfs_size));
        continue;
      }
      ro.mounts.push_back(fmt::format("type=bind,source={},target={}{}", m.source.native(),
                                      m.destination, m.readonly ? ",readonly" : ""));
    }
    runtime::MakeSpecInput in;
    in.id = runtime::Runner::new_id();
    in.lower_dirs = req.lower_dirs;
    in.container_dir = req.container_dir;
    KISTE_ASSIGN_OR_RETURN(auto spec, runtime::make_spec(ro, in));
    spec.root.volatile_upper = true;  // the upper is packed, then removed (buildah does the same)
    KISTE_ASSIGN_OR_RETURN(auto exit, runner_.run(spec, {}));
    if (!exit.exec_error.empty()) return fail(Errc::NotFound, exit.exec_error);
    return exit.exit_code;
  }

 private:
  RuntimeExecutorOptions o_;  // before runner_, which is made from it
  runtime::Runner runner_;
};

}  // namespace

std::unique_ptr<RunExecutor> make_runtime_executor(const RuntimeExecutorOptions& o) {
  return std::make_unique<RuntimeExecutor>(o);
}

}  // namespace kiste::builder
