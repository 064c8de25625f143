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

}  // namespace
}  // namespace egress::testing
