// TLS through HttpClient against a real nginx with certificates made by the
// test (TestPki): verification on by default and each failure named,
// resumption, mutual TLS, a destination with verification off, pooling of
// TLS connections. Runs under TSan too (no gRPC here).
#include <memory>
#include <string>
#include <vector>

#include "client_core/base/sync.h"
#include "client_core/call/http_client.h"
#include "client_core/route/resolver.h"
#include "client_core/tls/tls_client.h"
#include "client_core/url/url.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/execute_and_wait.h"
#include "tests/support/nginx.h"
#include "tests/support/test_pki.h"

namespace egress {
namespace {

using ::egress::testing::IssuedCert;
using ::egress::testing::LeafOptions;
using ::egress::testing::NginxOptions;
using ::egress::testing::NginxServer;
using ::egress::testing::NginxTlsOptions;
using ::egress::testing::TestPki;
using ::testing::HasSubstr;

absl::StatusOr<Response> Get(HttpClient& client, const std::string& url) {
  Request request;
  request.method = "GET";
  absl::StatusOr<Url> parsed = ParseUrl(url);
  if (!parsed.ok()) return parsed.status();
  request.url = *parsed;
  request.deadline = absl::Now() + absl::Seconds(10);
  return testing::ExecuteAndWait(client, std::move(request));
}

// Test hosts resolve to loopback only.
std::shared_ptr<Resolver> LoopbackNames() {
  StaticHostMap hosts;
  for (const char* name : {"a.test", "b.test", "other.test"}) {
    hosts[name] = {asio::ip::make_address("127.0.0.1")};
  }
  return std::make_shared<StaticResolver>(std::move(hosts));
}

class TlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<TestPki>> pki = TestPki::Create();
    ASSERT_TRUE(pki.ok()) << pki.status();
    pki_ = *std::move(pki);
  }

  // nginx serving hello.txt over TLS (ALPN http/1.1 only: these tests are
  // about TLS, not the protocol) with `leaf`.
  std::unique_ptr<NginxServer> StartNginx(const IssuedCert& leaf,
                                          NginxTlsOptions tls = {}) {
    NginxOptions options;
    tls.cert_file = leaf.chain_file;
    tls.key_file = leaf.key_file;
    tls.http2 = false;
    options.tls = tls;
    absl::StatusOr<std::unique_ptr<NginxServer>> nginx =
        NginxServer::Start(options);
    EXPECT_TRUE(nginx.ok()) << nginx.status();
    return nginx.ok() ? *std::move(nginx) : nullptr;
  }

  // A client trusting only the test CA (not the system store), with
  // `rules` (defaults otherwise).
  std::unique_ptr<HttpClient> Client(std::vector<DestinationRule> rules = {},
                                     bool trust_test_ca = true) {
    DestinationOptions defaults;
    defaults.trust_system_store = false;
    if (trust_test_ca) defaults.ca_file = pki_->ca_file();
    defaults.protocols = HttpProtocols::kHttp11;
    absl::StatusOr<DestinationRules> made =
        DestinationRules::Create(defaults, std::move(rules));
    EXPECT_TRUE(made.ok()) << made.status();
    absl::StatusOr<std::unique_ptr<TlsClient>> tls =
        TlsClient::Create(*std::move(made));
    EXPECT_TRUE(tls.ok()) << tls.status();
    tls_ = std::shared_ptr<TlsClient>(*std::move(tls));
    HttpClientOptions options;
    options.event_loops = 2;
    options.resolver = LoopbackNames();
    options.connector.tls = tls_;
    return std::make_unique<HttpClient>(options);
  }

  uint64_t Failures(TlsFailure failure) const {
    return tls_->stats().failures[static_cast<size_t>(failure)];
  }

  std::unique_ptr<TestPki> pki_;
  std::shared_ptr<TlsClient> tls_;
};

