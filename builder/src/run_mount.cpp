#include <kiste/builder/run_mount.hpp>

#include <vector>

#include <kiste/base/split.hpp>

namespace kiste::builder {

Result<RunMount> parse_run_mount(std::string_view spec) {
  RunMount m;
  std::string type = "bind";
  std::vector<std::pair<std::string, std::string>> kvs;
  for (const KeyValue& kv : split_kv(spec)) {
    if (kv.empty()) continue;  // BuildKit tolerates `a,,b`
    std::string k(kv.key), v(kv.value);
    if (!kv.has_value && (k == "rw" || k == "readwrite" || k == "ro" || k == "readonly" || k == "required")) v = "true";
    if (k == "type") type = v;
    else kvs.emplace_back(k, v);
  }
  if (type == "bind") m.type = RunMount::Type::Bind;
  else if (type == "cache") m.type = RunMount::Type::Cache;
  else if (type == "secret") m.type = RunMount::Type::Secret;
  else if (type == "tmpfs") m.type = RunMount::Type::Tmpfs;
  else if (type == "ssh") m.type = RunMount::Type::Ssh;
  else return failf(Errc::Unsupported, "--mount type={} is not supported (bind, cache, tmpfs, secret, ssh)", type);
  for (const auto& [k, v] : kvs) {
    if (k == "target" || k == "dst" || k == "destination") m.target = v;
    else if (k == "id") m.id = v;
    else if (k == "source" || k == "src") m.source = v;
    else if (k == "from") m.from = v;
    else if (k == "rw" || k == "readwrite") m.rw = v != "false";
    else if (k == "ro" || k == "readonly") m.rw = v == "false";
    else if (k == "required") m.required = v != "false";
    else if (k == "size" && m.type == RunMount::Type::Tmpfs) {
      // bytes, or a number with a k/m/g suffix (as mount(8) takes it)
      std::string_view digits = v;
      if (!digits.empty() && std::string_view("kKmMgG").find(digits.back()) != std::string_view::npos) {
        digits.remove_suffix(1);
      }
      if (digits.empty() || digits.find_first_not_of("0123456789") != std::string_view::npos) {
        return failf(Errc::InvalidArgument, "--mount type=tmpfs: size={} is not a size like 64m", v);
      }
      m.size = v;
    }
    else if (k == "sharing" || k == "mode" || k == "uid" || k == "gid" || k == "env") {
      // accepted; kiste cache mounts are always shared, modes left as created
    } else {
      return failf(Errc::InvalidArgument, "--mount: unknown key `{}`", k);
    }
  }
  if (m.type == RunMount::Type::Secret) {
    if (m.id.empty() && !m.target.empty()) m.id = m.target.substr(m.target.rfind('/') + 1);
    if (m.id.empty()) return fail(Errc::InvalidArgument, "--mount=type=secret needs id= or target=");
    if (m.target.empty()) m.target = "/run/secrets/" + m.id;
  }
  if (m.type == RunMount::Type::Ssh) {
    if (m.id.empty()) m.id = "default";
    if (m.target.empty()) m.target = "/run/buildkit/ssh_agent.0";
  }
  if (m.target.empty()) return failf(Errc::InvalidArgument, "--mount type={} needs target=", type);
  if (!m.target.starts_with("/")) return failf(Errc::InvalidArgument, "--mount target `{}` must be absolute", m.target);
  if (m.type == RunMount::Type::Cache && !m.from.empty()) {
    return fail(Errc::Unsupported, "--mount=type=cache,from= is not supported");
  }
  return m;
}

}  // namespace kiste::builder
