// Mount options, as users type them: `kiste run -v`, `--mount` (runtime/run_options.hpp, through
// make_spec, then the MountPlan the child would apply) and the builder's `RUN --mount=`
// (builder/run_mount.hpp). One option per input line; its first byte says which:
//   v -v   m --mount   u --uidmap   g --gidmap   l --ulimit   b RUN --mount   anything else: all.
// make_spec gets no kiste root (named volumes are refused before anything is created), no
// env files, user or seccomp options: nothing here reads or writes files.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include <kiste/builder/run_mount.hpp>
#include <kiste/runtime/mount_plan.hpp>
#include <kiste/runtime/run_options.hpp>

namespace rt = kiste::runtime;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  rt::RunOptions o;
  o.command = {"/bin/true"};
  size_t lines = 0;
  while (!in.empty() && lines++ < 16) {
    size_t nl = in.find('\n');
    std::string_view line = in.substr(0, nl);
    in = nl == std::string_view::npos ? std::string_view() : in.substr(nl + 1);
    if (line.empty()) continue;
    std::string arg(line.substr(1));
    switch (line[0]) {
      case 'v': o.volumes.push_back(arg); break;
      case 'm': o.mounts.push_back(arg); break;
      case 'u': o.uidmap.push_back(arg); break;
      case 'g': o.gidmap.push_back(arg); break;
      case 'l': o.ulimits.push_back(arg); break;
      case 'b': (void)kiste::builder::parse_run_mount(arg); break;
      default:
        (void)kiste::builder::parse_run_mount(line);
        o.volumes.emplace_back(line);
        o.mounts.emplace_back(line);
    }
  }
  rt::MakeSpecInput input{.id = "0123456789abcdef", .lower_dirs = {"/nonexistent/l0"},
                          .container_dir = "/nonexistent/c"};
  auto spec = rt::make_spec(o, input);
  if (!spec) return 0;
  rt::MountPlanContext ctx;
  ctx.cgroup_v1 = {{"memory", "memory"}, {"cpu", "cpu,cpuacct"}};
  auto plan = rt::MountPlan::from_spec(*spec, ctx);
  if (!plan) return 0;
  for (const auto& op : plan->ops) {
    // Every target the child mounts on is inside the container: absolute, no `..`.
    if (op.kind == rt::MountOpKind::JoinCgroup) continue;
    if (!op.target.starts_with('/') || op.target.find('\0') != std::string::npos) std::abort();
    std::string_view t = op.target;
    for (size_t i = 0; i < t.size();) {
      size_t j = t.find('/', i);
      if (j == std::string_view::npos) j = t.size();
      if (t.substr(i, j - i) == "..") std::abort();
      i = j + 1;
    }
  }
  return 0;
}
