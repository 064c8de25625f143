#include "server/config/config.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace egress {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

constexpr char kToken[] = "tok-3f9a1c-SECRET";
constexpr char kPassword[] = "pw-77aa01-SECRET";
constexpr char kKeyMarker[] = "KEYBYTES-5511-SECRET";
constexpr char kCertPem[] =
    "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

std::string TempDir() {
  const char* dir = std::getenv("TEST_TMPDIR");
  return dir != nullptr ? dir : "/tmp";
}

// Writes `content` to TEST_TMPDIR/name and returns the path.
std::string WriteFile(const std::string& name, const std::string& content) {
  const std::string path = absl::StrCat(TempDir(), "/", name);
  std::ofstream(path, std::ios::binary | std::ios::trunc) << content;
  return path;
}

std::string KeyPem() {
  return absl::StrCat("-----BEGIN PRIVATE KEY-----\n", kKeyMarker,
                      "\n-----END PRIVATE KEY-----\n");
}

// Expects `yaml` to be refused with a message holding every part.
void ExpectError(const std::string& yaml,
                 const std::vector<std::string>& parts) {
  absl::StatusOr<EgressdConfig> config = ParseConfigYaml(yaml, "test.yaml");
  ASSERT_FALSE(config.ok()) << "accepted:\n" << yaml;
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  for (const std::string& part : parts) {
    EXPECT_THAT(std::string(config.status().message()), HasSubstr(part))
        << "for:\n"
        << yaml;
  }
}

TEST(ConfigDefaultsTest, EmptyDocumentIsTheBuiltInConfiguration) {
  for (const char* text : {"", "# only a comment\n", "~\n", "---\n"}) {
    absl::StatusOr<EgressdConfig> config = ParseConfigYaml(text);
    ASSERT_TRUE(config.ok()) << config.status();
    EXPECT_EQ(config->listeners.listen.ToString(), "127.0.0.1:7070");
    EXPECT_EQ(config->listeners.admin_listen.ToString(), "127.0.0.1:9901");
    EXPECT_EQ(config->listeners.metrics_listen.ToString(), "127.0.0.1:9902");
    EXPECT_TRUE(config->listeners.admin_token.empty());
    EXPECT_EQ(config->threads.event_loops, 0);
    EXPECT_EQ(config->pool.max_idle_connections, 256);
    EXPECT_EQ(config->pool.max_idle_per_address, 64);
    EXPECT_EQ(config->pool.keep_alive, absl::Seconds(30));
    EXPECT_EQ(config->pool.health_check_after_idle, absl::ZeroDuration());
    EXPECT_EQ(config->pool.max_connections, 16384);
    EXPECT_EQ(config->pool.max_connections_per_address, 1024);
    EXPECT_EQ(config->pool.max_requests_in_flight, 65536);
    EXPECT_EQ(config->pool.max_requests_in_flight_per_address, 0);
    EXPECT_EQ(config->pool.max_pending_per_address, 16384);
    EXPECT_EQ(config->pool.pending_timeout, absl::Seconds(10));
    EXPECT_EQ(config->pool.leak_threshold, absl::Seconds(30));
    EXPECT_EQ(config->pool.max_connection_lifetime, absl::ZeroDuration());
    EXPECT_EQ(config->timeouts.connect, absl::Seconds(10));
    EXPECT_EQ(config->timeouts.default_call, absl::Seconds(60));
    EXPECT_EQ(config->timeouts.shutdown_grace, absl::Seconds(20));
    EXPECT_EQ(config->limits.max_response_body_bytes, 4u * 1024 * 1024);
    EXPECT_EQ(config->tls.default_settings.protocol, HttpProtocol::kAuto);
    EXPECT_EQ(config->tls.default_settings.policy, TlsPolicy::kModern);
    EXPECT_FALSE(config->tls.default_settings.insecure_skip_verify);
    EXPECT_FALSE(config->proxy.use_env_proxy);
    EXPECT_THAT(config->egress.allow_cidrs, IsEmpty());
    EXPECT_FALSE(config->egress.report_only);
    EXPECT_TRUE(config->logging.access_log);
    EXPECT_EQ(config->logging.level, LogLevel::kInfo);
    EXPECT_THAT(ChangedFromDefaults(*config), IsEmpty());
    EXPECT_THAT(ConfigWarnings(*config), IsEmpty());
  }
}

TEST(ConfigDefaultsTest, EmptySectionsKeepDefaults) {
  absl::StatusOr<EgressdConfig> config =
      ParseConfigYaml("listeners:\npool:\ntls:\nproxy:\negress:\n");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_THAT(ChangedFromDefaults(*config), IsEmpty());
}

