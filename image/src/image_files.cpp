#include <kiste/image/image_files.hpp>

#include <algorithm>
#include <set>

#include <kiste/image/blob_io.hpp>
#include <kiste/image/layer_extract.hpp>
#include <kiste/image/media_type.hpp>

namespace kiste::image {

namespace {

constexpr std::string_view kWhiteout = ".wh.";
constexpr std::string_view kOpaque = ".wh..wh..opq";

bool under(const std::string& path, const std::string& dir) {
  return dir.empty() || path == dir || (path.starts_with(dir) && path[dir.size()] == '/');
}

Result<Digest> walk_layer(const Store& store, const Descriptor& layer,
                          const LayerEntryVisitor& visit) {
  KISTE_ASSIGN_OR_RETURN(auto blob, store.open_blob(layer.digest));
  return with_context(
      read_layer_entries(*blob, media_type::layer_compression(layer.media_type), visit),
      fmt::format("layer {}", layer.digest));
}

}  // namespace

Result<std::map<std::string, std::string>> read_image_files(const Store& store,
                                                            const Manifest& image,
                                                            const std::vector<std::string>& paths,
                                                            size_t max_bytes) {
  const std::set<std::string> wanted(paths.begin(), paths.end());
  std::map<std::string, std::string> have;
  for (const Descriptor& layer : image.layers) {
    // A layer's whiteouts hide the lower layers only, whatever their place in the tar.
    std::map<std::string, std::optional<std::string>> mine;  // nullopt: not a regular file
    std::vector<std::string> hidden;                          // whited-out paths and opaque dirs
    KISTE_TRY(walk_layer(store, layer, [&](const LayerEntry& e, BlobReader& data) -> Status {
      size_t slash = e.path.rfind('/');
      std::string dir = slash == std::string::npos ? "" : e.path.substr(0, slash);
      std::string base = slash == std::string::npos ? e.path : e.path.substr(slash + 1);
      if (base == kOpaque) {
        hidden.push_back(dir);
        return {};
      }
      if (base.starts_with(kWhiteout)) {
        if (base.size() == kWhiteout.size()) return {};  // a bare `.wh.` names nothing
        hidden.push_back((dir.empty() ? "" : dir + "/") + base.substr(kWhiteout.size()));
        return {};
      }
      for (const auto& w : wanted) {
        // A non-directory entry over a parent of a wanted file replaces that parent.
        if (e.type != LayerEntry::Type::Dir && w != e.path && under(w, e.path)) mine[w] = std::nullopt;
      }
      if (!wanted.contains(e.path)) return {};
      if (e.type != LayerEntry::Type::File) {
        mine[e.path] = std::nullopt;
        return {};
      }
      if (e.size < 0 || static_cast<uint64_t>(e.size) > max_bytes) {
        return failf(Errc::Corrupt, "{} is {} bytes (at most {})", quote("/" + e.path), e.size,
                     max_bytes);
      }
      KISTE_ASSIGN_OR_RETURN(std::string bytes, read_bounded(data, max_bytes, e.path));
      mine[e.path] = std::move(bytes);
      return {};
    }));
    for (const auto& h : hidden) {
      std::erase_if(have, [&](const auto& kv) { return under(kv.first, h); });
    }
    for (auto& [p, v] : mine) {
      if (v) {
        have[p] = std::move(*v);
      } else {
        have.erase(p);
      }
    }
  }
  return have;
}

Result<std::vector<LayerFile>> layer_files(const Store& store, const Descriptor& layer,
                                           size_t max_files) {
  std::vector<LayerFile> out;
  KISTE_TRY(walk_layer(store, layer, [&](const LayerEntry& e, BlobReader& data) -> Status {
    if (e.type != LayerEntry::Type::File) return {};
    if (out.size() >= max_files) {
      return failf(Errc::Corrupt, "more than {} files", max_files);
    }
    KISTE_ASSIGN_OR_RETURN(HashedStream h, hash_stream(data));
    KISTE_ASSIGN_OR_RETURN(Digest d, Digest::parse(h.digest));
    out.push_back({.path = e.path, .digest = std::move(d), .size = static_cast<int64_t>(h.size)});
    return {};
  }));
  return out;
}

namespace {

struct EntrySummary {
  LayerEntry entry;
  std::optional<Digest> content;  // regular files
};

Result<std::vector<EntrySummary>> summarize(BlobReader& r, media_type::Compression c) {
  constexpr size_t kMaxEntries = 1'000'000;
  std::vector<EntrySummary> out;
  KISTE_TRY(read_layer_entries(r, c, [&](const LayerEntry& e, BlobReader& data) -> Status {
    if (out.size() >= kMaxEntries) return failf(Errc::Corrupt, "more than {} entries", kMaxEntries);
    EntrySummary s{.entry = e};
    if (e.type == LayerEntry::Type::File) {
      KISTE_ASSIGN_OR_RETURN(HashedStream h, hash_stream(data));
      KISTE_ASSIGN_OR_RETURN(s.content, Digest::parse(h.digest));
    }
    out.push_back(std::move(s));
    return {};
  }));
  return out;
}

std::string type_name(LayerEntry::Type t) {
  switch (t) {
    case LayerEntry::Type::File: return "file";
    case LayerEntry::Type::Dir: return "directory";
    case LayerEntry::Type::Symlink: return "symlink";
    case LayerEntry::Type::Hardlink: return "hard link";
    case LayerEntry::Type::Other: return "special file";
  }
  return "entry";
}

std::optional<std::string> entry_difference(const EntrySummary& a, const EntrySummary& b) {
  const LayerEntry& x = a.entry;
  const LayerEntry& y = b.entry;
  if (x.type != y.type) return fmt::format("type {} vs {}", type_name(x.type), type_name(y.type));
  if (a.content != b.content) {
    return fmt::format("content {} ({} bytes) vs {} ({} bytes)", a.content->str(), x.size,
                       b.content->str(), y.size);
  }
  if (x.link != y.link) return fmt::format("link target {} vs {}", quote(x.link), quote(y.link));
  if (x.mode != y.mode) return fmt::format("mode {:04o} vs {:04o}", x.mode, y.mode);
  if (x.uid != y.uid || x.gid != y.gid) {
    return fmt::format("owner {}:{} vs {}:{}", x.uid, x.gid, y.uid, y.gid);
  }
  if (x.mtime != y.mtime) return fmt::format("mtime {} vs {}", x.mtime, y.mtime);
  return std::nullopt;
}

}  // namespace

Result<std::optional<EntryDifference>> first_entry_difference(BlobReader& a,
                                                               media_type::Compression ca,
                                                               BlobReader& b,
                                                               media_type::Compression cb) {
  KISTE_ASSIGN_OR_RETURN(auto left, summarize(a, ca));
  KISTE_ASSIGN_OR_RETURN(auto right, summarize(b, cb));
  const size_t n = std::min(left.size(), right.size());
  for (size_t i = 0; i < n; ++i) {
    const std::string shown = "/" + left[i].entry.path;
    if (left[i].entry.path != right[i].entry.path) {
      return EntryDifference{.path = shown,
                             .what = fmt::format("the other side has {} here",
                                                 quote("/" + right[i].entry.path))};
    }
    if (auto d = entry_difference(left[i], right[i])) {
      return EntryDifference{.path = shown, .what = std::move(*d)};
    }
  }
  if (left.size() != right.size()) {
    const bool left_longer = left.size() > right.size();
    const auto& extra = left_longer ? left[n] : right[n];
    return EntryDifference{.path = "/" + extra.entry.path,
                           .what = left_longer ? "only in the first" : "only in the second"};
  }
  return std::nullopt;
}

}  // namespace kiste::image
