#include <kiste/image/store_ops.hpp>

#include <kiste/image/inspect.hpp>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>

#include <algorithm>
#include <set>

#include <kiste/base/disk_usage.hpp>
#include <kiste/base/sys.hpp>
#include <kiste/image/image_config.hpp>
#include <kiste/image/media_type.hpp>
#include <kiste/image/store_layers.hpp>

#include "json_util.hpp"

namespace kiste::image {

namespace fs = std::filesystem;
using detail::json;

namespace {

void walk(const Store& store, const Descriptor& d, std::set<Digest>& seen,
          std::vector<std::string>* missing, int indexes_above = 0) {
  if (!seen.insert(d.digest).second) return;
  if (!media_type::is_manifest(d.media_type) && !media_type::is_index(d.media_type)) {
    if (missing && !store.has_blob(d.digest)) {
      missing->push_back(fmt::format("blob {} ({}) is missing", d.digest, d.media_type));
    }
    return;
  }
  auto m = read_manifest(store, d);
  if (!m) {
    if (missing) missing->push_back(m.error().to_string());
    return;
  }
  if (auto deep = ManifestWalk::check_depth(*m, indexes_above); !deep) {
    if (missing) missing->push_back(deep.error().to_string());
    return;
  }
  if (m->is_index()) {
    for (const auto& c : m->index().manifests) walk(store, c, seen, missing, indexes_above + 1);
  } else {
    walk(store, m->manifest().config, seen, missing);
    for (const auto& l : m->manifest().layers) walk(store, l, seen, missing);
  }
}

}  // namespace

Result<std::vector<Digest>> reachable_blobs(const Store& store, std::vector<std::string>* missing) {
  KISTE_ASSIGN_OR_RETURN(auto entries, store.entries());
  std::set<Digest> seen;
  for (const auto& e : entries) walk(store, e.manifest, seen, missing);
  // Referrers of what is reached are reached too (an SBOM of an attestation as well).
  KISTE_ASSIGN_OR_RETURN(auto referrers, store.all_referrers());
  for (bool grew = true; grew;) {
    grew = false;
    for (const auto& [subject, artifact] : referrers) {
      if (!seen.contains(subject) || seen.contains(artifact.digest)) continue;
      walk(store, artifact, seen, missing);
      grew = true;
    }
  }
  return std::vector<Digest>(seen.begin(), seen.end());
}

Result<std::vector<std::pair<Digest, Descriptor>>> image_referrers(const Store& store,
                                                                   const Descriptor& top) {
  std::vector<Digest> subjects{top.digest};
  if (media_type::is_index(top.media_type)) {
    KISTE_ASSIGN_OR_RETURN(ManifestBlob m, read_manifest(store, top));
    for (const auto& c : m.index().manifests) subjects.push_back(c.digest);
  }
  std::vector<std::pair<Digest, Descriptor>> out;
  for (const auto& s : subjects) {
    KISTE_ASSIGN_OR_RETURN(auto refs, store.referrers(s));
    for (auto& r : refs) out.emplace_back(s, std::move(r));
  }
  return out;
}

Result<Digest> image_id(const Store& store, const Descriptor& manifest) {
  KISTE_ASSIGN_OR_RETURN(ManifestBlob m, read_manifest(store, manifest));
  if (m.is_index()) return m.digest;
  return m.manifest().config.digest;
}

Result<std::vector<ImageSummary>> list_images(const Store& store) {
  KISTE_ASSIGN_OR_RETURN(auto entries, store.entries());
  std::vector<ImageSummary> out;
  for (const auto& e : entries) {
    ImageSummary s;
    s.name = e.name;
    s.manifest_digest = e.manifest.digest;
    s.image_id = e.manifest.digest;
    s.repository = "<none>";
    s.tag = "<none>";
    // Unnamed images are kept under their digest (keep_unnamed): `<none>`, as docker shows them.
    const bool unnamed = Digest::parse(e.name).has_value();
    if (auto ref = Reference::parse(e.name, {.default_tag = false}); ref && !unnamed) {
      s.repository = ref->without_digest().with_tag("x").familiar();
      s.repository.resize(s.repository.size() - 2);  // drop ":x"
      if (ref->tag()) s.tag = *ref->tag();
    }
    s.size = e.manifest.size;
    auto m = read_manifest(store, e.manifest);
    if (m && !m->is_index()) {
      const Manifest& man = m->manifest();
      s.image_id = man.config.digest;
      s.size += man.config.size;
      for (const auto& l : man.layers) s.size += l.size;
      s.compressed_size = s.size;
      if (auto bytes = store.read_blob(man.config.digest); bytes) {
        if (auto cfg = ImageConfig::parse(*bytes); cfg) {
          s.created = cfg->created;
          // Docker's SIZE: the layers unpacked.
          if (cfg->diff_ids.size() == man.layers.size()) {
            int64_t unpacked = 0;
            bool known = true;
            for (size_t i = 0; i < man.layers.size() && known; ++i) {
              auto n = unpacked_size(store, man.layers[i], cfg->diff_ids[i]);
              known = n.has_value();
              if (n) unpacked += *n;
            }
            if (known) s.size = unpacked;
          }
        }
      }
    }
    out.push_back(std::move(s));
  }
  return out;
}

std::string images_json(const std::vector<ImageSummary>& list) {
  json arr = json::array();
  for (const auto& s : list) {
    arr.push_back(json{{"name", s.name},
                       {"repository", s.repository},
                       {"tag", s.tag},
                       {"id", s.image_id.str()},
                       {"digest", s.manifest_digest.str()},
                       {"created", s.created},
                       {"size", s.size},
                       {"compressed_size", s.compressed_size}});
  }
  return arr.dump();
}

Result<std::string> inspect_image(const Store& store, const StoreEntry& entry) {
  KISTE_ASSIGN_OR_RETURN(ManifestBlob top, read_manifest(store, entry.manifest));
  InspectInput in{.manifest = top};
  if (top.is_index()) {
    // The host's image, as `run` would pick it; the index itself is listed under Index.
    KISTE_ASSIGN_OR_RETURN(Descriptor d,
                           with_context(select_platform(top.index(), Platform::host()),
                                        fmt::format("inspect {}", quote(entry.name))));
    KISTE_ASSIGN_OR_RETURN(in.manifest, read_manifest(store, d));
    in.index = std::move(top);
  }
  if (in.manifest.is_index()) {
    return failf(Errc::Unsupported, "inspect {}: nested index", quote(entry.name));
  }
  KISTE_ASSIGN_OR_RETURN(in.config, store.read_blob(in.manifest.manifest().config.digest));
  KISTE_ASSIGN_OR_RETURN(auto all, list_images(store));
  for (const auto& s : all) {
    if (s.manifest_digest != entry.manifest.digest) continue;
    if (s.name == entry.name) in.unpacked_size = s.size;  // unpacked when known, else stored
    if (s.repository == "<none>") continue;
    if (s.tag != "<none>") in.repo_tags.push_back(s.repository + ":" + s.tag);
    std::string rd = s.repository + "@" + entry.manifest.digest.str();
    if (std::find(in.repo_digests.begin(), in.repo_digests.end(), rd) == in.repo_digests.end()) {
      in.repo_digests.push_back(std::move(rd));
    }
  }
  return inspect_json(in);
}

Result<StoreUsage> store_usage(const Store& store) {
  StoreUsage u;
  KISTE_ASSIGN_OR_RETURN(auto entries, store.entries());
  std::set<Digest> images;
  for (const auto& e : entries) images.insert(e.manifest.digest);
  u.images.count = static_cast<int64_t>(images.size());
  KISTE_ASSIGN_OR_RETURN(auto reachable, reachable_blobs(store, nullptr));
  std::set<Digest> keep(reachable.begin(), reachable.end());
  KISTE_ASSIGN_OR_RETURN(auto all, store.list_blobs());
  for (const auto& d : all) {
    std::error_code ec;
    auto size = fs::file_size(store.blob_path(d), ec);
    if (ec) continue;
    StoreUsage::Part& part = keep.contains(d) ? u.images : u.unused_blobs;
    part.bytes += static_cast<int64_t>(size);
    if (!keep.contains(d)) ++part.count;
  }
  // Each directory's top-level entries are what it counts (layers, containers, volumes, …).
  auto dir = [&](const fs::path& p, StoreUsage::Part& part,
                 const fs::path& counted = {}) -> Status {
    KISTE_ASSIGN_OR_RETURN(TreeUsage t, tree_usage(p));
    part.bytes = t.bytes;
    std::error_code ec;
    for (auto it = fs::directory_iterator(counted.empty() ? p : counted, ec);
         !ec && it != fs::directory_iterator(); it.increment(ec)) {
      if (it->path().filename().native().starts_with(".")) continue;
      if (counted.empty() || it->is_regular_file(ec)) ++part.count;
    }
    return {};
  };
  const RootLayout root = store.layout();
  KISTE_TRY(dir(root.snapshots(), u.snapshots));
  KISTE_TRY(dir(root.cache(), u.build_cache, root.build_cache()));  // counts its records
  KISTE_TRY(dir(root.containers(), u.containers));
  KISTE_TRY(dir(root.volumes(), u.volumes));
  KISTE_TRY(dir(root.tmp(), u.tmp));
  return u;
}

Result<int> remove_stale_tmp(const Store& store) {
  int removed = 0;
  std::error_code ec;
  for (auto it = fs::directory_iterator(store.tmp_dir(), ec); !ec && it != fs::directory_iterator();
       it.increment(ec)) {
    const fs::path& p = it->path();
    // Every writer holds LOCK_EX on what it owns: a BlobWriter or staging file on the file, a
    // TempDir (tmp/build-*, tmp/snapshot-*) on the directory. If we can take it, the owner is
    // gone (killed, or a kiste that predates the locks).
    int fd = ::open(p.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) continue;
    UniqueFd guard(fd);
    struct stat st {};
    if (::fstat(fd, &st) != 0 || ::flock(fd, LOCK_EX | LOCK_NB) != 0) continue;
    if (S_ISDIR(st.st_mode)) {
      // A leftover mount inside is not crossed: the tree stays and is reported by the caller's
      // next df, rather than emptied through the mount.
      if (auto r = sys::remove_tree(p); !r) continue;
      ++removed;
    } else if (::unlink(p.c_str()) == 0) {
      ++removed;
    }
  }
  if (ec) return std::unexpected(sys_error_code(ec.value(), "read directory", store.tmp_dir().native()));
  return removed;
}

Result<PruneReport> prune(const Store& store, const PruneOptions& opts) {
  KISTE_ASSIGN_OR_RETURN(FileLock gc, store.gc_lock());
  if (opts.while_locked) KISTE_TRY(opts.while_locked());
  std::vector<fs::path> in_use;
  if (opts.snapshots_in_use) {
    KISTE_ASSIGN_OR_RETURN(in_use, opts.snapshots_in_use());
  }
  PruneReport rep;
  std::vector<std::string> missing;
  KISTE_ASSIGN_OR_RETURN(auto keep_list, reachable_blobs(store, &missing));
  std::set<Digest> keep(keep_list.begin(), keep_list.end());
  // Referrers whose image is gone go with it (their entries first, then their blobs).
  KISTE_TRY(store.remove_referrers_unless([&](const Digest& s) { return keep.contains(s); }));
  KISTE_ASSIGN_OR_RETURN(auto all, store.list_blobs());
  for (const auto& d : all) {
    if (keep.contains(d)) continue;
    fs::path p = store.blob_path(d);
    std::error_code ec;
    auto size = fs::file_size(p, ec);
    KISTE_TRY(sys::unlink(p));
    ++rep.blobs_removed;
    if (!ec) rep.bytes_freed += static_cast<int64_t>(size);
  }
  KISTE_ASSIGN_OR_RETURN(rep.tmp_removed, remove_stale_tmp(store));
  KISTE_ASSIGN_OR_RETURN(rep.snapshots_removed, prune_snapshots(store, in_use));
  return rep;
}

Result<FsckReport> fsck(const Store& store) {
  FsckReport rep;
  KISTE_ASSIGN_OR_RETURN(auto all, store.list_blobs());
  fs::path corrupt_dir = store.root() / "corrupt";
  for (const auto& d : all) {
    ++rep.blobs_checked;
    auto r = store.open_blob(d);
    if (!r) {
      rep.problems.push_back(r.error().to_string());
      continue;
    }
    auto hs = hash_stream(**r, d.algorithm() == DigestAlgorithm::Sha512);
    if (!hs) {
      rep.problems.push_back(hs.error().to_string());
      continue;
    }
    const std::string& got = hs->digest;
    if (got != d.str()) {
      KISTE_TRY(sys::mkdir_all(corrupt_dir));
      KISTE_TRY(sys::rename(store.blob_path(d), corrupt_dir / std::string(d.hex())));
      rep.moved_aside.push_back(d);
      rep.problems.push_back(fmt::format("blob {} is corrupt (content hashes to {}); moved to {}",
                                         d, got, quote((corrupt_dir / std::string(d.hex())).native())));
    }
  }
  // Stray files under blobs/ that are not digests.
  std::error_code ec;
  for (auto it = fs::directory_iterator(store.blobs_dir() / "sha256", ec);
       !ec && it != fs::directory_iterator(); it.increment(ec)) {
    if (!Digest::parse("sha256:" + it->path().filename().native())) {
      rep.problems.push_back(fmt::format("stray file {} in blobs/", quote(it->path().native())));
    }
  }
  std::vector<std::string> missing;
  KISTE_TRY(reachable_blobs(store, &missing));
  for (auto& m : missing) rep.problems.push_back(std::move(m));
  KISTE_ASSIGN_OR_RETURN(rep.tmp_removed, remove_stale_tmp(store));
  return rep;
}

}  // namespace kiste::image
