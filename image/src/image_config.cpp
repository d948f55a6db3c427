#include <kiste/image/image_config.hpp>

#include <ctime>

#include "json_util.hpp"

namespace kiste::image {

using detail::json;

namespace {

constexpr std::string_view kConfigWhat = "image config";

Result<std::optional<std::vector<std::string>>> get_optional_list(const json& obj,
                                                                  const char* key) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return std::optional<std::vector<std::string>>();
  KISTE_ASSIGN_OR_RETURN(auto v, detail::get_string_list(obj, key, kConfigWhat));
  return std::optional<std::vector<std::string>>(std::move(v));
}

Result<std::vector<std::string>> get_set_keys(const json& obj, const char* key) {
  std::vector<std::string> out;
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return out;
  if (!it->is_object()) return failf(Errc::Corrupt, "parse image config: `{}` is not an object", key);
  for (const auto& [k, v] : it->items()) out.push_back(k);
  return out;
}

int64_t get_int(const json& obj, const char* key) {
  auto it = obj.find(key);
  return it != obj.end() && it->is_number_integer() ? it->get<int64_t>() : 0;
}

Result<ContainerDefaults> parse_defaults(const json& c) {
  ContainerDefaults d;
  if (!c.is_object()) return d;
  KISTE_ASSIGN_OR_RETURN(d.user, detail::get_string(c, "User", kConfigWhat));
  KISTE_ASSIGN_OR_RETURN(d.exposed_ports, get_set_keys(c, "ExposedPorts"));
  KISTE_ASSIGN_OR_RETURN(d.env, detail::get_string_list(c, "Env", kConfigWhat));
  KISTE_ASSIGN_OR_RETURN(d.entrypoint, get_optional_list(c, "Entrypoint"));
  KISTE_ASSIGN_OR_RETURN(d.cmd, get_optional_list(c, "Cmd"));
  KISTE_ASSIGN_OR_RETURN(d.volumes, get_set_keys(c, "Volumes"));
  KISTE_ASSIGN_OR_RETURN(d.working_dir, detail::get_string(c, "WorkingDir", kConfigWhat));
  KISTE_ASSIGN_OR_RETURN(d.labels, detail::get_string_map(c, "Labels", kConfigWhat));
  KISTE_ASSIGN_OR_RETURN(d.stop_signal, detail::get_string(c, "StopSignal", kConfigWhat));
  KISTE_ASSIGN_OR_RETURN(d.shell, detail::get_string_list(c, "Shell", kConfigWhat));
  KISTE_ASSIGN_OR_RETURN(d.on_build, detail::get_string_list(c, "OnBuild", kConfigWhat));
  if (auto h = c.find("Healthcheck"); h != c.end() && h->is_object()) {
    HealthConfig hc;
    KISTE_ASSIGN_OR_RETURN(hc.test, detail::get_string_list(*h, "Test", kConfigWhat));
    hc.interval_ns = get_int(*h, "Interval");
    hc.timeout_ns = get_int(*h, "Timeout");
    hc.start_period_ns = get_int(*h, "StartPeriod");
    hc.start_interval_ns = get_int(*h, "StartInterval");
    hc.retries = static_cast<int>(get_int(*h, "Retries"));
    d.healthcheck = std::move(hc);
  }
  return d;
}

json set_of(const std::vector<std::string>& keys) {
  json o = json::object();
  for (const auto& k : keys) o[k] = json::object();
  return o;
}

// Writes `v` at `key` when non-empty, removes the key otherwise (so an unset field is absent,
// whatever the preserved raw document had).
template <class T>
void put(json& obj, const char* key, const T& v, bool present) {
  if (present) {
    obj[key] = v;
  } else {
    obj.erase(key);
  }
}

}  // namespace

Result<ImageConfig> ImageConfig::parse(std::string_view bytes) {
  KISTE_ASSIGN_OR_RETURN(json j, detail::parse_json(bytes, kConfigWhat));
  if (!j.is_object()) return fail(Errc::Corrupt, "parse image config: not a JSON object");
  ImageConfig c;
  KISTE_ASSIGN_OR_RETURN(c.created, detail::get_string(j, "created", kConfigWhat));
  KISTE_ASSIGN_OR_RETURN(c.author, detail::get_string(j, "author", kConfigWhat));
  KISTE_ASSIGN_OR_RETURN(c.architecture, detail::get_string(j, "architecture", kConfigWhat));
  KISTE_ASSIGN_OR_RETURN(c.os, detail::get_string(j, "os", kConfigWhat));
  KISTE_ASSIGN_OR_RETURN(c.variant, detail::get_string(j, "variant", kConfigWhat));
  KISTE_ASSIGN_OR_RETURN(c.os_version, detail::get_string(j, "os.version", kConfigWhat));
  if (c.architecture.empty() || c.os.empty()) {
    return fail(Errc::Corrupt, "parse image config: `architecture` and `os` are required");
  }
  if (auto cfg = j.find("config"); cfg != j.end()) {
    KISTE_ASSIGN_OR_RETURN(c.config, parse_defaults(*cfg));
  }
  auto rootfs = j.find("rootfs");
  if (rootfs == j.end() || !rootfs->is_object()) {
    return fail(Errc::Corrupt, "parse image config: `rootfs` is required");
  }
  KISTE_ASSIGN_OR_RETURN(std::string type, detail::get_string(*rootfs, "type", kConfigWhat));
  if (type != "layers") {
    return failf(Errc::Corrupt, "parse image config: rootfs.type {} is not `layers`", quote(type));
  }
  KISTE_ASSIGN_OR_RETURN(auto diff_ids, detail::get_string_list(*rootfs, "diff_ids", kConfigWhat));
  for (const auto& d : diff_ids) {
    auto dg = Digest::parse(d);
    if (!dg) return failf(Errc::Corrupt, "parse image config: diff_ids: {}", dg.error().message);
    c.diff_ids.push_back(std::move(*dg));
  }
  if (auto h = j.find("history"); h != j.end() && h->is_array()) {
    for (const auto& e : *h) {
      if (!e.is_object()) continue;
      HistoryEntry he;
      KISTE_ASSIGN_OR_RETURN(he.created, detail::get_string(e, "created", kConfigWhat));
      KISTE_ASSIGN_OR_RETURN(he.created_by, detail::get_string(e, "created_by", kConfigWhat));
      KISTE_ASSIGN_OR_RETURN(he.author, detail::get_string(e, "author", kConfigWhat));
      KISTE_ASSIGN_OR_RETURN(he.comment, detail::get_string(e, "comment", kConfigWhat));
      auto el = e.find("empty_layer");
      he.empty_layer = el != e.end() && el->is_boolean() && el->get<bool>();
      c.history.push_back(std::move(he));
    }
  }
  c.raw_ = std::string(bytes);
  return c;
}

