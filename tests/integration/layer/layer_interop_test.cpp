// Interop with umoci: the same 3-layer image (whiteouts, opaque dirs, owners, modes, links)
// unpacked by kiste and by `umoci unpack` gives the same tree; a kiste-written layer is unpacked
// by umoci; a umoci-written layer is unpacked by kiste.

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include <kiste/base/sys.hpp>
#include <kiste/image/compression.hpp>
#include <kiste/image/layer_writer.hpp>
#include <kiste/image/snapshot.hpp>
#include <kiste/testing/require_root.hpp>
#include <kiste/testing/temp_root.hpp>

#include "oci_layout.hpp"
#include "tar_builder.hpp"
#include "tree_listing.hpp"

namespace kiste::image {
namespace {

namespace fs = std::filesystem;
using kiste::testing::run_shell;
using testing::list_tree;
using testing::StringSink;
using testing::TarBuilder;

testing::LayoutLayer gz_layer(const std::string& tar) {
  StringSink out;
  auto sink = CompressingSink::create(out, {.compression = media_type::Compression::Gzip});
  EXPECT_TRUE(sink);
  EXPECT_TRUE((*sink)->write(tar));
  EXPECT_TRUE((*sink)->finish());
  return {out.data, std::string(media_type::kOciLayerGzip), Digest::of(tar)};
}

std::vector<LayerSource> sources(const fs::path& layout, const std::string& tag) {
  std::vector<LayerSource> out;
  for (auto& l : testing::read_layout(layout, tag)) {
    fs::path p = l.blob_path;
    out.push_back({[p]() -> Result<std::unique_ptr<BlobReader>> {
                     KISTE_ASSIGN_OR_RETURN(UniqueFd fd, sys::open(p, O_RDONLY));
                     return std::make_unique<FdReader>(std::move(fd), p.native());
                   },
                   media_type::layer_compression(l.media_type), *Digest::parse(l.diff_id)});
  }
  return out;
}

class LayerInterop : public ::testing::Test {
 protected:
  void SetUp() override { KISTE_REQUIRE_ROOT(); }
  void TearDown() override { EXPECT_TRUE(kiste::testing::mounts_below(tmp_.path()).empty()); }
  kiste::testing::TempRoot tmp_;
};

TEST_F(LayerInterop, ThreeStackedLayersMatchUmociUnpack) {
  using testing::Meta;
  TarBuilder l1;
  l1.dir("etc", {.mode = 0755})
      .file("etc/passwd", "root:x:0:0::/root:/bin/sh\n")
      .file("etc/group", "root:x:0:\n")
      .dir("usr", {.mode = 0755})
      .dir("usr/bin", {.mode = 0755})
      .file("usr/bin/sh", "#!shell v1", {.mode = 0755})
      .hardlink("usr/bin/ln", "usr/bin/sh")
      .file("usr/bin/su", "su", {.mode = 04755})
      .symlink("bin", "usr/bin")
      .dir("var", {.mode = 0755})
      .dir("var/lib", {.mode = 0755})
      .dir("var/lib/data", {.mode = 0750, .uid = 1000, .gid = 1000})
      .file("var/lib/data/a", "a", {.mode = 0640, .uid = 1000, .gid = 1000})
      .file("var/lib/data/b", "b", {.mode = 0640, .uid = 1000, .gid = 1000})
      .dir("home", {.mode = 0755})
      .dir("home/user", {.mode = 0700, .uid = 1000, .gid = 100})
      .dir("opt", {.mode = 0755})
      .dir("opt/x", {.mode = 0755})
      .file("opt/x/y", "y");
  TarBuilder l2;
  l2.file("etc/.wh.group", "")
      .dir("var/lib/data", {.mode = 0750, .uid = 1000, .gid = 1000})
      .file("var/lib/data/.wh..wh..opq", "")
      .file("var/lib/data/c", "c", {.mode = 0600, .uid = 1000, .gid = 1000})
      .file(".wh.opt", "")
      .file("usr/bin/sh", "#!shell v2", {.mode = 0755})
      .dir("tmp", {.mode = 01777});
  TarBuilder l3;
  l3.dir("opt", {.mode = 0700})
      .file("opt/new", "new")
      .file("var/lib/data/.wh.c", "")
      .file("etc/group", "root:x:0:\nusers:x:100:\n")
      .dir("etc", {.mode = 0750})
      .file("home/user/.profile", "PS1=$ ", {.mode = 0644, .uid = 1000, .gid = 100})
      .file(".wh.bin", "");
  fs::path layout = tmp_ / "layout";
  testing::write_layout(layout, "v1", {gz_layer(l1.finish()), gz_layer(l2.finish()), gz_layer(l3.finish())});

  auto r = unpack_layers(sources(layout, "v1"), tmp_ / "kiste");
  ASSERT_TRUE(r) << r.error().to_string();
  std::string out;
  ASSERT_EQ(run_shell("umoci unpack --image " + layout.native() + ":v1 " + (tmp_ / "umoci").native(), &out), 0) << out;
  std::string kiste_tree = list_tree(tmp_ / "kiste", {.mtimes = true});
  EXPECT_EQ(kiste_tree, list_tree(tmp_ / "umoci/rootfs", {.mtimes = true}));
  // And the listing really shows the stacked semantics.
  EXPECT_EQ(kiste_tree.find("etc/group 100644 10 "), std::string::npos);
  EXPECT_NE(kiste_tree.find("opt 040700"), std::string::npos);
  EXPECT_EQ(kiste_tree.find("opt/x"), std::string::npos);
  EXPECT_EQ(kiste_tree.find("var/lib/data/a"), std::string::npos);
  EXPECT_EQ(kiste_tree.find("var/lib/data/c"), std::string::npos);
  EXPECT_EQ(kiste_tree.find("\nbin "), std::string::npos);
}

void make_source_tree(const fs::path& d) {
  fs::create_directories(d / "etc/ssl");
  fs::create_directories(d / "srv/www");
  std::ofstream(d / "etc/hostname") << "kiste\n";
  std::ofstream(d / "etc/ssl/key") << std::string(200000, 'k');
  std::ofstream(d / "srv/www/index.html") << "<h1>hi</h1>";
  ::chmod((d / "etc/ssl/key").c_str(), 0600);
  ::chmod((d / "etc/ssl").c_str(), 0700);
  ::chown((d / "srv/www").c_str(), 33, 33);
  ::chown((d / "srv/www/index.html").c_str(), 33, 33);
  fs::create_symlink("/srv/www/index.html", d / "index");
  fs::create_hard_link(d / "etc/hostname", d / "etc/hostname2");
  ::mkfifo((d / "srv/fifo").c_str(), 0644);
}

TEST_F(LayerInterop, KisteLayerIsUnpackedByUmoci) {
  make_source_tree(tmp_ / "src");
  StringSink out;
  auto r = write_layer(tmp_ / "src", out, {.keep_owners = true});
  ASSERT_TRUE(r) << r.error().to_string();
  fs::path layout = tmp_ / "layout";
  testing::write_layout(layout, "k", {{out.data, r->media_type, r->diff_id}});
  std::string log;
  ASSERT_EQ(run_shell("umoci unpack --image " + layout.native() + ":k " + (tmp_ / "b").native(), &log), 0) << log;
  EXPECT_EQ(list_tree(tmp_ / "b/rootfs", {.mtimes = true}), list_tree(tmp_ / "src", {.mtimes = true}));
}

TEST_F(LayerInterop, UmociLayersAreUnpackedByKiste) {
  fs::path layout = tmp_ / "layout";
  fs::path bundle = tmp_ / "bundle";
  std::string log;
  std::string img = layout.native() + ":t";
  ASSERT_EQ(run_shell("umoci init --layout " + layout.native() + " && umoci new --image " + img +
                          " && umoci unpack --image " + img + " " + bundle.native(), &log), 0) << log;
  make_source_tree(bundle / "rootfs");
  fs::create_directories(bundle / "rootfs/gone/deep");
  std::ofstream(bundle / "rootfs/gone/deep/f") << "f";
  ASSERT_EQ(run_shell("umoci repack --image " + img + " " + bundle.native(), &log), 0) << log;
  // Second layer: deletions (whiteouts) and a modification, from a fresh unpack.
  bundle = tmp_ / "bundle2";
  ASSERT_EQ(run_shell("umoci unpack --image " + img + " " + bundle.native(), &log), 0) << log;
  fs::remove_all(bundle / "rootfs/gone");
  fs::remove(bundle / "rootfs/etc/hostname2");
  std::ofstream(bundle / "rootfs/etc/hostname") << "changed\n";
  ASSERT_EQ(run_shell("umoci repack --image " + img + " " + bundle.native(), &log), 0) << log;

  auto layers = sources(layout, "t");
  ASSERT_GE(layers.size(), 2u);
  auto r = unpack_layers(layers, tmp_ / "kiste");
  ASSERT_TRUE(r) << r.error().to_string();
  // No mtimes: umoci (Go archive/tar, USTAR) rounds them to the nearest second when packing.
  EXPECT_EQ(list_tree(tmp_ / "kiste"), list_tree(bundle / "rootfs"));
  uint64_t whiteouts = 0;
  for (auto& s : *r) whiteouts += s.whiteouts;
  EXPECT_GE(whiteouts, 2u);
}

}  // namespace
}  // namespace kiste::image
