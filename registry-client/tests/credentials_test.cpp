#include <gtest/gtest.h>
#include <sys/stat.h>

#include <kiste/base/sys.hpp>
#include <kiste/base/temp_dir.hpp>
#include <kiste/registry/credentials.hpp>

using namespace kiste;
using namespace kiste::registry;
using Files = std::vector<std::filesystem::path>;

namespace {
// A temp dir for one test (base's TempDir; registry-client tests use no test helpers).
struct Tmp {
  TempDir dir = std::move(TempDir::create("/tmp", "kiste-cred-test-").value());
  std::filesystem::path operator/(const std::filesystem::path& p) const { return dir.path() / p; }
};
}  // namespace

TEST(Credentials, SaveLoadRemoveKeepsOtherKeysAndMode0600) {
  Tmp tmp;
  auto file = tmp / "docker" / "config.json";
  ASSERT_TRUE(sys::mkdir_all(file.parent_path()));
  ASSERT_TRUE(
      sys::write_file_atomic(file, R"({"psFormat":"x","auths":{"other:1":{"auth":"dTpw"}}})"));
  ASSERT_TRUE(save_login(file, "localhost:5000", {.username = "alice", .password = "s3:cr=t"}));
  struct stat st {};
  ASSERT_EQ(::stat(file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  DockerKeychain kc(Files{file});
  auto c = kc.get("localhost:5000");
  ASSERT_TRUE(c) << c.error().to_string();
  ASSERT_TRUE(c->has_value());
  EXPECT_EQ((*c)->username, "alice");
  EXPECT_EQ((*c)->password, "s3:cr=t");
  auto o = kc.get("other:1");
  ASSERT_TRUE(o && o->has_value());
  EXPECT_EQ((*o)->username, "u");
  auto text = sys::read_file(file);
  ASSERT_TRUE(text);
  EXPECT_NE(text->find("psFormat"), std::string::npos);
  ASSERT_TRUE(remove_login(file, "localhost:5000"));
  auto gone = kc.get("localhost:5000");
  ASSERT_TRUE(gone);
  EXPECT_FALSE(gone->has_value());
  EXPECT_EQ(remove_login(file, "localhost:5000").error().code, Errc::NotFound);
}

TEST(Credentials, SearchOrderAndDockerHubKey) {
  Tmp tmp;
  auto a = tmp / "a.json";
  auto b = tmp / "b.json";
  ASSERT_TRUE(sys::write_file_atomic(a, R"({"auths":{"r:1":{"auth":"YTox"}}})"));  // a:1
  ASSERT_TRUE(sys::write_file_atomic(
      b, R"({"auths":{"r:1":{"auth":"Yjoy"},"https://index.docker.io/v1/":{"auth":"aDpo"}}})"));
  DockerKeychain kc(Files{a, tmp / "missing.json", b});
  auto c = kc.get("r:1");
  ASSERT_TRUE(c && c->has_value());
  EXPECT_EQ((*c)->username, "a");
  auto hub = kc.get("docker.io");
  ASSERT_TRUE(hub && hub->has_value());
  EXPECT_EQ((*hub)->username, "h");
  EXPECT_EQ(auths_key("docker.io"), "https://index.docker.io/v1/");
}

TEST(Credentials, HostileFilesAreErrorsWithoutSecrets) {
  Tmp tmp;
  auto f = tmp / "c.json";
  ASSERT_TRUE(sys::write_file_atomic(f, R"({"auths":{"r":{"auth":"!!!not-base64-secret"}}})"));
  auto r = DockerKeychain(Files{f}).get("r");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().to_string().find("secret"), std::string::npos);
  ASSERT_TRUE(sys::write_file_atomic(f, R"({"auths":{"r":{"auth":"bm9jb2xvbg=="}}})"));  // nocolon
  EXPECT_FALSE(DockerKeychain(Files{f}).get("r"));
  ASSERT_TRUE(sys::write_file_atomic(f, "not json"));
  EXPECT_FALSE(DockerKeychain(Files{f}).get("r"));
  // A helper name that would escape the docker-credential- prefix is refused.
  ASSERT_TRUE(sys::write_file_atomic(f, R"({"credHelpers":{"r":"../../bin/sh"}})"));
  auto h = DockerKeychain(Files{f}).get("r");
  ASSERT_FALSE(h);
  EXPECT_EQ(h.error().code, Errc::InvalidArgument);
}

TEST(Credentials, CredentialHelperViaStdinStdout) {
  Tmp tmp;
  auto bin = tmp / "bin";
  ASSERT_TRUE(sys::mkdir_all(bin));
  // A helper that answers only for its registry, reading the name from stdin.
  ASSERT_TRUE(sys::write_file_atomic(
      bin / "docker-credential-kistetest",
      "#!/bin/sh\n[ \"$1\" = get ] || exit 1\nread host\n"
      "[ \"$host\" = r:5 ] || { echo 'credentials not found'; exit 1; }\n"
      "echo '{\"ServerURL\":\"r:5\",\"Username\":\"hu\",\"Secret\":\"hs\"}'\n",
      0755));
  auto f = tmp / "c.json";
  ASSERT_TRUE(sys::write_file_atomic(f, R"({"credsStore":"kistetest"})"));
  std::string old_path = std::getenv("PATH") ? std::getenv("PATH") : "";
  setenv("PATH", (bin.string() + ":" + old_path).c_str(), 1);
  auto c = DockerKeychain(Files{f}).get("r:5");
  auto none = DockerKeychain(Files{f}).get("other:5");
  setenv("PATH", old_path.c_str(), 1);
  ASSERT_TRUE(c) << c.error().to_string();
  ASSERT_TRUE(c->has_value());
  EXPECT_EQ((*c)->username, "hu");
  EXPECT_EQ((*c)->password, "hs");
  ASSERT_TRUE(none) << none.error().to_string();
  EXPECT_FALSE(none->has_value());
}
