#pragma once
// Shared setup for the registry integration tests: a temp dir, stores, registry processes and
// one-line helpers for push/pull through copy_image.
#include <gtest/gtest.h>

#include <kiste/image/copy.hpp>
#include <kiste/image/store.hpp>
#include <kiste/registry/client.hpp>
#include <kiste/registry/remote_image.hpp>
#include <kiste/testing/registry_process.hpp>
#include <kiste/testing/temp_root.hpp>

#include "test_images.hpp"

namespace kiste::testing {

class RegistryTest : public ::testing::Test {
 protected:
  std::unique_ptr<RegistryProcess> start_registry(RegistryConfig cfg = {}) {
    std::string why;
    auto r = RegistryProcess::start(cfg, &why);
    EXPECT_TRUE(r) << why;
    return r;
  }

  image::Store open_store(const std::string& name) {
    auto s = image::Store::open(tmp_ / name);
    EXPECT_TRUE(s) << s.error().to_string();
    return std::move(*s);
  }

  static std::unique_ptr<registry::Client> client(const std::string& host,
                                                  registry::ClientOptions o = {}) {
    auto c = registry::Client::create(host, std::move(o));
    EXPECT_TRUE(c) << c.error().to_string();
    return std::move(*c);
  }

  static image::Reference ref(const std::string& s) { return image::Reference::parse(s).value(); }

  // Pushes the store image `name` to `dest`; returns the pushed digest.
  static Result<image::Digest> push(const image::Store& store, const std::string& name,
                                    registry::Client& c, const std::string& dest,
                                    image::CopyOptions opts = {.all = true}) {
    KISTE_ASSIGN_OR_RETURN(auto entry, store.resolve(name));
    KISTE_ASSIGN_OR_RETURN(auto src, store.open_image(entry));
    registry::RemoteSink sink(c, ref(dest));
    KISTE_TRY(image::copy_image(*src, sink, opts));
    return *sink.pushed_digest();
  }

  static Result<image::CopyResult> pull(registry::Client& c, const std::string& from,
                                        const image::Store& store, image::CopyOptions opts = {}) {
    KISTE_ASSIGN_OR_RETURN(auto src, registry::RemoteImage::open(c, ref(from)));
    image::StoreSink sink(store, ref(from));
    return image::copy_image(*src, sink, opts);
  }

  static Status validate(const image::Store& store, const std::string& name) {
    KISTE_ASSIGN_OR_RETURN(auto entry, store.resolve(name));
    KISTE_ASSIGN_OR_RETURN(auto src, store.open_image(entry));
    return image::validate_image(*src);
  }

  TempRoot tmp_;
};

}  // namespace kiste::testing
