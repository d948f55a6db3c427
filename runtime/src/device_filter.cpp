// The cgroup v2 device filter: hand-assembled BPF_PROG_TYPE_CGROUP_DEVICE, loaded and attached
// with raw bpf(2).
#include <kiste/runtime/device_filter.hpp>

#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace kiste::runtime {

namespace {

// Instruction builders (the kernel's filter.h macros, which are not in the uapi headers).
constexpr bpf_insn ldx_w(uint8_t dst, uint8_t src, int16_t off) {
  return {.code = BPF_LDX | BPF_W | BPF_MEM, .dst_reg = dst, .src_reg = src, .off = off, .imm = 0};
}
constexpr bpf_insn alu32_imm(uint8_t op, uint8_t dst, int32_t imm) {
  return {.code = static_cast<uint8_t>(BPF_ALU | op | BPF_K), .dst_reg = dst, .src_reg = 0, .off = 0, .imm = imm};
}
constexpr bpf_insn mov32_reg(uint8_t dst, uint8_t src) {
  return {.code = BPF_ALU | BPF_MOV | BPF_X, .dst_reg = dst, .src_reg = src, .off = 0, .imm = 0};
}
constexpr bpf_insn mov64_imm(uint8_t dst, int32_t imm) {
  return {.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = dst, .src_reg = 0, .off = 0, .imm = imm};
}
constexpr bpf_insn jne_imm(uint8_t dst, int32_t imm, int16_t off) {
  return {.code = BPF_JMP | BPF_JNE | BPF_K, .dst_reg = dst, .src_reg = 0, .off = off, .imm = imm};
}
constexpr bpf_insn exit_insn() {
  return {.code = BPF_JMP | BPF_EXIT, .dst_reg = 0, .src_reg = 0, .off = 0, .imm = 0};
}

// Registers: r2 = device type, r3 = access bits, r4 = major, r5 = minor (r1: the context).
constexpr uint8_t kType = 2, kAccess = 3, kMajor = 4, kMinor = 5, kScratch = 6;

int32_t access_bits(const std::string& access) {
  int32_t bits = 0;
  for (char c : access) {
    if (c == 'r') bits |= BPF_DEVCG_ACC_READ;
    if (c == 'w') bits |= BPF_DEVCG_ACC_WRITE;
    if (c == 'm') bits |= BPF_DEVCG_ACC_MKNOD;
  }
  return bits;
}

constexpr int32_t kAllAccess = BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE | BPF_DEVCG_ACC_MKNOD;

}  // namespace

std::string DeviceRule::to_string() const {
  auto num = [](int64_t v) { return v < 0 ? std::string("*") : std::to_string(v); };
  return fmt::format("{} {}:{} {}", type, num(major), num(minor), access);
}

const std::vector<DeviceRule>& docker_default_device_rules() {
  static const std::vector<DeviceRule> kRules = {
      {'c', -1, -1, "m"},   {'b', -1, -1, "m"},   {'c', 1, 3, "rwm"}, {'c', 1, 5, "rwm"},
      {'c', 1, 7, "rwm"},   {'c', 1, 8, "rwm"},   {'c', 1, 9, "rwm"}, {'c', 5, 0, "rwm"},
      {'c', 5, 1, "rwm"},   {'c', 5, 2, "rwm"},   {'c', 136, -1, "rwm"},
  };
  return kRules;
}

std::vector<bpf_insn> device_filter_program(const std::vector<DeviceRule>& rules) {
  std::vector<bpf_insn> p = {
      // struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }
      ldx_w(kType, 1, 0),
      alu32_imm(BPF_AND, kType, 0xffff),
      ldx_w(kAccess, 1, 0),
      alu32_imm(BPF_RSH, kAccess, 16),
      ldx_w(kMajor, 1, 4),
      ldx_w(kMinor, 1, 8),
  };
  for (const DeviceRule& r : rules) {
    // Each check jumps past the rest of this block when it does not match.
    std::vector<bpf_insn> block;
    std::vector<size_t> jumps;
    if (r.type == 'c' || r.type == 'b') {
      jumps.push_back(block.size());
      block.push_back(jne_imm(kType, r.type == 'c' ? BPF_DEVCG_DEV_CHAR : BPF_DEVCG_DEV_BLOCK, 0));
    }
    const int32_t bits = access_bits(r.access);
    if (bits != kAllAccess) {
      // Every requested access must be in the rule's set.
      block.push_back(mov32_reg(kScratch, kAccess));
      block.push_back(alu32_imm(BPF_AND, kScratch, ~bits & kAllAccess));
      jumps.push_back(block.size());
      block.push_back(jne_imm(kScratch, 0, 0));
    }
    if (r.major >= 0) {
      jumps.push_back(block.size());
      block.push_back(jne_imm(kMajor, static_cast<int32_t>(r.major), 0));
    }
    if (r.minor >= 0) {
      jumps.push_back(block.size());
      block.push_back(jne_imm(kMinor, static_cast<int32_t>(r.minor), 0));
    }
    block.push_back(mov64_imm(0, 1));
    block.push_back(exit_insn());
    for (size_t j : jumps) block[j].off = static_cast<int16_t>(block.size() - j - 1);
    p.insert(p.end(), block.begin(), block.end());
  }
  p.push_back(mov64_imm(0, 0));
  p.push_back(exit_insn());
  return p;
}

Result<UniqueFd> attach_device_filter(int cgroup_dir_fd, const std::vector<DeviceRule>& rules) {
  std::vector<bpf_insn> prog = device_filter_program(rules);
  static const char kLicense[] = "Apache-2.0";
  char log[4096] = {};
  union bpf_attr load;
  std::memset(&load, 0, sizeof load);
  load.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
  load.insns = reinterpret_cast<uint64_t>(prog.data());
  load.insn_cnt = static_cast<uint32_t>(prog.size());
  load.license = reinterpret_cast<uint64_t>(kLicense);
  UniqueFd fd(static_cast<int>(::syscall(SYS_bpf, BPF_PROG_LOAD, &load, sizeof load)));
  if (!fd && errno == EINVAL) {
    // Again with the verifier's log, for the message (only errors: a full log is ENOSPC).
    load.log_buf = reinterpret_cast<uint64_t>(log);
    load.log_size = sizeof log;
    load.log_level = 1;
    fd.reset(static_cast<int>(::syscall(SYS_bpf, BPF_PROG_LOAD, &load, sizeof load)));
  }
  if (!fd) {
    Error e = sys_error("bpf load", "the device filter");
    if (log[0] != '\0') e.message += fmt::format(" (verifier: {})", std::string_view(log).substr(0, 300));
    return std::unexpected(std::move(e));
  }
  union bpf_attr attach;
  std::memset(&attach, 0, sizeof attach);
  attach.target_fd = static_cast<uint32_t>(cgroup_dir_fd);
  attach.attach_bpf_fd = static_cast<uint32_t>(fd.get());
  attach.attach_type = BPF_CGROUP_DEVICE;
  attach.attach_flags = BPF_F_ALLOW_MULTI;
  if (::syscall(SYS_bpf, BPF_PROG_ATTACH, &attach, sizeof attach) != 0) {
    return std::unexpected(sys_error("bpf attach", "the device filter to the cgroup"));
  }
  return fd;
}

}  // namespace kiste::runtime
