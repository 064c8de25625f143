#include "server/egressd_config.h"

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "asio/ip/address.hpp"
#include "client_core/policy/egress_policy.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/config/config.h"

namespace egress {
namespace {

using ::testing::AllOf;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

EgressdConfig Parse(const std::string& yaml) {
  absl::StatusOr<EgressdConfig> config = ParseConfigYaml(yaml, "test.yaml");
  EXPECT_TRUE(config.ok()) << config.status();
  return config.ok() ? *config : EgressdConfig{};
}

std::string ErrorOf(const EgressdConfig& base, const FlagOverrides& flags) {
  absl::StatusOr<EgressdConfig> config = ApplyFlags(base, flags);
  EXPECT_FALSE(config.ok());
  if (config.ok()) return "";
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(config.status().message());
}

// --- precedence ------------------------------------------------------------

TEST(ApplyFlagsTest, NoFileAndNoFlagsIsTheBuiltInConfiguration) {
  absl::StatusOr<EgressdConfig> config =
      ApplyFlags(EgressdConfig{}, FlagOverrides{});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_THAT(ChangedFromDefaults(*config), IsEmpty());
}

TEST(ApplyFlagsTest, FileBeatsDefaultAndAGivenFlagBeatsTheFile) {
  const EgressdConfig file = Parse(R"(
pool:
  keep_alive: 10s
  max_connections: 100
timeouts:
  shutdown_grace: 5s
egress:
  allow_cidrs: [10.0.0.0/8]
  report_only: true
)");
  // Flags not given: the file's values stay.
  absl::StatusOr<EgressdConfig> config = ApplyFlags(file, FlagOverrides{});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->pool.keep_alive, absl::Seconds(10));
  EXPECT_EQ(config->pool.max_connections, 100);
  EXPECT_TRUE(config->egress.report_only);

  // Given flags win, even when they repeat the built-in default's value.
  FlagOverrides flags;
  flags.keep_alive = absl::Seconds(30);
  flags.shutdown_grace = absl::Seconds(1);
  flags.egress_report_only = false;
  flags.allow_cidr = std::vector<std::string>{"127.0.0.0/8", " ::1 "};
  config = ApplyFlags(file, flags);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->pool.keep_alive, absl::Seconds(30));
  EXPECT_EQ(config->timeouts.shutdown_grace, absl::Seconds(1));
  EXPECT_FALSE(config->egress.report_only);
  EXPECT_EQ(config->pool.max_connections, 100) << "not given: file's value";
  ASSERT_EQ(config->egress.allow_cidrs.size(), 2u);
  EXPECT_EQ(config->egress.allow_cidrs[0].ToString(), "127.0.0.0/8");
  EXPECT_EQ(config->egress.allow_cidrs[1].ToString(), "::1/128");
}

TEST(ApplyFlagsTest, AnEmptyListFlagEmptiesTheFilesList) {
  const EgressdConfig file = Parse("egress:\n  deny_cidrs: [10.0.0.0/8]\n");
  FlagOverrides flags;
  flags.deny_cidr = std::vector<std::string>{};
  absl::StatusOr<EgressdConfig> config = ApplyFlags(file, flags);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_THAT(config->egress.deny_cidrs, IsEmpty());
}

