// SnapshotStore: unpack once, atomically, nothing left behind on failure; unpack_layers.

#include <sys/stat.h>

#include <atomic>
#include <map>
#include <filesystem>
#include <thread>

#include <gtest/gtest.h>

#include <kiste/image/snapshot.hpp>
#include "temp_tree.hpp"

#include "tar_builder.hpp"
#include "tree_listing.hpp"

namespace kiste::image {
namespace {

namespace fs = std::filesystem;
using testing::TarBuilder;

std::vector<std::string> names_in(const fs::path& d) {
  std::vector<std::string> out;
  for (auto& e : fs::directory_iterator(d)) out.push_back(e.path().filename());
  std::sort(out.begin(), out.end());
  return out;
}

BlobOpener opener(std::string tar, std::atomic<int>* calls = nullptr) {
  return [tar = std::move(tar), calls]() -> Result<std::unique_ptr<BlobReader>> {
    if (calls) ++*calls;
    std::this_thread::yield();
    return std::make_unique<StringReader>(tar);
  };
}

TEST(SnapshotStore, EnsureUnpacksOnceAndReuses) {
  testing::TempTree t;
  auto store = SnapshotStore::open(t.path());
  ASSERT_TRUE(store);
  TarBuilder b;
  b.dir("etc").file("etc/os-release", "ID=kiste\n").file(".wh.gone", "");
  std::string tar = b.finish();
  Digest id = Digest::of(tar);
  std::atomic<int> calls = 0;
  auto p = store->ensure(id, media_type::Compression::None, opener(tar, &calls));
  ASSERT_TRUE(p) << p.error().to_string();
  EXPECT_EQ(*p, t.path() / "snapshots" / std::string(id.hex()));
  EXPECT_TRUE(fs::is_regular_file(*p / "etc/os-release"));
  EXPECT_EQ(fs::status(*p).permissions(), fs::perms(0755));
  auto again = store->ensure(id, media_type::Compression::None, opener(tar, &calls));
  ASSERT_TRUE(again);
  EXPECT_EQ(calls.load(), 1);
  auto listed = store->list();
  ASSERT_TRUE(listed);
  EXPECT_EQ(*listed, std::vector<Digest>{id});
  EXPECT_TRUE(names_in(t / "tmp").empty());
}

TEST(SnapshotStore, ConcurrentEnsureUnpacksOnce) {
  testing::TempTree t;
  auto store = SnapshotStore::open(t.path());
  ASSERT_TRUE(store);
  TarBuilder b;
  for (int i = 0; i < 200; ++i) b.file("f" + std::to_string(i), std::string(1000, 'x'));
  std::string tar = b.finish();
  Digest id = Digest::of(tar);
  std::atomic<int> calls = 0;
  std::vector<std::thread> threads;
  std::atomic<int> ok = 0;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] {
      auto s = SnapshotStore::open(t.path());
      if (s && s->ensure(id, media_type::Compression::None, opener(tar, &calls))) ++ok;
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(ok.load(), 4);
  EXPECT_EQ(calls.load(), 1);
}

TEST(SnapshotStore, CorruptOrMismatchedLayerLeavesNothing) {
  testing::TempTree t;
  auto store = SnapshotStore::open(t.path());
  ASSERT_TRUE(store);
  TarBuilder b;
  b.file("a", "1");
  std::string tar = b.finish();
  Digest wrong = Digest::of("something else");
  auto r = store->ensure(wrong, media_type::Compression::None, opener(tar));
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().to_string().find("diff_id mismatch"), std::string::npos) << r.error().to_string();
  EXPECT_NE(r.error().to_string().find(wrong.str()), std::string::npos);
  Digest id = Digest::of(tar);
  r = store->ensure(id, media_type::Compression::Gzip, opener(tar));  // not gzip: corrupt
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::Corrupt);
  r = store->ensure(id, media_type::Compression::None, []() -> Result<std::unique_ptr<BlobReader>> {
    return fail(Errc::NotFound, "blob missing");
  });
  ASSERT_FALSE(r);
  EXPECT_TRUE(names_in(t / "tmp").empty());
  auto listed = store->list();
  ASSERT_TRUE(listed);
  EXPECT_TRUE(listed->empty());
  for (auto& n : names_in(t / "snapshots")) EXPECT_TRUE(n.starts_with(".")) << n;
}

