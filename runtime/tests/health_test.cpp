#include <gtest/gtest.h>

#include <kiste/runtime/container_store.hpp>
#include <kiste/runtime/health.hpp>

namespace kiste::runtime {
namespace {

TEST(GoDuration, ParsesDockersForms) {
  EXPECT_EQ(parse_go_duration_ms("1s").value(), 1000);
  EXPECT_EQ(parse_go_duration_ms("500ms").value(), 500);
  EXPECT_EQ(parse_go_duration_ms("1m30s").value(), 90'000);
  EXPECT_EQ(parse_go_duration_ms("1.5h").value(), 5'400'000);
  EXPECT_EQ(parse_go_duration_ms("0").value(), 0);
  for (const char* bad : {"", "1", "-1s", "1x", "s", "1s2"}) {
    auto r = parse_go_duration_ms(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_NE(r.error().message.find("duration"), std::string::npos);
  }
}

TEST(GoDuration, FormatsAsGoPrints) {
  EXPECT_EQ(format_go_duration_ms(30'000), "30s");
  EXPECT_EQ(format_go_duration_ms(90'000), "1m30s");
  EXPECT_EQ(format_go_duration_ms(1'500), "1.5s");
  EXPECT_EQ(format_go_duration_ms(250), "250ms");
  EXPECT_EQ(format_go_duration_ms(3'600'000), "1h0m0s");
}

TEST(ResolveHealth, FlagsAloneGetDockersDefaults) {
  auto h = resolve_health(std::nullopt, {.cmd = "test -f /tmp/ok", .interval = "1s"});
  ASSERT_TRUE(h && *h);
  EXPECT_EQ((*h)->test, (std::vector<std::string>{"CMD-SHELL", "test -f /tmp/ok"}));
  EXPECT_EQ((*h)->interval_ms, 1000);
  EXPECT_EQ((*h)->timeout_ms, 30'000);
  EXPECT_EQ((*h)->start_period_ms, 0);
  EXPECT_EQ((*h)->retries, 3);
  EXPECT_EQ(health_argv(**h), (std::vector<std::string>{"/bin/sh", "-c", "test -f /tmp/ok"}));
}

TEST(ResolveHealth, FlagsOverrideTheImageFieldByField) {
  image::HealthConfig img{.test = {"CMD", "/bin/check", "--quick"}, .interval_ns = 5'000'000'000,
                          .timeout_ns = 2'000'000'000, .retries = 7};
  auto h = resolve_health(img, {.timeout = "1s"});
  ASSERT_TRUE(h && *h);
  EXPECT_EQ((*h)->test, img.test);
  EXPECT_EQ((*h)->interval_ms, 5000);
  EXPECT_EQ((*h)->timeout_ms, 1000);
  EXPECT_EQ((*h)->retries, 7);
  EXPECT_EQ(health_argv(**h), (std::vector<std::string>{"/bin/check", "--quick"}));
}

TEST(ResolveHealth, NoneAndNoHealthcheckMeanNoCheck) {
  EXPECT_FALSE(resolve_health(std::nullopt, {}).value());
  EXPECT_FALSE(resolve_health(image::HealthConfig{.test = {"NONE"}}, {}).value());
  EXPECT_FALSE(resolve_health(image::HealthConfig{.test = {"CMD", "true"}}, {.none = true}).value());
  // --health-cmd replaces an image's NONE.
  EXPECT_TRUE(resolve_health(image::HealthConfig{.test = {"NONE"}}, {.cmd = "true"}).value());
}

TEST(ResolveHealth, BadFlagsAreOneLineErrors) {
  auto conflict = resolve_health(std::nullopt, {.cmd = "true", .none = true});
  ASSERT_FALSE(conflict);
  EXPECT_EQ(conflict.error().message, "--no-healthcheck conflicts with --health-* options");
  EXPECT_FALSE(resolve_health(std::nullopt, {.cmd = "true", .interval = "soon"}));
  EXPECT_FALSE(resolve_health(std::nullopt, {.cmd = "true", .retries = -1}));
  EXPECT_FALSE(resolve_health(std::nullopt, {.cmd = "true", .timeout = "1ns"}));
  EXPECT_FALSE(resolve_health(std::nullopt, {.interval = "1s"}));  // nothing to run
  EXPECT_FALSE(resolve_health(image::HealthConfig{.test = {"CMD"}}, {}));
}

HealthProbe probe(int code) { return {.start = "s", .end = "e", .exit_code = code, .output = "o"}; }

TEST(RecordProbe, RetriesFailuresInARowMakeItUnhealthy) {
  const HealthSpec spec{.test = {"CMD", "true"}, .retries = 2};
  HealthState st;
  record_probe(st, spec, probe(1), false);
  EXPECT_EQ(st.status, "starting");
  EXPECT_EQ(st.failing_streak, 1);
  record_probe(st, spec, probe(0), false);
  EXPECT_EQ(st.status, "healthy");
  EXPECT_EQ(st.failing_streak, 0);
  record_probe(st, spec, probe(1), false);
  EXPECT_EQ(st.status, "healthy");
  record_probe(st, spec, probe(-1), false);  // a timeout fails too
  EXPECT_EQ(st.status, "unhealthy");
  EXPECT_EQ(st.failing_streak, 2);
}

TEST(RecordProbe, FailuresInTheStartPeriodDoNotCount) {
  const HealthSpec spec{.test = {"CMD", "true"}, .retries = 1};
  HealthState st;
  record_probe(st, spec, probe(1), true);
  EXPECT_EQ(st.status, "starting");
  EXPECT_EQ(st.failing_streak, 0);
  EXPECT_EQ(st.log.size(), 1u);
  record_probe(st, spec, probe(0), true);
  EXPECT_EQ(st.status, "healthy");
}

TEST(RecordProbe, KeepsTheLastFive) {
  const HealthSpec spec{.test = {"CMD", "true"}};
  HealthState st;
  for (int i = 0; i < 8; ++i) record_probe(st, spec, probe(i), false);
  ASSERT_EQ(st.log.size(), kHealthLogEntries);
  EXPECT_EQ(st.log.front().exit_code, 3);
  EXPECT_EQ(st.log.back().exit_code, 7);
}

TEST(HealthRecord, RoundTripsAndOldRecordsLoad) {
  ContainerState s{.id = std::string(64, 'a'), .name = "web"};
  s.health = HealthSpec{.test = {"CMD-SHELL", "test -f /tmp/ok"}, .interval_ms = 1000};
  s.health_state = HealthState{.status = "healthy", .failing_streak = 0, .log = {probe(0)}};
  auto back = state_from_json(state_to_json(s));
  ASSERT_TRUE(back);
  EXPECT_EQ(back->health, s.health);
  EXPECT_EQ(back->health_state, s.health_state);
  // A record written before healthchecks existed.
  auto old = state_from_json(R"({"id":"ab","name":"x","status":"exited"})");
  ASSERT_TRUE(old);
  EXPECT_FALSE(old->health);
  EXPECT_FALSE(old->health_state);
}

}  // namespace
}  // namespace kiste::runtime
