#include <kiste/registry/release.hpp>

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>

#include <kiste/image/media_type.hpp>
#include <kiste/registry/access.hpp>
#include <kiste/registry/remote_image.hpp>

namespace kiste::registry {

namespace {

using image::Reference;

Result<ReleaseItem> make_item(std::string_view src, std::string_view dst,
                              std::string_view expect) {
  ReleaseItem it{.source = {},
                 .destination = {},
                 .expect_digest = std::nullopt,
                 .context = {},
                 .containerfile = {},
                 .build_args = {}};
  KISTE_ASSIGN_OR_RETURN(it.source, with_context(parse_docker_ref(src), "source"));
  KISTE_ASSIGN_OR_RETURN(it.destination, with_context(parse_docker_ref(dst), "destination"));
  if (!expect.empty()) {
    KISTE_ASSIGN_OR_RETURN(it.expect_digest,
                           with_context(image::Digest::parse(expect), "expect-digest"));
  }
  return it;
}

Status check_items(const std::vector<ReleaseItem>& items) {
  if (items.empty()) return failf(Errc::InvalidArgument, "the release names no image");
  std::set<std::string> seen;
  for (const auto& it : items) {
    if (!seen.insert(it.destination.str()).second) {
      return failf(Errc::InvalidArgument, "destination `{}` is named twice",
                   it.destination.str());
    }
  }
  return {};
}

Result<std::vector<ReleaseItem>> parse_json(std::string_view text) {
  auto doc = nlohmann::json::parse(text, nullptr, false);
  if (doc.is_discarded()) return failf(Errc::InvalidArgument, "not valid JSON");
  const nlohmann::json* list = &doc;
  if (doc.is_object()) {
    if (doc.size() != 1 || !doc.contains("images")) {
      return failf(Errc::InvalidArgument, "expected a list, or an object with only `images`");
    }
    list = &doc["images"];
  }
  if (!list->is_array()) return failf(Errc::InvalidArgument, "`images` is not a list");
  std::vector<ReleaseItem> out;
  for (size_t i = 0; i < list->size(); ++i) {
    const auto& e = (*list)[i];
    std::string where = fmt::format("image {}", i + 1);
    if (!e.is_object()) return failf(Errc::InvalidArgument, "{}: not an object", where);
    std::string fields[5];
    std::vector<std::string> build_args;
    for (const auto& [k, v] : e.items()) {
      if (k == "buildArgs") {
        if (!v.is_object()) {
          return failf(Errc::InvalidArgument, "{}: `buildArgs` is not an object", where);
        }
        for (const auto& [name, value] : v.items()) {
          if (name.empty() || name.find('=') != std::string::npos || !value.is_string()) {
            return failf(Errc::InvalidArgument,
                         "{}: `buildArgs`: `{}` is not a NAME with a string value", where, name);
          }
          build_args.push_back(name + "=" + value.get<std::string>());
        }
        continue;
      }
      int slot = k == "source"          ? 0
                 : k == "destination"   ? 1
                 : k == "expectDigest"  ? 2
                 : k == "context"       ? 3
                 : k == "containerfile" ? 4
                                        : -1;
      if (slot < 0) {
        return failf(Errc::InvalidArgument,
                     "{}: unknown key `{}` (source, destination, expectDigest, context, "
                     "containerfile, buildArgs)",
                     where, k);
      }
      if (!v.is_string()) return failf(Errc::InvalidArgument, "{}: `{}` is not a string", where, k);
      fields[slot] = v.get<std::string>();
    }
    if (fields[0].empty() || fields[1].empty()) {
      return failf(Errc::InvalidArgument, "{}: needs `source` and `destination`", where);
    }
    if (fields[3].empty() && (!fields[4].empty() || !build_args.empty())) {
      return failf(Errc::InvalidArgument, "{}: `containerfile` and `buildArgs` need a `context`",
                   where);
    }
    KISTE_ASSIGN_OR_RETURN(auto it, with_context(make_item(fields[0], fields[1], fields[2]), where));
    it.context = fields[3];
    it.containerfile = fields[4];
    it.build_args = std::move(build_args);
    out.push_back(std::move(it));
  }
  return out;
}

Result<std::vector<ReleaseItem>> parse_lines(std::string_view text) {
  std::vector<ReleaseItem> out;
  size_t lineno = 0;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    ++lineno;
    if (size_t hash = line.find('#'); hash != std::string_view::npos) line = line.substr(0, hash);
    std::vector<std::string_view> words;
    while (true) {
      size_t b = line.find_first_not_of(" \t\r");
      if (b == std::string_view::npos) break;
      line = line.substr(b);
      size_t e = line.find_first_of(" \t\r");
      words.push_back(line.substr(0, e));
      if (e == std::string_view::npos) break;
      line = line.substr(e);
    }
    if (words.empty()) continue;
    std::string where = fmt::format("line {}", lineno);
    if (words.size() < 2 || words.size() > 3) {
      return failf(Errc::InvalidArgument,
                   "{}: expected `SOURCE DESTINATION [EXPECT-DIGEST]`, got {} words", where,
                   words.size());
    }
    KISTE_ASSIGN_OR_RETURN(
        auto it, with_context(make_item(words[0], words[1], words.size() == 3 ? words[2] : ""),
                              where));
    out.push_back(std::move(it));
  }
  return out;
}

// Runs fn(i) for i in [0, n) on up to `jobs` threads. After a failure no new i is started; the
// error returned is the one of the lowest i that failed.
Status parallel_for(size_t n, int jobs, const std::function<Status(size_t)>& fn) {
  if (n == 0) return {};
  std::vector<std::optional<Error>> errors(n);
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  auto worker = [&] {
    for (;;) {
      size_t i = next.fetch_add(1);
      if (i >= n || failed.load()) return;
      auto r = fn(i);
      if (!r) {
        errors[i] = std::move(r).error();
        failed = true;
      }
    }
  };
  size_t threads = std::clamp<size_t>(static_cast<size_t>(std::max(jobs, 1)), 1, n);
  {
    std::vector<std::jthread> pool;
    for (size_t t = 1; t < threads; ++t) pool.emplace_back(worker);
    worker();
  }
  for (auto& e : errors) {
    if (e) return std::unexpected(std::move(*e));
  }
  return {};
}

// Blobs go to the destination as copy_image sends them; manifests are kept for the manifest
// phase (children before their index, as copy_image produces them).
class BlobsOnlySink final : public image::ImageSink {
 public:
  BlobsOnlySink(Client& c, Reference ref) : inner_(c, std::move(ref)) {}
  Result<bool> has_blob(const image::Descriptor& d) override { return inner_.has_blob(d); }
  Status put_blob(const image::Descriptor& d, image::BlobReader& r) override {
    return inner_.put_blob(d, r);
  }
  Result<uint64_t> resume_offset(const image::Descriptor& d) override {
    return inner_.resume_offset(d);
  }
  Result<bool> mount_blob(const image::Descriptor& d, const image::ImageSource& from) override {
    return inner_.mount_blob(d, from);
  }
  Status put_manifest(const image::ManifestBlob& m, bool top) override {
    (void)top;
    manifests_.push_back(m);
    return {};
  }
  [[nodiscard]] std::string describe() const override { return inner_.describe(); }
  void set_mount_first(bool on) { inner_.set_mount_first(on); }
  std::vector<image::ManifestBlob> take() { return std::move(manifests_); }

