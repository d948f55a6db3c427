// The pure parts of detached containers: restart policy and backoff, names, the record's JSON,
// json-file log lines, signal names; and the store's name index and id resolution on a temp dir.
#include <signal.h>

#include <gtest/gtest.h>

#include <kiste/runtime/container_store.hpp>
#include <kiste/runtime/monitor.hpp>
#include <kiste/base/temp_dir.hpp>

namespace kiste::runtime {
namespace {

using Kind = RestartPolicy::Kind;

TEST(RestartPolicy, ParsesDockersValues) {
  EXPECT_EQ(*parse_restart_policy(""), RestartPolicy{});
  EXPECT_EQ(*parse_restart_policy("no"), RestartPolicy{});
  EXPECT_EQ(*parse_restart_policy("always"), (RestartPolicy{.kind = Kind::Always}));
  EXPECT_EQ(*parse_restart_policy("unless-stopped"), (RestartPolicy{.kind = Kind::UnlessStopped}));
  EXPECT_EQ(restart_policy_name(*parse_restart_policy("unless-stopped")), "unless-stopped");
  EXPECT_TRUE(should_restart({.kind = Kind::UnlessStopped}, 0, 1000));
  EXPECT_EQ(*parse_restart_policy("on-failure"), (RestartPolicy{.kind = Kind::OnFailure}));
  EXPECT_EQ(*parse_restart_policy("on-failure:3"), (RestartPolicy{.kind = Kind::OnFailure, .max_retries = 3}));
  for (const char* bad : {"sometimes", "on-failure:", "on-failure:-1", "on-failure:x", "always:2", "No"}) {
    auto r = parse_restart_policy(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code, Errc::InvalidArgument);
  }
}

TEST(RestartPolicy, DecidesAndBacksOffAsDocker) {
  const RestartPolicy on3{.kind = Kind::OnFailure, .max_retries = 3};
  EXPECT_TRUE(should_restart(on3, 1, 0));
  EXPECT_TRUE(should_restart(on3, 137, 2));
  EXPECT_FALSE(should_restart(on3, 1, 3));
  EXPECT_FALSE(should_restart(on3, 0, 0));
  EXPECT_TRUE(should_restart({.kind = Kind::OnFailure}, 1, 1000));
  EXPECT_TRUE(should_restart({.kind = Kind::Always}, 0, 1000));
  EXPECT_FALSE(should_restart({}, 1, 0));
  EXPECT_EQ(restart_delay_ms(0, 0), 100);
  EXPECT_EQ(restart_delay_ms(100, 1), 200);
  EXPECT_EQ(restart_delay_ms(51'200, 1), 60'000);
  EXPECT_EQ(restart_delay_ms(60'000, 1), 60'000);
  EXPECT_EQ(restart_delay_ms(6'400, 10), 100);  // ran 10 s: back to the start
}

TEST(RestartPolicy, StartsAtBootAsDockersDaemonDoes) {
  using Kind = RestartPolicy::Kind;
  auto state = [](Kind k, std::string status, bool stopped) {
    ContainerState s;
    s.restart.kind = k;
    s.status = std::move(status);
    s.stop_requested = stopped;
    return s;
  };
  EXPECT_TRUE(starts_at_boot(state(Kind::Always, "exited", false)));
  EXPECT_TRUE(starts_at_boot(state(Kind::Always, "exited", true)));
  EXPECT_TRUE(starts_at_boot(state(Kind::UnlessStopped, "exited", false)));
  EXPECT_FALSE(starts_at_boot(state(Kind::UnlessStopped, "exited", true)));
  EXPECT_FALSE(starts_at_boot(state(Kind::OnFailure, "exited", false)));
  EXPECT_FALSE(starts_at_boot(state(Kind::No, "exited", false)));
  EXPECT_FALSE(starts_at_boot(state(Kind::Always, "running", false)));
}

TEST(ContainerName, DockersPattern) {
  for (const char* ok : {"web", "a1", "my_app.v2-x", "0x"}) EXPECT_TRUE(validate_container_name(ok)) << ok;
  for (const char* bad : {"", "a", "-web", "_x", "a b", "../x", "a/b", "web\n"}) {
    EXPECT_FALSE(validate_container_name(bad)) << bad;
  }
  EXPECT_FALSE(validate_container_name(std::string(129, 'a')));
}

TEST(ContainerState, JsonRoundTrip) {
  ContainerState s{.id = std::string(64, 'a'),
                   .name = "web",
                   .image = "busybox",
                   .command = {"sh", "-c", "echo \"hi\""},
                   .created = "2026-12-07T06:00:00.000000000Z",
                   .status = "running",
                   .pid = 42,
                   .monitor_pid = 41,
                   .exit_code = 3,
                   .restart_count = 2,
                   .stop_requested = true,
                   .restart = {.kind = Kind::OnFailure, .max_retries = 5},
                   .stop_signal = SIGINT,
                   .stop_timeout = 7,
                   .run_args = {"-d", "busybox"}};
  auto back = state_from_json(state_to_json(s));
  ASSERT_TRUE(back) << back.error().to_string();
  EXPECT_EQ(back->command, s.command);
  EXPECT_EQ(back->restart, s.restart);
  EXPECT_EQ(back->stop_signal, SIGINT);
  EXPECT_EQ(back->stop_timeout, 7);
  EXPECT_EQ(back->pid, 42);
  EXPECT_EQ(back->restart_count, 2);
  EXPECT_TRUE(back->stop_requested);
  EXPECT_EQ(back->run_args, s.run_args);
  for (const char* bad : {"", "[]", "{", "{\"name\":\"x\"}", "{\"id\":1}"}) {
    EXPECT_FALSE(state_from_json(bad)) << bad;
  }
}

TEST(JsonFileLog, EncodesDockersLinesAndSurvivesBinary) {
  EXPECT_EQ(encode_log_entry({.log = "hi \"x\"\n", .stream = "stdout", .time = "T"}),
            "{\"log\":\"hi \\\"x\\\"\\n\",\"stream\":\"stdout\",\"time\":\"T\"}\n");
  std::string line = encode_log_entry({.log = std::string("\xff\x00z\n", 4), .stream = "stderr", .time = "T"});
  line.pop_back();
  auto e = decode_log_entry(line);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->stream, "stderr");
  EXPECT_EQ(e->log, std::string("\xef\xbf\xbd\x00z\n", 6));  // U+FFFD for the bad byte
  EXPECT_FALSE(decode_log_entry("{\"stream\":\"stdout\"}"));
  EXPECT_FALSE(decode_log_entry("not json"));
}

TEST(Signals, NamesAndNumbers) {
  EXPECT_EQ(*parse_signal("TERM"), SIGTERM);
  EXPECT_EQ(*parse_signal("SIGKILL"), SIGKILL);
  EXPECT_EQ(*parse_signal("9"), SIGKILL);
  EXPECT_EQ(*parse_signal("HUP"), SIGHUP);
  for (const char* bad : {"", "0", "65", "FOO", "SIG", "-1", "9x"}) EXPECT_FALSE(parse_signal(bad)) << bad;
}

TEST(ContainerStoreTest, NamesAreUniqueAndPrefixesResolve) {
  auto tmp = TempDir::create(std::filesystem::temp_directory_path(), "kiste-cs-");
  ASSERT_TRUE(tmp);
  const ContainerStore store(tmp->path());
  auto a = store.create({.id = "ab" + std::string(62, '1'), .name = "web"});
  ASSERT_TRUE(a) << a.error().to_string();
  auto dup = store.create({.id = "cd" + std::string(62, '2'), .name = "web"});
  ASSERT_FALSE(dup);
  EXPECT_EQ(dup.error().code, Errc::AlreadyExists);
  auto b = store.create({.id = "ab" + std::string(62, '3')});
  ASSERT_TRUE(b);
  EXPECT_EQ(b->name, "kiste_ab3333333333");
  EXPECT_EQ(*store.resolve("web"), a->id);
  EXPECT_EQ(*store.resolve("ab1"), a->id);
  EXPECT_EQ(*store.resolve(b->id), b->id);
  EXPECT_EQ(store.resolve("ab").error().code, Errc::InvalidArgument);  // two match
  EXPECT_EQ(store.resolve("ef").error().code, Errc::NotFound);
  EXPECT_EQ(store.resolve("../containers").error().code, Errc::NotFound);
  // Without a monitor holding its lock, a record that says running reads as a lost monitor.
  ASSERT_TRUE(store.update(a->id, [](ContainerState& s) { s.status = "running"; }));
  auto lost = store.load(a->id);
  ASSERT_TRUE(lost);
  EXPECT_EQ(lost->status, "exited");
  EXPECT_TRUE(lost->monitor_lost);
  ASSERT_TRUE(store.remove(*a));
  EXPECT_EQ(store.resolve("web").error().code, Errc::NotFound);
  EXPECT_TRUE(store.create({.id = "cd" + std::string(62, '2'), .name = "web"}));  // free again
}

}  // namespace
}  // namespace kiste::runtime
