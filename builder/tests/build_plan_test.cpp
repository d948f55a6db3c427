#include <kiste/builder/build_plan.hpp>
#include <kiste/builder/stage_config.hpp>

#include <gtest/gtest.h>

namespace kiste::builder {
namespace {

Containerfile parse(std::string_view t) {
  auto r = parse_containerfile(t);
  EXPECT_TRUE(r) << (r ? "" : r.error().to_string());
  return *r;
}

PlanOptions opts(std::string target = "") {
  PlanOptions o;
  o.target = std::move(target);
  o.platform = *image::Platform::parse("linux/arm64");
  o.build_platform = *image::Platform::parse("linux/amd64");
  return o;
}

const char* kMulti =
    "ARG BASE=busybox\n"
    "ARG TAG\n"
    "FROM ${BASE}:${TAG:-1.36} AS deps\n"
    "RUN x\n"
    "FROM deps AS build\n"
    "COPY --from=deps /a /b\n"
    "FROM busybox AS unrelated\n"
    "RUN y\n"
    "FROM scratch\n"
    "COPY --from=build /b /c\n";

TEST(BuildPlan, StagesDepsAndSkipping) {
  auto cf = parse(kMulti);
  auto p = make_plan(cf, opts());
  ASSERT_TRUE(p) << p.error().to_string();
  ASSERT_EQ(p->stages.size(), 4u);
  EXPECT_EQ(p->stages[0].base, "busybox:1.36");
  EXPECT_EQ(p->stages[1].base_stage, 0);
  EXPECT_EQ(p->target, 3);
  EXPECT_EQ(p->order, (std::vector<int>{0, 1, 3}));  // `unrelated` is skipped
  auto t = make_plan(cf, opts("BUILD"));
  ASSERT_TRUE(t);
  EXPECT_EQ(t->order, (std::vector<int>{0, 1}));
  auto n = make_plan(cf, opts("2"));
  ASSERT_TRUE(n);
  EXPECT_EQ(n->order, (std::vector<int>{2}));
  auto bad = make_plan(cf, opts("nope"));
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("deps, build, unrelated"), std::string::npos);
}

TEST(BuildPlan, BuildArgsOverrideGlobalsAndUnusedAreReported) {
  auto cf = parse(kMulti);
  auto o = opts();
  o.build_args = {{"TAG", "1.35"}, {"NOPE", "x"}, {"TARGETARCH", "a"}};
  auto p = make_plan(cf, o);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->stages[0].base, "busybox:1.35");
  EXPECT_EQ(p->unused_build_args, (std::vector<std::string>{"NOPE"}));
}

TEST(BuildPlan, PredefinedPlatformArgs) {
  auto cf = parse("FROM --platform=$BUILDPLATFORM busybox AS b\nFROM img-$TARGETARCH\n");
  auto p = make_plan(cf, opts());
  ASSERT_TRUE(p) << p.error().to_string();
  EXPECT_EQ(p->stages[0].platform->architecture, "amd64");
  EXPECT_EQ(p->stages[1].base, "img-arm64");
  EXPECT_EQ(p->predefined.at("TARGETPLATFORM"), "linux/arm64");
}

TEST(BuildPlan, Errors) {
  auto dup = parse("FROM a AS x\nFROM b AS X\n");
  auto r = make_plan(dup, opts());
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("2:1: duplicate stage name"), std::string::npos);
  auto fwd = parse("FROM a\nCOPY --from=1 /x /y\nFROM b\n");
  auto f = make_plan(fwd, opts());
  ASSERT_FALSE(f);
  EXPECT_NE(f.error().message.find("names no earlier stage"), std::string::npos);
  auto empty = parse("ARG X\nFROM $X\n");
  EXPECT_FALSE(make_plan(empty, opts()));
  auto badplat = parse("FROM --platform=linux/ busybox\n");
  EXPECT_FALSE(make_plan(badplat, opts()));
  auto mount = parse("FROM a AS x\nRUN --mount=type=bind,from=x,target=/t true\n");
  auto m = make_plan(mount, opts());
  ASSERT_FALSE(m);
  EXPECT_NE(m.error().message.find("cannot copy from itself"), std::string::npos);
}

