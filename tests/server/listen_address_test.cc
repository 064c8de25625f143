// ListenAddress and what it binds: loopback is judged on an IP, never on
// how a name is spelled; the admin token rule on the address bound.
#include "server/listen_address.h"

#include "absl/strings/match.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/config/config.h"

namespace egress {
namespace {

using ::testing::HasSubstr;

ListenAddress Parsed(const char* text) {
  absl::StatusOr<ListenAddress> a = ParseListenAddress("--listen", text);
  EXPECT_TRUE(a.ok()) << a.status();
  return a.ok() ? *a : ListenAddress{};
}

TEST(ListenAddressTest, OnlyAnIpIsLoopbackByItsSpelling) {
  EXPECT_TRUE(Parsed("127.0.0.1:1").IsLoopback());
  EXPECT_TRUE(Parsed("127.9.9.9:1").IsLoopback());
  EXPECT_TRUE(Parsed("[::1]:1").IsLoopback());
  EXPECT_FALSE(Parsed("0.0.0.0:1").IsLoopback());
  EXPECT_FALSE(Parsed("[::]:1").IsLoopback());
  EXPECT_FALSE(Parsed("10.0.0.1:1").IsLoopback());
  // Names say nothing until resolved.
  EXPECT_FALSE(Parsed("localhost:1").IsLoopback());
  EXPECT_FALSE(Parsed("127.attacker.example:1").IsLoopback());
  EXPECT_FALSE(Parsed("127.attacker.example:1").Ip().has_value());
}

TEST(ListenAddressTest, LoopbackAddresses) {
  EXPECT_TRUE(IsLoopbackAddress(asio::ip::make_address("127.0.0.1")));
  EXPECT_TRUE(IsLoopbackAddress(asio::ip::make_address("::1")));
  EXPECT_TRUE(IsLoopbackAddress(asio::ip::make_address("::ffff:127.0.0.1")));
  EXPECT_FALSE(IsLoopbackAddress(asio::ip::make_address("0.0.0.0")));
  EXPECT_FALSE(IsLoopbackAddress(asio::ip::make_address("::")));
  EXPECT_FALSE(IsLoopbackAddress(asio::ip::make_address("::ffff:0.0.0.0")));
  EXPECT_FALSE(IsLoopbackAddress(asio::ip::make_address("10.1.2.3")));
}

TEST(ListenAddressTest, AnIpResolvesToItself) {
  absl::StatusOr<asio::ip::tcp::endpoint> v4 =
      ResolveListenAddress(Parsed("127.0.0.1:7070"));
  ASSERT_TRUE(v4.ok()) << v4.status();
  EXPECT_EQ(EndpointString(*v4), "127.0.0.1:7070");
  absl::StatusOr<asio::ip::tcp::endpoint> v6 =
      ResolveListenAddress(Parsed("[::1]:0"));
  ASSERT_TRUE(v6.ok()) << v6.status();
  EXPECT_EQ(EndpointString(*v6), "[::1]:0");
  absl::StatusOr<asio::ip::tcp::endpoint> nowhere =
      ResolveListenAddress(Parsed("no-such-host.invalid:1"));
  EXPECT_EQ(nowhere.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(nowhere.status().message(),
              HasSubstr("cannot resolve 'no-such-host.invalid'"));
}

TEST(AdminListenBoundTest, TheTokenRuleJudgesTheAddressBound) {
  ListenersConfig l;
  l.admin_listen = Parsed("127.attacker.example:9901");
  absl::Status wildcard =
      CheckAdminListenBound(l, asio::ip::make_address("0.0.0.0"));
  EXPECT_EQ(wildcard.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(wildcard.message(),
            "listeners.admin_token: required because listeners.admin_listen "
            "(127.attacker.example:9901) binds 0.0.0.0, which is not a "
            "loopback address; set admin_token_file to a mounted Secret, or "
            "keep admin_listen on 127.0.0.1");
  EXPECT_TRUE(
      CheckAdminListenBound(l, asio::ip::make_address("127.0.0.1")).ok());
  l.admin_token.value = "t";
  EXPECT_TRUE(CheckAdminListenBound(l, asio::ip::make_address("0.0.0.0")).ok());
}

TEST(AdminListenBoundTest, ValidateLeavesANameToTheResolver) {
  EXPECT_TRUE(
      ParseConfigYaml("listeners:\n  admin_listen: localhost:9901\n").ok());
  absl::StatusOr<EgressdConfig> wildcard =
      ParseConfigYaml("listeners:\n  admin_listen: 0.0.0.0:9901\n");
  EXPECT_THAT(wildcard.status().message(),
              HasSubstr("listeners.admin_token: required"));
}

}  // namespace
}  // namespace egress

namespace egress {
namespace {

TEST(HealthListenConfigTest, OffByDefaultAndRoundTrips) {
  absl::StatusOr<EgressdConfig> defaults = ParseConfigYaml("");
  ASSERT_TRUE(defaults.ok()) << defaults.status();
  EXPECT_FALSE(defaults->listeners.health_listen.has_value());
  EXPECT_THAT(RenderEffectiveConfig(*defaults),
              HasSubstr("health_listen: \"off\""));

  absl::StatusOr<EgressdConfig> on =
      ParseConfigYaml("listeners:\n  health_listen: 0.0.0.0:7071\n");
  ASSERT_TRUE(on.ok()) << on.status();
  ASSERT_TRUE(on->listeners.health_listen.has_value());
  EXPECT_EQ(on->listeners.health_listen->ToString(), "0.0.0.0:7071");
  absl::StatusOr<EgressdConfig> again =
      ParseConfigYaml(RenderEffectiveConfig(*on));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->listeners.health_listen->ToString(), "0.0.0.0:7071");

  absl::StatusOr<EgressdConfig> off =
      ParseConfigYaml("listeners:\n  health_listen: 'off'\n");
  ASSERT_TRUE(off.ok()) << off.status();
  EXPECT_FALSE(off->listeners.health_listen.has_value());

  absl::StatusOr<EgressdConfig> clash =
      ParseConfigYaml("listeners:\n  health_listen: 0.0.0.0:7070\n");
  EXPECT_THAT(clash.status().message(),
              HasSubstr("listeners.health_listen: 0.0.0.0:7070 is the same "
                        "port as listeners.listen"));
}

}  // namespace
}  // namespace egress
