#pragma once
// From a parsed Containerfile to a plan: the stages, which of them the target needs (others are
// skipped), the global ARG values (build args and the predefined platform args) and, per stage,
// its base (an image, `scratch` or an earlier stage). Pure: no I/O, unit-tested.
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <kiste/base/error.hpp>
#include <kiste/builder/containerfile.hpp>
#include <kiste/builder/shell_words.hpp>
#include <kiste/image/platform.hpp>

namespace kiste::builder {

struct PlanOptions {
  std::map<std::string, std::string> build_args;  // --build-arg K=V
  std::string target;                             // --target (name or index); "" = last stage
  image::Platform platform;                       // the target platform
  image::Platform build_platform;                 // the machine building
};

struct Stage {
  int index = 0;
  std::string name;             // lower-cased `AS` name, "" if none
  std::string base;             // expanded FROM argument ("busybox", "scratch", a stage name)
  std::optional<int> base_stage;  // FROM refers to an earlier stage
  std::optional<image::Platform> platform;  // FROM --platform
  const Instruction* from = nullptr;
  std::vector<const Instruction*> steps;  // instructions after FROM
  std::set<int> deps;                     // stages this one needs (base, COPY --from, mounts)
};

struct BuildPlan {
  std::vector<Stage> stages;
  int target = 0;
  std::vector<int> order;  // the stages to build, each after the stages it needs
  VarMap global_args;      // global ARGs (before FROM) with their values
  VarMap predefined;       // TARGETOS, TARGETARCH, TARGETPLATFORM, BUILDPLATFORM, …
  std::vector<std::string> unused_build_args;  // --build-arg names no ARG declared

  // The stage a `--from=`/`FROM` word names (a stage name or index before `before`), if any.
  [[nodiscard]] std::optional<int> stage_ref(std::string_view word, int before) const;
};

// `cf` must outlive the plan (steps point into it).
[[nodiscard]] Result<BuildPlan> make_plan(const Containerfile& cf, const PlanOptions& opts);

// The predefined platform ARGs for a target and build platform.
[[nodiscard]] VarMap predefined_args(const image::Platform& target, const image::Platform& build);

}  // namespace kiste::builder