TEST(ApplyFlagsTest, EveryOverrideReachesItsField) {
  FlagOverrides f;
  f.listen = "127.0.0.1:0";
  f.admin_listen = "[::1]:0";
  f.event_loops = 2;
  f.completion_queues = 3;
  f.max_idle_connections = 4;
  f.max_idle_per_address = 5;
  f.keep_alive = absl::Seconds(6);
  f.health_check_after_idle = absl::Seconds(7);
  f.max_connection_lifetime = absl::Seconds(8);
  f.max_connections = 9;
  f.max_connections_per_address = 10;
  f.max_requests_in_flight = 11;
  f.max_requests_in_flight_per_address = 12;
  f.max_pending_per_address = 13;
  f.pending_timeout = absl::Seconds(14);
  f.leak_threshold = absl::Seconds(15);
  f.connect_timeout = absl::Seconds(16);
  f.default_call_timeout = absl::Seconds(17);
  f.shutdown_grace = absl::Seconds(18);
  f.max_response_body_bytes = 19;
  f.deny_cidr = std::vector<std::string>{"192.0.2.0/24"};
  f.egress_report_only = true;
  absl::StatusOr<EgressdConfig> c = ApplyFlags(EgressdConfig{}, f);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->listeners.listen.ToString(), "127.0.0.1:0");
  EXPECT_EQ(c->listeners.admin_listen.ToString(), "[::1]:0");
  EXPECT_EQ(c->threads.event_loops, 2);
  EXPECT_EQ(c->threads.completion_queues, 3);
  EXPECT_EQ(c->pool.max_idle_connections, 4);
  EXPECT_EQ(c->pool.max_idle_per_address, 5);
  EXPECT_EQ(c->pool.keep_alive, absl::Seconds(6));
  EXPECT_EQ(c->pool.health_check_after_idle, absl::Seconds(7));
  EXPECT_EQ(c->pool.max_connection_lifetime, absl::Seconds(8));
  EXPECT_EQ(c->pool.max_connections, 9);
  EXPECT_EQ(c->pool.max_connections_per_address, 10);
  EXPECT_EQ(c->pool.max_requests_in_flight, 11);
  EXPECT_EQ(c->pool.max_requests_in_flight_per_address, 12);
  EXPECT_EQ(c->pool.max_pending_per_address, 13);
  EXPECT_EQ(c->pool.pending_timeout, absl::Seconds(14));
  EXPECT_EQ(c->pool.leak_threshold, absl::Seconds(15));
  EXPECT_EQ(c->timeouts.connect, absl::Seconds(16));
  EXPECT_EQ(c->timeouts.default_call, absl::Seconds(17));
  EXPECT_EQ(c->timeouts.shutdown_grace, absl::Seconds(18));
  EXPECT_EQ(c->limits.max_response_body_bytes, 19u);
  ASSERT_EQ(c->egress.deny_cidrs.size(), 1u);
  EXPECT_EQ(c->egress.deny_cidrs[0].ToString(), "192.0.2.0/24");
  EXPECT_TRUE(c->egress.report_only);
}

// --- errors name the flag --------------------------------------------------

TEST(ApplyFlagsTest, ABadValueNamesTheFlagAndItsField) {
  FlagOverrides f;
  f.keep_alive = absl::Seconds(-5);
  EXPECT_EQ(ErrorOf({}, f),
            "--keep_alive (pool.keep_alive): must be > 0, got -5s");

  f = {};
  f.max_connections = -1;
  EXPECT_EQ(ErrorOf({}, f),
            "--max_connections (pool.max_connections): must be >= 0, got -1");

  f = {};
  f.max_response_body_bytes = -1;
  EXPECT_THAT(ErrorOf({}, f),
              HasSubstr("--max_response_body_bytes "
                        "(limits.max_response_body_bytes): must be >= 0"));
  f.max_response_body_bytes = 0;
  EXPECT_THAT(ErrorOf({}, f),
              HasSubstr("--max_response_body_bytes "
                        "(limits.max_response_body_bytes): must be > 0"));

  f = {};
  f.event_loops = 5000;
  EXPECT_EQ(ErrorOf({}, f),
            "--event_loops (threads.event_loops): must be <= 1024, got 5000");

  f = {};
  f.listen = "nonsense";
  EXPECT_THAT(ErrorOf({}, f), HasSubstr("--listen: 'nonsense'"));

  f = {};
  f.allow_cidr = std::vector<std::string>{"10.0.0.1/8"};
  EXPECT_THAT(ErrorOf({}, f),
              AllOf(HasSubstr("--allow_cidr (egress.allow_cidrs)"),
                    HasSubstr("10.0.0.0/8")));

  // A clash the flag caused is the flag's; the other side is named too.
  f = {};
  f.admin_listen = "127.0.0.1:7070";
  EXPECT_THAT(ErrorOf({}, f),
              AllOf(HasSubstr("--admin_listen (listeners.admin_listen)"),
                    HasSubstr("listeners.listen")));
}

