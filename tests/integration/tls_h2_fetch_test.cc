// TLS and HTTP/2 through the egressd process: a Fetch to an https origin
// (nginx with a certificate from the test's CA, trusted through the
// configuration file) comes back over h2 with the protocol reported;
// verification failures reach the gRPC caller as UNAVAILABLE naming the
// cause; PoolAdmin shows the TLS session and the handshake counts.
#include <fstream>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/support/egressd_process.h"
#include "tests/support/nginx.h"
#include "tests/support/test_pki.h"

namespace egress::testing {
namespace {

using ::testing::HasSubstr;

class TlsH2FetchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto pki = TestPki::Create();
    ASSERT_TRUE(pki.ok()) << pki.status();
    pki_ = *std::move(pki);
    auto good = pki_->IssueLeaf("good", {.dns_names = {"a.test"}});
    ASSERT_TRUE(good.ok()) << good.status();
    auto expired = pki_->IssueLeaf(
        "expired", {.dns_names = {"old.test"},
                    .not_before = -absl::Hours(48),
                    .not_after = -absl::Hours(1)});
    ASSERT_TRUE(expired.ok()) << expired.status();

    NginxOptions good_options;
    good_options.tls = NginxTlsOptions{.cert_file = good->chain_file,
                                       .key_file = good->key_file};
    auto nginx = NginxServer::Start(good_options);
    ASSERT_TRUE(nginx.ok()) << nginx.status();
    nginx_ = *std::move(nginx);
    NginxOptions expired_options;
    expired_options.tls = NginxTlsOptions{.cert_file = expired->chain_file,
                                          .key_file = expired->key_file};
    auto old = NginxServer::Start(expired_options);
    ASSERT_TRUE(old.ok()) << old.status();
    expired_nginx_ = *std::move(old);

    // The test CA is trusted through the configuration file, as an operator
    // would trust a partner's CA.
    config_path_ = absl::StrCat(pki_->dir(), "/egressd.yaml");
    std::ofstream(config_path_) << "tls:\n  default:\n    ca_file: "
                                << pki_->ca_file() << "\n";
    auto egressd = EgressdProcess::Start(
        {absl::StrCat("--config=", config_path_),
         "--resolve=a.test:127.0.0.1;old.test:127.0.0.1"});
    ASSERT_TRUE(egressd.ok()) << egressd.status();
    egressd_ = *std::move(egressd);
  }

  std::unique_ptr<TestPki> pki_;
  std::unique_ptr<NginxServer> nginx_;
  std::unique_ptr<NginxServer> expired_nginx_;
  std::string config_path_;
  std::unique_ptr<EgressdProcess> egressd_;
};

TEST_F(TlsH2FetchTest, HttpsFetchIsVerifiedAndSpeaksH2) {
  v1::FetchResponse first;
  grpc::Status status = egressd_->Fetch(
      Get(nginx_->UrlFor("https", "a.test", "/hello.txt")), &first);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(first.status_code(), 200);
  EXPECT_EQ(first.body(), "hello\n");
  EXPECT_EQ(first.protocol(), "h2");
  EXPECT_GT(first.timing().tls().nanos() + first.timing().tls().seconds(), 0);

  v1::FetchResponse second;
  status = egressd_->Fetch(
      Get(nginx_->UrlFor("https", "a.test", "/hello.txt")), &second);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_TRUE(second.connection().reused());
  EXPECT_EQ(second.connection().id(), first.connection().id());

  grpc::ClientContext context;
  v1::ListConnectionsResponse list;
  ASSERT_TRUE(egressd_->admin()
                  .ListConnections(&context, v1::ListConnectionsRequest(),
                                   &list)
                  .ok());
  ASSERT_EQ(list.connections_size(), 1);
  const v1::ConnectionStats& c = list.connections(0);
  EXPECT_EQ(c.protocol(), "h2");
  EXPECT_EQ(c.tls().version(), "TLSv1.3");
  EXPECT_EQ(c.tls().alpn(), "h2");
  EXPECT_TRUE(c.tls().verified());
  EXPECT_THAT(c.tls().peer_subject(), HasSubstr("CN=good"));
  EXPECT_GT(c.allocation_limit(), 1u);
  EXPECT_EQ(c.http2().succeeded(), 2u);

  absl::StatusOr<v1::PoolStats> stats = egressd_->PoolStats();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->tls().handshakes(), 1u);
  ASSERT_EQ(stats->addresses_size(), 1);
  EXPECT_EQ(stats->addresses(0).http2_count(), 1u);
}

TEST_F(TlsH2FetchTest, VerificationFailuresAreUnavailableNamingTheCause) {
  v1::FetchResponse response;
  grpc::Status expired = egressd_->Fetch(
      Get(expired_nginx_->UrlFor("https", "old.test", "/hello.txt")),
      &response);
  EXPECT_EQ(expired.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(expired.error_message(), HasSubstr("certificate has expired"));

  // a.test's certificate, asked for by IP: not covered.
  grpc::Status mismatch = egressd_->Fetch(
      Get(nginx_->TlsUrl("/hello.txt")), &response);
  EXPECT_EQ(mismatch.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(mismatch.error_message(),
              HasSubstr("certificate does not cover IP address '127.0.0.1'"));

  absl::StatusOr<v1::PoolStats> stats = egressd_->PoolStats();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->tls().failures().at("expired"), 1u);
  EXPECT_EQ(stats->tls().failures().at("hostname_mismatch"), 1u);
  EXPECT_EQ(stats->connection_count(), 0u);
}

}  // namespace
}  // namespace egress::testing