 private:
  RemoteSink inner_;
  std::vector<image::ManifestBlob> manifests_;
};

Result<Reference> at_digest(const Reference& r, const image::Digest& d) {
  return Reference::parse(fmt::format("{}/{}@{}", r.registry(), r.repository(), d.str()));
}

std::string item_context(const ReleaseItem& it) {
  return fmt::format("`{}` to `{}`", it.source.str(), it.destination.str());
}

}  // namespace

// One thing to copy: an image, one of its artifacts, or its copy into the index's repository.
struct ReleaseJob {
  enum class Kind { Image, Artifact, IndexCopy };
  Kind kind = Kind::Image;
  size_t item = 0;
  Client* src = nullptr;
  Client* dst = nullptr;
  std::unique_ptr<RemoteImage> image;
  image::Reference to;                    // repository; its tag is moved in the tag phase
  std::vector<image::ManifestBlob> manifests;  // after the blob phase
  image::CopyResult copy;
};

std::string_view phase_name(ReleasePhase p) {
  switch (p) {
    case ReleasePhase::Verify: return "verified";
    case ReleasePhase::Blobs: return "blobs";
    case ReleasePhase::Manifests: return "manifests";
    case ReleasePhase::Tags: return "tagged";
  }
  return "?";
}

Result<std::vector<ReleaseItem>> parse_release(std::string_view text) {
  size_t first = text.find_first_not_of(" \t\r\n");
  bool json = first != std::string_view::npos && (text[first] == '[' || text[first] == '{');
  KISTE_ASSIGN_OR_RETURN(auto items, json ? parse_json(text) : parse_lines(text));
  KISTE_TRY(check_items(items));
  return items;
}