TEST(BuildPlan, CopyFromImageIsNotAStageDep) {
  auto cf = parse("FROM a\nCOPY --from=alpine:3 /x /y\n");
  auto p = make_plan(cf, opts());
  ASSERT_TRUE(p);
  EXPECT_TRUE(p->stages[0].deps.empty());
}

// ---- config evolution --------------------------------------------------------------------------

struct Applied {
  StageConfig st;
  std::vector<std::string> history;
};

Applied apply_all(std::string_view text, std::map<std::string, std::string> build_args = {}) {
  auto cf = parse(text);
  Applied a;
  VarMap globals{{"G", "global"}};
  VarMap pre{{"TARGETARCH", "arm64"}};
  ArgSources src{.build_args = &build_args, .global_args = &globals, .predefined = &pre};
  for (size_t i = 1; i < cf.instructions.size(); ++i) {
    auto r = apply_metadata(a.st, cf.instructions[i], src);
    EXPECT_TRUE(r) << cf.instructions[i].original << ": " << (r ? "" : r.error().to_string());
    if (r) a.history.push_back(*r);
  }
  return a;
}

TEST(StageConfig, EnvArgWorkdirUser) {
  auto a = apply_all(
      "FROM x\nARG V=1\nARG G\nARG TARGETARCH\nARG FROMCLI=default\nENV A=$V B=\"${G} x\" C=${A:-unset}\n"
      "WORKDIR /app\nWORKDIR sub/../src\nUSER ${V}:${V}\nENV V=env\nLABEL v=$V arch=$TARGETARCH\n",
      {{"FROMCLI", "cli"}});
  const auto& c = a.st.config.config;
  EXPECT_EQ(c.env, (std::vector<std::string>{"A=1", "B=global x", "C=unset", "V=env"}));
  EXPECT_EQ(c.working_dir, "/app/src");
  EXPECT_EQ(c.user, "1:1");
  EXPECT_EQ(c.labels.at("v"), "env");  // ENV wins over ARG
  EXPECT_EQ(c.labels.at("arch"), "arm64");
  EXPECT_EQ(a.st.args.at("FROMCLI"), "cli");
  EXPECT_EQ(a.history[4], "ENV A=1 B=global x C=unset");
}

TEST(StageConfig, CmdEntrypointShellHealth) {
  auto a = apply_all(
      "FROM x\nCMD echo hi\nENTRYPOINT [\"/e\"]\nSHELL [\"/bin/bash\", \"-c\"]\nSTOPSIGNAL SIGINT\n"
      "HEALTHCHECK --interval=1m30s --timeout=500ms --retries=2 CMD curl x\nEXPOSE 80 53/UDP 80\n"
      "VOLUME /data [\"x\"]\nONBUILD RUN echo\nMAINTAINER me\n");
  const auto& c = a.st.config.config;
  EXPECT_EQ(*c.cmd, (std::vector<std::string>{"/bin/sh", "-c", "echo hi"}));  // kept: set here
  EXPECT_EQ(*c.entrypoint, (std::vector<std::string>{"/e"}));
  EXPECT_EQ(c.shell, (std::vector<std::string>{"/bin/bash", "-c"}));
  EXPECT_EQ(c.stop_signal, "SIGINT");
  ASSERT_TRUE(c.healthcheck);
  EXPECT_EQ(c.healthcheck->test, (std::vector<std::string>{"CMD-SHELL", "curl x"}));
  EXPECT_EQ(c.healthcheck->interval_ns, 90'000'000'000);
  EXPECT_EQ(c.healthcheck->timeout_ns, 500'000'000);
  EXPECT_EQ(c.healthcheck->retries, 2);
  EXPECT_EQ(c.exposed_ports, (std::vector<std::string>{"53/udp", "80/tcp"}));
  EXPECT_EQ(c.volumes, (std::vector<std::string>{"/data", "[x]"}));
  EXPECT_EQ(c.on_build, (std::vector<std::string>{"RUN echo"}));
  EXPECT_EQ(a.st.config.author, "me");
}

TEST(StageConfig, EntrypointResetsInheritedCmd) {
  StageConfig st;
  st.config.config.cmd = std::vector<std::string>{"sh"};
  auto cf = parse("FROM x\nENTRYPOINT [\"/e\"]\n");
  ASSERT_TRUE(apply_metadata(st, cf.instructions[1], {}));
  EXPECT_FALSE(st.config.config.cmd.has_value());
}

TEST(StageConfig, BadValues) {
  StageConfig st;
  for (const char* t : {"FROM x\nEXPOSE 80/xyz\n", "FROM x\nEXPOSE abc\n",
                        "FROM x\nHEALTHCHECK --interval=5 CMD x\n",
                        "FROM x\nHEALTHCHECK --retries=-1 CMD x\n", "FROM x\nENV A=${B:?needB}\n",
                        "FROM x\nWORKDIR $EMPTY\n", "FROM x\nUSER \"\"\n"}) {
    auto cf = parse(t);
    EXPECT_FALSE(apply_metadata(st, cf.instructions[1], {})) << t;
  }
}

}  // namespace
}  // namespace kiste::builder