TEST_F(TlsTest, VerifiedHandshakeServesAndReportsTheSession) {
  absl::StatusOr<IssuedCert> leaf =
      pki_->IssueLeaf("a", {.dns_names = {"a.test"}, .via_intermediate = true});
  ASSERT_TRUE(leaf.ok()) << leaf.status();
  auto nginx = StartNginx(*leaf);
  ASSERT_NE(nginx, nullptr);
  auto client = Client();

  absl::StatusOr<Response> response =
      Get(*client, nginx->UrlFor("https", "a.test", "/hello.txt"));
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status_code, 200);
  EXPECT_EQ(response->body, "hello\n");
  EXPECT_EQ(response->protocol, "http/1.1");
  EXPECT_GT(response->timing.tls, absl::ZeroDuration());

  bool end = false;
  std::vector<ConnectionSnapshot> connections =
      client->pool().ListConnections(0, 0, std::nullopt, &end);
  ASSERT_EQ(connections.size(), 1u);
  const TlsInfo* info = connections[0].connection->tls_info();
  ASSERT_NE(info, nullptr);
  EXPECT_EQ(info->version, "TLSv1.3");
  EXPECT_EQ(info->alpn, "http/1.1");
  EXPECT_TRUE(info->verified);
  EXPECT_THAT(info->peer_subject, HasSubstr("CN=a"));
  EXPECT_GT(info->peer_not_after, absl::Now());
  EXPECT_TRUE(info->CertificateCovers("a.test"));
  EXPECT_FALSE(info->CertificateCovers("b.test"));

  // nginx saw SNI a.test.
  // nginx logs a request when it finalizes it, maybe after we have the
  // response: wait for the line.
  auto awaited = nginx->AwaitAccessLogEntries(1);
  ASSERT_TRUE(awaited.ok()) << awaited.status();
  std::vector<egress::testing::NginxAccessLogEntry> log = *awaited;
  ASSERT_EQ(log.size(), 1u);
  EXPECT_EQ(log[0].sni, "a.test");
}

TEST_F(TlsTest, PooledTlsConnectionIsReusedWithoutAnotherHandshake) {
  absl::StatusOr<IssuedCert> leaf =
      pki_->IssueLeaf("a", {.dns_names = {"a.test"}});
  ASSERT_TRUE(leaf.ok());
  auto nginx = StartNginx(*leaf);
  ASSERT_NE(nginx, nullptr);
  auto client = Client();
  const std::string url = nginx->UrlFor("https", "a.test", "/hello.txt");
  absl::StatusOr<Response> first = Get(*client, url);
  ASSERT_TRUE(first.ok()) << first.status();
  for (int i = 0; i < 5; ++i) {
    absl::StatusOr<Response> again = Get(*client, url);
    ASSERT_TRUE(again.ok()) << again.status();
    EXPECT_TRUE(again->connection.reused);
    EXPECT_EQ(again->connection.connection_id, first->connection.connection_id);
    EXPECT_EQ(again->timing.tls, absl::ZeroDuration());
  }
  EXPECT_EQ(tls_->stats().handshakes, 1u);
}

TEST_F(TlsTest, EachVerificationFailureIsNamedAndCounted) {
  absl::StatusOr<IssuedCert> for_a =
      pki_->IssueLeaf("a", {.dns_names = {"a.test"}});
  ASSERT_TRUE(for_a.ok());
  absl::StatusOr<IssuedCert> expired = pki_->IssueLeaf(
      "expired", {.dns_names = {"a.test"},
                  .not_before = -absl::Hours(48),
                  .not_after = -absl::Hours(1)});
  ASSERT_TRUE(expired.ok());
  absl::StatusOr<IssuedCert> not_yet = pki_->IssueLeaf(
      "future", {.dns_names = {"a.test"},
                 .not_before = absl::Hours(1),
                 .not_after = absl::Hours(48)});
  ASSERT_TRUE(not_yet.ok());
  absl::StatusOr<std::unique_ptr<TestPki>> stranger =
      TestPki::CreateUntrustedCa();
  ASSERT_TRUE(stranger.ok());
  absl::StatusOr<IssuedCert> untrusted =
      (*stranger)->IssueLeaf("untrusted", {.dns_names = {"a.test"}});
  ASSERT_TRUE(untrusted.ok());

  struct Case {
    const IssuedCert* leaf;
    std::string host;
    std::string message;
    TlsFailure failure;
  };
  const std::vector<Case> cases = {
      {&*for_a, "b.test", "certificate does not cover host name 'b.test'",
       TlsFailure::kHostnameMismatch},
      {&*for_a, "127.0.0.1", "certificate does not cover IP address '127.0.0.1'",
       TlsFailure::kHostnameMismatch},
      {&*expired, "a.test", "certificate has expired", TlsFailure::kExpired},
      {&*not_yet, "a.test", "certificate is not yet valid",
       TlsFailure::kNotYetValid},
      {&*untrusted, "a.test", "certificate issuer is not trusted",
       TlsFailure::kUntrustedIssuer},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.message);
    auto nginx = StartNginx(*c.leaf);
    ASSERT_NE(nginx, nullptr);
    auto client = Client();
    absl::StatusOr<Response> response =
        Get(*client, nginx->UrlFor("https", c.host, "/hello.txt"));
    ASSERT_FALSE(response.ok());
    EXPECT_TRUE(absl::IsUnavailable(response.status())) << response.status();
    EXPECT_THAT(response.status().message(), HasSubstr("TLS handshake with"));
    EXPECT_THAT(response.status().message(), HasSubstr(c.message));
    EXPECT_EQ(Failures(c.failure), 1u);
    EXPECT_EQ(client->pool().Snapshot().connection_count, 0u);
    // The origin never saw a request.
    EXPECT_TRUE(nginx->AccessLogEntries().empty());
  }
}