Result<std::vector<ReleaseItem>> release_from_pairs(const std::vector<std::string>& args) {
  if (args.empty() || args.size() % 2 != 0) {
    return failf(Errc::InvalidArgument, "expected SRC DEST pairs, got {} argument{}", args.size(),
                 args.size() == 1 ? "" : "s");
  }
  std::vector<ReleaseItem> out;
  for (size_t i = 0; i < args.size(); i += 2) {
    KISTE_ASSIGN_OR_RETURN(auto it, with_context(make_item(args[i], args[i + 1], ""),
                                                 fmt::format("pair {}", i / 2 + 1)));
    out.push_back(std::move(it));
  }
  KISTE_TRY(check_items(out));
  return out;
}

struct Release::State {
  ReleaseOptions opts;
  std::vector<PlannedImage> plan;
  std::vector<ReleaseJob> jobs;
  std::mutex event_mu;
  bool ran = false;

  void emit(ReleaseEvent ev) {
    if (!opts.on_event) return;
    ev.count = plan.size();
    std::lock_guard l(event_mu);
    opts.on_event(ev);
  }
  ReleaseEvent event(ReleasePhase ph, size_t i) const {
    return {.phase = ph,
            .index = i,
            .count = 0,
            .source = &plan[i].item.source,
            .destination = &plan[i].item.destination,
            .digest = plan[i].digest,
            .blobs = {},
            .artifacts = static_cast<int>(plan[i].artifact_tags.size()) + plan[i].referrers};
  }
};

Release::Release(std::unique_ptr<State> s) : s_(std::move(s)) {}
Release::Release(Release&&) noexcept = default;
Release& Release::operator=(Release&&) noexcept = default;
Release::~Release() = default;
const std::vector<PlannedImage>& Release::plan() const { return s_->plan; }

