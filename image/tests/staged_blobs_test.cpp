// The one rollback guard for blobs a command adds before naming them (load, copy into the store).
#include <kiste/image/staged_blobs.hpp>

#include <filesystem>

#include <gtest/gtest.h>

#include <kiste/base/temp_dir.hpp>

namespace kiste::image {
namespace {

namespace fs = std::filesystem;

class StagedBlobsTest : public ::testing::Test {
 protected:
  TempDir dir_ = std::move(TempDir::create(fs::temp_directory_path(), "kiste-staged-").value());
  Store store_ = std::move(Store::open(dir_.path() / "root").value());

  Digest put(std::string_view bytes) {
    auto d = store_.put_blob(bytes, "application/octet-stream");
    EXPECT_TRUE(d) << d.error().to_string();
    return d->digest;
  }
};

TEST_F(StagedBlobsTest, UncommittedBlobsGoUnlessANameReachesThem) {
  Digest lone = put("lone");
  Digest named_cfg = put("{}");
  Manifest m;
  m.media_type = "application/vnd.oci.image.manifest.v1+json";
  m.config = {.media_type = "application/vnd.oci.image.config.v1+json", .digest = named_cfg,
              .size = 2};
  auto md = store_.put_blob(serialize_manifest(m), m.media_type);
  ASSERT_TRUE(md);
  {
    StagedBlobs staged(store_);
    staged.add(lone);
    staged.add(named_cfg);
    // Another command names the config meanwhile.
    ASSERT_TRUE(store_.set_name(Reference::parse("localhost/x:1").value(), *md));
  }
  EXPECT_FALSE(store_.has_blob(lone));
  EXPECT_TRUE(store_.has_blob(named_cfg));
}

TEST_F(StagedBlobsTest, CommittedBlobsStayAndAGoneBlobIsNoError) {
  Digest a = put("a");
  Digest b = put("b");
  {
    StagedBlobs staged(store_);
    staged.add(a);
    staged.commit();
  }
  EXPECT_TRUE(store_.has_blob(a));
  StagedBlobs staged(store_);
  staged.add(b);
  fs::remove(store_.blob_path(b));
  EXPECT_TRUE(staged.roll_back());
}

TEST_F(StagedBlobsTest, ABlobThatCannotBeRemovedIsReportedNotIgnored) {
  Digest a = put("a");
  Digest b = put("b");
  // Something that unlink(2) cannot remove where blob `a` was.
  fs::remove(store_.blob_path(a));
  fs::create_directories(store_.blob_path(a) / "x");
  StagedBlobs staged(store_);
  staged.add(a);
  staged.add(b);
  auto r = staged.roll_back();
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find(std::string(a.hex())), std::string::npos) << r.error().message;
  EXPECT_EQ(r.error().message.find('\n'), std::string::npos);
  EXPECT_FALSE(store_.has_blob(b));  // the others still go
  fs::remove_all(store_.blob_path(a));
}

TEST_F(StagedBlobsTest, StagedStoreSinkStagesOnlyWhatWasNotThere) {
  Digest old = put("old");
  {
    StagedStoreSink sink(store_, std::nullopt);
    StringReader r1("old");
    ASSERT_TRUE(sink.put_blob({.digest = old, .size = 3}, r1));
    StringReader r2("new");
    ASSERT_TRUE(sink.put_blob({.digest = Digest::of("new"), .size = 3}, r2));
    EXPECT_TRUE(store_.has_blob(Digest::of("new")));
  }
  EXPECT_TRUE(store_.has_blob(old));
  EXPECT_FALSE(store_.has_blob(Digest::of("new")));
}

}  // namespace
}  // namespace kiste::image