TEST_F(TlsTest, IpSanCoversAnIpLiteralUrl) {
  absl::StatusOr<IssuedCert> leaf =
      pki_->IssueLeaf("ip", {.ip_addresses = {"127.0.0.1"}});
  ASSERT_TRUE(leaf.ok());
  auto nginx = StartNginx(*leaf);
  ASSERT_NE(nginx, nullptr);
  auto client = Client();
  absl::StatusOr<Response> response =
      Get(*client, nginx->TlsUrl("/hello.txt"));
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status_code, 200);
  // No SNI for an IP literal (RFC 6066 section 3).
  auto log = nginx->AwaitAccessLogEntries(1);
  ASSERT_TRUE(log.ok()) << log.status();
  EXPECT_EQ(log->at(0).sni, "");
}

TEST_F(TlsTest, SystemTrustStoreAloneDoesNotTrustTheTestCa) {
  absl::StatusOr<IssuedCert> leaf =
      pki_->IssueLeaf("a", {.dns_names = {"a.test"}});
  ASSERT_TRUE(leaf.ok());
  auto nginx = StartNginx(*leaf);
  ASSERT_NE(nginx, nullptr);
  // The real defaults: system store only.
  HttpClientOptions options;
  options.event_loops = 1;
  options.resolver = LoopbackNames();
  HttpClient client(options);
  absl::StatusOr<Response> response =
      Get(client, nginx->UrlFor("https", "a.test", "/hello.txt"));
  ASSERT_FALSE(response.ok());
  EXPECT_THAT(response.status().message(),
              HasSubstr("certificate issuer is not trusted"));
}

TEST_F(TlsTest, VerificationOffOnlyForTheDestinationThatSaysSo) {
  absl::StatusOr<std::unique_ptr<TestPki>> stranger =
      TestPki::CreateUntrustedCa();
  ASSERT_TRUE(stranger.ok());
  absl::StatusOr<IssuedCert> leaf =
      (*stranger)->IssueLeaf("self", {.dns_names = {"a.test", "b.test"}});
  ASSERT_TRUE(leaf.ok());
  auto nginx = StartNginx(*leaf);
  ASSERT_NE(nginx, nullptr);
  DestinationRule insecure;
  insecure.host = "a.test";
  insecure.options.verify = false;
  insecure.options.protocols = HttpProtocols::kHttp11;
  auto client = Client({insecure});

  absl::StatusOr<Response> a =
      Get(*client, nginx->UrlFor("https", "a.test", "/hello.txt"));
  ASSERT_TRUE(a.ok()) << a.status();
  bool end = false;
  auto connections = client->pool().ListConnections(0, 0, std::nullopt, &end);
  ASSERT_EQ(connections.size(), 1u);
  EXPECT_FALSE(connections[0].connection->tls_info()->verified);

  absl::StatusOr<Response> b =
      Get(*client, nginx->UrlFor("https", "b.test", "/hello.txt"));
  ASSERT_FALSE(b.ok());
  EXPECT_THAT(b.status().message(), HasSubstr("not trusted"));
}