#include <kiste/builder/run_mount.hpp>

namespace kiste::builder {
namespace {

TEST(RunMount, Parses) {
  auto c = parse_run_mount("type=cache,target=/root/.cache,id=pip,sharing=locked");
  ASSERT_TRUE(c) << c.error().to_string();
  EXPECT_EQ(c->type, RunMount::Type::Cache);
  EXPECT_EQ(c->target, "/root/.cache");
  EXPECT_EQ(c->id, "pip");
  auto s = parse_run_mount("type=secret,id=tok,required");
  ASSERT_TRUE(s);
  EXPECT_EQ(s->target, "/run/secrets/tok");
  EXPECT_TRUE(s->required);
  auto s2 = parse_run_mount("type=secret,target=/etc/token");
  ASSERT_TRUE(s2);
  EXPECT_EQ(s2->id, "token");
  auto b = parse_run_mount("target=/src,from=build,source=/out,rw");
  ASSERT_TRUE(b);
  EXPECT_EQ(b->type, RunMount::Type::Bind);
  EXPECT_EQ(b->from, "build");
  EXPECT_TRUE(b->rw);
  auto t = parse_run_mount("type=tmpfs,target=/scratch,size=64m");
  ASSERT_TRUE(t) << t.error().to_string();
  EXPECT_EQ(t->type, RunMount::Type::Tmpfs);
  EXPECT_EQ(t->size, "64m");
  auto ssh = parse_run_mount("type=ssh");
  ASSERT_TRUE(ssh) << ssh.error().to_string();
  EXPECT_EQ(ssh->type, RunMount::Type::Ssh);
  EXPECT_EQ(ssh->id, "default");
  EXPECT_EQ(ssh->target, "/run/buildkit/ssh_agent.0");
  auto ssh2 = parse_run_mount("type=ssh,id=gh,target=/agent.sock,required");
  ASSERT_TRUE(ssh2);
  EXPECT_EQ(ssh2->id, "gh");
  EXPECT_EQ(ssh2->target, "/agent.sock");
  EXPECT_TRUE(ssh2->required);
}

TEST(RunMount, Rejects) {
  for (const char* bad : {"type=tmpfs", "type=tmpfs,target=/t,size=lots", "type=tmpfs,target=/t,size=m",
                          "type=cache", "type=cache,target=relative", "type=bind,target=/x,bogus=1",
                          "type=secret", "type=ssh,target=relative", "type=cache,target=/c,size=1",
                          "type=overlay,target=/o", "type=cache,target=/c,from=img"}) {
    EXPECT_FALSE(parse_run_mount(bad)) << bad;
  }
}

}  // namespace
}  // namespace kiste::builder
