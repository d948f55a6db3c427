#include <kiste/builder/stage_config.hpp>

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <filesystem>

#include <kiste/base/go_duration.hpp>

namespace kiste::builder {
namespace {

std::string json_array(const std::vector<std::string>& v) {
  std::string out = "[";
  for (size_t i = 0; i < v.size(); ++i) {
    if (i) out += ",";
    out += '"';
    for (char c : v[i]) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  return out + "]";
}

std::string join_path(const std::string& base, const std::string& p) {
  std::filesystem::path r = p.starts_with("/") ? std::filesystem::path(p)
                                               : std::filesystem::path(base.empty() ? "/" : base) / p;
  std::string s = r.lexically_normal().string();
  if (s.size() > 1 && s.back() == '/') s.pop_back();
  return s;
}

}  // namespace

VarMap StageConfig::scope() const {
  VarMap m = args;
  for (const auto& e : config.config.env) {
    size_t eq = e.find('=');
    if (eq == std::string::npos) continue;
    m[e.substr(0, eq)] = e.substr(eq + 1);
  }
  return m;
}

std::vector<std::string> StageConfig::shell() const {
  if (!config.config.shell.empty()) return config.config.shell;
  return {"/bin/sh", "-c"};
}

std::optional<std::string> StageConfig::env(std::string_view key) const {
  for (const auto& e : config.config.env) {
    if (e.size() > key.size() && e.compare(0, key.size(), key) == 0 && e[key.size()] == '=') {
      return e.substr(key.size() + 1);
    }
  }
  return std::nullopt;
}

void StageConfig::set_env(const std::string& key, const std::string& value) {
  for (auto& e : config.config.env) {
    if (e.size() > key.size() && e.compare(0, key.size(), key) == 0 && e[key.size()] == '=') {
      e = key + "=" + value;
      return;
    }
  }
  config.config.env.push_back(key + "=" + value);
}

Result<std::string> apply_metadata(StageConfig& st, const Instruction& ins,
                                   const ArgSources& src) {
  using K = InstructionKind;
  auto& c = st.config.config;
  const VarMap scope = st.scope();
  auto word = [&](const std::string& w) { return expand_word(w, scope, st.escape); };
  auto words = [&](const std::string& w) { return expand_words(w, scope, st.escape); };
  auto cmdline = [&]() -> std::vector<std::string> {
    if (ins.exec_form) return ins.args;
    auto v = st.shell();
    v.push_back(ins.args.empty() ? "" : ins.args[0]);
    return v;
  };
  switch (ins.kind) {
    case K::Env: {
      std::string text = "ENV";
      std::vector<std::pair<std::string, std::string>> set;
      for (const auto& kv : ins.pairs) {
        KISTE_ASSIGN_OR_RETURN(std::string k, word(kv.key));
        KISTE_ASSIGN_OR_RETURN(std::string v, word(kv.value.value_or("")));
        if (k.empty()) return fail(Errc::InvalidArgument, "ENV names can not be blank");
        set.emplace_back(k, v);
        text += " " + k + "=" + v;
      }
      for (const auto& [k, v] : set) st.set_env(k, v);
      return text;
    }
    case K::Arg: {
      std::string text = "ARG";
      for (const auto& kv : ins.pairs) {
        std::optional<std::string> value;
        if (src.build_args) {
          if (auto it = src.build_args->find(kv.key); it != src.build_args->end()) value = it->second;
        }
        if (!value && kv.value) {
          KISTE_ASSIGN_OR_RETURN(std::string v, expand_word(*kv.value, st.scope(), st.escape));
          value = v;
        }
        if (!value && src.global_args) {
          if (auto it = src.global_args->find(kv.key); it != src.global_args->end()) value = it->second;
        }
        if (!value && src.predefined) {
          if (auto it = src.predefined->find(kv.key); it != src.predefined->end()) value = it->second;
        }
        text += " " + kv.key;
        if (kv.value) text += "=" + *kv.value;
        if (value) {
          st.args[kv.key] = *value;
        } else {
          st.args.erase(kv.key);
        }
      }
      return text;
    }
    case K::Label: {
      std::string text = "LABEL";
      for (const auto& kv : ins.pairs) {
        KISTE_ASSIGN_OR_RETURN(std::string k, word(kv.key));
        KISTE_ASSIGN_OR_RETURN(std::string v, word(kv.value.value_or("")));
        if (k.empty()) return fail(Errc::InvalidArgument, "LABEL names can not be blank");
        c.labels[k] = v;
        text += " " + k + "=" + v;
      }
      return text;
    }
    case K::Expose: {
      std::string text = "EXPOSE";
      for (const auto& w : ins.args) {
        KISTE_ASSIGN_OR_RETURN(auto ports, words(w));
        for (auto p : ports) {
          if (p.find('/') == std::string::npos) p += "/tcp";
          std::string num = p.substr(0, p.find('/'));
          std::string proto = p.substr(p.find('/') + 1);
          for (char& ch : proto) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
          bool ok = !num.empty() && std::all_of(num.begin(), num.end(), [](char ch) {
            return std::isdigit(static_cast<unsigned char>(ch)) != 0 || ch == '-';
          });
          if (!ok || (proto != "tcp" && proto != "udp" && proto != "sctp")) {
            return failf(Errc::InvalidArgument, "invalid port `{}`", p);
          }
          p = num + "/" + proto;
          if (std::find(c.exposed_ports.begin(), c.exposed_ports.end(), p) == c.exposed_ports.end()) {
            c.exposed_ports.push_back(p);
          }
          text += " " + p;
        }
      }
      std::sort(c.exposed_ports.begin(), c.exposed_ports.end());
      return text;
    }
    case K::Volume: {
      std::vector<std::string> vols;
      if (ins.exec_form) {
        for (const auto& a : ins.args) {
          KISTE_ASSIGN_OR_RETURN(std::string v, expand_vars_only(a, scope));
          vols.push_back(v);
        }
      } else {
        for (const auto& a : ins.args) {
          KISTE_ASSIGN_OR_RETURN(std::string v, word(a));
          vols.push_back(v);
        }
      }
      for (const auto& v : vols) {
        if (v.empty()) return fail(Errc::InvalidArgument, "VOLUME specified can not be an empty string");
        if (std::find(c.volumes.begin(), c.volumes.end(), v) == c.volumes.end()) c.volumes.push_back(v);
      }
      std::sort(c.volumes.begin(), c.volumes.end());
      return "VOLUME " + json_array(vols);
    }
    case K::Workdir: {
      KISTE_ASSIGN_OR_RETURN(std::string w, word(ins.args[0]));
      if (w.empty()) return fail(Errc::InvalidArgument, "WORKDIR can not be empty");
      c.working_dir = join_path(c.working_dir, w);
      return "WORKDIR " + c.working_dir;
    }
    case K::User: {
      KISTE_ASSIGN_OR_RETURN(std::string u, word(ins.args[0]));
      if (u.empty()) return fail(Errc::InvalidArgument, "USER can not be empty");
      c.user = u;
      return "USER " + u;
    }
    case K::Cmd: {
      c.cmd = cmdline();
      st.cmd_set_here = true;
      return "CMD " + json_array(*c.cmd);
    }
    case K::Entrypoint: {
      c.entrypoint = cmdline();
      if (!st.cmd_set_here) c.cmd.reset();
      return "ENTRYPOINT " + json_array(*c.entrypoint);
    }
    case K::Shell:
      c.shell = ins.args;
      return "SHELL " + json_array(ins.args);
    case K::Stopsignal: {
      KISTE_ASSIGN_OR_RETURN(std::string s, word(ins.args[0]));
      c.stop_signal = s;
      return "STOPSIGNAL " + s;
    }
    case K::Healthcheck: {
      if (ins.args[0] == "NONE") {
        c.healthcheck = image::HealthConfig{.test = {"NONE"}};
        return "HEALTHCHECK NONE";
      }
      image::HealthConfig h;
      if (ins.exec_form) {
        h.test = {"CMD"};
        h.test.insert(h.test.end(), ins.args.begin() + 1, ins.args.end());
      } else {
        h.test = {"CMD-SHELL", ins.args.size() > 1 ? ins.args[1] : ""};
      }
      for (const auto& f : ins.flags) {
        std::string v = f.value.value_or("");
        if (f.name == "retries") {
          int n = -1;
          auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
          if (ec != std::errc() || p != v.data() + v.size() || n < 0) {
            return failf(Errc::InvalidArgument, "HEALTHCHECK --retries={}: must be a non-negative integer", v);
          }
          h.retries = n;
          continue;
        }
        auto d = parse_go_duration(v);
        if (!d) return failf(Errc::InvalidArgument, "HEALTHCHECK --{}={}: {}", f.name, v, d.error().message);
        if (f.name == "interval") h.interval_ns = *d;
        else if (f.name == "timeout") h.timeout_ns = *d;
        else if (f.name == "start-period") h.start_period_ns = *d;
        else if (f.name == "start-interval") h.start_interval_ns = *d;
      }
      c.healthcheck = h;
      return "HEALTHCHECK " + json_array(h.test);
    }
    case K::Onbuild:
      c.on_build.push_back(ins.trigger);
      return "ONBUILD " + ins.trigger;
    case K::Maintainer: {
      st.config.author = ins.args[0];
      return "MAINTAINER " + ins.args[0];
    }
    default:
      return failf(Errc::InvalidArgument, "{} is not a metadata instruction", keyword(ins.kind));
  }
}

}  // namespace kiste::builder