TEST(ConfigDefaultsTest, RenderedDefaultsParseBackToDefaults) {
  const std::string rendered = RenderEffectiveConfig(EgressdConfig{});
  EXPECT_THAT(rendered, HasSubstr("keep_alive: 30s"));
  EXPECT_THAT(rendered, HasSubstr("max_response_body_bytes: 4194304"));
  EXPECT_THAT(rendered, HasSubstr("metrics_listen: \"127.0.0.1:9902\""));
  absl::StatusOr<EgressdConfig> again = ParseConfigYaml(rendered);
  ASSERT_TRUE(again.ok()) << again.status() << "\n" << rendered;
  EXPECT_THAT(ChangedFromDefaults(*again), IsEmpty());
  EXPECT_EQ(RenderEffectiveConfig(*again), rendered);
}

// A file setting every section, with secrets and PEM files beside it.
class FullConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    token_file_ = WriteFile("admin-token", absl::StrCat(kToken, "\n"));
    password_file_ = WriteFile("proxy-password", kPassword);
    ca_file_ = WriteFile("ca.pem", kCertPem);
    cert_file_ = WriteFile("client.pem", kCertPem);
    key_file_ = WriteFile("client.key", KeyPem());
  }

  std::string Yaml() const {
    return absl::StrCat(R"(
listeners:
  listen: 0.0.0.0:7070
  admin_listen: 0.0.0.0:9901
  metrics_listen: 0.0.0.0:9902
  admin_token_file: )", token_file_, R"(
threads:
  event_loops: 2
  completion_queues: 1
pool:
  max_idle_connections: 100
  max_idle_per_address: 10
  keep_alive: 15s
  health_check_after_idle: 250ms
  max_connections: 500
  max_connections_per_address: 50
  max_requests_in_flight: 1000
  max_requests_in_flight_per_address: 100
  max_pending_per_address: 200
  pending_timeout: 2s
  max_connection_lifetime: 5m
  leak_threshold: 1m
timeouts:
  connect: 3s
  default_call: 30s
  shutdown_grace: 15s
limits:
  max_response_body_bytes: 8MiB
  max_request_body_bytes: 65536
tls:
  destinations:
    - host: api.partner.example
      ca_file: )", ca_file_, R"(
      client_cert_file: )", cert_file_, R"(
      client_key_file: )", key_file_, R"(
      protocol: h2
    - suffix: .legacy.example
      policy: compatible
      protocol: http1
    - cidr: 10.1.0.0/16
      protocol: h2c
  default:
    policy: modern
proxy:
  proxies:
    - name: corp
      url: http://proxy.corp.example:3128
      username: egress
      password_file: )", password_file_, R"(
    - name: socks
      url: socks5://[fd00::1]:1080
  rules:
    - host: api.partner.example
      via: [direct]
    - suffix: example
      via: [corp, socks]
  no_proxy: [.internal.example, 10.0.0.0/8, 192.168.1.1]
  default_via: [corp]
egress:
  allow_cidrs: [10.0.0.0/8, "fd00::/8"]
  deny_cidrs: [169.254.169.254]
  allow_hosts: [API.Partner.Example]
  allow_domain_suffixes: [.example]
  allowed_ports: [443, 80]
  report_only: false
logging:
  access_log: false
  level: warning
)");
  }

  std::string token_file_, password_file_, ca_file_, cert_file_, key_file_;
};