TEST(ApplyFlagsTest, AdminOffLoopbackNeedsAToken) {
  FlagOverrides f;
  f.admin_listen = "0.0.0.0:9901";
  EXPECT_THAT(ErrorOf({}, f), AllOf(HasSubstr("listeners.admin_token"),
                                    HasSubstr("not a loopback address")));

  const EgressdConfig with_token =
      Parse("listeners:\n  admin_token: t0ken\n");
  absl::StatusOr<EgressdConfig> config = ApplyFlags(with_token, f);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->listeners.admin_token.value, "t0ken");
  EXPECT_TRUE(CheckImplemented(*config).ok()) << "the token is enforced";
}

// --- the host allow-list ----------------------------------------------------

// egress.allow_hosts / allow_domain_suffixes mean "only these hosts": they
// are accepted and become the policy's host allow-list (which narrows
// egress), never its exempt_* lists (which would widen it).
TEST(CheckImplementedTest, AcceptsTheHostAllowListAndMapsItToNarrowEgress) {
  const EgressdConfig config = Parse(R"(
logging:
  level: debug
egress:
  allow_hosts: [API.example.com]
  allow_domain_suffixes: [.example.net]
)");
  ASSERT_TRUE(CheckImplemented(config).ok()) << CheckImplemented(config);
  absl::StatusOr<HttpClientOptions> o = ClientOptionsFromConfig(config, "");
  ASSERT_TRUE(o.ok()) << o.status();
  ASSERT_NE(o->connector.policy, nullptr);
  const EgressPolicy& policy = *o->connector.policy;
  EXPECT_THAT(policy.options().host_allowlist, ElementsAre("api.example.com"));
  EXPECT_THAT(policy.options().domain_suffix_allowlist,
              ElementsAre("example.net"));
  EXPECT_THAT(policy.options().exempt_hosts, IsEmpty());
  EXPECT_THAT(policy.options().exempt_domain_suffixes, IsEmpty());

  EXPECT_TRUE(policy.CheckHost("api.example.com").allowed);
  EXPECT_TRUE(policy.CheckHost("example.net").allowed);
  EXPECT_TRUE(policy.CheckHost("www.example.net").allowed);
  const PolicyDecision other = policy.CheckHost("www.example.com");
  EXPECT_FALSE(other.allowed);
  EXPECT_EQ(other.ToStatus("www.example.com").code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(other.ToStatus("www.example.com").message()),
              HasSubstr("host_not_allowed"));
  // Listed is not exempt: a listed host's private address stays denied.
  EXPECT_FALSE(
      policy.Check("api.example.com", asio::ip::make_address("10.0.0.1"), 443)
          .allowed);
}

TEST(TlsClientFromConfigTest, EachDestinationEntryBecomesARule) {
  const EgressdConfig config = Parse(R"(
tls:
  default:
    policy: modern
  destinations:
    - host: legacy.example.com
      policy: compatible
      protocol: http1
    - suffix: internal.test
      insecure_skip_verify: true
      allow_cleartext: false
      protocol: h2
    - cidr: 10.1.0.0/16
      protocol: h2c
)");
  ASSERT_TRUE(CheckImplemented(config).ok()) << CheckImplemented(config);
  absl::StatusOr<std::shared_ptr<TlsClient>> tls =
      TlsClientFromConfig(config.tls);
  ASSERT_TRUE(tls.ok()) << tls.status();
  const DestinationRules& rules = (*tls)->rules();
  ASSERT_EQ(rules.rules().size(), 3u);
  EXPECT_EQ(rules.For("legacy.example.com").spec, TlsSpec::kCompatible);
  EXPECT_EQ(rules.For("legacy.example.com").protocols, HttpProtocols::kHttp11);
  EXPECT_TRUE(rules.For("legacy.example.com").verify);
  EXPECT_FALSE(rules.For("a.internal.test").verify);
  EXPECT_FALSE(rules.For("a.internal.test").allow_cleartext);
  EXPECT_TRUE(rules.For("legacy.example.com").allow_cleartext);
  EXPECT_EQ(rules.For("a.internal.test").protocols, HttpProtocols::kHttp2);
  EXPECT_EQ(rules.For("10.1.2.3").protocols, HttpProtocols::kHttp2);
  // A host name never matches a cidr entry.
  EXPECT_EQ(rules.IndexFor("ten.example.org"), 0u);
  EXPECT_TRUE(rules.For("ten.example.org").verify);
  EXPECT_EQ(rules.For("ten.example.org").spec, TlsSpec::kModern);
}