TEST_F(TlsTest, SessionsAreResumedOnNewConnections) {
  absl::StatusOr<IssuedCert> leaf =
      pki_->IssueLeaf("a", {.dns_names = {"a.test"}});
  ASSERT_TRUE(leaf.ok());
  auto nginx = StartNginx(*leaf);
  ASSERT_NE(nginx, nullptr);
  auto client = Client();
  const std::string url = nginx->UrlFor("https", "a.test", "/hello.txt");
  constexpr int kConnections = 5;
  for (int i = 0; i < kConnections; ++i) {
    absl::StatusOr<Response> response = Get(*client, url);
    ASSERT_TRUE(response.ok()) << response.status();
    EXPECT_FALSE(response->connection.reused);
    // Forces the next request onto a new connection.
    EXPECT_EQ(client->pool().EvictIdle(std::nullopt), 1u);
  }
  const TlsStats stats = tls_->stats();
  EXPECT_EQ(stats.handshakes, static_cast<uint64_t>(kConnections));
  // Every connection after the first resumed the session of the one before.
  EXPECT_EQ(stats.resumed, static_cast<uint64_t>(kConnections - 1));
  auto awaited = nginx->AwaitAccessLogEntries(kConnections);
  ASSERT_TRUE(awaited.ok()) << awaited.status();
  std::vector<egress::testing::NginxAccessLogEntry> log = *awaited;
  ASSERT_EQ(log.size(), static_cast<size_t>(kConnections));
  EXPECT_FALSE(log[0].session_reused);
  for (int i = 1; i < kConnections; ++i) EXPECT_TRUE(log[i].session_reused);
}

TEST_F(TlsTest, ClientCertificateForMutualTls) {
  absl::StatusOr<IssuedCert> leaf =
      pki_->IssueLeaf("a", {.dns_names = {"a.test", "b.test"}});
  ASSERT_TRUE(leaf.ok());
  absl::StatusOr<IssuedCert> client_cert =
      pki_->IssueLeaf("caller", {.client = true});
  ASSERT_TRUE(client_cert.ok());
  NginxTlsOptions tls;
  tls.client_ca_file = pki_->ca_file();
  auto nginx = StartNginx(*leaf, tls);
  ASSERT_NE(nginx, nullptr);
  DestinationRule mtls;
  mtls.host = "a.test";
  mtls.options.ca_file = pki_->ca_file();
  mtls.options.trust_system_store = false;
  mtls.options.client_cert_file = client_cert->chain_file;
  mtls.options.client_key_file = client_cert->key_file;
  mtls.options.protocols = HttpProtocols::kHttp11;
  auto client = Client({mtls});

  absl::StatusOr<Response> with_cert =
      Get(*client, nginx->UrlFor("https", "a.test", "/hello.txt"));
  ASSERT_TRUE(with_cert.ok()) << with_cert.status();
  EXPECT_EQ(with_cert->status_code, 200);
  // b.test has no client certificate configured: nginx refuses it.
  absl::StatusOr<Response> without =
      Get(*client, nginx->UrlFor("https", "b.test", "/hello.txt"));
  ASSERT_TRUE(without.ok()) << without.status();
  EXPECT_EQ(without->status_code, 400);
  auto awaited = nginx->AwaitAccessLogEntries(2);
  ASSERT_TRUE(awaited.ok()) << awaited.status();
  std::vector<egress::testing::NginxAccessLogEntry> log = *awaited;
  ASSERT_EQ(log.size(), 2u);
  EXPECT_EQ(log[0].client_verify, "SUCCESS");
  EXPECT_EQ(log[1].client_verify, "NONE");
}

TEST_F(TlsTest, BadDestinationFilesAreRefusedAtCreation) {
  DestinationOptions defaults;
  defaults.ca_file = "/nonexistent/ca.pem";
  absl::StatusOr<DestinationRules> rules =
      DestinationRules::Create(defaults, {});
  ASSERT_TRUE(rules.ok());
  absl::StatusOr<std::unique_ptr<TlsClient>> tls =
      TlsClient::Create(*std::move(rules));
  ASSERT_FALSE(tls.ok());
  EXPECT_THAT(tls.status().message(),
              HasSubstr("cannot load CA file '/nonexistent/ca.pem'"));

  DestinationRule half;
  half.host = "a.test";
  half.options.client_cert_file = "/x.pem";
  rules = DestinationRules::Create({}, {half});
  ASSERT_TRUE(rules.ok());
  tls = TlsClient::Create(*std::move(rules));
  ASSERT_FALSE(tls.ok());
  EXPECT_THAT(tls.status().message(), HasSubstr("host a.test"));
}