TEST_F(FullConfigTest, EveryFieldIsRead) {
  absl::StatusOr<EgressdConfig> parsed = ParseConfigYaml(Yaml(), "full.yaml");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  const EgressdConfig& c = *parsed;
  EXPECT_EQ(c.listeners.listen.ToString(), "0.0.0.0:7070");
  EXPECT_EQ(c.listeners.admin_token.value, kToken);  // newline dropped
  EXPECT_EQ(c.listeners.admin_token.file, token_file_);
  EXPECT_EQ(c.threads.event_loops, 2);
  EXPECT_EQ(c.threads.completion_queues, 1);
  EXPECT_EQ(c.pool.max_idle_connections, 100);
  EXPECT_EQ(c.pool.max_idle_per_address, 10);
  EXPECT_EQ(c.pool.keep_alive, absl::Seconds(15));
  EXPECT_EQ(c.pool.health_check_after_idle, absl::Milliseconds(250));
  EXPECT_EQ(c.pool.max_connections, 500);
  EXPECT_EQ(c.pool.max_connections_per_address, 50);
  EXPECT_EQ(c.pool.max_requests_in_flight, 1000);
  EXPECT_EQ(c.pool.max_requests_in_flight_per_address, 100);
  EXPECT_EQ(c.pool.max_pending_per_address, 200);
  EXPECT_EQ(c.pool.pending_timeout, absl::Seconds(2));
  EXPECT_EQ(c.pool.max_connection_lifetime, absl::Minutes(5));
  EXPECT_EQ(c.pool.leak_threshold, absl::Minutes(1));
  EXPECT_EQ(c.timeouts.connect, absl::Seconds(3));
  EXPECT_EQ(c.timeouts.default_call, absl::Seconds(30));
  EXPECT_EQ(c.timeouts.shutdown_grace, absl::Seconds(15));
  EXPECT_EQ(c.limits.max_response_body_bytes, 8u << 20);
  EXPECT_EQ(c.limits.max_request_body_bytes, 65536u);

  ASSERT_EQ(c.tls.destinations.size(), 3u);
  const TlsSettings& partner = c.tls.destinations[0].settings;
  EXPECT_EQ(c.tls.destinations[0].match.ToString(),
            "host api.partner.example");
  EXPECT_EQ(partner.ca_file, ca_file_);
  EXPECT_EQ(partner.ca_pem, kCertPem);
  EXPECT_EQ(partner.client_cert_pem, kCertPem);
  EXPECT_EQ(partner.client_key.file, key_file_);
  EXPECT_THAT(partner.client_key.value, HasSubstr(kKeyMarker));
  EXPECT_EQ(partner.protocol, HttpProtocol::kH2);
  EXPECT_EQ(c.tls.destinations[1].match.ToString(), "suffix legacy.example");
  EXPECT_EQ(c.tls.destinations[1].settings.policy, TlsPolicy::kCompatible);
  EXPECT_EQ(c.tls.destinations[2].settings.protocol, HttpProtocol::kH2c);
  EXPECT_EQ(&c.tls.For("API.partner.example"), &partner);
  EXPECT_EQ(&c.tls.For("a.legacy.example"), &c.tls.destinations[1].settings);
  EXPECT_EQ(&c.tls.For("10.1.2.3"), &c.tls.destinations[2].settings);
  EXPECT_EQ(&c.tls.For("other.example"), &c.tls.default_settings);

  ASSERT_EQ(c.proxy.proxies.size(), 2u);
  EXPECT_EQ(c.proxy.proxies[0].Url(), "http://proxy.corp.example:3128");
  EXPECT_EQ(c.proxy.proxies[0].username, "egress");
  EXPECT_EQ(c.proxy.proxies[0].password.value, kPassword);
  EXPECT_EQ(c.proxy.proxies[1].scheme, ProxyScheme::kSocks5);
  EXPECT_EQ(c.proxy.proxies[1].Url(), "socks5://[fd00::1]:1080");
  ASSERT_EQ(c.proxy.rules.size(), 2u);
  EXPECT_THAT(c.proxy.rules[0].via, ElementsAre("direct"));
  EXPECT_THAT(c.proxy.rules[1].via, ElementsAre("corp", "socks"));
  ASSERT_EQ(c.proxy.no_proxy.size(), 3u);
  EXPECT_TRUE(c.proxy.no_proxy[0].Matches("x.internal.example"));
  EXPECT_TRUE(c.proxy.no_proxy[1].Matches("10.9.9.9"));
  EXPECT_TRUE(c.proxy.no_proxy[2].Matches("192.168.1.1"));
  EXPECT_THAT(c.proxy.default_via, ElementsAre("corp"));

  ASSERT_EQ(c.egress.allow_cidrs.size(), 2u);
  EXPECT_EQ(c.egress.allow_cidrs[1].ToString(), "fd00::/8");
  ASSERT_EQ(c.egress.deny_cidrs.size(), 1u);
  EXPECT_EQ(c.egress.deny_cidrs[0].ToString(), "169.254.169.254/32");
  EXPECT_THAT(c.egress.allow_hosts, ElementsAre("api.partner.example"));
  EXPECT_THAT(c.egress.allow_domain_suffixes, ElementsAre("example"));
  EXPECT_THAT(c.egress.allowed_ports, ElementsAre(443, 80));
  EXPECT_FALSE(c.logging.access_log);
  EXPECT_EQ(c.logging.level, LogLevel::kWarning);
}

TEST_F(FullConfigTest, DestinationsInheritTlsDefaultWhereverItStands) {
  absl::StatusOr<EgressdConfig> c = ParseConfigYaml(R"(
tls:
  destinations:
    - host: a.example
    - host: b.example
      protocol: http1
  default:
    protocol: h2
    policy: compatible
)");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->tls.destinations[0].settings.protocol, HttpProtocol::kH2);
  EXPECT_EQ(c->tls.destinations[0].settings.policy, TlsPolicy::kCompatible);
  EXPECT_EQ(c->tls.destinations[1].settings.protocol, HttpProtocol::kHttp1);
  EXPECT_EQ(c->tls.destinations[1].settings.policy, TlsPolicy::kCompatible);
}

