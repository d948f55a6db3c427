#pragma once
// The builder's root-test fixture: a fresh store with a busybox image made offline, builds
// through the library API with the real runtime, and helpers to read the built image.
#include <kiste/builder/builder.hpp>

#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include <kiste/base/sys.hpp>
#include <kiste/image/archive.hpp>
#include <kiste/image/snapshot.hpp>
#include <kiste/testing/kiste_cli.hpp>
#include <kiste/testing/require_root.hpp>
#include <kiste/testing/temp_root.hpp>

namespace kiste::builder::test {

namespace fs = std::filesystem;
using testing::TempRoot;

using testing::busybox_tar;

// run_shell appends to its output: each command starts from an empty string.
inline int sh(const std::string& cmd, std::string* out = nullptr) {
  if (out) out->clear();
  return testing::run_shell(cmd, out);
}

inline void write(const fs::path& p, std::string_view s) {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << s;
}

class BuilderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    KISTE_REQUIRE_ROOT();
    store_.emplace(*image::Store::open(tmp_ / "root"));
    auto d = image::import_rootfs(*store_, busybox_tar(), *image::Reference::parse("busybox"), {.created = 0});
    ASSERT_TRUE(d) << d.error().to_string();
    executor_ = make_runtime_executor({.root = store_->root()});
  }
  void TearDown() override {
    EXPECT_TRUE(testing::mounts_below(tmp_.path()).empty());
  }

  Result<BuildResult> build(const fs::path& ctx, BuildOptions o = {}, const image::Store* store = nullptr) {
    o.context_dir = ctx;
    o.plan.platform = image::Platform::host();
    o.plan.build_platform = image::Platform::host();
    o.progress = [this](const BuildEvent& e) {
      if (e.kind == BuildEvent::Kind::Step) steps_.push_back(e.text);
      if (e.kind == BuildEvent::Kind::Miss) misses_.push_back(e.text);
    };
    const image::Store& s = store ? *store : *store_;
    StoreImageProvider provider(s);
    auto exec = make_runtime_executor({.root = s.root()});
    Builder b(s, provider, exec.get());
    return b.build(o);
  }

  // Flattens the built image and reads a file from it ("" when missing).
  std::string read_in_image(const image::Descriptor& manifest, const std::string& path,
                            const image::Store* store = nullptr) {
    const image::Store& s = store ? *store : *store_;
    auto m = image::read_manifest(s, manifest);
    EXPECT_TRUE(m);
    fs::path dir = tmp_ / ("flat-" + std::string(manifest.digest.hex().substr(0, 8)));
    if (!fs::exists(dir)) {
      std::vector<image::LayerSource> src;
      for (const auto& l : m->manifest().layers) {
        image::Digest d = l.digest;
        src.push_back({.open_blob = [&s, d] { return s.open_blob(d); },
                       .compression = image::media_type::layer_compression(l.media_type)});
      }
      auto r = image::unpack_layers(src, dir);
      EXPECT_TRUE(r) << r.error().to_string();
    }
    return sys::read_file(dir / path, 1 << 20).value_or("");
  }

  image::ImageConfig config_of(const image::Descriptor& manifest) {
    auto m = image::read_manifest(*store_, manifest);
    auto c = image::ImageConfig::parse(*store_->read_blob(m->manifest().config.digest));
    return *c;
  }
  std::vector<image::Descriptor> layers_of(const image::Descriptor& manifest, const image::Store* store = nullptr) {
    auto m = image::read_manifest(store ? *store : *store_, manifest);
    return m->manifest().layers;
  }

  TempRoot tmp_;
  std::optional<image::Store> store_;
  std::unique_ptr<RunExecutor> executor_;
  std::vector<std::string> steps_, misses_;
};

}  // namespace kiste::builder::test
