#include <kiste/builder/attestation.hpp>

#include <nlohmann/json.hpp>

#include <kiste/builder/package_db.hpp>
#include <kiste/image/image_config.hpp>
#include <kiste/image/image_files.hpp>
#include <kiste/image/media_type.hpp>

namespace kiste::builder {

namespace {

using json = nlohmann::json;
namespace mt = image::media_type;

constexpr std::string_view kDpkgStatus = "var/lib/dpkg/status";
constexpr std::string_view kApkInstalled = "lib/apk/db/installed";
constexpr std::string_view kOsRelease = "etc/os-release";
constexpr size_t kMaxCopiedFiles = 100'000;
constexpr size_t kMaxProvenanceBytes = 1 << 20;

json digest_json(const image::Digest& d) {
  return json::object({{std::string(d.algorithm_name()), std::string(d.hex())}});
}

// purl components: everything but unreserved characters percent-encoded.
std::string purl_escape(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) != 0 || c == '.' || c == '-' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += fmt::format("%{:02X}", c);
    }
  }
  return out;
}

// ID= of os-release, when it is a plain word (the purl namespace: debian, alpine, ubuntu).
std::string os_id(std::string_view os_release) {
  while (!os_release.empty()) {
    size_t nl = os_release.find('\n');
    std::string_view l = os_release.substr(0, nl);
    os_release.remove_prefix(nl == std::string_view::npos ? os_release.size() : nl + 1);
    if (!l.starts_with("ID=")) continue;
    std::string_view v = l.substr(3);
    if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
    bool plain = !v.empty() && v.size() <= 32 && std::all_of(v.begin(), v.end(), [](char c) {
      return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
    });
    return plain ? std::string(v) : "";
  }
  return "";
}

// The fields every SPDX package of the document has; kiste asserts nothing about licenses.
json spdx_package(const std::string& id, const std::string& name, const std::string& version) {
  return {{"SPDXID", id},
          {"name", name},
          {"versionInfo", version},
          {"supplier", "NOASSERTION"},
          {"downloadLocation", "NOASSERTION"},
          {"filesAnalyzed", false},
          {"licenseConcluded", "NOASSERTION"},
          {"licenseDeclared", "NOASSERTION"},
          {"copyrightText", "NOASSERTION"}};
}

json sha256_checksums(const image::Digest& d) {
  return json::array({{{"algorithm", "SHA256"}, {"checksumValue", std::string(d.hex())}}});
}

json package_json(const Package& p, const std::string& id, const std::string& distro) {
  const bool deb = p.kind == Package::Kind::Deb;
  std::string purl = fmt::format("pkg:{}/{}{}@{}", deb ? "deb" : "apk",
                                 distro.empty() ? "" : distro + "/", purl_escape(p.name),
                                 purl_escape(p.version));
  if (!p.architecture.empty()) purl += "?arch=" + purl_escape(p.architecture);
  json j = spdx_package(id, p.name, p.version);
  j["externalRefs"] = json::array({{{"referenceCategory", "PACKAGE-MANAGER"},
                                    {"referenceType", "purl"},
                                    {"referenceLocator", purl}}});
  if (!p.source.empty() && p.source != p.name) j["sourceInfo"] = "built from " + p.source;
  return j;
}

}  // namespace

std::string provenance_json(std::string_view name, const image::Digest& image,
                            const ProvenanceInputs& in) {
  json deps = json::array();
  for (const auto& b : in.base_images) {
    deps.push_back({{"name", b.ref}, {"digest", digest_json(b.digest)}});
  }
  json statement = {
      {"_type", "https://in-toto.io/Statement/v1"},
      {"subject", json::array({{{"name", std::string(name)}, {"digest", digest_json(image)}}})},
      {"predicateType", std::string(kSlsaProvenanceV1)},
      {"predicate",
       {{"buildDefinition",
         {{"buildType", std::string(kKisteBuildType)},
          {"externalParameters",
           {{"containerfile",
             {{"path", in.containerfile}, {"digest", digest_json(in.containerfile_digest)}}},
            {"buildArgs", in.build_args},
            {"target", in.target},
            {"platform", in.platform}}},
          {"internalParameters", {{"SOURCE_DATE_EPOCH", in.source_date_epoch}}},
          {"resolvedDependencies", deps}}},
        {"runDetails", {{"builder", {{"id", in.builder_id}}}}}}}};
  return statement.dump();
}