TEST_F(FullConfigTest, RenderingRedactsEverySecret) {
  absl::StatusOr<EgressdConfig> c = ParseConfigYaml(Yaml());
  ASSERT_TRUE(c.ok()) << c.status();
  const std::string rendered = RenderEffectiveConfig(*c);
  EXPECT_THAT(rendered, Not(HasSubstr(kToken)));
  EXPECT_THAT(rendered, Not(HasSubstr(kPassword)));
  EXPECT_THAT(rendered, Not(HasSubstr(kKeyMarker)));
  EXPECT_THAT(rendered, Not(HasSubstr("BEGIN")));  // no file contents at all
  EXPECT_THAT(rendered, HasSubstr("admin_token: \"<redacted>\""));
  EXPECT_THAT(rendered, HasSubstr(absl::StrCat("admin_token_file: \"",
                                               token_file_, "\"")));
  EXPECT_THAT(rendered, HasSubstr("password: \"<redacted>\""));
  EXPECT_THAT(rendered,
              HasSubstr(absl::StrCat("client_key_file: \"", key_file_, "\"")));
}

TEST_F(FullConfigTest, InlineSecretsAreRedactedToo) {
  absl::StatusOr<EgressdConfig> c = ParseConfigYaml(absl::StrCat(R"(
listeners:
  admin_listen: 0.0.0.0:9901
  admin_token: ")", kToken, R"("
proxy:
  proxies:
    - name: corp
      url: http://proxy:3128
      username: u
      password: ")", kPassword, R"("
)"));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->listeners.admin_token.value, kToken);
  EXPECT_EQ(c->proxy.proxies[0].password.value, kPassword);
  const std::string rendered = RenderEffectiveConfig(*c);
  EXPECT_THAT(rendered, Not(HasSubstr(kToken)));
  EXPECT_THAT(rendered, Not(HasSubstr(kPassword)));
  // Pasted back, the placeholder is refused: it is not the secret.
  ExpectError(rendered, {"listeners.admin_token", "placeholder"});
}

TEST_F(FullConfigTest, RenderedOutputParsesToTheSameConfiguration) {
  absl::StatusOr<EgressdConfig> c = ParseConfigYaml(Yaml());
  ASSERT_TRUE(c.ok()) << c.status();
  const std::string rendered = RenderEffectiveConfig(*c);
  // File-sourced secrets render as "<redacted>" beside their *_file, which
  // the parser accepts and reads again.
  absl::StatusOr<EgressdConfig> again = ParseConfigYaml(rendered);
  ASSERT_TRUE(again.ok()) << again.status() << "\n" << rendered;
  EXPECT_EQ(RenderEffectiveConfig(*again), rendered);
  EXPECT_EQ(again->listeners.admin_token.value, kToken);
  EXPECT_EQ(again->proxy.proxies[0].password.value, kPassword);
}

TEST_F(FullConfigTest, ChangedFromDefaultsNamesWhatTheFileChanged) {
  absl::StatusOr<EgressdConfig> c = ParseConfigYaml(R"(
pool:
  keep_alive: 15s
  max_idle_connections: 256   # the default: not a change
tls:
  destinations:
    - host: a.example
egress:
  report_only: true
)");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_THAT(ChangedFromDefaults(*c),
              ElementsAre("pool.keep_alive", "tls.destinations",
                          "egress.report_only"));
}

TEST(ConfigSecretsTest, RelativeFilesResolveAgainstTheConfigFile) {
  const std::string dir = absl::StrCat(TempDir(), "/relative");
  ASSERT_EQ(system(absl::StrCat("mkdir -p ", dir).c_str()), 0);
  WriteFile("relative/token", absl::StrCat(kToken, "\r\n"));
  const std::string path = WriteFile("relative/config.yaml",
                                     "listeners:\n  admin_token_file: token\n");
  absl::StatusOr<EgressdConfig> c = LoadConfigFile(path);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->listeners.admin_token.value, kToken);
  EXPECT_EQ(c->listeners.admin_token.file, absl::StrCat(dir, "/token"));
}

