// Issue 8's configuration: the new limits, timeouts and retries fields,
// their flags, and their mapping onto HttpClientOptions.
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/config/config.h"
#include "server/egressd_config.h"

namespace egress {
namespace {

using ::testing::HasSubstr;

EgressdConfig Parse(const std::string& yaml) {
  absl::StatusOr<EgressdConfig> config = ParseConfigYaml(yaml, "test.yaml");
  EXPECT_TRUE(config.ok()) << config.status();
  return config.ok() ? *config : EgressdConfig{};
}

std::string ParseError(const std::string& yaml) {
  absl::StatusOr<EgressdConfig> config = ParseConfigYaml(yaml, "test.yaml");
  EXPECT_FALSE(config.ok()) << yaml;
  return config.ok() ? "" : std::string(config.status().message());
}

TEST(SafetyConfigTest, DefaultsAreDocumented) {
  const EgressdConfig c;
  EXPECT_EQ(c.timeouts.first_byte, absl::ZeroDuration());
  EXPECT_EQ(c.timeouts.idle_read, absl::ZeroDuration());
  EXPECT_EQ(c.limits.max_request_url_bytes, 16u * 1024);
  EXPECT_EQ(c.limits.max_request_header_count, 100);
  EXPECT_EQ(c.limits.max_request_header_bytes, 64u * 1024);
  EXPECT_EQ(c.limits.max_request_body_bytes, 4u << 20);
  EXPECT_EQ(c.limits.max_decompression_ratio, 100);
  EXPECT_EQ(c.limits.max_decompressed_bytes, uint64_t{1} << 30);
  EXPECT_EQ(c.limits.max_in_flight_per_caller, 0);
  EXPECT_EQ(c.limits.caller_metadata_key, "");
  EXPECT_EQ(c.retries.budget_percent, 20);
  EXPECT_EQ(c.retries.min_retry_concurrency, 3);
}

TEST(SafetyConfigTest, ParsesAndRendersEveryField) {
  const EgressdConfig c = Parse(R"(
timeouts:
  first_byte: 5s
  idle_read: 30s
limits:
  max_request_body_bytes: 8MiB
  max_request_url_bytes: 8KiB
  max_request_header_count: 50
  max_request_header_bytes: 32KiB
  max_decompression_ratio: 500
  max_decompressed_bytes: 256MiB
  max_in_flight_per_caller: 64
  caller_metadata_key: x-egress-caller
retries:
  budget_percent: 10
  min_retry_concurrency: 5
)");
  EXPECT_EQ(c.timeouts.first_byte, absl::Seconds(5));
  EXPECT_EQ(c.timeouts.idle_read, absl::Seconds(30));
  EXPECT_EQ(c.limits.max_request_body_bytes, 8u << 20);
  EXPECT_EQ(c.limits.max_request_url_bytes, 8u << 10);
  EXPECT_EQ(c.limits.max_request_header_count, 50);
  EXPECT_EQ(c.limits.max_request_header_bytes, 32u << 10);
  EXPECT_EQ(c.limits.max_decompression_ratio, 500);
  EXPECT_EQ(c.limits.max_decompressed_bytes, 256u << 20);
  EXPECT_EQ(c.limits.max_in_flight_per_caller, 64);
  EXPECT_EQ(c.limits.caller_metadata_key, "x-egress-caller");
  EXPECT_EQ(c.retries.budget_percent, 10);
  EXPECT_EQ(c.retries.min_retry_concurrency, 5);
  // The rendered configuration reads back the same.
  const EgressdConfig again = Parse(RenderEffectiveConfig(c));
  EXPECT_EQ(RenderEffectiveConfig(again), RenderEffectiveConfig(c));
  EXPECT_THAT(ChangedFromDefaults(c),
              ::testing::IsSupersetOf({"timeouts.first_byte",
                                       "limits.caller_metadata_key",
                                       "retries.budget_percent"}));
  // Every one of them is acted on.
  EXPECT_TRUE(CheckImplemented(c).ok()) << CheckImplemented(c);
}

TEST(SafetyConfigTest, OutOfRangeValuesNameTheField) {
  EXPECT_THAT(ParseError("timeouts:\n  idle_read: -1s\n"),
              HasSubstr("timeouts.idle_read: must be >= 0"));
  EXPECT_THAT(ParseError("retries:\n  budget_percent: 101\n"),
              HasSubstr("retries.budget_percent: must be <= 100"));
  EXPECT_THAT(ParseError("limits:\n  max_request_header_count: -1\n"),
              HasSubstr("limits.max_request_header_count: must be >= 0"));
  EXPECT_THAT(ParseError("limits:\n  max_decompression_ratio: 2000000\n"),
              HasSubstr("limits.max_decompression_ratio"));
  EXPECT_THAT(ParseError("limits:\n  max_request_url_bytes: 4GiB\n"),
              HasSubstr("limits.max_request_url_bytes: must be <= 2147483647"));
  for (const char* key : {"X-Caller", "grpc-caller", "caller-bin", "a b",
                          "authorization"}) {
    EXPECT_THAT(
        ParseError(absl::StrCat("limits:\n  caller_metadata_key: '", key,
                                "'\n")),
        HasSubstr("limits.caller_metadata_key")) << key;
  }
  EXPECT_THAT(ParseError("retries:\n  budget: 10\n"), HasSubstr("retries.budget"));
}

TEST(SafetyConfigTest, FlagsOverrideTheFile) {
  const EgressdConfig file = Parse(R"(
timeouts:
  first_byte: 5s
limits:
  max_request_body_bytes: 1MiB
  caller_metadata_key: x-from-file
)");
  FlagOverrides flags;
  flags.first_byte_timeout = absl::Seconds(2);
  flags.idle_read_timeout = absl::Milliseconds(500);
  flags.max_request_body_bytes = 2 << 20;
  flags.max_in_flight_per_caller = 10;
  flags.caller_metadata_key = "x-egress-caller";
  absl::StatusOr<EgressdConfig> config = ApplyFlags(file, flags);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->timeouts.first_byte, absl::Seconds(2));
  EXPECT_EQ(config->timeouts.idle_read, absl::Milliseconds(500));
  EXPECT_EQ(config->limits.max_request_body_bytes, 2u << 20);
  EXPECT_EQ(config->limits.max_in_flight_per_caller, 10);
  EXPECT_EQ(config->limits.caller_metadata_key, "x-egress-caller");

