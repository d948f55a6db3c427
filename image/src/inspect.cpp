#include <kiste/image/inspect.hpp>

#include <nlohmann/json.hpp>

namespace kiste::image {

using ojson = nlohmann::ordered_json;

Result<std::string> inspect_json(const InspectInput& in) {
  const Manifest& man = in.manifest.manifest();
  ojson cfg = ojson::parse(in.config, nullptr, false);
  if (cfg.is_discarded() || !cfg.is_object()) {
    return failf(Errc::Corrupt, "config {}: not a JSON object", man.config.digest);
  }
  auto str = [&cfg](const char* key) {
    auto it = cfg.find(key);
    return it != cfg.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  ojson config = cfg.contains("config") && cfg["config"].is_object() ? cfg["config"]
                                                                        : ojson::object();
  for (const char* k : {"Env", "Cmd", "Entrypoint", "Labels"}) {
    if (!config.contains(k)) config[k] = nullptr;
  }
  if (!config.contains("WorkingDir")) config["WorkingDir"] = "";

  int64_t compressed = in.manifest.descriptor().size + man.config.size;
  ojson layers = ojson::array();
  for (const auto& l : man.layers) {
    compressed += l.size;
    layers.push_back({{"MediaType", l.media_type}, {"Digest", l.digest.str()}, {"Size", l.size}});
  }
  ojson diff_ids = ojson::array();
  if (cfg.contains("rootfs") && cfg["rootfs"].is_object() &&
      cfg["rootfs"].contains("diff_ids")) {
    diff_ids = cfg["rootfs"]["diff_ids"];
  }

  ojson o;
  o["Id"] = man.config.digest.str();
  o["RepoTags"] = in.repo_tags;
  o["RepoDigests"] = in.repo_digests;
  o["Parent"] = "";
  o["Comment"] = str("comment");
  o["Created"] = str("created");
  o["DockerVersion"] = str("docker_version");
  o["Author"] = str("author");
  o["Config"] = std::move(config);
  o["Architecture"] = str("architecture");
  if (!str("variant").empty()) o["Variant"] = str("variant");
  o["Os"] = str("os");
  o["Size"] = in.unpacked_size.value_or(compressed);
  o["RootFS"] = {{"Type", "layers"}, {"Layers", std::move(diff_ids)}};
  o["Metadata"] = {{"LastTagTime", "0001-01-01T00:00:00Z"}};
  const Descriptor d = in.manifest.descriptor();
  o["Descriptor"] = {{"mediaType", d.media_type}, {"digest", d.digest.str()}, {"size", d.size}};
  o["CompressedSize"] = compressed;
  o["Layers"] = std::move(layers);
  o["History"] = cfg.contains("history") ? cfg["history"] : ojson::array();
  if (in.index) {
    ojson plats = ojson::array();
    for (const auto& m : in.index->index().manifests) {
      if (m.platform) plats.push_back(m.platform->str());
    }
    o["Index"] = {{"mediaType", in.index->media_type},
                  {"digest", in.index->digest.str()},
                  {"Platforms", std::move(plats)}};
  }
  return o.dump(4, ' ', false, ojson::error_handler_t::replace);
}

}  // namespace kiste::image