TEST(ConfigSecretsTest, FileErrorsNameFieldAndFileNeverContent) {
  const std::string missing = absl::StrCat(TempDir(), "/no-such-token");
  ExpectError(absl::StrCat("listeners:\n  admin_token_file: ", missing, "\n"),
              {"test.yaml:2: listeners.admin_token_file: cannot read ",
               missing, "No such file or directory"});

  const std::string empty = WriteFile("empty-token", "\n");
  ExpectError(absl::StrCat("listeners:\n  admin_token_file: ", empty, "\n"),
              {"listeners.admin_token_file", empty, "is empty"});

  const std::string two_lines =
      WriteFile("two-line-token", absl::StrCat(kToken, "\nmore\n"));
  absl::StatusOr<EgressdConfig> c = ParseConfigYaml(
      absl::StrCat("listeners:\n  admin_token_file: ", two_lines, "\n"));
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(std::string(c.status().message()), HasSubstr("one line"));
  EXPECT_THAT(std::string(c.status().message()), Not(HasSubstr(kToken)));

  const std::string not_a_key = WriteFile("not-a-key.pem", kToken);
  const std::string cert = WriteFile("cert.pem", kCertPem);
  c = ParseConfigYaml(absl::StrCat("tls:\n  default:\n    client_cert_file: ",
                                   cert, "\n    client_key_file: ", not_a_key,
                                   "\n"));
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(std::string(c.status().message()),
              HasSubstr("tls.default.client_key_file"));
  EXPECT_THAT(std::string(c.status().message()), HasSubstr("no PEM private"));
  EXPECT_THAT(std::string(c.status().message()), Not(HasSubstr(kToken)));

  ExpectError(absl::StrCat("tls:\n  default:\n    ca_file: ", not_a_key, "\n"),
              {"tls.default.ca_file", "no PEM certificate"});

  const std::string password = WriteFile("pw", kPassword);
  ExpectError(absl::StrCat("proxy:\n  proxies:\n    - name: p\n      url: "
                           "http://p:1\n      username: u\n      password: x\n"
                           "      password_file: ",
                           password, "\n"),
              {"proxy.proxies[0].password", "set both", "keep one"});
}

TEST(ConfigSecretsTest, CredentialsInAProxyUrlAreRefusedWithoutEchoingThem) {
  absl::StatusOr<EgressdConfig> c = ParseConfigYaml(absl::StrCat(
      "proxy:\n  proxies:\n    - name: p\n      url: http://u:", kPassword,
      "@proxy:3128\n"));
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(std::string(c.status().message()),
              HasSubstr("proxy.proxies[0].url: holds credentials"));
  EXPECT_THAT(std::string(c.status().message()), Not(HasSubstr(kPassword)));
  c = ParseConfigYaml(absl::StrCat("proxy:\n  proxies:\n    - name: p\n"
                                   "      url: https://u:",
                                   kPassword, "@proxy:3128\n"));
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(std::string(c.status().message()), Not(HasSubstr(kPassword)));
}

TEST(ConfigErrorsTest, SyntaxAndShape) {
  ExpectError("pool:\n  keep_alive: [1,\n", {"test.yaml:", "not valid YAML"});
  ExpectError("pool: {}\n---\npool: {}\n", {"2 YAML documents"});
  ExpectError("- a\n- b\n", {"expected a mapping of sections", "a list"});
  ExpectError("pool: 3\n", {"test.yaml:1: pool: expected a mapping",
                            "keep_alive", "a scalar"});
  ExpectError("pools:\n  keep_alive: 1s\n",
              {"test.yaml:1: pools: unknown field", "pool"});
  ExpectError("pool:\n  keepalive: 1s\n",
              {"test.yaml:2: pool.keepalive: unknown field", "keep_alive"});
  ExpectError("pool:\n  keep_alive: 1s\n  keep_alive: 2s\n",
              {"test.yaml:3: pool.keep_alive: is given twice"});
  ExpectError("pool:\n  keep_alive:\n",
              {"pool.keep_alive: has no value", "remove the line"});
  ExpectError("egress:\n  allow_cidrs: 10.0.0.0/8\n",
              {"egress.allow_cidrs: expected a list"});
  ExpectError("egress:\n  allow_hosts: [[a]]\n",
              {"egress.allow_hosts[0]: expected a string, got a list"});
}

TEST(ConfigErrorsTest, ScalarTypes) {
  ExpectError("pool:\n  keep_alive: abc\n",
              {"test.yaml:2: pool.keep_alive: 'abc' is not a duration "
               "(e.g. 30s"});
  ExpectError("pool:\n  keep_alive: 30\n", {"'30' is not a duration"});
  ExpectError("pool:\n  keep_alive: inf\n", {"'inf' is not a duration"});
  ExpectError("pool:\n  keep_alive: 0s\n",
              {"pool.keep_alive: must be > 0, got 0"});
  ExpectError("pool:\n  pending_timeout: 0s\n",
              {"pool.pending_timeout: must be > 0"});
  ExpectError("timeouts:\n  shutdown_grace: -1s\n",
              {"test.yaml:2: timeouts.shutdown_grace: must be >= 0"});
  ExpectError("pool:\n  max_connections: many\n",
              {"pool.max_connections: 'many' is not an integer"});
  ExpectError("pool:\n  max_idle_connections: -1\n",
              {"test.yaml:2: pool.max_idle_connections: must be >= 0, got -1"});
  ExpectError("threads:\n  event_loops: 99999999999\n",
              {"threads.event_loops: 99999999999 is out of range"});
  ExpectError("threads:\n  event_loops: 5000\n",
              {"threads.event_loops: must be <= 1024"});
  ExpectError("logging:\n  access_log: yes\n",
              {"logging.access_log: 'yes' is not a boolean (true or false)"});
  ExpectError("logging:\n  level: verbose\n",
              {"logging.level: 'verbose' is not one of debug, info"});
  ExpectError("tls:\n  default:\n    protocol: h3\n",
              {"tls.default.protocol: 'h3' is not one of auto, http1, h2, "
               "h2c"});
  ExpectError("limits:\n  max_response_body_bytes: 4MB\n",
              {"limits.max_response_body_bytes: '4MB' is not a size",
               "MiB"});
  ExpectError("limits:\n  max_response_body_bytes: 0\n",
              {"limits.max_response_body_bytes: must be > 0"});
  ExpectError("limits:\n  max_request_body_bytes: 4GiB\n",
              {"limits.max_request_body_bytes: must be <= 2147483647"});
  ExpectError("egress:\n  allowed_ports: [443, 70000]\n",
              {"test.yaml:2: egress.allowed_ports[1]: 70000 is not a port"});
}