Result<Release> Release::prepare(std::vector<ReleaseItem> items, const ClientFor& client_for,
                                 ReleaseOptions opts) {
  KISTE_TRY(check_items(items));
  if (opts.index) {
    for (const auto& it : items) {
      if (it.destination.registry() != opts.index->registry()) {
        return failf(Errc::InvalidArgument,
                     "release index `{}`: every destination must be in its registry, `{}` is not",
                     opts.index->str(), it.destination.str());
      }
    }
  }
  auto st = std::make_unique<State>();
  st->opts = std::move(opts);
  // Clients first, one per registry, looked up on this thread.
  std::vector<std::pair<Client*, Client*>> clients;
  for (const auto& it : items) {
    KISTE_ASSIGN_OR_RETURN(Client * s, client_for(it.source.registry()));
    KISTE_ASSIGN_OR_RETURN(Client * d, client_for(it.destination.registry()));
    clients.emplace_back(s, d);
  }
  // A registry that answered 404 to the referrers API has none: not asked again for the others.
  std::map<Client*, std::shared_ptr<std::atomic<bool>>> no_referrers;
  for (const auto& [sc, dc] : clients) {
    no_referrers.try_emplace(sc, std::make_shared<std::atomic<bool>>(false));
  }
  const size_t n = items.size();
  st->plan.resize(n);
  std::vector<std::vector<ReleaseJob>> per_item(n);
  const ReleaseOptions& o = st->opts;
  KISTE_TRY(parallel_for(n, o.jobs, [&](size_t i) -> Status {
    const ReleaseItem& it = items[i];
    auto [sc, dc] = clients[i];
    std::string ctx = item_context(it);
    KISTE_ASSIGN_OR_RETURN(auto img, with_context(RemoteImage::open(*sc, it.source), ctx));
    const image::Digest digest = img->top().digest;
    if (it.expect_digest && *it.expect_digest != digest) {
      return failf(Errc::InvalidArgument, "{}: source has digest {}, expected {}", ctx, digest,
                   *it.expect_digest);
    }
    if (it.destination.digest() && *it.destination.digest() != digest) {
      return failf(Errc::InvalidArgument, "{}: source has digest {}", ctx, digest);
    }
    if (o.gate) KISTE_TRY(with_context(o.gate(*sc, it, digest), ctx));
    PlannedImage& p = st->plan[i];
    p.item = it;
    p.digest = digest;
    p.media_type = img->top().media_type;
    std::vector<ReleaseJob>& jobs = per_item[i];
    if (o.copy_signatures) {
      // cosign-style tags and the referrers tag schema: sha256-<hex>[.sig|.att|.sbom]; one tags
      // list instead of a HEAD per suffix, HEADs when the registry will not list tags.
      auto tags = sc->list_tags(it.source.repository());
      // Of the image and, for an index, of each platform image (their attestations).
      std::vector<image::Digest> subjects{digest};
      if (img->top().is_index()) {
        for (const auto& c : img->top().index().manifests) subjects.push_back(c.digest);
      }
      for (const image::Digest& subject : subjects) {
        std::string base = fmt::format("{}-{}", subject.algorithm_name(), subject.hex());
        for (std::string_view suffix : {"", ".sig", ".att", ".sbom"}) {
          std::string tag = base + std::string(suffix);
          if (tags) {
            if (std::find(tags->names.begin(), tags->names.end(), tag) == tags->names.end()) {
              continue;
            }
          } else {
            KISTE_ASSIGN_OR_RETURN(auto h, with_context(sc->try_head_manifest(
                                                            it.source.repository(), tag),
                                                        ctx));
            if (!h) continue;
          }
          KISTE_ASSIGN_OR_RETURN(
              auto a, with_context(RemoteImage::open(*sc, it.source.without_digest().with_tag(tag)),
                                   ctx + ": " + tag));
          jobs.push_back({.kind = ReleaseJob::Kind::Artifact, .item = i, .src = sc, .dst = dc,
                          .image = std::move(a), .to = it.destination.without_digest().with_tag(tag),
                          .manifests = {}, .copy = {}});
          p.artifact_tags.push_back(tag);
        }
        std::optional<image::ManifestBlob> refs;
        std::atomic<bool>& none = *no_referrers.at(sc);
        if (!none.load()) {
          KISTE_ASSIGN_OR_RETURN(
              refs, with_context(sc->try_referrers(it.source.repository(), subject), ctx));
          if (!refs) none = true;
        }
        if (refs) {
          for (const auto& d : refs->index().manifests) {
            KISTE_ASSIGN_OR_RETURN(auto from, at_digest(it.source, d.digest));
            KISTE_ASSIGN_OR_RETURN(auto to, at_digest(it.destination, d.digest));
            KISTE_ASSIGN_OR_RETURN(auto a, with_context(RemoteImage::open(*sc, from),
                                                        ctx + ": referrer " + d.digest.str()));
            jobs.push_back({.kind = ReleaseJob::Kind::Artifact, .item = i, .src = sc, .dst = dc,
                            .image = std::move(a), .to = std::move(to), .manifests = {},
                            .copy = {}});
            ++p.referrers;
          }
        }
      }
    }
    if (o.index) {
      KISTE_ASSIGN_OR_RETURN(auto again, RemoteImage::open(*sc, it.source.without_digest().with_digest(digest)));
      KISTE_ASSIGN_OR_RETURN(auto to, at_digest(*o.index, digest));
      jobs.push_back({.kind = ReleaseJob::Kind::IndexCopy, .item = i, .src = sc, .dst = dc,
                      .image = std::move(again), .to = std::move(to), .manifests = {},
                      .copy = {}});
    }
    // The image itself last: it is what the tag phase moves last.
    KISTE_ASSIGN_OR_RETURN(auto to, at_digest(it.destination, digest));
    if (it.destination.tag()) to = it.destination.without_digest();
    jobs.insert(jobs.begin(), ReleaseJob{.kind = ReleaseJob::Kind::Image, .item = i, .src = sc, .dst = dc,
                                  .image = std::move(img), .to = std::move(to), .manifests = {},
                                  .copy = {}});
    st->emit(st->event(ReleasePhase::Verify, i));
    return {};
  }));
  for (auto& v : per_item) {
    for (auto& j : v) st->jobs.push_back(std::move(j));
  }
  return Release(std::move(st));
}

