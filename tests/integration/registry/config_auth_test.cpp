// Registry settings from the system configuration (insecure registries from registries.conf and
// daemon.json) and docker's identity-token login, through the kiste binary.
#include <fstream>
#include <kiste/base/sys.hpp>

#include "registry_fixture.hpp"

namespace kiste::testing {
namespace {

namespace fs = std::filesystem;

class ConfigAuthTest : public RegistryTest {
 protected:
  // kiste with the registries.conf and daemon.json of this test (none unless written).
  int kiste(const std::string& args) {
    out_.clear();
    return run_shell("KISTE_REGISTRIES_CONF=" + (tmp_ / "registries.conf").string() +
                         " KISTE_DOCKER_DAEMON_JSON=" + (tmp_ / "daemon.json").string() + " " +
                         kiste_binary().string() + " --root " + (tmp_ / "root").string() + " " +
                         args,
                     &out_);
  }
  void write(const std::string& name, std::string_view data) {
    std::ofstream(tmp_ / name, std::ios::binary | std::ios::trunc) << data;
  }
  std::string first_line() const { return out_.substr(0, out_.find('\n')); }
  std::string out_;
};

// 127.0.0.2 is loopback but not "localhost": kiste treats it as any remote host.
TEST_F(ConfigAuthTest, PlainHttpOnlyForRegistriesListedInsecure) {
  auto reg = start_registry({.address = "127.0.0.2"});
  ASSERT_TRUE(reg);
  std::string h = reg->host();
  auto a = open_store("src");
  auto img = make_test_image(a, "localhost/i:1", {30'000}, 51);
  auto c = client(h, {.tls_verify = false});
  ASSERT_TRUE(push(a, "localhost/i:1", *c, h + "/i:1"));
  int manifest_gets = reg->count_requests("/v2/i/manifests/1");

  // Not listed: HTTPS only, which this registry does not speak.
  EXPECT_EQ(kiste("pull -q " + h + "/i:1"), 125);
  EXPECT_EQ(std::count(out_.begin(), out_.end(), '\n'), 1) << out_;
  EXPECT_NE(out_.find("does not speak TLS"), std::string::npos) << out_;
  write("registries.conf", "[[registry]]\nlocation = \"127.0.0.2:1\"\ninsecure = true\n");
  write("daemon.json",
        R"({"insecure-registries":["127.0.0.3:)" + std::to_string(reg->port()) + R"("]})");
  EXPECT_EQ(kiste("pull -q " + h + "/i:1"), 125);  // other ports and hosts are not this one
  EXPECT_EQ(reg->count_requests("/v2/i/manifests/1"), manifest_gets);

  // registries.conf v2, v1, and daemon.json each make it insecure.
  write("registries.conf", "[[registry]]\nlocation = \"" + h + "\"\ninsecure = true\n");
  ASSERT_EQ(kiste("pull -q " + h + "/i:1"), 0) << out_;
  EXPECT_EQ(first_line(), img.manifest.digest.str());
  write("registries.conf", "[registries.insecure]\nregistries = ['" + h + "']\n");
  ASSERT_EQ(kiste("pull -q " + h + "/i:1"), 0) << out_;
  write("registries.conf", "");
  write("daemon.json", R"({"insecure-registries":[")" + h + R"("]})");
  ASSERT_EQ(kiste("pull -q " + h + "/i:1"), 0) << out_;
  EXPECT_EQ(reg->count_requests("/v2/i/manifests/1"), manifest_gets + 3);
  // --tls-verify=true wins over the configuration.
  EXPECT_EQ(kiste("pull -q --tls-verify=true " + h + "/i:1"), 125);
  // A malformed configuration is an error naming the file.
  write("registries.conf", "[[registry]\n");
  EXPECT_EQ(kiste("pull -q " + h + "/i:1"), 125);
  EXPECT_NE(out_.find("registries.conf`: line 1"), std::string::npos) << out_;
}

TEST_F(ConfigAuthTest, InsecureTlsRegistryIsNotVerified) {
  // The server certificate names 127.0.0.1 and localhost and is signed by a CA kiste does not
  // know: verification would fail twice over.
  auto reg = start_registry({.tls = true, .address = "127.0.0.2"});
  ASSERT_TRUE(reg);
  std::string h = reg->host();
  auto a = open_store("src");
  auto img = make_test_image(a, "localhost/t:1", {20'000}, 52);
  auto c = client(h, {.tls_verify = false});
  ASSERT_TRUE(push(a, "localhost/t:1", *c, h + "/t:1"));
  EXPECT_EQ(kiste("pull -q " + h + "/t:1"), 125);
  EXPECT_NE(out_.find("certificate"), std::string::npos) << out_;
  write("registries.conf", "[[registry]]\nlocation = \"127.0.0.2\"\ninsecure = true\n");
  ASSERT_EQ(kiste("pull -q " + h + "/t:1"), 0) << out_;
  EXPECT_EQ(first_line(), img.manifest.digest.str());
}

TEST_F(ConfigAuthTest, LoginStoresIdentityTokenAndRequestsUseTheRefreshGrant) {
  auto reg = start_registry({.auth = RegistryAuth::Token});
  ASSERT_TRUE(reg);
  std::string h = reg->host();
  auto a = open_store("root");
  auto img = make_test_image(a, "localhost/l:1", {10'000}, 53);
  auto authfile = tmp_ / "auth.json";
  ASSERT_EQ(run_shell("echo kiste-secret | KISTE_REGISTRIES_CONF=" + (tmp_ / "no-registries.conf").string() + " " +
                          kiste_binary().string() + " login -u kiste --password-stdin --authfile " +
                          authfile.string() + " " + h,
                      &out_),
            0)
      << out_;
  auto saved = sys::read_file(authfile);
  ASSERT_TRUE(saved);
  EXPECT_NE(saved->find("\"identitytoken\": \"kiste-refresh-"), std::string::npos) << *saved;
  EXPECT_EQ(saved->find("kiste-secret"), std::string::npos) << *saved;
  EXPECT_EQ(saved->find("a2lzdGU6a2lzdGUtc2VjcmV0"), std::string::npos)  // base64 user:password
      << *saved;
  EXPECT_EQ(reg->token_refresh_grants(), 0);

  ASSERT_EQ(kiste("push -q --authfile " + authfile.string() + " localhost/l:1 " + h + "/l:1"), 0)
      << out_;
  EXPECT_EQ(first_line(), img.manifest.digest.str());
  EXPECT_GE(reg->token_refresh_grants(), 1);
  int grants = reg->token_refresh_grants();
  ASSERT_EQ(kiste("tags --authfile " + authfile.string() + " " + h + "/l"), 0) << out_;
  EXPECT_EQ(out_, "1\n");
  EXPECT_GT(reg->token_refresh_grants(), grants);

  // A refresh token the server never issued is refused (one line, no secret in it).
  std::string forged = *saved;
  forged.replace(forged.find("kiste-refresh-"), 14, "forged-refresh");
  write("forged.json", forged);
  EXPECT_EQ(kiste("tags --authfile " + (tmp_ / "forged.json").string() + " " + h + "/l"), 125);
  EXPECT_NE(out_.find("401"), std::string::npos) << out_;
  EXPECT_EQ(out_.find("forged-refresh"), std::string::npos) << out_;
}

}  // namespace
}  // namespace kiste::testing
