// Hostile trees of indexes (issue 12): a chain of indexes each naming the next one overflowed the
// stack of `kiste pull --all` and `kiste copy --all oci:…`; a manifest named many times was
// fetched each time. Walks are bounded in depth and count, and visit a manifest once.
#include <kiste/base/sys.hpp>
#include <kiste/image/manifest.hpp>
#include <kiste/image/media_type.hpp>

#include "registry_fixture.hpp"

namespace kiste::testing {
namespace {

namespace fs = std::filesystem;
namespace mt = image::media_type;

// An OCI index over `children` (all of them with `type`).
std::string index_over(const std::vector<image::Descriptor>& children) {
  image::Index idx;
  idx.media_type = std::string(mt::kOciIndex);
  idx.manifests = children;
  return image::serialize_index(idx);
}

image::Descriptor descriptor_of(const std::string& bytes, std::string_view type) {
  image::Descriptor d;
  d.media_type = std::string(type);
  d.digest = image::Digest::of(bytes);
  d.size = static_cast<int64_t>(bytes.size());
  return d;
}

class NestingTest : public RegistryTest {
 protected:
  int kiste(const std::string& args) {
    out_.clear();
    return run_shell(kiste_binary().string() + " --root " + (tmp_ / "root").string() + " " + args,
                     &out_);
  }
  // Writes `bytes` as a blob of the OCI layout at `dir`.
  static void put_layout_blob(const fs::path& dir, const std::string& bytes) {
    fs::path p = dir / "blobs" / "sha256" / std::string(image::Digest::of(bytes).hex());
    ASSERT_TRUE(sys::write_file_atomic(p, bytes));
  }
  // An OCI layout whose index.json names `top` as "top".
  static void write_layout(const fs::path& dir, image::Descriptor top) {
    ASSERT_TRUE(sys::mkdir_all(dir / "blobs" / "sha256"));
    ASSERT_TRUE(sys::write_file_atomic(dir / "oci-layout", R"({"imageLayoutVersion":"1.0.0"})"));
    top.annotations["org.opencontainers.image.ref.name"] = "top";
    ASSERT_TRUE(sys::write_file_atomic(dir / "index.json", index_over({top})));
  }
  std::string out_;
};

TEST_F(NestingTest, PullAllRefusesAChainOfIndexesWithOneLine) {
  auto reg = start_registry();
  ASSERT_TRUE(reg);
  auto src = open_store("src");
  auto img = make_test_image(src, "localhost/chain:base", {1000}, 7);
  auto c = client(reg->host());
  ASSERT_TRUE(push(src, "localhost/chain:base", *c, reg->host() + "/chain:base"));
  // Bottom-up, so the registry finds every child it is told about.
  image::Descriptor below = img.manifest;
  for (int i = 0; i < 12; ++i) {
    std::string bytes = index_over({below});
    auto blob = image::parse_manifest(bytes);
    ASSERT_TRUE(blob) << blob.error().to_string();
    std::string ref = i == 11 ? "top" : blob->digest.str();
    ASSERT_TRUE(c->put_manifest("chain", ref, *blob)) << i;
    below = descriptor_of(bytes, mt::kOciIndex);
  }
  ASSERT_EQ(kiste("pull -q --all " + reg->host() + "/chain:top"), 125) << out_;
  EXPECT_EQ(std::count(out_.begin(), out_.end(), '\n'), 1) << out_;
  EXPECT_NE(out_.find("indexes nested more than 4 deep"), std::string::npos) << out_;
  // The walk stopped at the limit instead of fetching the whole chain.
  EXPECT_LE(reg->count_requests("GET /v2/chain/manifests/"), image::kMaxIndexDepth + 2) << reg->log();
  ASSERT_EQ(kiste("images --format json"), 0) << out_;
  EXPECT_EQ(out_.find("chain"), std::string::npos) << out_;
}

TEST_F(NestingTest, PullAllFetchesAManifestNamedManyTimesOnce) {
  auto reg = start_registry();
  ASSERT_TRUE(reg);
  auto src = open_store("src");
  auto img = make_test_image(src, "localhost/fan:base", {1000}, 8);
  auto c = client(reg->host());
  ASSERT_TRUE(push(src, "localhost/fan:base", *c, reg->host() + "/fan:base"));
  std::string inner = index_over({img.manifest, img.manifest});
  auto inner_blob = image::parse_manifest(inner);
  ASSERT_TRUE(inner_blob);
  ASSERT_TRUE(c->put_manifest("fan", inner_blob->digest.str(), *inner_blob));
  image::Descriptor inner_d = descriptor_of(inner, mt::kOciIndex);
  std::string top = index_over({img.manifest, inner_d, img.manifest, inner_d, img.manifest});
  auto top_blob = image::parse_manifest(top);
  ASSERT_TRUE(top_blob);
  ASSERT_TRUE(c->put_manifest("fan", "top", *top_blob));
  ASSERT_EQ(kiste("pull -q --all " + reg->host() + "/fan:top"), 0) << out_;
  EXPECT_EQ(reg->count_requests("GET /v2/fan/manifests/" + img.manifest.digest.str()), 1)
      << reg->log();
  EXPECT_EQ(reg->count_requests("GET /v2/fan/manifests/" + inner_d.digest.str()), 1) << reg->log();
  ASSERT_EQ(kiste("fsck"), 0) << out_;
}

// The crash of the report: 5,000 nested indexes in a local layout.
TEST_F(NestingTest, CopyAllFromALayoutRefusesADeepChainWithoutCrashing) {
  fs::path layout = tmp_ / "layout";
  ASSERT_TRUE(sys::mkdir_all(layout / "blobs" / "sha256"));
  std::string config = R"({"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}})";
  put_layout_blob(layout, config);
  image::Manifest m;
  m.media_type = std::string(mt::kOciManifest);
  m.config = descriptor_of(config, mt::kOciConfig);
  std::string man = image::serialize_manifest(m);
  put_layout_blob(layout, man);
  image::Descriptor below = descriptor_of(man, mt::kOciManifest);
  for (int i = 0; i < 5000; ++i) {
    std::string bytes = index_over({below});
    put_layout_blob(layout, bytes);
    below = descriptor_of(bytes, mt::kOciIndex);
  }
  write_layout(layout, below);
  ASSERT_EQ(kiste("copy -q --all oci:" + layout.string() + ":top store:chain"), 125) << out_;
  EXPECT_EQ(std::count(out_.begin(), out_.end(), '\n'), 1) << out_;
  EXPECT_NE(out_.find("indexes nested more than 4 deep"), std::string::npos) << out_;

  // A chain within the limit is copied whole.
  image::Descriptor shallow = descriptor_of(man, mt::kOciManifest);
  for (int i = 0; i < image::kMaxIndexDepth; ++i) {
    std::string bytes = index_over({shallow});
    put_layout_blob(layout, bytes);
    shallow = descriptor_of(bytes, mt::kOciIndex);
  }
  write_layout(layout, shallow);
  ASSERT_EQ(kiste("copy -q --all oci:" + layout.string() + ":top store:ok"), 0) << out_;
}

