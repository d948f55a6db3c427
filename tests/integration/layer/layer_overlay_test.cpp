// Real overlay mounts: snapshots stack as lowerdirs and show the flattened tree; an overlay
// upper dir diffs into a layer whose flattened unpack equals the merged view (whiteouts, opaque
// dirs, copy-ups, metacopy copy-ups).

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include <kiste/base/sys.hpp>
#include <kiste/image/compression.hpp>
#include <kiste/image/layer_diff.hpp>
#include <kiste/image/snapshot.hpp>
#include <kiste/testing/require_root.hpp>
#include <kiste/testing/temp_root.hpp>

#include "tar_builder.hpp"
#include "tree_listing.hpp"

namespace kiste::image {
namespace {

namespace fs = std::filesystem;
using testing::list_tree;
using testing::StringSink;
using testing::TarBuilder;

// Owns an overlay mount for the test; detaches it on destruction.
class OverlayMount {
 public:
  OverlayMount(const fs::path& target, const std::string& options) : target_(target) {
    fs::create_directories(target);
    auto r = sys::mount("overlay", target, "overlay", 0, options.c_str());
    if (!r) error_ = r.error().to_string();
  }
  ~OverlayMount() { unmount(); }
  void unmount() {
    if (error_.empty() && !done_) (void)sys::umount2(target_, MNT_DETACH);
    done_ = true;
  }
  [[nodiscard]] const std::string& error() const { return error_; }