TEST(ConfigErrorsTest, AddressesHostsAndRanges) {
  ExpectError("listeners:\n  listen: 7070\n",
              {"test.yaml:2: listeners.listen: '7070' has no :PORT"});
  ExpectError("listeners:\n  admin_listen: 0.0.0.0:9901\n",
              {"listeners.admin_token: required because "
               "listeners.admin_listen (0.0.0.0:9901) is not a loopback"});
  ExpectError("listeners:\n  metrics_listen: 0.0.0.0:7070\n",
              {"listeners.metrics_listen: 0.0.0.0:7070 is the same port as "
               "listeners.listen"});
  ExpectError("egress:\n  allow_cidrs: [10.0.0.1/8]\n",
              {"egress.allow_cidrs[0]: '10.0.0.1/8' has host bits set; did "
               "you mean 10.0.0.0/8?"});
  ExpectError("egress:\n  deny_cidrs: [10.0.0.0/33]\n",
              {"egress.deny_cidrs[0]", "invalid prefix length (0..32)"});
  ExpectError("egress:\n  deny_cidrs: [example.com/8]\n",
              {"is not a CIDR range"});
  ExpectError("egress:\n  allow_hosts: ['*.example.com']\n",
              {"egress.allow_hosts[0]", "wildcard", "suffix"});
  ExpectError("egress:\n  allow_hosts: ['https://example.com']\n",
              {"is a URL"});
  ExpectError("egress:\n  allow_hosts: ['example.com:443']\n",
              {"without a port"});
  ExpectError("egress:\n  allow_domain_suffixes: [10.0.0.1]\n",
              {"is an IP address"});
}

TEST(ConfigErrorsTest, TlsDestinations) {
  ExpectError("tls:\n  destinations:\n    - protocol: h2\n",
              {"tls.destinations[0]: names no destination"});
  ExpectError("tls:\n  destinations:\n    - host: a.example\n"
              "      suffix: example\n",
              {"tls.destinations[0].suffix: an entry names one destination"});
  ExpectError("tls:\n  destinations:\n    - suffix: example.com\n"
              "    - host: api.example.com\n",
              {"test.yaml:4: tls.destinations[1]: host api.example.com is "
               "already matched by tls.destinations[0] (suffix example.com)",
               "put the more specific entry first"});
  ExpectError("tls:\n  destinations:\n    - cidr: 10.0.0.0/8\n"
              "    - cidr: 10.1.0.0/16\n",
              {"tls.destinations[1]: cidr 10.1.0.0/16 is already matched"});
  const std::string cert = WriteFile("only-cert.pem", kCertPem);
  ExpectError(absl::StrCat("tls:\n  destinations:\n    - host: a\n"
                           "      client_cert_file: ",
                           cert, "\n"),
              {"test.yaml:4: tls.destinations[0].client_cert_file: is set "
               "but client_key_file is not"});
  ExpectError("tls:\n  destinations: [a.example]\n",
              {"tls.destinations[0]: expected a mapping"});
}

