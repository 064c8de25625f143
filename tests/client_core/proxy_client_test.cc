// Proxies through HttpClient and the pool, against real proxies started on
// loopback: squid with Basic auth (http:// forwarded in absolute form,
// https:// through CONNECT tunnels with TLS to an nginx, tunnels pooled),
// tinyproxy, our SOCKS5 server, and failover from a dead proxy to a live
// one. Asserts what each proxy saw and which connection served each call.
// Runs under TSan too (no gRPC here).
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "client_core/base/sync.h"
#include "client_core/call/http_client.h"
#include "client_core/policy/egress_policy.h"
#include "client_core/proxy/proxy_rules.h"
#include "client_core/route/resolver.h"
#include "client_core/tls/tls_client.h"
#include "client_core/url/url.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/execute_and_wait.h"
#include "tests/support/nginx.h"
#include "tests/support/socks5_server.h"
#include "tests/support/squid.h"
#include "tests/support/subprocess.h"
#include "tests/support/test_pki.h"
#include "tests/support/tinyproxy.h"

namespace egress {
namespace {

using ::egress::testing::NginxOptions;
using ::egress::testing::NginxServer;
using ::egress::testing::NginxTlsOptions;
using ::egress::testing::Socks5Server;
using ::egress::testing::Socks5ServerOptions;
using ::egress::testing::SquidAccessLogEntry;
using ::egress::testing::SquidOptions;
using ::egress::testing::SquidServer;
using ::egress::testing::TestPki;
using ::egress::testing::TinyproxyOptions;
using ::egress::testing::TinyproxyServer;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kUser[] = "egress";
constexpr char kPassword[] = "s3cret-Pa55";

absl::StatusOr<Response> Get(HttpClient& client, const std::string& url) {
  Request request;
  request.method = "GET";
  request.url = ParseUrl(url).value();
  request.deadline = absl::Now() + absl::Seconds(10);
  return testing::ExecuteAndWait(client, std::move(request));
}

Proxy HttpProxy(const std::string& name, int port, std::string user = "",
                std::string password = "") {
  Proxy proxy;
  proxy.name = name;
  proxy.host = "127.0.0.1";
  proxy.port = static_cast<uint16_t>(port);
  proxy.username = std::move(user);
  proxy.password = std::move(password);
  return proxy;
}

// A client sending every origin through `via` (in order), trusting `ca`.
std::unique_ptr<HttpClient> ClientVia(std::vector<Proxy> proxies,
                                      const std::string& ca_file = "") {
  ProxySelectorOptions options;
  for (const Proxy& p : proxies) options.default_via.push_back(p.name);
  options.proxies = std::move(proxies);
  absl::StatusOr<ProxySelector> selector =
      ProxySelector::Create(std::move(options));
  EXPECT_TRUE(selector.ok()) << selector.status();
  DestinationOptions defaults;
  if (!ca_file.empty()) {
    defaults.trust_system_store = false;
    defaults.ca_file = ca_file;
  }
  HttpClientOptions client;
  client.event_loops = 2;
  client.connector.proxies =
      std::make_shared<const ProxySelector>(*std::move(selector));
  client.connector.tls = std::shared_ptr<TlsClient>(
      TlsClient::Create(DestinationRules::Create(defaults, {}).value())
          .value());
  return std::make_unique<HttpClient>(client);
}

class ProxyClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto pki = TestPki::Create();
    ASSERT_TRUE(pki.ok()) << pki.status();
    pki_ = *std::move(pki);
    auto leaf = pki_->IssueLeaf("origin", {.dns_names = {"origin.test"}});
    ASSERT_TRUE(leaf.ok()) << leaf.status();
    NginxOptions options;
    options.tls = NginxTlsOptions{.cert_file = leaf->chain_file,
                                  .key_file = leaf->key_file};
    auto nginx = NginxServer::Start(options);
    ASSERT_TRUE(nginx.ok()) << nginx.status();
    nginx_ = *std::move(nginx);
  }
  std::unique_ptr<TestPki> pki_;
  std::unique_ptr<NginxServer> nginx_;
};

