// Docker seccomp JSON -> SeccompProfile.
#include <kiste/runtime/seccomp_profile.hpp>

#include <nlohmann/json.hpp>

namespace kiste::runtime {

using nlohmann::json;

namespace {

Result<SeccompAction> parse_action(std::string_view s) {
  if (s == "SCMP_ACT_ALLOW") return SeccompAction::Allow;
  if (s == "SCMP_ACT_ERRNO") return SeccompAction::Errno;
  if (s == "SCMP_ACT_KILL" || s == "SCMP_ACT_KILL_THREAD") return SeccompAction::Kill;
  if (s == "SCMP_ACT_KILL_PROCESS") return SeccompAction::KillProcess;
  if (s == "SCMP_ACT_TRAP") return SeccompAction::Trap;
  if (s == "SCMP_ACT_LOG") return SeccompAction::Log;
  if (s == "SCMP_ACT_TRACE") return SeccompAction::Trace;
  return failf(Errc::InvalidArgument, "unknown action {}", quote(s));
}

Result<SeccompOp> parse_op(std::string_view s) {
  if (s == "SCMP_CMP_NE") return SeccompOp::NotEqual;
  if (s == "SCMP_CMP_LT") return SeccompOp::LessThan;
  if (s == "SCMP_CMP_LE") return SeccompOp::LessEqual;
  if (s == "SCMP_CMP_EQ") return SeccompOp::Equal;
  if (s == "SCMP_CMP_GE") return SeccompOp::GreaterEqual;
  if (s == "SCMP_CMP_GT") return SeccompOp::GreaterThan;
  if (s == "SCMP_CMP_MASKED_EQ") return SeccompOp::MaskedEqual;
  return failf(Errc::InvalidArgument, "unknown operator {}", quote(s));
}

Result<std::vector<std::string>> strings(const json& j, std::string_view what) {
  std::vector<std::string> out;
  if (j.is_null()) return out;
  if (!j.is_array()) return failf(Errc::InvalidArgument, "{}: must be an array of strings", what);
  for (const json& s : j) {
    if (!s.is_string()) return failf(Errc::InvalidArgument, "{}: must be an array of strings", what);
    out.push_back(s.get<std::string>());
  }
  return out;
}

Result<SeccompFilterCond> parse_cond(const json& j, std::string_view what) {
  SeccompFilterCond c;
  if (j.is_null()) return c;
  if (!j.is_object()) return failf(Errc::InvalidArgument, "{}: must be an object", what);
  if (j.contains("caps")) { KISTE_ASSIGN_OR_RETURN(c.caps, strings(j["caps"], "caps")); }
  if (j.contains("arches")) { KISTE_ASSIGN_OR_RETURN(c.arches, strings(j["arches"], "arches")); }
  if (j.contains("minKernel")) {
    if (!j["minKernel"].is_string()) return fail(Errc::InvalidArgument, "minKernel: must be a string");
    c.min_kernel = j["minKernel"].get<std::string>();
  }
  return c;
}

Result<SeccompRule> parse_rule(const json& j) {
  if (!j.is_object()) return fail(Errc::InvalidArgument, "must be an object");
  SeccompRule r;
  if (j.contains("names")) {
    KISTE_ASSIGN_OR_RETURN(r.names, strings(j["names"], "names"));
  }
  if (j.contains("name")) {
    if (!j["name"].is_string()) return fail(Errc::InvalidArgument, "name: must be a string");
    r.names.push_back(j["name"].get<std::string>());
  }
  if (r.names.empty()) return fail(Errc::InvalidArgument, "no syscall names");
  for (const auto& n : r.names) {
    if (n.empty() || n.find('\0') != std::string::npos) {
      return fail(Errc::InvalidArgument, "empty syscall name");
    }
  }
  if (!j.contains("action") || !j["action"].is_string()) {
    return fail(Errc::InvalidArgument, "action: missing");
  }
  KISTE_ASSIGN_OR_RETURN(r.action, parse_action(j["action"].get<std::string>()));
  if (j.contains("errnoRet") && !j["errnoRet"].is_null()) {
    if (!j["errnoRet"].is_number_unsigned() || j["errnoRet"].get<uint64_t>() > 4095) {
      return fail(Errc::InvalidArgument, "errnoRet: must be an errno number");
    }
    r.errno_ret = j["errnoRet"].get<int>();
  }
  if (j.contains("args") && !j["args"].is_null()) {
    if (!j["args"].is_array()) return fail(Errc::InvalidArgument, "args: must be an array");
    for (const json& a : j["args"]) {
      if (!a.is_object() || !a.contains("index") || !a["index"].is_number_unsigned() ||
          a["index"].get<uint64_t>() > 5 || !a.contains("op") || !a["op"].is_string()) {
        return fail(Errc::InvalidArgument, "args: each needs an index 0..5 and an op");
      }
      SeccompArg arg;
      arg.index = a["index"].get<unsigned>();
      if (a.contains("value")) {
        if (!a["value"].is_number_unsigned()) return fail(Errc::InvalidArgument, "args: value must be unsigned");
        arg.value = a["value"].get<uint64_t>();
      }
      if (a.contains("valueTwo")) {
        if (!a["valueTwo"].is_number_unsigned()) return fail(Errc::InvalidArgument, "args: valueTwo must be unsigned");
        arg.value_two = a["valueTwo"].get<uint64_t>();
      }
      KISTE_ASSIGN_OR_RETURN(arg.op, parse_op(a["op"].get<std::string>()));
      r.args.push_back(arg);
    }
    if (r.args.size() > 6) return fail(Errc::InvalidArgument, "args: at most 6");
  }
  if (j.contains("includes")) { KISTE_ASSIGN_OR_RETURN(r.includes, parse_cond(j["includes"], "includes")); }
  if (j.contains("excludes")) { KISTE_ASSIGN_OR_RETURN(r.excludes, parse_cond(j["excludes"], "excludes")); }
  return r;
}

std::string native_scmp_arch() {
#if defined(__x86_64__)
  return "SCMP_ARCH_X86_64";
#elif defined(__aarch64__)
  return "SCMP_ARCH_AARCH64";
#else
  return "";
#endif
}

}  // namespace

Result<SeccompProfile> SeccompProfile::parse(std::string_view docker_json) {
  json j = json::parse(docker_json, nullptr, false);
  if (j.is_discarded()) return fail(Errc::InvalidArgument, "seccomp profile: not valid JSON");
  if (!j.is_object()) return fail(Errc::InvalidArgument, "seccomp profile: must be a JSON object");
  SeccompProfile p;
  if (!j.contains("defaultAction") || !j["defaultAction"].is_string()) {
    return fail(Errc::InvalidArgument, "seccomp profile: defaultAction is missing");
  }
  auto da = parse_action(j["defaultAction"].get<std::string>());
  if (!da) return std::unexpected(std::move(da).error().with_context("seccomp profile: defaultAction"));
  p.default_action = *da;
  if (j.contains("defaultErrnoRet") && !j["defaultErrnoRet"].is_null()) {
    if (!j["defaultErrnoRet"].is_number_unsigned() || j["defaultErrnoRet"].get<uint64_t>() > 4095) {
      return fail(Errc::InvalidArgument, "seccomp profile: defaultErrnoRet must be an errno number");
    }
    p.default_errno = j["defaultErrnoRet"].get<int>();
  }
  const std::string native = native_scmp_arch();
  if (j.contains("archMap") && j["archMap"].is_array()) {
    for (const json& m : j["archMap"]) {
      if (!m.is_object() || !m.contains("architecture") || !m["architecture"].is_string()) {
        return fail(Errc::InvalidArgument, "seccomp profile: archMap entries need an architecture");
      }
      if (m["architecture"].get<std::string>() != native) continue;
      auto subs = strings(m.value("subArchitectures", json()), "subArchitectures");
      if (!subs) return std::unexpected(std::move(subs).error().with_context("seccomp profile"));
      p.arches = *subs;
    }
  } else if (j.contains("architectures")) {
    auto a = strings(j["architectures"], "architectures");
    if (!a) return std::unexpected(std::move(a).error().with_context("seccomp profile"));
    for (auto& x : *a) {
      if (x != native) p.arches.push_back(x);
    }
  }
  if (j.contains("syscalls") && !j["syscalls"].is_null()) {
    if (!j["syscalls"].is_array()) return fail(Errc::InvalidArgument, "seccomp profile: syscalls must be an array");
    size_t i = 0;
    for (const json& s : j["syscalls"]) {
      auto r = parse_rule(s);
      if (!r) {
        return std::unexpected(
            std::move(r).error().with_context(fmt::format("seccomp profile: syscalls[{}]", i)));
      }
      p.syscalls.push_back(std::move(*r));
      ++i;
    }
  }
  return p;
}

}  // namespace kiste::runtime
