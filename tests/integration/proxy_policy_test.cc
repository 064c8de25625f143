// The egress policy judges every request the same way whatever route carries
// it (issue 14: a forward proxy bypassed it). One egressd per route kind
// (direct; squid as HTTP proxy, which makes http:// absolute-form requests
// and https:// CONNECT tunnels; danted as SOCKS5) fetches each kind of
// destination over http and https, and each cell asserts the exact outcome:
//   - an IP literal in a denied range, and its IPv4-mapped form: denied by
//     the address rules on every route;
//   - a name the host allow-list leaves out: denied by the name rules on
//     every route;
//   - "localhost" on egressd's own metrics port: egressd's own listener,
//     denied on every route even though 127.0.0.0/8 is allowed;
//   - a name that resolves to a denied address: denied where egressd
//     resolves it (direct); through a proxy the proxy resolves it, and
//     egressd cannot judge what it never sees (docs/configuration.md, "What
//     each route kind guarantees"): the request reaches the proxy;
//   - an allowed origin: 200 on every route.
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/support/dante.h"
#include "tests/support/egressd_process.h"
#include "tests/support/nginx.h"
#include "tests/support/squid.h"
#include "tests/support/test_pki.h"

namespace egress::testing {
namespace {

using ::testing::HasSubstr;

enum class Route { kDirect, kHttpProxy, kSocks5 };

const char* RouteName(Route route) {
  switch (route) {
    case Route::kDirect: return "direct";
    case Route::kHttpProxy: return "http-proxy";
    case Route::kSocks5: return "socks5";
  }
  return "?";
}

std::string Write(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
  return path;
}

class ProxyPolicyTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto pki = TestPki::Create();
    ASSERT_TRUE(pki.ok()) << pki.status();
    pki_ = pki->release();
    auto leaf = pki_->IssueLeaf(
        "origin", {.dns_names = {"localhost", "denied.test", "blocked.test"},
                   .ip_addresses = {"127.0.0.1", "127.0.0.2"}});
    ASSERT_TRUE(leaf.ok()) << leaf.status();
    NginxOptions nginx_options;
    nginx_options.tls = NginxTlsOptions{.cert_file = leaf->chain_file,
                                        .key_file = leaf->key_file,
                                        .http2 = false};
    // The denied address serves too: a cell that reaches it gets 200, so a
    // bypass cannot hide behind a refused connection.
    nginx_options.extra_loopback_hosts = {"127.0.0.2"};
    auto nginx = NginxServer::Start(nginx_options);
    ASSERT_TRUE(nginx.ok()) << nginx.status();
    nginx_ = nginx->release();
    SquidOptions squid_options;
    squid_options.hosts = {{"localhost", "127.0.0.1"},
                           {"denied.test", "127.0.0.2"},
                           {"blocked.test", "127.0.0.1"}};
    auto squid = SquidServer::Start(squid_options);
    ASSERT_TRUE(squid.ok()) << squid.status();
    squid_ = squid->release();
    auto dante = DanteServer::Start();
    ASSERT_TRUE(dante.ok()) << dante.status();
    dante_ = dante->release();
  }

  static void TearDownTestSuite() {
    delete dante_;
    delete squid_;
    delete nginx_;
    delete pki_;
  }

  // egressd with 127.0.0.0/8 allowed but 127.0.0.2 denied, a host
  // allow-list without blocked.test, and `route` for every destination.
  static std::unique_ptr<EgressdProcess> StartEgressd(Route route) {
    std::string proxy;
    if (route == Route::kHttpProxy) {
      proxy = absl::StrCat("proxy:\n  proxies:\n    - name: squid\n"
                           "      url: http://127.0.0.1:",
                           squid_->port(), "\n  default_via: [squid]\n");
    } else if (route == Route::kSocks5) {
      proxy = absl::StrCat("proxy:\n  proxies:\n    - name: dante\n"
                           "      url: socks5://127.0.0.1:",
                           dante_->port(), "\n  default_via: [dante]\n");
    }
    const std::string config = Write(
        absl::StrCat(pki_->dir(), "/egressd-", RouteName(route), ".yaml"),
        absl::StrCat("tls:\n  default:\n    ca_file: ", pki_->ca_file(),
                     "\negress:\n  allow_cidrs: [127.0.0.0/8]\n"
                     "  deny_cidrs: [127.0.0.2/32]\n"
                     "  allow_hosts: [localhost, denied.test, 127.0.0.1, "
                     "127.0.0.2, \"::ffff:127.0.0.2\"]\n",
                     proxy));
    auto egressd = EgressdProcess::Start(
        {absl::StrCat("--config=", config),
         "--resolve=denied.test:127.0.0.2;blocked.test:127.0.0.1"});
    EXPECT_TRUE(egressd.ok()) << egressd.status();
    if (!egressd.ok()) return nullptr;
    return *std::move(egressd);
  }