TEST(CheckImplementedTest, AcceptsWhatEgressdActsOnAndWarnsAboutMetrics) {
  const EgressdConfig config = Parse(R"(
listeners:
  listen: 0.0.0.0:7070
  metrics_listen: 0.0.0.0:9902
pool:
  keep_alive: 20s
timeouts:
  shutdown_grace: 20s
limits:
  max_response_body_bytes: 8MiB
egress:
  allow_cidrs: [10.0.0.0/8]
  allowed_ports: [80, 443]
)");
  EXPECT_TRUE(CheckImplemented(config).ok()) << CheckImplemented(config);
  const std::vector<std::string> warnings = EgressdWarnings(config);
  EXPECT_THAT(warnings, Contains(HasSubstr("listeners.metrics_listen")));
  EXPECT_THAT(warnings, Contains(HasSubstr("listeners.listen")));
  EXPECT_THAT(EgressdWarnings(EgressdConfig{}), IsEmpty());
}

// --- mapping onto the HttpClient -------------------------------------------

TEST(ClientOptionsFromConfigTest, DefaultsMatchTheClientsOwnDefaults) {
  absl::StatusOr<HttpClientOptions> options =
      ClientOptionsFromConfig(EgressdConfig{}, "");
  ASSERT_TRUE(options.ok()) << options.status();
  const HttpClientOptions defaults;
  EXPECT_EQ(options->event_loops, defaults.event_loops);
  EXPECT_EQ(options->pool.max_idle_connections,
            defaults.pool.max_idle_connections);
  EXPECT_EQ(options->pool.max_idle_per_address,
            defaults.pool.max_idle_per_address);
  EXPECT_EQ(options->pool.keep_alive, defaults.pool.keep_alive);
  EXPECT_EQ(options->pool.max_connections, defaults.pool.max_connections);
  EXPECT_EQ(options->pool.max_connections_per_address,
            defaults.pool.max_connections_per_address);
  EXPECT_EQ(options->pool.max_requests_in_flight,
            defaults.pool.max_requests_in_flight);
  EXPECT_EQ(options->pool.max_pending_per_address,
            defaults.pool.max_pending_per_address);
  EXPECT_EQ(options->pool.pending_timeout, defaults.pool.pending_timeout);
  EXPECT_EQ(options->connector.connect_timeout,
            defaults.connector.connect_timeout);
  EXPECT_EQ(options->max_response_body_bytes, defaults.max_response_body_bytes);
  EXPECT_EQ(options->leak_threshold, defaults.leak_threshold);
  EXPECT_EQ(options->resolver, nullptr) << "DNS";
  ASSERT_NE(options->connector.policy, nullptr);
  EXPECT_FALSE(options->connector.policy->options().report_only);
}

