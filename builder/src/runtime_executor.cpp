// RUN steps through kiste's runtime: a fresh container per step on an overlay of the stage's
// snapshots; the upper dir stays behind, holding only what the step wrote, for the builder to
// turn into a layer. The step's mounts
// reach the runtime typed (MakeSpecInput::mounts), never as `--mount` strings.
#include <kiste/base/sys.hpp>
#include <kiste/builder/builder.hpp>
#include <kiste/runtime/binfmt.hpp>
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
    KISTE_TRY(runtime::check_execution(req.platform));
    runtime::RunOptions ro;
    ro.command = req.argv;
    ro.env = req.env;
    ro.workdir = req.cwd;
    ro.user = req.user;
    // Default: the runtime's bridge mode, attached through o_.networks below.
    ro.network = req.network == BuildNetwork::Default ? "kiste" : std::string(to_string(req.network));
    ro.memory = o_.memory;
    ro.memory_swap = o_.memory_swap;
    ro.cpus = o_.cpus;
    ro.pids_limit = o_.pids_limit;
    runtime::MakeSpecInput in;
    in.id = runtime::Runner::new_id();
    in.lower_dirs = req.lower_dirs;
    in.container_dir = req.container_dir;
    in.mounts = req.mounts;  // typed: no `--mount` string round trip
    KISTE_ASSIGN_OR_RETURN(auto spec, runtime::make_spec(ro, in));
    spec.root.volatile_upper = true;  // the upper is packed, then removed (buildah does the same)
    spec.root.clean_upper = true;     // only what the step wrote: no mount points, no /etc/hosts
    runtime::StartOptions start;
    StepAttachment net;  // the lease and veth go when the step ends, also on error
    if (req.network == BuildNetwork::Default) {
      if (o_.networks == nullptr) {
        return fail(Errc::Unsupported, "RUN on the default network: this build has no bridge networks");
      }
      KISTE_ASSIGN_OR_RETURN(net, o_.networks->attach(in.id, spec.hostname));
      spec.extra_hosts = net.hosts;
      spec.resolv_conf = net.resolv_conf;
      start.network_ready = net.connect;
      start.exited = net.disconnect;
    }
    KISTE_ASSIGN_OR_RETURN(auto exit, runner_.run(spec, start));
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