TEST_F(NestingTest, CopyAllFromALayoutBoundsTheNumberOfManifests) {
  fs::path layout = tmp_ / "layout";
  ASSERT_TRUE(sys::mkdir_all(layout / "blobs" / "sha256"));
  std::string config = R"({"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}})";
  put_layout_blob(layout, config);
  std::vector<image::Descriptor> children;
  for (size_t i = 0; i <= image::kMaxManifestsPerWalk; ++i) {
    image::Manifest m;
    m.media_type = std::string(mt::kOciManifest);
    m.config = descriptor_of(config, mt::kOciConfig);
    m.annotations["n"] = std::to_string(i);
    std::string man = image::serialize_manifest(m);
    put_layout_blob(layout, man);
    children.push_back(descriptor_of(man, mt::kOciManifest));
  }
  std::string top = index_over(children);
  put_layout_blob(layout, top);
  write_layout(layout, descriptor_of(top, mt::kOciIndex));
  ASSERT_EQ(kiste("copy -q --all oci:" + layout.string() + ":top store:wide"), 125) << out_;
  EXPECT_EQ(std::count(out_.begin(), out_.end(), '\n'), 1) << out_;
  EXPECT_NE(out_.find("the image names more than 1000 manifests"), std::string::npos) << out_;
}

}  // namespace
}  // namespace kiste::testing