TEST(ClientOptionsFromConfigTest, MapsEveryFieldAndThePolicy) {
  const EgressdConfig config = Parse(R"(
listeners:
  listen: 127.0.0.2:7070
  admin_listen: "[::1]:9901"
threads:
  event_loops: 3
pool:
  max_idle_connections: 7
  max_idle_per_address: 2
  keep_alive: 11s
  health_check_after_idle: 1s
  max_connection_lifetime: 10m
  max_connections: 100
  max_connections_per_address: 10
  max_requests_in_flight: 1000
  max_requests_in_flight_per_address: 50
  max_pending_per_address: 20
  pending_timeout: 3s
  leak_threshold: 9s
timeouts:
  connect: 2s
limits:
  max_response_body_bytes: 64KiB
egress:
  allow_cidrs: [127.0.0.0/8]
  deny_cidrs: [127.0.0.3/32]
  allowed_ports: [80, 8080]
  report_only: true
)");
  absl::StatusOr<HttpClientOptions> o = ClientOptionsFromConfig(config, "");
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->event_loops, 3u);
  EXPECT_EQ(o->pool.max_idle_connections, 7u);
  EXPECT_EQ(o->pool.max_idle_per_address, 2u);
  EXPECT_EQ(o->pool.keep_alive, absl::Seconds(11));
  EXPECT_EQ(o->pool.health_check_after_idle, absl::Seconds(1));
  EXPECT_EQ(o->pool.max_connection_lifetime, absl::Minutes(10));
  EXPECT_EQ(o->pool.max_connections, 100u);
  EXPECT_EQ(o->pool.max_connections_per_address, 10u);
  EXPECT_EQ(o->pool.max_requests_in_flight, 1000u);
  EXPECT_EQ(o->pool.max_requests_in_flight_per_address, 50u);
  EXPECT_EQ(o->pool.max_pending_per_address, 20u);
  EXPECT_EQ(o->pool.pending_timeout, absl::Seconds(3));
  EXPECT_EQ(o->leak_threshold, absl::Seconds(9));
  EXPECT_EQ(o->connector.connect_timeout, absl::Seconds(2));
  EXPECT_EQ(o->max_response_body_bytes, 64u * 1024);

  ASSERT_NE(o->connector.policy, nullptr);
  const EgressPolicyOptions& policy = o->connector.policy->options();
  EXPECT_THAT(policy.allow_cidrs, ElementsAre("127.0.0.0/8"));
  EXPECT_THAT(policy.deny_cidrs, ElementsAre("127.0.0.3/32"));
  EXPECT_THAT(policy.allowed_ports, ElementsAre(80, 8080));
  EXPECT_TRUE(policy.report_only);
  // Fetch, admin and (its default, 127.0.0.1) metrics listener: every
  // listener of egressd's is one of its own addresses (issue 14).
  EXPECT_THAT(policy.self_addresses,
              ElementsAre(asio::ip::make_address("127.0.0.2"),
                          asio::ip::make_address("::1"),
                          asio::ip::make_address("127.0.0.1")));
  EXPECT_THAT(policy.host_allowlist, IsEmpty());
  EXPECT_THAT(policy.exempt_hosts, IsEmpty());
  // No allow-list configured: every host passes CheckHost.
  EXPECT_TRUE(o->connector.policy->CheckHost("any.example").allowed);

  // The compiled policy behaves as configured: deny beats allow, and a port
  // outside allowed_ports is denied (report_only lets it through, marked).
  const PolicyDecision denied = o->connector.policy->Check(
      "x", asio::ip::make_address("127.0.0.3"), 80);
  EXPECT_TRUE(denied.report_only_would_deny);
  EXPECT_THAT(denied.rule, HasSubstr("cidr_denylist"));
  const PolicyDecision port = o->connector.policy->Check(
      "x", asio::ip::make_address("127.0.0.9"), 81);
  EXPECT_THAT(port.rule, HasSubstr("port"));
}

TEST(ClientOptionsFromConfigTest, ResolvePinsHostsAndABadOneNamesTheFlag) {
  absl::StatusOr<HttpClientOptions> o = ClientOptionsFromConfig(
      EgressdConfig{}, "origin.test:127.0.0.1; other.test:[::1]");
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_NE(o->resolver, nullptr);

  o = ClientOptionsFromConfig(EgressdConfig{}, "origin.test:not-an-ip");
  ASSERT_FALSE(o.ok());
  EXPECT_THAT(std::string(o.status().message()), HasSubstr("--resolve"));
}

TEST(ClientOptionsFromConfigTest, APolicyErrorNamesTheEgressField) {
  EgressdConfig config;
  config.egress.allowed_ports = {0};
  absl::StatusOr<HttpClientOptions> o = ClientOptionsFromConfig(config, "");
  ASSERT_FALSE(o.ok());
  EXPECT_THAT(std::string(o.status().message()),
              HasSubstr("egress.allowed_ports"));
}

// --- the command line ------------------------------------------------------