TEST_F(ProxyClientTest, SquidWithBasicAuthCarriesHttpAndPooledHttpsTunnels) {
  SquidOptions options;
  options.users = {{kUser, kPassword}};
  options.hosts = {{"origin.test", "127.0.0.1"}};
  auto squid = SquidServer::Start(options);
  ASSERT_TRUE(squid.ok()) << squid.status();
  auto client = ClientVia({HttpProxy("corp", (*squid)->port(), kUser,
                                     kPassword)},
                          pki_->ca_file());

  // http:// in absolute form on the proxy's own connection.
  absl::StatusOr<Response> plain =
      Get(*client, nginx_->UrlFor("http", "origin.test", "/hello.txt"));
  ASSERT_TRUE(plain.ok()) << plain.status() << (*squid)->CacheLog();
  EXPECT_EQ(plain->status_code, 200);
  EXPECT_EQ(plain->body, "hello\n");

  // https:// through a CONNECT tunnel, TLS (h2 by ALPN) to the origin; the
  // second call reuses the pooled tunnel.
  const std::string secure_url =
      nginx_->UrlFor("https", "origin.test", "/hello.txt");
  absl::StatusOr<Response> first = Get(*client, secure_url);
  ASSERT_TRUE(first.ok()) << first.status() << (*squid)->CacheLog();
  EXPECT_EQ(first->protocol, "h2");
  absl::StatusOr<Response> second = Get(*client, secure_url);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_TRUE(second->connection.reused);
  EXPECT_EQ(second->connection.connection_id, first->connection.connection_id);

  // The pool shows each connection's route through the proxy.
  bool end = false;
  std::vector<std::string> addresses;
  for (const ConnectionSnapshot& c :
       client->pool().ListConnections(0, 0, std::nullopt, &end)) {
    addresses.push_back(c.address.ToString());
  }
  EXPECT_THAT(addresses, ::testing::UnorderedElementsAre(
                             "http://* via corp",
                             absl::StrCat("https://origin.test:",
                                          nginx_->tls_port(), " via corp")));
  // squid authenticated both (one tunnel for two https calls).
  client.reset();  // closes the tunnel, so squid logs it
  auto log = (*squid)->AwaitAccessLogEntries(
      2, [](const SquidAccessLogEntry& e) { return e.user == kUser; });
  ASSERT_TRUE(log.ok()) << log.status() << (*squid)->AccessLog();
  int connects = 0;
  for (const SquidAccessLogEntry& e : *log) {
    if (e.method == "CONNECT") ++connects;
  }
  EXPECT_EQ(connects, 1);
}

TEST_F(ProxyClientTest, WrongCredentialsArePermissionDeniedNamingThe407) {
  SquidOptions options;
  options.users = {{kUser, kPassword}};
  options.hosts = {{"origin.test", "127.0.0.1"}};
  auto squid = SquidServer::Start(options);
  ASSERT_TRUE(squid.ok()) << squid.status();
  auto client = ClientVia(
      {HttpProxy("corp", (*squid)->port(), kUser, "wrong-password")},
      pki_->ca_file());
  absl::StatusOr<Response> response =
      Get(*client, nginx_->UrlFor("https", "origin.test", "/hello.txt"));
  ASSERT_FALSE(response.ok());
  EXPECT_TRUE(absl::IsPermissionDenied(response.status())) << response.status();
  EXPECT_THAT(response.status().message(), HasSubstr("407"));
  EXPECT_THAT(response.status().message(), HasSubstr("corp"));
  EXPECT_THAT(response.status().message(), Not(HasSubstr("wrong-password")));
  EXPECT_EQ(client->connector().failures()[static_cast<size_t>(
                ConnectFailure::kProxy)],
            1u);
}

TEST_F(ProxyClientTest, TinyproxyForwardsAndTunnels) {
  auto tinyproxy = TinyproxyServer::Start(TinyproxyOptions());
  ASSERT_TRUE(tinyproxy.ok()) << tinyproxy.status();
  auto client = ClientVia({HttpProxy("tiny", (*tinyproxy)->port())},
                          pki_->ca_file());
  absl::StatusOr<Response> plain = Get(*client, nginx_->Url("/hello.txt"));
  ASSERT_TRUE(plain.ok()) << plain.status() << (*tinyproxy)->Log();
  EXPECT_EQ(plain->body, "hello\n");
  // tinyproxy resolves names through the system (no test hosts file), so
  // the https origin is named by IP, with a certificate for that IP.
  auto leaf = pki_->IssueLeaf("ip", {.ip_addresses = {"127.0.0.1"}});
  ASSERT_TRUE(leaf.ok());
  NginxOptions options;
  options.tls = NginxTlsOptions{.cert_file = leaf->chain_file,
                                .key_file = leaf->key_file};
  auto ip_nginx = NginxServer::Start(options);
  ASSERT_TRUE(ip_nginx.ok()) << ip_nginx.status();
  absl::StatusOr<Response> secure =
      Get(*client, (*ip_nginx)->TlsUrl("/hello.txt"));
  ASSERT_TRUE(secure.ok()) << secure.status() << (*tinyproxy)->Log();
  EXPECT_EQ(secure->body, "hello\n");
}