std::string ImageConfig::serialize() const {
  json j = json::object();
  if (!raw_.empty()) {
    json r = json::parse(raw_, nullptr, false);
    if (r.is_object()) j = std::move(r);
  }
  put(j, "created", created, !created.empty());
  put(j, "author", author, !author.empty());
  j["architecture"] = architecture;
  j["os"] = os;
  put(j, "variant", variant, !variant.empty());
  put(j, "os.version", os_version, !os_version.empty());
  json c = j.contains("config") && j["config"].is_object() ? j["config"] : json::object();
  const ContainerDefaults& d = config;
  put(c, "User", d.user, !d.user.empty());
  put(c, "ExposedPorts", set_of(d.exposed_ports), !d.exposed_ports.empty());
  put(c, "Env", d.env, !d.env.empty());
  put(c, "Entrypoint", d.entrypoint.value_or(std::vector<std::string>{}), d.entrypoint.has_value());
  put(c, "Cmd", d.cmd.value_or(std::vector<std::string>{}), d.cmd.has_value());
  put(c, "Volumes", set_of(d.volumes), !d.volumes.empty());
  put(c, "WorkingDir", d.working_dir, !d.working_dir.empty());
  put(c, "Labels", d.labels, !d.labels.empty());
  put(c, "StopSignal", d.stop_signal, !d.stop_signal.empty());
  put(c, "Shell", d.shell, !d.shell.empty());
  put(c, "OnBuild", d.on_build, !d.on_build.empty());
  if (d.healthcheck) {
    json h = json::object();
    h["Test"] = d.healthcheck->test;
    if (d.healthcheck->interval_ns) h["Interval"] = d.healthcheck->interval_ns;
    if (d.healthcheck->timeout_ns) h["Timeout"] = d.healthcheck->timeout_ns;
    if (d.healthcheck->start_period_ns) h["StartPeriod"] = d.healthcheck->start_period_ns;
    if (d.healthcheck->start_interval_ns) h["StartInterval"] = d.healthcheck->start_interval_ns;
    if (d.healthcheck->retries) h["Retries"] = d.healthcheck->retries;
    c["Healthcheck"] = std::move(h);
  } else {
    c.erase("Healthcheck");
  }
  j["config"] = std::move(c);
  json ids = json::array();
  for (const auto& d2 : diff_ids) ids.push_back(d2.str());
  j["rootfs"] = json{{"type", "layers"}, {"diff_ids", std::move(ids)}};
  if (!history.empty() || j.contains("history")) {
    json h = json::array();
    for (const auto& e : history) {
      json o = json::object();
      if (!e.created.empty()) o["created"] = e.created;
      if (!e.created_by.empty()) o["created_by"] = e.created_by;
      if (!e.author.empty()) o["author"] = e.author;
      if (!e.comment.empty()) o["comment"] = e.comment;
      if (e.empty_layer) o["empty_layer"] = true;
      h.push_back(std::move(o));
    }
    j["history"] = std::move(h);
  }
  // Strings set by a build (CMD, LABEL, ENV from a Containerfile) need not be UTF-8; JSON text
  // must be. Invalid bytes become U+FFFD, as Go's encoding/json does for docker and buildah
  // (the default handler throws).
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

Platform ImageConfig::platform() const {
  Platform p;
  p.os = os;
  p.architecture = architecture;
  p.variant = variant;
  p.os_version = os_version;
  return p.normalized();
}

std::vector<Digest> chain_ids(const std::vector<Digest>& diff_ids) {
  std::vector<Digest> out;
  for (const auto& d : diff_ids) {
    out.push_back(out.empty() ? d : Digest::of(out.back().str() + " " + d.str()));
  }
  return out;
}

std::string rfc3339(int64_t unix_seconds) {
  std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace kiste::image