TEST(JoinRepeatedListFlagsTest, JoinsRepeatsAndKeepsAnExplicitEmptyList) {
  EXPECT_THAT(JoinRepeatedListFlags({"egressd", "--allow_cidr=10.0.0.0/8",
                                     "--listen=127.0.0.1:0",
                                     "-allow_cidr=127.0.0.0/8",
                                     "--deny_cidr="}),
              ElementsAre("egressd", "--listen=127.0.0.1:0",
                          "--allow_cidr=10.0.0.0/8,127.0.0.0/8",
                          "--deny_cidr="));
  EXPECT_THAT(JoinRepeatedListFlags({"egressd", "--allow_cidr=", "--",
                                     "--allow_cidr=x"}),
              ElementsAre("egressd", "--allow_cidr=", "--", "--allow_cidr=x"));
  EXPECT_THAT(JoinRepeatedListFlags({"egressd", "--allow_cidrs=x"}),
              ElementsAre("egressd", "--allow_cidrs=x"))
      << "not ours: abseil reports the unknown flag";
}

TEST(FlagNamesOnCommandLineTest, FindsEveryFormUpToTheTerminator) {
  EXPECT_THAT(
      FlagNamesOnCommandLine({"egressd", "--keep_alive=30s", "-listen",
                              "127.0.0.1:0", "--noegress_report_only",
                              "--config", "/etc/x.yaml", "--",
                              "--shutdown_grace=1s"}),
      ElementsAre("config", "egress_report_only", "keep_alive", "listen",
                  "noegress_report_only"));
  EXPECT_THAT(FlagNamesOnCommandLine({"--listen=x"}), IsEmpty())
      << "argv[0] is the program";
  EXPECT_THAT(FlagNamesOnCommandLine({"egressd", "positional"}), IsEmpty());
}

}  // namespace
}  // namespace egress

namespace egress {
namespace {

TEST(ProxySelectorFromConfigTest, RulesNoProxyDefaultAndEnvironment) {
  const EgressdConfig config = Parse(R"(
proxy:
  proxies:
    - name: corp
      url: http://proxy.corp.test:3128
      username: egressd
      password: pw
    - name: socks
      url: socks5://127.0.0.1:1080
  rules:
    - suffix: partner.test
      via: [direct]
    - cidr: 10.9.0.0/16
      via: [socks, corp]
  no_proxy: [internal.test]
  default_via: [corp]
)");
  ASSERT_TRUE(CheckImplemented(config).ok()) << CheckImplemented(config);
  absl::StatusOr<std::shared_ptr<const ProxySelector>> selector =
      ProxySelectorFromConfig(config.proxy, {});
  ASSERT_TRUE(selector.ok()) << selector.status();
  const auto names = [&](const std::string& scheme, const std::string& host) {
    std::vector<std::string> out;
    for (const ProxyChoice& c : (*selector)->Select(scheme, host)) {
      out.push_back(c.is_direct() ? "direct" : c.proxy->name);
    }
    return out;
  };
  EXPECT_EQ(names("https", "api.partner.test"),
            std::vector<std::string>{"direct"});
  EXPECT_EQ(names("https", "10.9.1.2"),
            (std::vector<std::string>{"socks", "corp"}));
  EXPECT_EQ(names("http", "a.internal.test"),
            std::vector<std::string>{"direct"});
  EXPECT_EQ(names("https", "example.org"), std::vector<std::string>{"corp"});
  const auto& proxies = (*selector)->proxies();
  ASSERT_EQ(proxies.size(), 2u);
  EXPECT_EQ(proxies[0]->password, "pw");

  // The environment is consulted only with use_env_proxy.
  const EgressdConfig env_config = Parse("proxy:\n  use_env_proxy: true\n");
  selector = ProxySelectorFromConfig(
      env_config.proxy, {{"HTTPS_PROXY", "http://envproxy.test:8080"},
                         {"NO_PROXY", "skip.test"}});
  ASSERT_TRUE(selector.ok()) << selector.status();
  EXPECT_EQ((*selector)->Select("https", "x.test").at(0).proxy->host,
            "envproxy.test");
  EXPECT_TRUE((*selector)->Select("https", "skip.test").at(0).is_direct());
  EXPECT_TRUE((*selector)->Select("http", "x.test").at(0).is_direct());
}

}  // namespace
}  // namespace egress