std::string rebuild_statement_json(std::string_view name, const image::Digest& image,
                                   const std::optional<image::Digest>& provenance,
                                   const ProvenanceInputs& in) {
  json predicate = {{"rebuilder", {{"id", in.builder_id}}},
                    {"result", "same digest"},
                    {"containerfile", {{"path", in.containerfile},
                                       {"digest", digest_json(in.containerfile_digest)}}},
                    {"buildArgs", in.build_args},
                    {"SOURCE_DATE_EPOCH", in.source_date_epoch}};
  if (provenance) predicate["provenance"] = {{"digest", digest_json(*provenance)}};
  json statement = {
      {"_type", "https://in-toto.io/Statement/v1"},
      {"subject", json::array({{{"name", std::string(name)}, {"digest", digest_json(image)}}})},
      {"predicateType", std::string(kRebuildPredicate)},
      {"predicate", predicate}};
  return statement.dump();
}

Result<ProvenanceInputs> parse_provenance(std::string_view text) {
  if (text.size() > kMaxProvenanceBytes) {
    return failf(Errc::Corrupt, "provenance is {} bytes (at most {})", text.size(),
                 kMaxProvenanceBytes);
  }
  json j = json::parse(text, nullptr, false);
  auto bad = [](std::string_view why) {
    return failf(Errc::Corrupt, "provenance: {}", why);
  };
  if (j.is_discarded() || !j.is_object()) return bad("not a JSON object");
  // json::value(key, "") throws when the key holds another type: hostile documents do that.
  auto string_at = [](const json& o, const char* key) {
    auto it = o.find(key);
    return it != o.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  if (string_at(j, "predicateType") != kSlsaProvenanceV1) return bad("not SLSA provenance v1");
  const json* def = nullptr;
  if (auto p = j.find("predicate"); p != j.end() && p->is_object()) {
    if (auto d = p->find("buildDefinition"); d != p->end() && d->is_object()) def = &*d;
  }
  if (def == nullptr || string_at(*def, "buildType") != kKisteBuildType) {
    return bad("not a kiste build (buildType)");
  }
  auto digest_of = [](const json& o) -> Result<image::Digest> {
    if (!o.is_object() || o.size() != 1 || !o.begin().value().is_string()) {
      return fail(Errc::Corrupt, "provenance: a digest is not {\"sha256\": HEX}");
    }
    return image::Digest::parse(o.begin().key() + ":" + o.begin().value().get<std::string>());
  };
  ProvenanceInputs in;
  const json ext = def->value("externalParameters", json::object());
  const json internal = def->value("internalParameters", json::object());
  const json deps = def->value("resolvedDependencies", json::array());
  if (!ext.is_object() || !internal.is_object() || !deps.is_array()) return bad("wrong types");
  const json cf = ext.value("containerfile", json::object());
  if (!cf.is_object() || !cf.value("path", json()).is_string()) return bad("no containerfile");
  in.containerfile = cf["path"].get<std::string>();
  // A file name in the context, never a path: a rebuild opens it there.
  if (in.containerfile.empty() || in.containerfile == "." || in.containerfile == ".." ||
      in.containerfile.find('/') != std::string::npos ||
      in.containerfile.find('\0') != std::string::npos) {
    return bad("the containerfile is not a plain file name");
  }
  KISTE_ASSIGN_OR_RETURN(in.containerfile_digest, digest_of(cf.value("digest", json())));
  const json args = ext.value("buildArgs", json::object());
  if (!args.is_object()) return bad("buildArgs is not an object");
  for (const auto& [k, v] : args.items()) {
    if (!v.is_string()) return bad("a build argument is not a string");
    in.build_args[k] = v.get<std::string>();
  }
  if (!ext.value("target", json("")).is_string() || !ext.value("platform", json("")).is_string()) {
    return bad("target or platform is not a string");
  }
  in.target = string_at(ext, "target");
  in.platform = string_at(ext, "platform");
  const json sde = internal.value("SOURCE_DATE_EPOCH", json(0));
  if (!sde.is_number_integer() || sde.get<int64_t>() < 0) return bad("SOURCE_DATE_EPOCH");
  in.source_date_epoch = sde.get<int64_t>();
  for (const auto& d : deps) {
    if (!d.is_object() || !d.value("name", json()).is_string()) return bad("a dependency has no name");
    KISTE_ASSIGN_OR_RETURN(image::Digest dd, digest_of(d.value("digest", json())));
    in.base_images.push_back({d["name"].get<std::string>(), std::move(dd)});
  }
  return in;
}

Result<std::string> sbom_json(const image::Store& store, const image::ManifestBlob& image,
                              const SbomInputs& in) {
  const image::Manifest& m = image.manifest();
  KISTE_ASSIGN_OR_RETURN(
      auto files, image::read_image_files(store, m,
                                          {std::string(kDpkgStatus), std::string(kApkInstalled),
                                           std::string(kOsRelease)},
                                          kMaxPackageDbBytes));
  std::string distro = files.contains(std::string(kOsRelease)) ? os_id(files[std::string(kOsRelease)]) : "";
  std::vector<Package> packages;
  for (auto [path, parse] : {std::pair{kDpkgStatus, &parse_dpkg_status},
                             std::pair{kApkInstalled, &parse_apk_installed}}) {
    auto it = files.find(std::string(path));
    if (it == files.end()) continue;
    KISTE_ASSIGN_OR_RETURN(PackageList list,
                           with_context(parse(it->second), fmt::format("read `/{}`", path)));
    packages.insert(packages.end(), list.packages.begin(), list.packages.end());
  }
  const std::string name = in.name.empty() ? image.digest.str() : in.name;
  json pkgs = json::array();
  json rels = json::array();
  json image_pkg = spdx_package("SPDXRef-Image", name, image.digest.str());
  image_pkg["primaryPackagePurpose"] = "CONTAINER";
  image_pkg["checksums"] = sha256_checksums(image.digest);
  pkgs.push_back(std::move(image_pkg));
  auto relate = [&](const std::string& from, const char* how, const std::string& to) {
    rels.push_back({{"spdxElementId", from}, {"relationshipType", how}, {"relatedSpdxElement", to}});
  };
  relate("SPDXRef-DOCUMENT", "DESCRIBES", "SPDXRef-Image");
  for (size_t i = 0; i < packages.size(); ++i) {
    std::string id = fmt::format("SPDXRef-Package-{}-{}",
                                 packages[i].kind == Package::Kind::Deb ? "deb" : "apk", i + 1);
    pkgs.push_back(package_json(packages[i], id, distro));
    relate("SPDXRef-Image", "CONTAINS", id);
  }
  json spdx_files = json::array();
  size_t n = 0;
  for (const auto& l : m.layers) {
    if (std::find(in.copied_layers.begin(), in.copied_layers.end(), l.digest) ==
        in.copied_layers.end()) {
      continue;
    }
    KISTE_ASSIGN_OR_RETURN(auto listed, image::layer_files(store, l, kMaxCopiedFiles));
    for (const auto& f : listed) {
      if (++n > kMaxCopiedFiles) {
        return failf(Errc::InvalidArgument, "the build copied more than {} files", kMaxCopiedFiles);
      }
      std::string id = fmt::format("SPDXRef-File-{}", n);
      spdx_files.push_back({{"SPDXID", id},
                            {"fileName", "./" + f.path},
                            {"checksums", sha256_checksums(f.digest)},
                            {"licenseConcluded", "NOASSERTION"},
                            {"copyrightText", "NOASSERTION"}});
      relate("SPDXRef-Image", "CONTAINS", id);
    }
  }
  json doc = {{"spdxVersion", "SPDX-2.3"},
              {"dataLicense", "CC0-1.0"},
              {"SPDXID", "SPDXRef-DOCUMENT"},
              {"name", name},
              {"documentNamespace",
               fmt::format("https://kiste.dev/spdx/{}-{}", image.digest.algorithm_name(),
                           image.digest.hex())},
              {"creationInfo",
               {{"created", image::rfc3339(in.source_date_epoch)},
                {"creators", json::array({"Tool: " + in.tool})}}},
              {"packages", pkgs},
              {"files", spdx_files},
              {"relationships", rels}};
  return doc.dump();
}

Result<image::Descriptor> attach_attestation(const image::Store& store,
                                             const image::Descriptor& subject,
                                             std::string_view media_type,
                                             const std::string& document,
                                             int64_t source_date_epoch) {
  image::Manifest m;
  m.media_type = std::string(mt::kOciManifest);
  m.artifact_type = std::string(media_type);
  KISTE_ASSIGN_OR_RETURN(m.config, store.put_blob("{}", mt::kOciEmpty));
  KISTE_ASSIGN_OR_RETURN(auto layer, store.put_blob(document, media_type));
  m.layers.push_back(std::move(layer));
  image::Descriptor subj{.media_type = subject.media_type, .digest = subject.digest,
                         .size = subject.size};
  m.subject = subj;
  m.annotations["org.opencontainers.image.created"] = image::rfc3339(source_date_epoch);
  KISTE_ASSIGN_OR_RETURN(image::Descriptor d,
                         store.put_blob(image::serialize_manifest(m), m.media_type));
  d.artifact_type = m.artifact_type;
  d.annotations = m.annotations;
  KISTE_TRY(store.add_referrer(d, subject.digest));
  return d;
}

}  // namespace kiste::builder
