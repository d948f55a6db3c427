#include <gtest/gtest.h>

#include <kiste/base/sys.hpp>
#include <kiste/registry/registries_conf.hpp>

using kiste::registry::InsecureRegistries;

TEST(RegistriesConf, V2RegistryTablesAndMirrors) {
  auto r = InsecureRegistries::from_registries_conf(R"(
# comment
unqualified-search-registries = ["docker.io", 'quay.io']   # trailing comment
short-name-mode = "enforcing"

[[registry]]
prefix = "example.com/foo"
location = "registry.internal:5000"
insecure = true
blocked = false

[[registry.mirror]]
location = "mirror.internal"
insecure = true

[[registry]]
location = "secure.example.com"
insecure = false

[aliases]
"fedora" = "registry.fedoraproject.org/fedora"
"a/b" = "quay.io/x/y"
)",
                                                    "test");
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_TRUE(r->contains("registry.internal:5000"));
  EXPECT_FALSE(r->contains("registry.internal:5001"));
  EXPECT_TRUE(r->contains("mirror.internal"));
  EXPECT_TRUE(r->contains("mirror.internal:443"));  // a location without a port: every port
  EXPECT_FALSE(r->contains("secure.example.com"));
  EXPECT_FALSE(r->contains("example.com"));
}

TEST(RegistriesConf, V1InsecureListOverSeveralLines) {
  auto r = InsecureRegistries::from_registries_conf(R"(
[registries.search]
registries = ['docker.io']

[registries.insecure]
registries = [
  "10.1.2.3:5000",   # lab
  '*.corp.example',
]

[registries.block]
registries = []
)",
                                                    "test");
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_TRUE(r->contains("10.1.2.3:5000"));
  EXPECT_TRUE(r->contains("reg.corp.example:8443"));
  EXPECT_FALSE(r->contains("corp.example"));
  EXPECT_FALSE(r->contains("docker.io"));
  EXPECT_EQ(r->entries().size(), 2u);
}

TEST(RegistriesConf, MalformedFilesNameTheFileAndLine) {
  auto r = InsecureRegistries::from_registries_conf(
      "[[registry]]\nlocation = \"x\ninsecure = true\n", "`/etc/containers/registries.conf`");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("registries.conf`: line 2"), std::string::npos)
      << r.error().message;
  EXPECT_FALSE(InsecureRegistries::from_registries_conf("location = \n", "t"));
  EXPECT_FALSE(InsecureRegistries::from_registries_conf("[[registry]\n", "t"));
  EXPECT_FALSE(InsecureRegistries::from_registries_conf("a = true false\n", "t"));
  // Nested arrays recursed once per `[` and overflowed the stack
  // (fuzz/corpus/registries_conf/regress_deep_arrays).
  auto deep = InsecureRegistries::from_registries_conf("a = " + std::string(100000, '['), "t");
  ASSERT_FALSE(deep);
  EXPECT_EQ(deep.error().message, "parse t: line 1: arrays nested too deeply");
  EXPECT_TRUE(InsecureRegistries::from_registries_conf("a = [[['x'], []], [\"y\"]]\n", "t"));
}

TEST(RegistriesConf, DockerDaemonJson) {
  auto r = InsecureRegistries::from_daemon_json(
      R"({"insecure-registries":["myreg:5000","http://other.lan"],"debug":true})", "d");
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_TRUE(r->contains("myreg:5000"));
  EXPECT_TRUE(r->contains("other.lan"));
  EXPECT_FALSE(r->contains("myreg:5001"));
  auto cidr = InsecureRegistries::from_daemon_json(
      R"({"insecure-registries":["10.20.0.0/16","192.168.1.7/32"]})", "d");
  ASSERT_TRUE(cidr) << cidr.error().to_string();
  EXPECT_TRUE(cidr->contains("10.20.3.4:5000"));
  EXPECT_TRUE(cidr->contains("10.20.255.1"));
  EXPECT_FALSE(cidr->contains("10.21.0.1:5000"));
  EXPECT_TRUE(cidr->contains("192.168.1.7:443"));
  EXPECT_FALSE(cidr->contains("192.168.1.8"));
  EXPECT_FALSE(cidr->contains("10.20.example.com"));
  EXPECT_TRUE(InsecureRegistries::from_daemon_json("{}", "d"));
  EXPECT_FALSE(InsecureRegistries::from_daemon_json(R"({"insecure-registries":"x"})", "d"));
  EXPECT_FALSE(InsecureRegistries::from_daemon_json("[", "d"));
}

// The machine's own configuration (Debian's commented registries.conf and the shortnames drop-in)
// parses.
TEST(RegistriesConf, SystemFilesParse) {
  for (const char* p :
       {"/etc/containers/registries.conf", "/etc/containers/registries.conf.d/shortnames.conf"}) {
    auto bytes = kiste::sys::read_file(p);
    if (!bytes) continue;
    auto r = InsecureRegistries::from_registries_conf(*bytes, p);
    EXPECT_TRUE(r) << r.error().to_string();
  }
}
