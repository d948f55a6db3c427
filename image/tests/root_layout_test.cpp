#include <kiste/image/root_layout.hpp>

#include <sys/stat.h>

#include <algorithm>

#include <gtest/gtest.h>

#include <kiste/image/snapshot.hpp>
#include <kiste/image/store.hpp>

#include "temp_tree.hpp"

namespace kiste::image {
namespace {

namespace fs = std::filesystem;

TEST(RootLayoutTest, NamesEachPartOfTheRootOnce) {
  const RootLayout r("/var/lib/kiste");
  EXPECT_EQ(r.blobs(), "/var/lib/kiste/blobs");
  EXPECT_EQ(r.snapshots(), "/var/lib/kiste/snapshots");
  EXPECT_EQ(r.containers(), "/var/lib/kiste/containers");
  EXPECT_EQ(r.container("ab12"), "/var/lib/kiste/containers/ab12");
  EXPECT_EQ(r.running(), "/var/lib/kiste/running");
  EXPECT_EQ(r.volumes(), "/var/lib/kiste/volumes");
  EXPECT_EQ(r.build_cache(), "/var/lib/kiste/cache/build");
  EXPECT_EQ(r.context_cache(), "/var/lib/kiste/cache/context");
  EXPECT_EQ(r.mount_cache(), "/var/lib/kiste/cache/mounts");
  EXPECT_EQ(r.seccomp_cache(), "/var/lib/kiste/cache/seccomp");
  EXPECT_EQ(r.tmp(), "/var/lib/kiste/tmp");
  EXPECT_EQ(r.userns(), "/var/lib/kiste/userns");
}

TEST(RootLayoutTest, KisteEntriesAreItsOwnNamesOnly) {
  for (std::string_view n : {"blobs", "index.json", "index.json.lock", "gc.lock", "snapshots",
                             "containers", "running", "volumes", "cache", "tmp", "userns"}) {
    EXPECT_TRUE(RootLayout::is_kiste_entry(n)) << n;
  }
  for (std::string_view n : {"", "home", "blobs2", "cache/build", ".snapshots", "TMP"}) {
    EXPECT_FALSE(RootLayout::is_kiste_entry(n)) << n;
  }
  // blobs/ is world-readable content (an OCI layout); everything else holds image files or
  // container state.
  auto priv = RootLayout::private_dirs();
  EXPECT_EQ(std::ranges::find(priv, RootLayout::kBlobs), priv.end());
  EXPECT_EQ(priv.size(), 9u);
}

// The store and the snapshot store make the layout's private dirs, and only the owner enters them.
TEST(RootLayoutTest, StoreAndSnapshotStoreUseTheLayout) {
  testing::TempTree t;
  const RootLayout r(t / "root");
  auto store = Store::open(r.root());
  ASSERT_TRUE(store) << store.error().to_string();
  EXPECT_EQ(store->blobs_dir(), r.blobs());
  EXPECT_EQ(store->tmp_dir(), r.tmp());
  for (std::string_view d : RootLayout::private_dirs()) {
    struct stat st {};
    ASSERT_EQ(::stat((r.root() / d).c_str(), &st), 0) << d;
    EXPECT_EQ(st.st_mode & 07777, 0700u) << d;
  }
  auto snaps = SnapshotStore::open(r.root());
  ASSERT_TRUE(snaps) << snaps.error().to_string();
  const auto diff = Digest::of("layer");
  EXPECT_EQ(snaps->path_of(diff), r.snapshots() / std::string(diff.hex()));
}

}  // namespace
}  // namespace kiste::image