TEST_F(ProxyClientTest, Socks5WithUsernameAndPasswordForBothSchemes) {
  Socks5ServerOptions options;
  options.username = kUser;
  options.password = kPassword;
  options.hosts = {{"origin.test", "127.0.0.1"}};
  Socks5Server socks(options);
  Proxy proxy = HttpProxy("socks", socks.port(), kUser, kPassword);
  proxy.scheme = Proxy::Scheme::kSocks5;
  auto client = ClientVia({proxy}, pki_->ca_file());
  absl::StatusOr<Response> plain =
      Get(*client, nginx_->UrlFor("http", "origin.test", "/hello.txt"));
  ASSERT_TRUE(plain.ok()) << plain.status();
  absl::StatusOr<Response> secure =
      Get(*client, nginx_->UrlFor("https", "origin.test", "/hello.txt"));
  ASSERT_TRUE(secure.ok()) << secure.status();
  EXPECT_EQ(secure->protocol, "h2");
  std::vector<Socks5Server::Handshake> handshakes = socks.handshakes();
  ASSERT_EQ(handshakes.size(), 2u);
  for (const auto& h : handshakes) {
    EXPECT_TRUE(h.authenticated);
    EXPECT_EQ(h.host, "origin.test");  // the proxy resolves the name
    EXPECT_EQ(h.address_type, 3);
  }
}

TEST_F(ProxyClientTest, DeadFirstProxyFailsOverAndIsTriedLastNextTime) {
  auto tinyproxy = TinyproxyServer::Start(TinyproxyOptions());
  ASSERT_TRUE(tinyproxy.ok()) << tinyproxy.status();
  const int dead_port = ::egress::testing::PickFreePort();
  auto client = ClientVia(
      {HttpProxy("dead", dead_port), HttpProxy("live", (*tinyproxy)->port())});
  absl::StatusOr<Response> first = Get(*client, nginx_->Url("/hello.txt"));
  ASSERT_TRUE(first.ok()) << first.status();
  auto failures = client->connector().failures();
  EXPECT_EQ(failures[static_cast<size_t>(ConnectFailure::kRefused)], 1u);
  // The dead proxy is now tried last: the next call (on a fresh
  // connection) goes straight to the live one.
  client->pool().EvictIdle(std::nullopt);
  absl::StatusOr<Response> second = Get(*client, nginx_->Url("/hello.txt"));
  ASSERT_TRUE(second.ok()) << second.status();
  failures = client->connector().failures();
  EXPECT_EQ(failures[static_cast<size_t>(ConnectFailure::kRefused)], 1u);
  // Through the live proxy. (Asked of the response, not the pool: when
  // tinyproxy closes its idle connection, the pool now drops it at once.)
  EXPECT_EQ(second->connection.remote_address,
            absl::StrCat("127.0.0.1:", (*tinyproxy)->port()));
}

}  // namespace
}  // namespace egress

namespace egress {
namespace {

TEST_F(ProxyClientTest, HostAllowListJudgesEachRequestThroughAForwardProxy) {
  auto tinyproxy = TinyproxyServer::Start(TinyproxyOptions());
  ASSERT_TRUE(tinyproxy.ok()) << tinyproxy.status();
  ProxySelectorOptions options;
  options.proxies = {HttpProxy("tiny", (*tinyproxy)->port())};
  options.default_via = {"tiny"};
  EgressPolicyOptions policy;
  policy.host_allowlist = {"127.0.0.1"};
  policy.allow_cidrs = {"127.0.0.0/8"};
  HttpClientOptions client_options;
  client_options.event_loops = 1;
  client_options.connector.proxies = std::make_shared<const ProxySelector>(
      ProxySelector::Create(std::move(options)).value());
  client_options.connector.policy = std::shared_ptr<const EgressPolicy>(
      EgressPolicy::Create(std::move(policy)).value());
  HttpClient client(client_options);
  absl::StatusOr<Response> listed = Get(client, nginx_->Url("/hello.txt"));
  ASSERT_TRUE(listed.ok()) << listed.status();
  // The same proxy connection would carry it; the request is refused first.
  absl::StatusOr<Response> unlisted =
      Get(client, nginx_->UrlFor("http", "localhost", "/hello.txt"));
  ASSERT_FALSE(unlisted.ok());
  EXPECT_TRUE(absl::IsPermissionDenied(unlisted.status()))
      << unlisted.status();
  EXPECT_THAT(unlisted.status().message(), HasSubstr("host_not_allowed"));
}

}  // namespace
}  // namespace egress