 private:
  fs::path target_;
  std::string error_;
  bool done_ = false;
};

BlobOpener opener(std::string bytes) {
  return [bytes = std::move(bytes)]() -> Result<std::unique_ptr<BlobReader>> {
    return std::make_unique<StringReader>(bytes);
  };
}

std::string base_layer() {
  TarBuilder l;
  l.dir("etc", {.mode = 0755})
      .file("etc/hosts", "127.0.0.1 localhost\n")
      .file("etc/motd", "hello\n")
      .dir("data", {.mode = 0755})
      .file("data/one", "1")
      .dir("data/sub", {.mode = 0755})
      .file("data/sub/two", "2")
      .file("big", std::string(1 << 20, 'b'), {.mode = 0644})
      .symlink("hosts", "etc/hosts");
  return l.finish();
}

class LayerOverlay : public ::testing::Test {
 protected:
  void SetUp() override { KISTE_REQUIRE_ROOT(); }
  void TearDown() override {
    EXPECT_TRUE(kiste::testing::mounts_below(tmp_.path()).empty()) << "a mount was left behind";
  }
  kiste::testing::TempRoot tmp_;
};

TEST_F(LayerOverlay, UpperDiffEqualsMergedViewAndSnapshotsStack) {
  auto store = SnapshotStore::open(tmp_ / "store");
  ASSERT_TRUE(store);
  std::string l1 = base_layer();
  auto snap1 = store->ensure(Digest::of(l1), media_type::Compression::None, opener(l1));
  ASSERT_TRUE(snap1) << snap1.error().to_string();
  fs::create_directories(tmp_ / "upper");
  fs::create_directories(tmp_ / "work");
  std::string merged_listing;
  {
    OverlayMount m(tmp_ / "merged", "lowerdir=" + snap1->native() + ",upperdir=" +
                                        (tmp_ / "upper").native() + ",workdir=" +
                                        (tmp_ / "work").native());
    ASSERT_EQ(m.error(), "");
    fs::path mp = tmp_ / "merged";
    fs::remove(mp / "etc/motd");                       // whiteout
    fs::remove_all(mp / "data");                       // rm -rf and recreate → opaque
    fs::create_directories(mp / "data");
    std::ofstream(mp / "data/fresh") << "fresh";
    std::ofstream(mp / "etc/hosts", std::ios::app) << "::1 localhost\n";  // copy-up
    ::chmod((mp / "big").c_str(), 0600);               // metadata-only change (full copy-up)
    fs::create_directories(mp / "new/dir");
    fs::create_symlink("../etc", mp / "new/etc");
    fs::remove(mp / "hosts");
    merged_listing = list_tree(mp);
    m.unmount();
  }
  StringSink layer;
  auto diff = diff_overlay_upper(tmp_ / "upper", layer, {.pack = {.compress = {.compression = media_type::Compression::Zstd}}});
  ASSERT_TRUE(diff) << diff.error().to_string();

  // Flattened unpack of base + diff equals what the container saw.
  std::vector<LayerSource> layers = {
      {opener(l1), media_type::Compression::None, Digest::of(l1)},
      {opener(layer.data), media_type::Compression::Zstd, diff->diff_id}};
  auto flat = unpack_layers(layers, tmp_ / "flat");
  ASSERT_TRUE(flat) << flat.error().to_string();
  EXPECT_EQ(list_tree(tmp_ / "flat"), merged_listing);
  EXPECT_EQ((*flat)[1].whiteouts, 3u);  // etc/motd, hosts, data opaque

  // Snapshots of both layers stacked as lowerdirs show the same tree.
  auto snap2 = store->ensure(diff->diff_id, media_type::Compression::Zstd, opener(layer.data));
  ASSERT_TRUE(snap2) << snap2.error().to_string();
  {
    OverlayMount ro(tmp_ / "ro", "lowerdir=" + snap2->native() + ":" + snap1->native());
    ASSERT_EQ(ro.error(), "");
    EXPECT_EQ(list_tree(tmp_ / "ro"), merged_listing);
  }
  // Diffing the same upper again gives the same layer (deterministic).
  StringSink again;
  auto diff2 = diff_overlay_upper(tmp_ / "upper", again, {.pack = {.compress = {.compression = media_type::Compression::Zstd}}});
  ASSERT_TRUE(diff2);
  EXPECT_EQ(diff2->digest, diff->digest);
}

TEST_F(LayerOverlay, MetacopyCopyUpTakesDataFromLower) {
  auto store = SnapshotStore::open(tmp_ / "store");
  ASSERT_TRUE(store);
  std::string l1 = base_layer();
  auto snap1 = store->ensure(Digest::of(l1), media_type::Compression::None, opener(l1));
  ASSERT_TRUE(snap1);
  fs::create_directories(tmp_ / "upper");
  fs::create_directories(tmp_ / "work");
  std::string merged_listing;
  {
    OverlayMount m(tmp_ / "merged", "lowerdir=" + snap1->native() + ",upperdir=" +
                                        (tmp_ / "upper").native() + ",workdir=" +
                                        (tmp_ / "work").native() + ",metacopy=on");
    if (!m.error().empty()) GTEST_SKIP() << "overlay metacopy=on unavailable: " << m.error();
    ASSERT_EQ(::chmod((tmp_ / "merged/big").c_str(), 0604), 0);
    merged_listing = list_tree(tmp_ / "merged");
    m.unmount();
  }
  struct stat st {};
  ASSERT_EQ(::stat((tmp_ / "upper/big").c_str(), &st), 0);
  if (st.st_blocks * 512 >= st.st_size) GTEST_SKIP() << "the kernel copied the data up (no metacopy)";
  StringSink layer;
  // Without the lowerdirs the data cannot be found: a clear error, not an empty file.
  auto no_lower = diff_overlay_upper(tmp_ / "upper", layer, {});
  ASSERT_FALSE(no_lower);
  EXPECT_NE(no_lower.error().message.find("metacopy"), std::string::npos);
  StringSink layer2;
  auto diff = diff_overlay_upper(tmp_ / "upper", layer2, {.lowerdirs = {*snap1}});
  ASSERT_TRUE(diff) << diff.error().to_string();
  std::vector<LayerSource> layers = {
      {opener(l1), media_type::Compression::None, Digest::of(l1)},
      {opener(layer2.data), media_type::Compression::Gzip, diff->diff_id}};
  auto flat = unpack_layers(layers, tmp_ / "flat");
  ASSERT_TRUE(flat) << flat.error().to_string();
  EXPECT_EQ(list_tree(tmp_ / "flat"), merged_listing);
}

}  // namespace
}  // namespace kiste::image
