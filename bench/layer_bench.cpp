// kiste-layer-bench: drives the layer engine for bench/unpack.sh and RSS measurements.
//   kiste-layer-bench pack DIR OUT [gzip|zstd|none] [LEVEL] [THREADS]
//   kiste-layer-bench unpack LAYOUT[:TAG] DIR         (flattened, whiteouts applied)
//   kiste-layer-bench unpack-blob BLOB gzip|zstd|none DIR
#include <fcntl.h>

#include <cstdio>
#include <cstring>
#include <string>

#include <nlohmann/json.hpp>

#include <kiste/base/sys.hpp>
#include <kiste/image/layer_writer.hpp>
#include <kiste/image/snapshot.hpp>

using namespace kiste;
using namespace kiste::image;
namespace fs = std::filesystem;

namespace {

int die(const Error& e) {
  std::fprintf(stderr, "kiste-layer-bench: error: %s\n", e.to_string().c_str());
  return 1;
}

media_type::Compression parse_compression(std::string_view s) {
  if (s == "zstd") return media_type::Compression::Zstd;
  if (s == "none") return media_type::Compression::None;
  return media_type::Compression::Gzip;
}

BlobOpener file_opener(fs::path p) {
  return [p]() -> Result<std::unique_ptr<BlobReader>> {
    KISTE_ASSIGN_OR_RETURN(UniqueFd fd, sys::open(p, O_RDONLY));
    return std::make_unique<FdReader>(std::move(fd), p.native());
  };
}

Result<std::vector<LayerSource>> layout_layers(const std::string& ref) {
  using nlohmann::json;
  size_t colon = ref.rfind(':');
  fs::path layout = colon == std::string::npos ? ref : ref.substr(0, colon);
  std::string tag = colon == std::string::npos ? "latest" : ref.substr(colon + 1);
  auto blob = [&](const std::string& d) { return layout / "blobs/sha256" / d.substr(7); };
  auto load = [](const fs::path& p) -> Result<json> {
    KISTE_ASSIGN_OR_RETURN(std::string s, sys::read_file(p, 16 << 20));
    json j = json::parse(s, nullptr, false);
    if (j.is_discarded()) return failf(Errc::Corrupt, "{}: invalid JSON", quote(p.native()));
    return j;
  };
  KISTE_ASSIGN_OR_RETURN(json index, load(layout / "index.json"));
  std::string mdigest;
  for (auto& m : index["manifests"]) {
    if (m.value("annotations", json::object()).value("org.opencontainers.image.ref.name", "") == tag) {
      mdigest = m["digest"];
    }
  }
  if (mdigest.empty()) return failf(Errc::NotFound, "tag {} not in {}", quote(tag), quote(layout.native()));
  KISTE_ASSIGN_OR_RETURN(json manifest, load(blob(mdigest)));
  KISTE_ASSIGN_OR_RETURN(json config, load(blob(manifest["config"]["digest"])));
  std::vector<LayerSource> out;
  for (size_t i = 0; i < manifest["layers"].size(); ++i) {
    KISTE_ASSIGN_OR_RETURN(Digest diff_id, Digest::parse(config["rootfs"]["diff_ids"][i].get<std::string>()));
    out.push_back({file_opener(blob(manifest["layers"][i]["digest"])),
                   media_type::layer_compression(manifest["layers"][i]["mediaType"].get<std::string>()),
                   diff_id});
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: kiste-layer-bench pack|unpack|unpack-blob ...\n");
    return 2;
  }
  std::string cmd = argv[1];
  if (cmd == "pack" && argc >= 4) {
    auto fd = sys::open(argv[3], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (!fd) return die(fd.error());
    FdSink sink(fd->get(), argv[3]);
    PackOptions o{.compress = {.compression = parse_compression(argc > 4 ? argv[4] : "gzip"),
                               .level = argc > 5 ? std::atoi(argv[5]) : 0,
                               .threads = argc > 6 ? std::atoi(argv[6]) : 0}};
    auto epoch = source_date_epoch_from_env();
    if (!epoch) return die(epoch.error());
    o.source_date_epoch = *epoch;
    auto r = write_layer(argv[2], sink, o);
    if (!r) return die(r.error());
    std::printf("{\"digest\":\"%s\",\"size\":%llu,\"diff_id\":\"%s\",\"tar_size\":%llu,\"mediaType\":\"%s\"}\n",
                r->digest.str().c_str(), static_cast<unsigned long long>(r->size),
                r->diff_id.str().c_str(), static_cast<unsigned long long>(r->tar_size),
                r->media_type.c_str());
    return 0;
  }
  if (cmd == "unpack" && argc == 4) {
    auto layers = layout_layers(argv[2]);
    if (!layers) return die(layers.error());
    auto r = unpack_layers(*layers, argv[3]);
    if (!r) return die(r.error());
    return 0;
  }
  if (cmd == "unpack-blob" && argc == 5) {
    auto r = unpack_layers({{file_opener(argv[2]), parse_compression(argv[3]), std::nullopt}}, argv[4]);
    if (!r) return die(r.error());
    std::printf("%s entries=%llu bytes=%llu\n", (*r)[0].diff_id.str().c_str(),
                static_cast<unsigned long long>((*r)[0].entries),
                static_cast<unsigned long long>((*r)[0].bytes));
    return 0;
  }
  std::fprintf(stderr, "kiste-layer-bench: bad arguments\n");
  return 2;
}