TEST_F(TlsTest, CleartextRefusedWhereTheDestinationForbidsIt) {
  absl::StatusOr<IssuedCert> leaf =
      pki_->IssueLeaf("a", {.dns_names = {"a.test"}});
  ASSERT_TRUE(leaf.ok());
  auto nginx = StartNginx(*leaf);
  ASSERT_NE(nginx, nullptr);
  DestinationRule tls_only;
  tls_only.domain_suffix = "test";
  tls_only.options.allow_cleartext = false;
  tls_only.options.ca_file = pki_->ca_file();
  tls_only.options.protocols = HttpProtocols::kHttp11;
  auto client = Client({tls_only});
  absl::StatusOr<Response> plain =
      Get(*client, nginx->UrlFor("http", "a.test", "/hello.txt"));
  ASSERT_FALSE(plain.ok());
  EXPECT_TRUE(absl::IsPermissionDenied(plain.status())) << plain.status();
  EXPECT_THAT(plain.status().message(), HasSubstr("allow_cleartext"));
  absl::StatusOr<Response> secure =
      Get(*client, nginx->UrlFor("https", "a.test", "/hello.txt"));
  EXPECT_TRUE(secure.ok()) << secure.status();
}

TEST_F(TlsTest, ModernSpecRefusesALegacyOriginThatCompatibleReaches) {
  absl::StatusOr<IssuedCert> leaf =
      pki_->IssueLeaf("a", {.dns_names = {"a.test", "b.test"}});
  ASSERT_TRUE(leaf.ok());
  NginxOptions options;
  options.tls = NginxTlsOptions{.cert_file = leaf->chain_file,
                                .key_file = leaf->key_file,
                                .http2 = false,
                                .protocols = "TLSv1.1"};
  // OpenSSL 3 speaks TLS 1.1 only at security level 0.
  options.server_directives = "ssl_ciphers DEFAULT:@SECLEVEL=0;";
  absl::StatusOr<std::unique_ptr<NginxServer>> nginx =
      NginxServer::Start(options);
  ASSERT_TRUE(nginx.ok()) << nginx.status();
  DestinationRule legacy;
  legacy.host = "b.test";
  legacy.options.spec = TlsSpec::kCompatible;
  legacy.options.ca_file = pki_->ca_file();
  legacy.options.trust_system_store = false;
  legacy.options.protocols = HttpProtocols::kHttp11;
  auto client = Client({legacy});

  absl::StatusOr<Response> modern =
      Get(*client, (*nginx)->UrlFor("https", "a.test", "/hello.txt"));
  ASSERT_FALSE(modern.ok());
  EXPECT_TRUE(absl::IsUnavailable(modern.status()));
  EXPECT_THAT(modern.status().message(),
              HasSubstr("no TLS protocol version in common"));
  EXPECT_EQ(Failures(TlsFailure::kProtocolVersion), 1u);

  absl::StatusOr<Response> compatible =
      Get(*client, (*nginx)->UrlFor("https", "b.test", "/hello.txt"));
  ASSERT_TRUE(compatible.ok()) << compatible.status();
  bool end = false;
  auto connections = client->pool().ListConnections(0, 0, std::nullopt, &end);
  ASSERT_EQ(connections.size(), 1u);
  EXPECT_EQ(connections[0].connection->tls_info()->version, "TLSv1.1");
}

TEST(DestinationRulesTest, ExactHostBeatsLongestSuffixBeatsDefaults) {
  DestinationRule suffix;
  suffix.domain_suffix = "example.com";
  suffix.options.spec = TlsSpec::kCompatible;
  DestinationRule longer;
  longer.domain_suffix = ".api.example.com";
  longer.options.protocols = HttpProtocols::kHttp2;
  DestinationRule exact;
  exact.host = "Legacy.API.example.com";
  exact.options.verify = false;
  absl::StatusOr<DestinationRules> rules =
      DestinationRules::Create({}, {suffix, longer, exact});
  ASSERT_TRUE(rules.ok()) << rules.status();
  EXPECT_EQ(rules->IndexFor("other.org"), 0u);
  EXPECT_EQ(rules->IndexFor("example.com"), 1u);
  EXPECT_EQ(rules->IndexFor("www.example.com"), 1u);
  EXPECT_EQ(rules->IndexFor("notexample.com"), 0u);
  EXPECT_EQ(rules->IndexFor("v1.api.example.com"), 2u);
  EXPECT_EQ(rules->IndexFor("legacy.api.EXAMPLE.com"), 3u);
  EXPECT_FALSE(rules->For("legacy.api.example.com").verify);
  EXPECT_TRUE(rules->For("v1.api.example.com").verify);

  DestinationRule twice = exact;
  EXPECT_FALSE(DestinationRules::Create({}, {exact, twice}).ok());
  DestinationRule neither;
  EXPECT_FALSE(DestinationRules::Create({}, {neither}).ok());
}

}  // namespace
}  // namespace egress