  FlagOverrides bad;
  bad.idle_read_timeout = absl::Seconds(-1);
  EXPECT_THAT(std::string(ApplyFlags(file, bad).status().message()),
              HasSubstr("--idle_read_timeout (timeouts.idle_read): must be >= 0"));
  FlagOverrides bad_key;
  bad_key.caller_metadata_key = "Bad Key";
  EXPECT_THAT(std::string(ApplyFlags(file, bad_key).status().message()),
              HasSubstr("--caller_metadata_key (limits.caller_metadata_key)"));
  FlagOverrides zero_body;
  zero_body.max_request_body_bytes = 0;
  EXPECT_THAT(
      std::string(ApplyFlags(file, zero_body).status().message()),
      HasSubstr("--max_request_body_bytes (limits.max_request_body_bytes)"));
}

TEST(SafetyConfigTest, MapsOntoTheClientOptions) {
  const EgressdConfig c = Parse(R"(
timeouts:
  first_byte: 5s
  idle_read: 30s
limits:
  max_request_body_bytes: 8MiB
  max_request_url_bytes: 8KiB
  max_request_header_count: 50
  max_request_header_bytes: 32KiB
  max_decompression_ratio: 500
  max_decompressed_bytes: 256MiB
  max_in_flight_per_caller: 64
retries:
  budget_percent: 10
  min_retry_concurrency: 5
)");
  absl::StatusOr<HttpClientOptions> options = ClientOptionsFromConfig(c, "");
  ASSERT_TRUE(options.ok()) << options.status();
  EXPECT_EQ(options->first_byte_timeout, absl::Seconds(5));
  EXPECT_EQ(options->idle_read_timeout, absl::Seconds(30));
  EXPECT_EQ(options->request_limits.max_body_bytes, 8u << 20);
  EXPECT_EQ(options->request_limits.max_url_bytes, 8u << 10);
  EXPECT_EQ(options->request_limits.max_header_count, 50u);
  EXPECT_EQ(options->request_limits.max_header_bytes, 32u << 10);
  EXPECT_EQ(options->max_decompression_ratio, 500u);
  EXPECT_EQ(options->max_decompressed_bytes, 256u << 20);
  EXPECT_EQ(options->max_in_flight_per_caller, 64u);
  EXPECT_EQ(options->retry_budget.budget_percent, 10.0);
  EXPECT_EQ(options->retry_budget.min_retry_concurrency, 5u);
}

}  // namespace
}  // namespace egress
