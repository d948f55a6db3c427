#include <kiste/builder/build_plan.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <functional>

namespace kiste::builder {
namespace {

std::string lower(std::string_view s) {
  std::string r(s);
  for (char& c : r) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return r;
}

std::unexpected<Error> at(const Containerfile& cf, const Instruction& ins, std::string msg) {
  return fail(Errc::InvalidArgument,
              fmt::format("{}:{}:{}: {}", cf.name, ins.pos.line, ins.pos.column, msg));
}

// `from=` inside a `--mount` flag value.
std::optional<std::string> mount_from(std::string_view spec) {
  size_t i = 0;
  while (i <= spec.size()) {
    size_t j = spec.find(',', i);
    if (j == std::string_view::npos) j = spec.size();
    std::string_view kv = spec.substr(i, j - i);
    if (kv.starts_with("from=")) return std::string(kv.substr(5));
    i = j + 1;
  }
  return std::nullopt;
}

}  // namespace

VarMap predefined_args(const image::Platform& target, const image::Platform& build) {
  auto t = target.normalized();
  auto b = build.normalized();
  VarMap m;
  m["TARGETPLATFORM"] = t.str();
  m["TARGETOS"] = t.os;
  m["TARGETARCH"] = t.architecture;
  m["TARGETVARIANT"] = t.variant;
  m["BUILDPLATFORM"] = b.str();
  m["BUILDOS"] = b.os;
  m["BUILDARCH"] = b.architecture;
  m["BUILDVARIANT"] = b.variant;
  return m;
}

std::optional<int> BuildPlan::stage_ref(std::string_view word, int before) const {
  std::string w = lower(word);
  for (const auto& s : stages) {
    if (s.index >= before) break;
    if (!s.name.empty() && s.name == w) return s.index;
  }
  int n = -1;
  auto [p, ec] = std::from_chars(word.data(), word.data() + word.size(), n);
  if (ec == std::errc() && p == word.data() + word.size() && n >= 0 && n < before) return n;
  return std::nullopt;
}

Result<BuildPlan> make_plan(const Containerfile& cf, const PlanOptions& opts) {
  BuildPlan plan;
  plan.predefined = predefined_args(opts.platform, opts.build_platform);
  std::set<std::string> declared;
  // Global ARGs: their defaults may use earlier global ARGs and the predefined ones.
  size_t i = 0;
  for (; i < cf.instructions.size(); ++i) {
    const auto& ins = cf.instructions[i];
    if (ins.kind != InstructionKind::Arg) break;
    for (const auto& kv : ins.pairs) {
      declared.insert(kv.key);
      VarMap scope = plan.predefined;
      for (const auto& [k, v] : plan.global_args) scope[k] = v;
      auto ba = opts.build_args.find(kv.key);
      if (ba != opts.build_args.end()) {
        plan.global_args[kv.key] = ba->second;
      } else if (kv.value) {
        auto v = expand_word(*kv.value, scope, cf.escape);
        if (!v) return at(cf, ins, fmt::format("ARG {}: {}", kv.key, v.error().message));
        plan.global_args[kv.key] = *v;
      } else if (auto p = plan.predefined.find(kv.key); p != plan.predefined.end()) {
        plan.global_args[kv.key] = p->second;
      }
    }
  }
  VarMap from_scope = plan.predefined;
  for (const auto& [k, v] : plan.global_args) from_scope[k] = v;
  // Stages.
  for (; i < cf.instructions.size(); ++i) {
    const auto& ins = cf.instructions[i];
    if (ins.kind == InstructionKind::From) {
      Stage s;
      s.index = static_cast<int>(plan.stages.size());
      s.from = &ins;
      auto base = expand_word(ins.args[0], from_scope, cf.escape);
      if (!base) return at(cf, ins, fmt::format("FROM: {}", base.error().message));
      if (base->empty()) return at(cf, ins, fmt::format("FROM `{}` expands to an empty image name", ins.args[0]));
      s.base = *base;
      if (ins.args.size() == 3) {
        s.name = lower(ins.args[2]);
        for (const auto& o : plan.stages) {
          if (o.name == s.name) return at(cf, ins, fmt::format("duplicate stage name `{}`", ins.args[2]));
        }
      }
      if (const Flag* f = ins.flag("platform")) {
        auto pv = expand_word(f->value.value_or(""), from_scope, cf.escape);
        if (!pv) return at(cf, ins, pv.error().message);
        auto p = image::Platform::parse(*pv);
        if (!p) return at(cf, ins, fmt::format("FROM --platform={}: {}", *pv, p.error().message));
        s.platform = *p;
      }
      s.base_stage = plan.stage_ref(s.base, s.index);
      if (s.base_stage) s.deps.insert(*s.base_stage);
      plan.stages.push_back(std::move(s));
      continue;
    }
    Stage& s = plan.stages.back();
    s.steps.push_back(&ins);
    if (ins.kind == InstructionKind::Arg) {
      for (const auto& kv : ins.pairs) declared.insert(kv.key);
    }
    std::vector<std::string> refs;
    if (ins.kind == InstructionKind::Copy) {
      for (const auto& v : ins.flag_values("from")) refs.push_back(v);
    }
    if (ins.kind == InstructionKind::Run) {
      for (const auto& m : ins.flag_values("mount")) {
        if (auto f = mount_from(m)) refs.push_back(*f);
      }
    }
    for (const auto& r : refs) {
      auto v = expand_word(r, from_scope, cf.escape);
      if (!v) return at(cf, ins, v.error().message);
      if (v->empty()) return at(cf, ins, "--from needs a stage or an image");
      if (auto dep = plan.stage_ref(*v, s.index)) {
        s.deps.insert(*dep);
      } else if (lower(*v) == s.name && !s.name.empty()) {
        return at(cf, ins, fmt::format("stage `{}` cannot copy from itself", *v));
      } else if (std::all_of(v->begin(), v->end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; })) {
        return at(cf, ins, fmt::format("--from={} names no earlier stage", *v));
      }
    }
  }
  if (plan.stages.empty()) return fail(Errc::InvalidArgument, fmt::format("{}: no FROM instruction", cf.name));
  // Target.
  plan.target = static_cast<int>(plan.stages.size()) - 1;
  if (!opts.target.empty()) {
    auto t = plan.stage_ref(opts.target, static_cast<int>(plan.stages.size()));
    if (!t) {
      std::string names;
      for (const auto& s : plan.stages) {
        if (!s.name.empty()) names += (names.empty() ? "" : ", ") + s.name;
      }
      return failf(Errc::NotFound, "target stage `{}` not found (stages: {})", opts.target,
                   names.empty() ? "none named" : names);
    }
    plan.target = *t;
  }
  // Order: depth-first from the target, dependencies first (deps always point backwards).
  std::set<int> seen;
  std::function<void(int)> visit = [&](int s) {
    if (!seen.insert(s).second) return;
    for (int d : plan.stages[s].deps) visit(d);
    plan.order.push_back(s);
  };
  visit(plan.target);
  std::sort(plan.order.begin(), plan.order.end());
  for (const auto& [k, v] : opts.build_args) {
    if (!declared.contains(k) && !plan.predefined.contains(k)) plan.unused_build_args.push_back(k);
  }
  return plan;
}

}  // namespace kiste::builder
