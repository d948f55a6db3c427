// Issue 14, honest output from the registry commands: an unreachable loopback registry fails at
// once with the URL kiste used, retries are visible on a terminal, and `delete` of a tag names
// the other tags that go with the same manifest.
#include <chrono>
#include <nlohmann/json.hpp>

#include "fault_proxy.hpp"
#include "registry_fixture.hpp"

namespace kiste::testing {
namespace {

namespace fs = std::filesystem;

// Runs a shell command on a pseudo-terminal (stdin from /dev/null): stderr is a terminal.
int on_pty(const std::string& command, std::string* out) {
  return run_shell("script -q -e -c '" + command + "' /dev/null < /dev/null", out);
}

TEST_F(RegistryTest, PushToALoopbackPortNobodyListensOnFailsAtOnceNamingTheHttpUrl) {
  auto store = open_store("root");
  make_test_image(store, "localhost/app:1", {10'000}, 41);
  const std::string host = "127.0.0.1:" + std::to_string(free_loopback_port());
  std::string out;
  // --log-level info shows any retry kiste would make: there must be none.
  EXPECT_EQ(run_shell(kiste_command(tmp_ / "root", "--log-level info push localhost/app:1 " + host +
                                               "/x:1"),
                      &out),
            125);
  EXPECT_EQ(count_lines(out), 1u) << out;
  EXPECT_TRUE(out.starts_with("kiste: error: ")) << out;
  EXPECT_NE(out.find("registry `" + host + "`"), std::string::npos) << out;
  EXPECT_NE(out.find("connect to http://" + host + "/v2/: connection refused"), std::string::npos)
      << out;
  EXPECT_NE(out.find("the registry may not be running"), std::string::npos) << out;
  EXPECT_EQ(out.find("https://"), std::string::npos) << out;
  EXPECT_EQ(out.find("retrying"), std::string::npos) << out;
}

TEST_F(RegistryTest, RetriesAreShownOnATerminalAndLoggedOtherwise) {
  auto reg = start_registry();
  ASSERT_TRUE(reg);
  auto a = open_store("src");
  make_test_image(a, "localhost/r:1", {20'000}, 42);
  auto c = client(reg->host());
  ASSERT_TRUE(push(a, "localhost/r:1", *c, reg->host() + "/r:1"));
  {
    FaultProxy proxy(reg->port(), FaultProxy::Fault::Status500, 1,
                     FaultProxy::Target::ManifestGet);
    std::string out;
    ASSERT_EQ(on_pty(kiste_command(tmp_ / "t1", "pull " + proxy.host() + "/r:1"), &out), 0) << out;
    EXPECT_EQ(proxy.faults_injected(), 1);
    auto at = out.find("kiste: retrying (2/5) in ");
    ASSERT_NE(at, std::string::npos) << out;
    std::string line = out.substr(at, out.find('\n', at) - at);
    EXPECT_NE(line.find(" s: get manifest `" + proxy.host() + "/r:1`: "), std::string::npos)
        << line;
    EXPECT_NE(line.find("500"), std::string::npos) << line;
  }
  {
    FaultProxy proxy(reg->port(), FaultProxy::Fault::Status500, 1,
                     FaultProxy::Target::ManifestGet);
    std::string out;
    ASSERT_EQ(run_shell(kiste_command(tmp_ / "t2", "pull " + proxy.host() + "/r:1") + " 2>&1 | cat", &out),
              0)
        << out;
    EXPECT_EQ(proxy.faults_injected(), 1);
    EXPECT_EQ(out.find("retrying"), std::string::npos) << out;
  }
  {
    FaultProxy proxy(reg->port(), FaultProxy::Fault::Status500, 1,
                     FaultProxy::Target::ManifestGet);
    std::string out;
    ASSERT_EQ(run_shell(kiste_command(tmp_ / "t3", "--log-level info pull " + proxy.host() + "/r:1") +
                            " 2>&1 | cat",
                        &out),
              0)
        << out;
    EXPECT_NE(out.find("kiste: info: retrying (2/5) in "), std::string::npos) << out;
  }
}

TEST_F(RegistryTest, DeleteOfATagNamesTheOtherTagsOfTheManifestAndWantsForce) {
  auto reg = start_registry();
  ASSERT_TRUE(reg);
  auto a = open_store("root");
  auto img = make_test_image(a, "localhost/app:1", {30'000}, 43);
  auto other = make_test_image(a, "localhost/other:1", {31'000}, 44);
  auto c = client(reg->host());
  const std::string h = reg->host();
  for (const char* tag : {"0.3", "0.4", "stable"}) {
    ASSERT_TRUE(push(a, "localhost/app:1", *c, h + "/prod/app:" + tag));
  }
  ASSERT_TRUE(push(a, "localhost/other:1", *c, h + "/prod/app:0.5"));
  std::string out;
  // Not a terminal: refused with the list, nothing deleted.
  EXPECT_EQ(run_shell(kiste_command(tmp_ / "root", "delete docker://" + h + "/prod/app:0.4") +
                          " < /dev/null 2>&1",
                      &out),
            125);
  EXPECT_EQ(count_lines(out), 1u) << out;
  EXPECT_NE(out.find("is also tagged 0.3, stable in `" + h + "/prod/app`"), std::string::npos)
      << out;
  EXPECT_NE(out.find("use --force"), std::string::npos) << out;
  EXPECT_EQ(out.find("0.5"), std::string::npos) << out;  // another manifest: not listed
  auto tags = c->list_tags("prod/app");
  ASSERT_TRUE(tags);
  EXPECT_EQ(tags->names.size(), 4u);

  // A terminal that says no: still nothing deleted.
  out.clear();
  EXPECT_EQ(run_shell("echo n | script -q -e -c '" +
                          kiste_command(tmp_ / "root", "delete docker://" + h + "/prod/app:0.4") +
                          "' /dev/null",
                      &out),
            125);
  EXPECT_NE(out.find("kiste: warning: delete `"), std::string::npos) << out;
  EXPECT_NE(out.find("Delete 3 tags? [y/N]"), std::string::npos) << out;
  EXPECT_TRUE(c->try_head_manifest("prod/app", "0.4").value().has_value());

  // --force deletes the manifest: all three tags go, 0.5 stays.
  out.clear();
  ASSERT_EQ(run_shell(kiste_command(tmp_ / "root", "delete --force docker://" + h + "/prod/app:0.4"),
                      &out),
            0)
      << out;
  EXPECT_EQ(out, img.manifest.digest.str() + "\n");
  for (const char* gone : {"0.3", "0.4", "stable"}) {
    EXPECT_FALSE(c->try_head_manifest("prod/app", gone).value().has_value()) << gone;
  }
  EXPECT_TRUE(c->try_head_manifest("prod/app", "0.5").value().has_value());

  // The only tag of a manifest: deleted without asking.
  out.clear();
  ASSERT_EQ(run_shell(kiste_command(tmp_ / "root", "delete docker://" + h + "/prod/app:0.5") +
                          " < /dev/null",
                      &out),
            0)
      << out;
  EXPECT_EQ(out, other.manifest.digest.str() + "\n");
}

TEST_F(RegistryTest, RemoteInspectHasTheSameShapeAsLocal) {
  auto reg = start_registry();
  ASSERT_TRUE(reg);
  auto a = open_store("root");
  auto img = make_test_image(a, "localhost/app:1", {30'000, 20'000}, 45);
  auto c = client(reg->host());
  const std::string h = reg->host();
  ASSERT_TRUE(push(a, "localhost/app:1", *c, h + "/ins/app:1"));
  std::string local, remote;
  ASSERT_EQ(run_shell(kiste_command(tmp_ / "root", "inspect localhost/app:1"), &local), 0) << local;
  ASSERT_EQ(run_shell(kiste_command(tmp_ / "root", "inspect docker://" + h + "/ins/app:1"), &remote), 0)
      << remote;
  auto lj = nlohmann::json::parse(local, nullptr, false);
  auto rj = nlohmann::json::parse(remote, nullptr, false);
  ASSERT_TRUE(lj.is_array() && rj.is_array()) << local << remote;
  std::vector<std::string> lkeys, rkeys;
  for (const auto& [k, v] : lj[0].items()) lkeys.push_back(k);
  for (const auto& [k, v] : rj[0].items()) rkeys.push_back(k);
  EXPECT_EQ(lkeys, rkeys);
  EXPECT_EQ(lj[0]["Id"], rj[0]["Id"]);
  EXPECT_EQ(lj[0]["RootFS"], rj[0]["RootFS"]);
  EXPECT_EQ(lj[0]["Config"], rj[0]["Config"]);
  EXPECT_EQ(rj[0]["RepoTags"], nlohmann::json({h + "/ins/app:1"}));
  EXPECT_EQ(rj[0]["RepoDigests"], nlohmann::json({h + "/ins/app@" + img.manifest.digest.str()}));
  std::string id;
  ASSERT_EQ(run_shell(kiste_command(tmp_ / "root", "inspect -f '{{.Id}} {{.Descriptor.digest}}' docker://" +
                                               h + "/ins/app:1"),
                      &id),
            0)
      << id;
  EXPECT_EQ(id, lj[0]["Id"].get<std::string>() + " " + img.manifest.digest.str() + "\n");
}

}  // namespace
}  // namespace kiste::testing
