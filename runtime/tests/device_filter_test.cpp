// The device filter program, checked without root: a small interpreter for the instructions it
// uses runs it for every kind of access and compares with the rules read directly.
#include <gtest/gtest.h>

#include <kiste/runtime/cgroup.hpp>
#include <kiste/runtime/device_filter.hpp>

namespace kiste::runtime {
namespace {

// Executes the subset of eBPF the generator emits; returns r0.
int64_t run(const std::vector<bpf_insn>& p, uint32_t access_type, uint32_t major, uint32_t minor) {
  uint64_t r[11] = {};
  const uint32_t ctx[3] = {access_type, major, minor};
  for (size_t pc = 0; pc < p.size(); ++pc) {
    const bpf_insn& i = p[pc];
    switch (i.code) {
      case BPF_LDX | BPF_W | BPF_MEM: r[i.dst_reg] = ctx[i.off / 4]; break;
      case BPF_ALU | BPF_AND | BPF_K: r[i.dst_reg] = static_cast<uint32_t>(r[i.dst_reg] & static_cast<uint32_t>(i.imm)); break;
      case BPF_ALU | BPF_RSH | BPF_K: r[i.dst_reg] = static_cast<uint32_t>(r[i.dst_reg]) >> i.imm; break;
      case BPF_ALU | BPF_MOV | BPF_X: r[i.dst_reg] = static_cast<uint32_t>(r[i.src_reg]); break;
      case BPF_ALU64 | BPF_MOV | BPF_K: r[i.dst_reg] = static_cast<uint64_t>(static_cast<int64_t>(i.imm)); break;
      case BPF_JMP | BPF_JNE | BPF_K:
        if (r[i.dst_reg] != static_cast<uint64_t>(static_cast<int64_t>(i.imm))) pc += static_cast<size_t>(i.off);
        break;
      case BPF_JMP | BPF_EXIT: return static_cast<int64_t>(r[0]);
      default: ADD_FAILURE() << "unexpected opcode " << int(i.code); return -1;
    }
    EXPECT_LT(pc, p.size());
  }
  ADD_FAILURE() << "fell off the end";
  return -1;
}

bool reference(const std::vector<DeviceRule>& rules, char type, uint32_t acc, uint32_t maj, uint32_t min) {
  for (const DeviceRule& r : rules) {
    if (r.type != 'a' && r.type != type) continue;
    if (r.major >= 0 && r.major != maj) continue;
    if (r.minor >= 0 && r.minor != min) continue;
    uint32_t allowed = 0;
    for (char c : r.access) {
      allowed |= c == 'r' ? BPF_DEVCG_ACC_READ : c == 'w' ? BPF_DEVCG_ACC_WRITE : c == 'm' ? BPF_DEVCG_ACC_MKNOD : 0;
    }
    if ((acc & ~allowed) == 0) return true;
  }
  return false;
}

TEST(DeviceFilter, ProgramDecidesLikeTheRules) {
  std::vector<std::vector<DeviceRule>> sets = {
      docker_default_device_rules(),
      {{'b', 7, 0, "r"}, {'c', 1, 3, "rw"}},
      {{'a', -1, -1, "rwm"}},
      {},
  };
  for (const auto& rules : sets) {
    auto prog = device_filter_program(rules);
    for (char type : {'c', 'b'}) {
      for (uint32_t acc = 1; acc <= 7; ++acc) {
        for (uint32_t maj : {1u, 5u, 7u, 8u, 136u, 254u}) {
          for (uint32_t min : {0u, 1u, 2u, 3u, 5u, 7u, 8u, 9u, 42u}) {
            uint32_t t = type == 'c' ? BPF_DEVCG_DEV_CHAR : BPF_DEVCG_DEV_BLOCK;
            EXPECT_EQ(run(prog, (acc << 16) | t, maj, min) == 1, reference(rules, type, acc, maj, min))
                << type << " " << maj << ":" << min << " access " << acc;
          }
        }
      }
    }
  }
}

TEST(DeviceFilter, DockerRulesAreTheV1AllowList) {
  auto v1 = CgroupPlan::from_resources({}, CgroupMode::Legacy);
  ASSERT_TRUE(v1);
  std::vector<std::string> allows;
  for (const auto& w : v1->writes) {
    if (w.file == "devices.allow") allows.push_back(w.value);
  }
  EXPECT_EQ(allows, (std::vector<std::string>{"c *:* m", "b *:* m", "c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm",
                                              "c 1:8 rwm", "c 1:9 rwm", "c 5:0 rwm", "c 5:1 rwm",
                                              "c 5:2 rwm", "c 136:* rwm"}));
  auto v2 = CgroupPlan::from_resources({}, CgroupMode::Unified);
  ASSERT_TRUE(v2);
  EXPECT_EQ(v2->device_rules, docker_default_device_rules());
  auto priv = CgroupPlan::from_resources({}, CgroupMode::Unified, true);
  ASSERT_TRUE(priv);
  EXPECT_TRUE(priv->device_rules.empty());
}

}  // namespace
}  // namespace kiste::runtime
