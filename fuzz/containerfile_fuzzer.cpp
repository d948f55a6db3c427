// The Containerfile front end as `kiste build` drives it, without I/O: parse (directives,
// continuations, heredocs, flags, JSON forms), plan the stages (global ARGs, FROM expansion,
// stage references), then per stage what the builder does before it touches a store: metadata
// instructions through apply_metadata, RUN mounts through parse_run_mount, COPY/ADD words and
// heredoc bodies through the expanders, ONBUILD triggers through parse_instruction.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include <kiste/builder/build_plan.hpp>
#include <kiste/builder/containerfile.hpp>
#include <kiste/builder/run_mount.hpp>
#include <kiste/builder/shell_words.hpp>
#include <kiste/builder/stage_config.hpp>

namespace b = kiste::builder;
using K = b::InstructionKind;

namespace {

// What the builder does with one step of a stage (builder.cpp: run_inputs, copy_request,
// run_step), minus the store and the runtime.
void step(b::StageConfig& st, const b::Instruction& ins, const b::ArgSources& src) {
  const b::VarMap scope = st.scope();
  switch (ins.kind) {
    case K::Run: {
      for (const auto& spec : ins.flag_values("mount")) {
        auto v = b::expand_word(spec, scope, st.escape);
        if (v) (void)b::parse_run_mount(*v);
      }
      if (!ins.exec_form && !ins.args.empty()) (void)b::split_raw_words(ins.args[0], st.escape);
      for (const auto& h : ins.heredocs) {
        if (h.expand) (void)b::expand_vars_only(h.content, scope);
      }
      (void)st.shell();
      return;
    }
    case K::Copy:
    case K::Add: {
      if (ins.args.size() < 2) std::abort();  // the builder takes the last word as the destination
      for (const auto& f : ins.flags) (void)b::expand_word(f.value.value_or(""), scope, st.escape);
      for (const auto& a : ins.args) {
        if (ins.exec_form) {
          (void)b::expand_vars_only(a, scope);
        } else {
          (void)b::expand_word(a, scope, st.escape);
        }
      }
      for (const auto& h : ins.heredocs) {
        if (h.expand) (void)b::expand_vars_only(h.content, scope);
      }
      return;
    }
    default: {
      auto text = b::apply_metadata(st, ins, src);
      (void)text;
      return;
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto cf = b::parse_containerfile(text);
  if (!cf) return 0;
  // Word-level expanders on every raw word the parser kept, with a scope that has values.
  const b::VarMap vars{{"A", "1"}, {"EMPTY", ""}, {"SP", "a b  c"}, {"Q", "\"'$"}};
  for (const auto& ins : cf->instructions) {
    for (const auto& a : ins.args) {
      (void)b::expand_words(a, vars, cf->escape);
      (void)b::expand_word(a, vars, cf->escape);
    }
    if (ins.kind == K::Onbuild) (void)b::parse_instruction(ins.trigger, "ONBUILD", ins.pos, cf->escape);
  }
  const std::map<std::string, std::string> build_args{{"A", "x"}, {"TARGETARCH", "arm64"}};
  b::PlanOptions opts{.build_args = build_args};
  opts.platform = {.os = "linux", .architecture = "amd64"};
  opts.build_platform = opts.platform;
  auto plan = b::make_plan(*cf, opts);
  if (!plan) return 0;
  b::ArgSources src{.build_args = &opts.build_args, .global_args = &plan->global_args,
                    .predefined = &plan->predefined};
  for (int si : plan->order) {
    const b::Stage& s = plan->stages.at(static_cast<size_t>(si));
    b::StageConfig st;
    st.escape = cf->escape;
    for (const b::Instruction* ins : s.steps) step(st, *ins, src);
    // ONBUILD triggers a later build parses and runs.
    for (const auto& t : st.config.config.on_build) {
      auto ins = b::parse_instruction(t, "ONBUILD trigger", s.from->pos, cf->escape);
      if (ins) step(st, *ins, src);
    }
    (void)st.config.serialize();
  }
  return 0;
}