  static std::string Url(const std::string& scheme, const std::string& host,
                         int port) {
    return absl::StrCat(scheme, "://", host, ":", port, "/hello.txt");
  }
  static int OriginPort(const std::string& scheme) {
    return scheme == "https" ? nginx_->tls_port() : nginx_->port();
  }

  // Expects `url` to be denied by egressd's policy with `rule`.
  static void ExpectDenied(EgressdProcess& egressd, const std::string& url,
                           const std::string& rule) {
    SCOPED_TRACE(url);
    v1::FetchResponse response;
    grpc::Status status = egressd.Fetch(Get(url), &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED)
        << status.error_message() << " (HTTP " << response.status_code() << ")";
    EXPECT_THAT(status.error_message(),
                HasSubstr(absl::StrCat("denied by rule '", rule, "'")));
  }

  static void ExpectFetched(EgressdProcess& egressd, const std::string& url) {
    SCOPED_TRACE(url);
    v1::FetchResponse response;
    grpc::Status status = egressd.Fetch(Get(url), &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(response.status_code(), 200);
    EXPECT_EQ(response.body(), "hello\n");
  }

  void RunMatrix(Route route) {
    std::unique_ptr<EgressdProcess> egressd = StartEgressd(route);
    ASSERT_NE(egressd, nullptr);
    for (const std::string scheme : {"http", "https"}) {
      SCOPED_TRACE(absl::StrCat(RouteName(route), " ", scheme));
      const int port = OriginPort(scheme);
      ExpectDenied(*egressd, Url(scheme, "127.0.0.2", port), "cidr_denylist");
      ExpectDenied(*egressd, Url(scheme, "[::ffff:127.0.0.2]", port),
                   "cidr_denylist");
      ExpectDenied(*egressd, Url(scheme, "blocked.test", port),
                   "host_not_allowed");
      // egressd's own metrics listener, by name and by address, although
      // 127.0.0.0/8 is allowed.
      ExpectDenied(*egressd, Url(scheme, "localhost", egressd->metrics_port()),
                   "self_address");
      ExpectDenied(*egressd, Url(scheme, "127.0.0.1", egressd->metrics_port()),
                   "self_address");
      ExpectFetched(*egressd, Url(scheme, "localhost", port));
    }
  }

  static TestPki* pki_;
  static NginxServer* nginx_;
  static SquidServer* squid_;
  static DanteServer* dante_;
};

TestPki* ProxyPolicyTest::pki_ = nullptr;
NginxServer* ProxyPolicyTest::nginx_ = nullptr;
SquidServer* ProxyPolicyTest::squid_ = nullptr;
DanteServer* ProxyPolicyTest::dante_ = nullptr;

TEST_F(ProxyPolicyTest, Direct) {
  RunMatrix(Route::kDirect);
  // egressd resolves the name, and judges the address it resolved.
  std::unique_ptr<EgressdProcess> egressd = StartEgressd(Route::kDirect);
  ASSERT_NE(egressd, nullptr);
  for (const std::string scheme : {"http", "https"}) {
    ExpectDenied(*egressd, Url(scheme, "denied.test", OriginPort(scheme)),
                 "cidr_denylist");
  }
}

TEST_F(ProxyPolicyTest, HttpProxyAbsoluteFormAndConnect) {
  RunMatrix(Route::kHttpProxy);
  // squid resolves denied.test itself (its hosts file says 127.0.0.2):
  // egressd never sees that address, so this is what a proxy route cannot
  // guarantee. The request reaches the proxy and the origin behind it.
  std::unique_ptr<EgressdProcess> egressd = StartEgressd(Route::kHttpProxy);
  ASSERT_NE(egressd, nullptr);
  for (const std::string scheme : {"http", "https"}) {
    ExpectFetched(*egressd, Url(scheme, "denied.test", OriginPort(scheme)));
  }
}

TEST_F(ProxyPolicyTest, Socks5) {
  // danted resolves names through the system resolver, which knows
  // localhost but not the test's names; the name cells that need a
  // resolution by the proxy are the HTTP proxy's.
  RunMatrix(Route::kSocks5);
}

}  // namespace
}  // namespace egress::testing