TEST(ConfigErrorsTest, Proxies) {
  ExpectError("proxy:\n  proxies:\n    - name: p\n",
              {"proxy.proxies[0]: has no url"});
  ExpectError("proxy:\n  proxies:\n    - name: p\n      url: proxy:3128\n",
              {"proxy.proxies[0].url: 'proxy:3128' is not an http:// or "
               "socks5:// URL"});
  ExpectError("proxy:\n  proxies:\n    - name: p\n      url: http://proxy\n",
              {"has no port"});
  ExpectError("proxy:\n  proxies:\n    - url: http://p:1\n",
              {"proxy.proxies[0].name: is missing"});
  ExpectError("proxy:\n  proxies:\n    - name: direct\n      url: http://p:1\n",
              {"'direct' is reserved"});
  ExpectError("proxy:\n  proxies:\n    - {name: a, url: 'http://p:1'}\n"
              "    - {name: a, url: 'http://q:1'}\n",
              {"proxy.proxies[1].name: 'a' names two proxies"});
  ExpectError("proxy:\n  proxies:\n    - {name: a, url: 'http://p:1', "
              "username: u}\n",
              {"proxy.proxies[0].password: username is set but neither"});
  ExpectError("proxy:\n  proxies:\n    - {name: a, url: 'http://p:1'}\n"
              "  rules:\n    - suffix: example.com\n      via: [a, b]\n",
              {"test.yaml:6: proxy.rules[0].via[1]: no proxy named 'b' "
               "(known: a, direct)"});
  ExpectError("proxy:\n  rules:\n    - suffix: example.com\n      via: []\n",
              {"proxy.rules[0].via: is empty"});
  ExpectError("proxy:\n  proxies:\n    - {name: a, url: 'http://p:1'}\n"
              "  default_via: [a]\n  use_env_proxy: true\n",
              {"proxy.use_env_proxy: cannot be combined with "
               "proxy.default_via"});
  ExpectError("proxy:\n  no_proxy: ['*']\n",
              {"proxy.no_proxy[0]", "wildcard"});
}

TEST(ConfigErrorsTest, H2cOnlyWhereNoProxyCanBeChosen) {
  // h2c through a proxy would silently become HTTP/1.1: refused.
  const std::string proxies =
      "proxy:\n  proxies:\n    - {name: corp, url: 'http://p:3128'}\n";
  ExpectError("tls:\n  default: {protocol: h2c}\n" + proxies +
                  "  default_via: [corp]\n",
              {"tls.default.protocol: protocol h2c needs a direct connection",
               "proxy.default_via may send these destinations through a "
               "proxy"});
  ExpectError("tls:\n  default: {protocol: h2c}\nproxy:\n  use_env_proxy: true\n",
              {"tls.default.protocol", "proxy.use_env_proxy"});
  ExpectError("tls:\n  destinations:\n    - {host: api.internal, protocol: h2c}\n" +
                  proxies +
                  "  rules:\n    - {suffix: internal, via: [corp, direct]}\n",
              {"tls.destinations[0].protocol", "proxy.rules[0]"});
  ExpectError("tls:\n  destinations:\n    - {suffix: internal, protocol: h2c}\n" +
                  proxies + "  rules:\n    - {host: a.internal, via: [corp]}\n",
              {"tls.destinations[0].protocol", "proxy.rules[0]"});

  // Direct by no_proxy, by a direct rule first, or proxies elsewhere only.
  for (const std::string& ok : {
           "tls:\n  destinations:\n    - {host: api.internal, protocol: h2c}\n" +
               proxies + "  default_via: [corp]\n  no_proxy: [internal]\n",
           "tls:\n  destinations:\n    - {host: api.internal, protocol: h2c}\n" +
               proxies +
               "  rules:\n    - {host: api.internal, via: [direct]}\n"
               "    - {suffix: internal, via: [corp]}\n"
               "  default_via: [corp]\n",
           "tls:\n  destinations:\n    - {suffix: internal, protocol: h2c}\n" +
               proxies + "  rules:\n    - {suffix: example.com, via: [corp]}\n",
           std::string("tls:\n  default: {protocol: h2c}\n"),
       }) {
    absl::StatusOr<EgressdConfig> config = ParseConfigYaml(ok, "test.yaml");
    EXPECT_TRUE(config.ok()) << config.status() << "\nfor:\n" << ok;
  }
}

TEST(ConfigValidateTest, ChecksAConfigurationChangedByFlags) {
  EgressdConfig config;
  EXPECT_TRUE(ValidateConfig(config).ok());
  config.pool.keep_alive = absl::ZeroDuration();
  EXPECT_EQ(ValidateConfig(config).message(),
            "pool.keep_alive: must be > 0, got 0");
  config = EgressdConfig{};
  config.listeners.admin_listen = {"0.0.0.0", 9901};
  EXPECT_THAT(std::string(ValidateConfig(config).message()),
              HasSubstr("listeners.admin_token: required"));
  config.listeners.admin_token.value = kToken;
  EXPECT_TRUE(ValidateConfig(config).ok());
}

TEST(ConfigWarningsTest, DangerousSettingsAreNamed) {
  absl::StatusOr<EgressdConfig> c = ParseConfigYaml(R"(
listeners:
  listen: 0.0.0.0:7070
tls:
  destinations:
    - host: self-signed.example
      insecure_skip_verify: true
egress:
  report_only: true
)");
  ASSERT_TRUE(c.ok()) << c.status();
  const std::vector<std::string> warnings = ConfigWarnings(*c);
  ASSERT_EQ(warnings.size(), 3u);
  EXPECT_THAT(warnings[0], HasSubstr("tls.destinations[0] (host "
                                     "self-signed.example): "
                                     "insecure_skip_verify is on"));
  EXPECT_THAT(warnings[1], HasSubstr("listeners.listen is 0.0.0.0:7070"));
  EXPECT_THAT(warnings[2], HasSubstr("egress.report_only"));
  EXPECT_THAT(RenderEffectiveConfig(*c),
              HasSubstr("# WARNING: tls.destinations[0]"));
}

