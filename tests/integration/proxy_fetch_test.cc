// Proxies through the egressd process: the configuration file names a squid
// with Basic auth whose password comes from a file (a Kubernetes secret);
// http:// and https:// Fetches go through it; PoolAdmin shows the route;
// the password appears in no admin output, metrics or error.
#include <fstream>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/support/egressd_process.h"
#include "tests/support/nginx.h"
#include "tests/support/squid.h"
#include "tests/support/test_pki.h"
#include "tests/support/tinyproxy.h"

namespace egress::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kPassword[] = "Zq8-secret-7Wp";

std::string Write(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
  return path;
}

class ProxyFetchTest : public ::testing::Test {
 protected:
  void StartAll(const std::string& password_in_file) {
    auto pki = TestPki::Create();
    ASSERT_TRUE(pki.ok()) << pki.status();
    pki_ = *std::move(pki);
    auto leaf = pki_->IssueLeaf("origin", {.dns_names = {"origin.test"}});
    ASSERT_TRUE(leaf.ok()) << leaf.status();
    NginxOptions nginx_options;
    nginx_options.tls = NginxTlsOptions{.cert_file = leaf->chain_file,
                                        .key_file = leaf->key_file};
    auto nginx = NginxServer::Start(nginx_options);
    ASSERT_TRUE(nginx.ok()) << nginx.status();
    nginx_ = *std::move(nginx);
    SquidOptions squid_options;
    squid_options.users = {{"egressd", kPassword}};
    squid_options.hosts = {{"origin.test", "127.0.0.1"}};
    auto squid = SquidServer::Start(squid_options);
    ASSERT_TRUE(squid.ok()) << squid.status();
    squid_ = *std::move(squid);

    const std::string password_file =
        Write(absl::StrCat(pki_->dir(), "/proxy-password"), password_in_file);
    const std::string config = Write(
        absl::StrCat(pki_->dir(), "/egressd.yaml"),
        absl::StrCat("tls:\n  default:\n    ca_file: ", pki_->ca_file(),
                     "\nproxy:\n  proxies:\n    - name: corp\n"
                     "      url: http://127.0.0.1:",
                     squid_->port(),
                     "\n      username: egressd\n      password_file: ",
                     password_file, "\n  default_via: [corp]\n"));
    auto egressd =
        EgressdProcess::Start({absl::StrCat("--config=", config)});
    ASSERT_TRUE(egressd.ok()) << egressd.status();
    egressd_ = *std::move(egressd);
  }

  std::unique_ptr<TestPki> pki_;
  std::unique_ptr<NginxServer> nginx_;
  std::unique_ptr<SquidServer> squid_;
  std::unique_ptr<EgressdProcess> egressd_;
};

TEST_F(ProxyFetchTest, FetchesGoThroughTheConfiguredProxy) {
  StartAll(kPassword);
  v1::FetchResponse plain;
  grpc::Status status = egressd_->Fetch(
      Get(nginx_->UrlFor("http", "origin.test", "/hello.txt")), &plain);
  ASSERT_TRUE(status.ok()) << status.error_message() << squid_->CacheLog();
  EXPECT_EQ(plain.body(), "hello\n");
  v1::FetchResponse secure;
  status = egressd_->Fetch(
      Get(nginx_->UrlFor("https", "origin.test", "/hello.txt")), &secure);
  ASSERT_TRUE(status.ok()) << status.error_message() << squid_->CacheLog();
  EXPECT_EQ(secure.body(), "hello\n");
  EXPECT_EQ(secure.protocol(), "h2");

  grpc::ClientContext context;
  v1::ListConnectionsResponse list;
  ASSERT_TRUE(egressd_->admin()
                  .ListConnections(&context, v1::ListConnectionsRequest(),
                                   &list)
                  .ok());
  std::string listed = list.DebugString();
  EXPECT_THAT(listed, HasSubstr("http://* via corp"));
  EXPECT_THAT(listed, HasSubstr(absl::StrCat("https://origin.test:",
                                             nginx_->tls_port(), " via corp")));
  absl::StatusOr<v1::PoolStats> stats = egressd_->PoolStats();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_THAT(listed + stats->DebugString(), Not(HasSubstr(kPassword)));
}

TEST_F(ProxyFetchTest, AWrongPasswordIsPermissionDeniedWithoutTheSecret) {
  StartAll("not-the-password");
  v1::FetchResponse response;
  grpc::Status status = egressd_->Fetch(
      Get(nginx_->UrlFor("https", "origin.test", "/hello.txt")), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED)
      << status.error_message();
  EXPECT_THAT(status.error_message(), HasSubstr("407"));
  EXPECT_THAT(status.error_message(), Not(HasSubstr("not-the-password")));
  absl::StatusOr<v1::PoolStats> stats = egressd_->PoolStats();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->connect_failures_by_reason().at("proxy"), 1u);
}

// Issue 14: egressd's proxy credentials went out with every plain-http
// request, and a proxy that does not consume them (tinyproxy without auth)
// handed them to the origin. Now they go only after the proxy's 407 (or
// with `preemptive: true`); squid, which asks, still gets them (the test
// above), and the origin behind tinyproxy never sees them.
TEST(ProxyCredentialsTest, AProxyThatNeverAsksNeverGetsThem) {
  auto pki = TestPki::Create();
  ASSERT_TRUE(pki.ok()) << pki.status();
  NginxOptions nginx_options;
  // The origin echoes any Proxy-Authorization it receives.
  nginx_options.server_directives =
      "add_header X-Seen-Proxy-Authorization $http_proxy_authorization "
      "always;";
  auto nginx = NginxServer::Start(nginx_options);
  ASSERT_TRUE(nginx.ok()) << nginx.status();
  auto tinyproxy = TinyproxyServer::Start();
  ASSERT_TRUE(tinyproxy.ok()) << tinyproxy.status();
  const std::string config = Write(
      absl::StrCat((*pki)->dir(), "/egressd.yaml"),
      absl::StrCat("proxy:\n  proxies:\n    - name: tiny\n"
                   "      url: http://127.0.0.1:",
                   (*tinyproxy)->port(),
                   "\n      username: egressd\n      password: ", kPassword,
                   "\n  default_via: [tiny]\n"));
  auto egressd = EgressdProcess::Start({absl::StrCat("--config=", config)});
  ASSERT_TRUE(egressd.ok()) << egressd.status();

  for (int i = 0; i < 2; ++i) {
    v1::FetchResponse response;
    grpc::Status status =
        (*egressd)->Fetch(Get((*nginx)->Url("/hello.txt")), &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(response.status_code(), 200);
    EXPECT_EQ(response.body(), "hello\n");
    for (const v1::Header& header : response.headers()) {
      EXPECT_NE(header.name(), "X-Seen-Proxy-Authorization")
          << "the origin received Proxy-Authorization: " << header.value();
    }
  }

  // A caller's own Proxy-Authorization is refused: egressd authenticates to
  // its proxies itself, and a caller's would go to whoever forwards it.
  v1::FetchRequest request = Get((*nginx)->Url("/hello.txt"));
  v1::Header* header = request.add_headers();
  header->set_name("Proxy-Authorization");
  header->set_value("Basic Y2FsbGVyOnNlY3JldA==");
  v1::FetchResponse response;
  grpc::Status status = (*egressd)->Fetch(request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("'Proxy-Authorization'"));
  EXPECT_THAT(status.error_message(), Not(HasSubstr("Y2FsbGVy")));
}

}  // namespace
}  // namespace egress::testing
