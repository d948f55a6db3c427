#include <linux/filter.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <kiste/runtime/seccomp_profile.hpp>

namespace kiste::runtime {
namespace {

using ::testing::HasSubstr;

TEST(SeccompProfile, DockerDefaultParses) {
  auto p = SeccompProfile::parse(docker_default_seccomp_json());
  ASSERT_TRUE(p) << p.error().to_string();
  EXPECT_EQ(p->default_action, SeccompAction::Errno);
  EXPECT_EQ(p->default_errno, 1);
  ASSERT_FALSE(p->syscalls.empty());
  // The unconditional allow list.
  EXPECT_EQ(p->syscalls[0].names.size(), 361u);
  EXPECT_THAT(p->syscalls[0].names, ::testing::Not(::testing::Contains("keyctl")));
  EXPECT_THAT(p->syscalls[0].names, ::testing::Not(::testing::Contains("io_uring_setup")));
  bool clone_filter = false, clone3_enosys = false;
  for (const auto& r : p->syscalls) {
    if (r.names == std::vector<std::string>{"clone"} && !r.args.empty() && r.args[0].index == 0) {
      clone_filter = r.args[0].value == 0x7E020000 && r.args[0].op == SeccompOp::MaskedEqual &&
                     r.excludes.caps == std::vector<std::string>{"CAP_SYS_ADMIN"};
    }
    if (r.names == std::vector<std::string>{"clone3"}) clone3_enosys = r.errno_ret == 38;
  }
  EXPECT_TRUE(clone_filter);
  EXPECT_TRUE(clone3_enosys);
}

TEST(SeccompProfile, CompilesForThisMachine) {
  auto p = SeccompProfile::parse(docker_default_seccomp_json());
  ASSERT_TRUE(p);
  auto c = compile_seccomp(*p, {.capabilities = 0x00000000a80425fbULL});
  ASSERT_TRUE(c) << c.error().to_string();
  EXPECT_GT(c->bpf.size(), 100 * sizeof(sock_filter));
  EXPECT_EQ(c->bpf.size() % sizeof(sock_filter), 0u);
  EXPECT_GT(c->rules, 300u);
  // CAP_SYS_ADMIN adds the mount/unshare group and drops the clone filter: a different program.
  auto admin = compile_seccomp(*p, {.capabilities = 0x00000000a82425fbULL});
  ASSERT_TRUE(admin);
  EXPECT_NE(admin->bpf, c->bpf);
  // Same inputs, same program (what the cache relies on).
  auto again = compile_seccomp(*p, {.capabilities = 0x00000000a80425fbULL});
  ASSERT_TRUE(again);
  EXPECT_EQ(again->bpf, c->bpf);
  EXPECT_NE(seccomp_cache_key("a", {.capabilities = 1}), seccomp_cache_key("a", {.capabilities = 2}));
  EXPECT_NE(seccomp_cache_key("a", {}), seccomp_cache_key("b", {}));
}

TEST(SeccompProfile, UnknownSyscallNamesAreSkippedNotFatal) {
  auto p = SeccompProfile::parse(R"({"defaultAction":"SCMP_ACT_ALLOW",
    "syscalls":[{"names":["mkdir","no_such_syscall_kiste"],"action":"SCMP_ACT_ERRNO","errnoRet":13}]})");
  ASSERT_TRUE(p) << p.error().to_string();
  EXPECT_EQ(p->syscalls[0].errno_ret, 13);
  auto c = compile_seccomp(*p, {});
  ASSERT_TRUE(c) << c.error().to_string();
  EXPECT_EQ(c->unknown_names, std::vector<std::string>{"no_such_syscall_kiste"});
}

TEST(SeccompProfile, IncludesAndExcludesSelectRules) {
  auto p = SeccompProfile::parse(R"({"defaultAction":"SCMP_ACT_ERRNO",
    "syscalls":[
      {"names":["getpid"],"action":"SCMP_ACT_ALLOW","includes":{"arches":["s390x"]}},
      {"names":["getppid"],"action":"SCMP_ACT_ALLOW","includes":{"caps":["CAP_SYS_ADMIN"]}},
      {"names":["gettid"],"action":"SCMP_ACT_ALLOW","excludes":{"caps":["CAP_SYS_ADMIN"]}},
      {"names":["getuid"],"action":"SCMP_ACT_ALLOW","includes":{"minKernel":"99.0"}}]})");
  ASSERT_TRUE(p) << p.error().to_string();
  auto c = compile_seccomp(*p, {.capabilities = 0, .go_arch = "amd64", .kernel_release = "6.1.0"});
  ASSERT_TRUE(c);
  EXPECT_EQ(c->rules, 1u);  // only gettid
  auto admin = compile_seccomp(*p, {.capabilities = 1ull << 21, .go_arch = "amd64", .kernel_release = "100.1"});
  ASSERT_TRUE(admin);
  EXPECT_EQ(admin->rules, 2u);  // getppid and getuid
}

TEST(SeccompProfile, LegacyNameAndArchitectures) {
  auto p = SeccompProfile::parse(R"({"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X86"],
    "syscalls":[{"name":"mkdir","action":"SCMP_ACT_ERRNO","args":[]}]})");
  ASSERT_TRUE(p) << p.error().to_string();
  EXPECT_EQ(p->syscalls[0].names, std::vector<std::string>{"mkdir"});
  ASSERT_TRUE(compile_seccomp(*p, {}));
}

TEST(SeccompProfile, HostileProfilesAreRejectedWithTheirPlace) {
  struct Case {
    const char* json;
    const char* message;
  } cases[] = {
      {"not json", "not valid JSON"},
      {"[]", "must be a JSON object"},
      {"{}", "defaultAction is missing"},
      {R"({"defaultAction":"SCMP_ACT_NOPE"})", "defaultAction: unknown action `SCMP_ACT_NOPE`"},
      {R"({"defaultAction":"SCMP_ACT_ALLOW","defaultErrnoRet":-1})", "defaultErrnoRet"},
      {R"({"defaultAction":"SCMP_ACT_ALLOW","syscalls":{}})", "syscalls must be an array"},
      {R"({"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"action":"SCMP_ACT_ERRNO"}]})", "syscalls[0]: no syscall names"},
      {R"({"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["a"],"action":"SCMP_ACT_ERRNO"},{"names":["b"]}]})", "syscalls[1]: action: missing"},
      {R"({"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":[1],"action":"SCMP_ACT_ERRNO"}]})", "names: must be an array of strings"},
      {R"({"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["a"],"action":"SCMP_ACT_ERRNO","args":[{"index":6,"op":"SCMP_CMP_EQ"}]}]})", "index 0..5"},
      {R"({"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["a"],"action":"SCMP_ACT_ERRNO","args":[{"index":0,"op":"SCMP_CMP_LIKE"}]}]})", "unknown operator `SCMP_CMP_LIKE`"},
      {R"({"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["a"],"action":"SCMP_ACT_ERRNO","args":[{"index":0,"op":"SCMP_CMP_EQ","value":-4}]}]})", "value must be unsigned"},
      {R"({"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["a"],"action":"SCMP_ACT_ERRNO","errnoRet":70000}]})", "errnoRet"},
      {R"({"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["a"],"action":"SCMP_ACT_ERRNO","includes":[]}]})", "includes: must be an object"},
  };
  for (const auto& c : cases) {
    auto p = SeccompProfile::parse(c.json);
    ASSERT_FALSE(p) << c.json;
    EXPECT_THAT(p.error().to_string(), HasSubstr(c.message)) << c.json;
  }
}

}  // namespace
}  // namespace kiste::runtime