TEST(ConfigLoadTest, MissingFileNamesThePath) {
  absl::StatusOr<EgressdConfig> c =
      LoadConfigFile("/nonexistent/egressd/config.yaml");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(c.status().message()),
              HasSubstr("cannot read /nonexistent/egressd/config.yaml"));
}

TEST(ConfigLoadTest, ErrorsNameTheFile) {
  const std::string path = WriteFile("bad.yaml", "pool:\n  keep_alive: abc\n");
  absl::StatusOr<EgressdConfig> c = LoadConfigFile(path);
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(std::string(c.status().message()),
              HasSubstr(absl::StrCat(path, ":2: pool.keep_alive")));
}

TEST(HostMatchTest, SuffixHostAndCidrSemantics) {
  EXPECT_TRUE(HostHasDomainSuffix("example.com", "example.com"));
  EXPECT_TRUE(HostHasDomainSuffix("a.b.example.com", "example.com"));
  EXPECT_FALSE(HostHasDomainSuffix("badexample.com", "example.com"));
  EXPECT_FALSE(HostHasDomainSuffix("com", "example.com"));

  HostMatch suffix{HostMatch::Kind::kSuffix, "0.1", {}};
  EXPECT_FALSE(suffix.Matches("10.0.0.1"));  // IP literals are not names
  HostMatch v6{HostMatch::Kind::kHost, "2001:db8::1", {}};
  EXPECT_TRUE(v6.Matches("2001:DB8:0::1"));

  absl::StatusOr<Cidr> v4 = ParseCidr("10.0.0.0/8");
  ASSERT_TRUE(v4.ok());
  EXPECT_TRUE(v4->Contains(*ParseIpAddress("10.255.0.1")));
  EXPECT_FALSE(v4->Contains(*ParseIpAddress("11.0.0.1")));
  EXPECT_FALSE(v4->Contains(*ParseIpAddress("::ffff:10.0.0.1")));
  absl::StatusOr<Cidr> all6 = ParseCidr("::/0");
  ASSERT_TRUE(all6.ok());
  EXPECT_TRUE(all6->Contains(*ParseIpAddress("[fe80::1]")));
  absl::StatusOr<Cidr> odd = ParseCidr("192.168.1.128/25");
  ASSERT_TRUE(odd.ok());
  EXPECT_TRUE(odd->Contains(*ParseIpAddress("192.168.1.200")));
  EXPECT_FALSE(odd->Contains(*ParseIpAddress("192.168.1.127")));
  EXPECT_FALSE(ParseCidr("192.168.1.129/25").ok());
  HostMatch cidr{HostMatch::Kind::kCidr, "", *v4};
  EXPECT_TRUE(cidr.Matches("10.1.2.3"));
  EXPECT_FALSE(cidr.Matches("ten.example"));
}

}  // namespace
}  // namespace egress

namespace egress {
namespace {

TEST(Http2ConfigTest, SectionIsReadAndValidated) {
  absl::StatusOr<EgressdConfig> config = ParseConfigYaml(R"(
http2:
  max_concurrent_streams: 8
  stream_window: 2MiB
  connection_window: 32MiB
  ping_interval: 0s
  ping_timeout: 2s
  ping_before_reuse_after_idle: 1m
)");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->http2.max_concurrent_streams, 8);
  EXPECT_EQ(config->http2.stream_window, 2u << 20);
  EXPECT_EQ(config->http2.connection_window, 32u << 20);
  EXPECT_EQ(config->http2.ping_interval, absl::ZeroDuration());
  EXPECT_EQ(config->http2.ping_timeout, absl::Seconds(2));
  EXPECT_EQ(config->http2.ping_before_reuse_after_idle, absl::Minutes(1));

  absl::StatusOr<EgressdConfig> tiny =
      ParseConfigYaml("http2:\n  stream_window: 1KiB\n");
  ASSERT_FALSE(tiny.ok());
  EXPECT_THAT(tiny.status().message(),
              ::testing::HasSubstr("http2.stream_window"));
  absl::StatusOr<EgressdConfig> no_timeout =
      ParseConfigYaml("http2:\n  ping_timeout: 0s\n");
  ASSERT_FALSE(no_timeout.ok());
  EXPECT_THAT(no_timeout.status().message(),
              ::testing::HasSubstr("http2.ping_timeout"));
}

}  // namespace
}  // namespace egress