Result<ReleaseResult> Release::run() {
  State& st = *s_;
  KISTE_CHECK(!st.ran);
  st.ran = true;
  const ReleaseOptions& o = st.opts;
  auto& jobs = st.jobs;
  ReleaseResult res;
  std::mutex mu;

  // Blobs: every image's and artifact's blobs; manifests are held back.
  KISTE_TRY(with_context(
      parallel_for(jobs.size(), o.jobs, [&](size_t j) -> Status {
        ReleaseJob& job = jobs[j];
        BlobsOnlySink sink(*job.dst, job.to);
        sink.set_mount_first(job.src == job.dst || job.src->registry() == job.dst->registry());
        KISTE_ASSIGN_OR_RETURN(
            job.copy, with_context(image::copy_image(*job.image, sink,
                                                     {.all = true, .jobs = o.blob_jobs}),
                                   item_context(st.plan[job.item].item)));
        job.manifests = sink.take();
        {
          std::lock_guard l(mu);
          res.blobs.blobs_copied += job.copy.blobs_copied;
          res.blobs.blobs_mounted += job.copy.blobs_mounted;
          res.blobs.blobs_existing += job.copy.blobs_existing;
          res.blobs.bytes_copied += job.copy.bytes_copied;
          if (job.kind == ReleaseJob::Kind::Artifact) ++res.artifacts;
        }
        if (job.kind == ReleaseJob::Kind::Image) {
          auto ev = st.event(ReleasePhase::Blobs, job.item);
          ev.blobs = job.copy;
          st.emit(std::move(ev));
        }
        return {};
      }),
      "blob phase (no tag was moved)"));

  // Manifests by digest: an image's children before it (copy_image's order).
  KISTE_TRY(with_context(
      parallel_for(jobs.size(), o.jobs, [&](size_t j) -> Status {
        ReleaseJob& job = jobs[j];
        for (const auto& m : job.manifests) {
          KISTE_TRY(with_context(job.dst->put_manifest(job.to.repository(), m.digest.str(), m),
                                 fmt::format("{}: push {}@{}", item_context(st.plan[job.item].item),
                                             job.to.name(), m.digest)));
        }
        if (job.kind == ReleaseJob::Kind::Image) st.emit(st.event(ReleasePhase::Manifests, job.item));
        return {};
      }),
      "manifest phase (no tag was moved)"));

  // The release index: every image by digest in its repository, annotated.
  std::optional<image::ManifestBlob> index_blob;
  Client* index_client = nullptr;
  if (o.index) {
    image::Index idx;
    idx.media_type = std::string(image::media_type::kOciIndex);
    for (const auto& p : st.plan) {
      const ReleaseJob* job = nullptr;
      for (const auto& j : jobs) {
        if (j.kind == ReleaseJob::Kind::Image && &st.plan[j.item] == &p) job = &j;
      }
      KISTE_CHECK(job != nullptr);
      image::Descriptor d = job->copy.top.descriptor();
      d.annotations["org.opencontainers.image.ref.name"] = p.item.destination.str();
      d.annotations["dev.kiste.release.source"] = p.item.source.str();
      idx.manifests.push_back(std::move(d));
      index_client = job->dst;
    }
    KISTE_ASSIGN_OR_RETURN(auto blob, image::parse_manifest(image::serialize_index(idx),
                                                            image::media_type::kOciIndex));
    KISTE_TRY(with_context(
        index_client->put_manifest(o.index->repository(), blob.digest.str(), blob),
        fmt::format("push release index `{}` (no tag was moved)", o.index->str())));
    res.index_digest = blob.digest;
    index_blob = std::move(blob);
  }

  // Tags: artifacts' first (an image tag never points at an image whose signatures are not
  // there yet), then signing, then the images' tags, the index last.
  std::atomic<int> moved{0}, artifact_tags{0};
  auto move_tag = [&](ReleaseJob& job) -> Status {
    if (!job.to.tag()) return {};
    KISTE_ASSIGN_OR_RETURN(image::Digest d, job.dst->put_manifest(job.to.repository(),
                                                                  *job.to.tag(), job.copy.top));
    if (d != job.copy.top.digest) {
      return failf(Errc::Corrupt, "`{}` serves {} instead of {}", job.to.str(), d,
                   job.copy.top.digest);
    }
    ++(job.kind == ReleaseJob::Kind::Artifact ? artifact_tags : moved);
    return {};
  };
  const std::string tag_ctx = "tag phase";
  KISTE_TRY(with_context(parallel_for(jobs.size(), o.jobs,
                                      [&](size_t j) -> Status {
                                        if (jobs[j].kind != ReleaseJob::Kind::Artifact) return {};
                                        return with_context(move_tag(jobs[j]), jobs[j].to.str());
                                      }),
                         tag_ctx));
  if (o.sign) {
    KISTE_TRY(with_context(parallel_for(jobs.size(), o.jobs,
                                        [&](size_t j) -> Status {
                                          ReleaseJob& job = jobs[j];
                                          if (job.kind != ReleaseJob::Kind::Image) return {};
                                          const PlannedImage& p = st.plan[job.item];
                                          return o.sign(*job.dst, p.item.destination, p.digest);
                                        }),
                           tag_ctx));
  }
  KISTE_TRY(with_context(parallel_for(jobs.size(), o.jobs,
                                      [&](size_t j) -> Status {
                                        ReleaseJob& job = jobs[j];
                                        if (job.kind != ReleaseJob::Kind::Image) return {};
                                        KISTE_TRY(with_context(move_tag(job), job.to.str()));
                                        st.emit(st.event(ReleasePhase::Tags, job.item));
                                        return {};
                                      }),
                         tag_ctx));
  if (index_blob) {
    if (o.sign) KISTE_TRY(with_context(o.sign(*index_client, *o.index, index_blob->digest), tag_ctx));
    if (o.index->tag()) {
      KISTE_TRY(with_context(
          index_client->put_manifest(o.index->repository(), *o.index->tag(), *index_blob),
          fmt::format("{}: {}", tag_ctx, o.index->str())));
      ++moved;
    }
    ReleaseEvent ev{.phase = ReleasePhase::Tags,
                    .index = st.plan.size(),
                    .count = 0,
                    .source = nullptr,
                    .destination = &*o.index,
                    .digest = index_blob->digest,
                    .blobs = {},
                    .artifacts = 0};
    st.emit(std::move(ev));
  }
  res.tags_moved = moved.load();
  res.artifact_tags_moved = artifact_tags.load();
  res.images = st.plan;
  return res;
}

}  // namespace kiste::registry