TEST(SnapshotStore, RemoveDeletesAtomically) {
  testing::TempTree t;
  auto store = SnapshotStore::open(t.path());
  ASSERT_TRUE(store);
  TarBuilder b;
  b.dir("d").file("d/x", "1");
  std::string tar = b.finish();
  Digest id = Digest::of(tar);
  ASSERT_TRUE(store->ensure(id, media_type::Compression::None, opener(tar)));
  ASSERT_TRUE(store->remove(id));
  EXPECT_FALSE(fs::exists(store->path_of(id)));
  EXPECT_TRUE(store->list()->empty());
  EXPECT_TRUE(names_in(t / "tmp").empty());
  EXPECT_TRUE(store->remove(id));  // missing is fine
}

TEST(UnpackLayers, AppliesInOrderAndNamesTheFailingLayer) {
  testing::TempTree t;
  TarBuilder l1, l2, l3;
  l1.dir("d").file("d/a", "1").file("d/b", "2");
  l2.file("d/.wh.a", "").file("c", "3");
  l3.file("c", "4");
  std::string t1 = l1.finish(), t2 = l2.finish(), t3 = l3.finish();
  std::vector<LayerSource> layers = {
      {opener(t1), media_type::Compression::None, Digest::of(t1)},
      {opener(t2), media_type::Compression::None, Digest::of(t2)},
      {opener(t3), media_type::Compression::None, std::nullopt}};
  auto r = unpack_layers(layers, t / "rootfs");
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(r->size(), 3u);
  EXPECT_FALSE(fs::exists(t / "rootfs/d/a"));
  EXPECT_TRUE(fs::exists(t / "rootfs/d/b"));
  EXPECT_EQ(fs::file_size(t / "rootfs/c"), 1u);
  layers[1].diff_id = Digest::of("nope");
  auto bad = unpack_layers(layers, t / "rootfs2");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().to_string().find("layer 2 of 3"), std::string::npos) << bad.error().to_string();
}

}  // namespace
}  // namespace kiste::image

namespace kiste::image {
namespace {

// A real (in-memory) ImageSource: serves blobs by digest.
class MemorySource final : public ImageSource {
 public:
  explicit MemorySource(std::map<std::string, std::string> blobs) : blobs_(std::move(blobs)) {}
  const ManifestBlob& top() const override { std::abort(); }
  Result<ManifestBlob> fetch_manifest(const Descriptor&) override {
    return fail(Errc::Unsupported, "no manifests");
  }
  Result<std::unique_ptr<BlobReader>> open_blob(const Descriptor& d) override {
    auto it = blobs_.find(d.digest.str());
    if (it == blobs_.end()) return failf(Errc::NotFound, "blob {}", d.digest);
    return std::make_unique<StringReader>(it->second);
  }
  std::string describe() const override { return "memory"; }

 private:
  std::map<std::string, std::string> blobs_;
};

TEST(ImageLayers, BuildsSourcesAndChecksCounts) {
  testing::TempTree t;
  TarBuilder l1, l2;
  l1.file("a", "1");
  l2.file(".wh.a", "").file("b", "2");
  std::string t1 = l1.finish(), t2 = l2.finish();
  MemorySource src({{Digest::of(t1).str(), t1}, {Digest::of(t2).str(), t2}});
  Manifest m;
  m.layers = {Descriptor{.media_type = std::string(media_type::kOciLayerTar), .digest = Digest::of(t1)},
              Descriptor{.media_type = std::string(media_type::kOciLayerTar), .digest = Digest::of(t2)}};
  ImageConfig c;
  c.diff_ids = {Digest::of(t1), Digest::of(t2)};
  auto layers = image_layers(src, m, c);
  ASSERT_TRUE(layers) << layers.error().to_string();
  auto r = unpack_layers(*layers, t / "rootfs");
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_FALSE(fs::exists(t / "rootfs/a"));
  EXPECT_TRUE(fs::exists(t / "rootfs/b"));
  c.diff_ids.pop_back();
  EXPECT_FALSE(image_layers(src, m, c));
  c.diff_ids = {Digest::of(t2), Digest::of(t1)};  // swapped: the diff_id check catches it
  auto swapped = image_layers(src, m, c);
  ASSERT_TRUE(swapped);
  EXPECT_FALSE(unpack_layers(*swapped, t / "rootfs2"));
  m.layers[0].media_type = "application/vnd.example.not-a-layer";
  EXPECT_FALSE(image_layers(src, m, c));
}

}  // namespace
}  // namespace kiste::image
