// The docker:// transport against a real registry: copies between the store, a registry and an
// OCI layout keep the digest; a missing tag is "not present", not an error; and
// `kiste inspect docker://` honours the registry flags (--cert-dir here).
#include <kiste/registry/transport.hpp>

#include <kiste/testing/kiste_cli.hpp>

#include "registry_fixture.hpp"

namespace kiste::testing {
namespace {

class TransportRemoteTest : public RegistryTest {
 protected:
  Result<image::CopyResult> copy(const std::string& from, const std::string& to,
                                 registry::AccessOptions access = {}) {
    KISTE_ASSIGN_OR_RETURN(auto src, registry::parse_location(from));
    KISTE_ASSIGN_OR_RETURN(auto dst, registry::parse_location(to));
    return registry::copy(src, dst, {.store_root = tmp_ / "root", .access = std::move(access)},
                          {});
  }
};

TEST_F(TransportRemoteTest, StoreRegistryLayoutRegistryKeepsTheDigest) {
  auto reg = start_registry();
  ASSERT_TRUE(reg);
  const std::string h = reg->host();
  auto store = open_store("root");
  auto img = make_test_image(store, "localhost/app:1", {30'000, 10'000}, 71);

  auto r = copy("localhost/app:1", "docker://" + h + "/t/app:1");
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(r->top.digest, img.manifest.digest);
  EXPECT_EQ(r->blobs_copied, 3);
  const std::string layout = (tmp_ / "layout").string();
  r = copy("docker://" + h + "/t/app:1", "oci:" + layout + ":app");
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(r->top.digest, img.manifest.digest);
  r = copy("oci:" + layout + ":app", "docker://" + h + "/t/again:1");
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(r->top.digest, img.manifest.digest);
  EXPECT_EQ(r->blobs_existing + r->blobs_copied, 3);
  r = copy("docker://" + h + "/t/again:1", "localhost/back:1");
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_TRUE(validate(store, "localhost/back:1"));

  auto present = registry::open_remote_if_present(ref(h + "/t/again:1"), {});
  ASSERT_TRUE(present) << present.error().to_string();
  ASSERT_NE(*present, nullptr);
  EXPECT_EQ((*present)->top().digest, img.manifest.digest);
  auto absent = registry::open_remote_if_present(ref(h + "/t/never:1"), {});
  ASSERT_TRUE(absent) << absent.error().to_string();
  EXPECT_EQ(*absent, nullptr);
}

TEST_F(TransportRemoteTest, TheAccessOptionsReachTheRegistry) {
  auto reg = start_registry({.tls = true});
  ASSERT_TRUE(reg);
  const std::string h = reg->host();
  auto store = open_store("root");
  make_test_image(store, "localhost/app:1", {5'000}, 72);
  auto r = copy("localhost/app:1", "docker://" + h + "/t/app:1");
  ASSERT_FALSE(r);  // the registry's CA is not known without cert_dir
  EXPECT_EQ(r.error().code, Errc::PermissionDenied) << r.error().to_string();
  r = copy("localhost/app:1", "docker://" + h + "/t/app:1", {.cert_dir = reg->cert_dir()});
  ASSERT_TRUE(r) << r.error().to_string();
}

TEST_F(TransportRemoteTest, InspectDockerRefHonoursTheRegistryFlags) {
  auto reg = start_registry({.tls = true});
  ASSERT_TRUE(reg);
  const std::string h = reg->host();
  auto store = open_store("src");
  auto img = make_test_image(store, "localhost/app:1", {5'000}, 73);
  auto c = client(h, {.cert_dir = reg->cert_dir()});
  ASSERT_TRUE(push(store, "localhost/app:1", *c, h + "/t/app:1"));

  KisteCli kiste(tmp_ / "root");
  auto without = kiste.run("inspect docker://" + h + "/t/app:1");
  EXPECT_EQ(without.status, 125) << without.output;
  EXPECT_NE(without.output.find("certificate"), std::string::npos) << without.output;
  auto with = kiste.run("inspect --cert-dir " + reg->cert_dir().string() + " docker://" + h +
                        "/t/app:1");
  ASSERT_EQ(with.status, 0) << with.output;
  EXPECT_NE(with.output.find(img.manifest.digest.str()), std::string::npos) << with.output;
}

}  // namespace
}  // namespace kiste::testing
