// PoolAdmin against a live egressd with a real nginx behind it: paging over
// more connections than one page, evicting one address, draining, and the
// timing a Fetch reports.
#include <chrono>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/support/egressd_process.h"
#include "tests/support/nginx.h"

namespace egress::testing {
namespace {

using ::testing::HasSubstr;

constexpr int kPorts = 5;

class PoolAdminTest : public ::testing::Test {
 protected:
  void SetUp() override {
    NginxOptions options;
    // One nginx, several ports: each port is its own pool address.
    for (int i = 1; i < kPorts; ++i) {
      extra_ports_.push_back(PickFreePort());
      options.server_directives +=
          absl::StrCat("listen 127.0.0.1:", extra_ports_.back(), ";\n");
    }
    auto nginx = NginxServer::Start(options);
    ASSERT_TRUE(nginx.ok()) << nginx.status();
    nginx_ = *std::move(nginx);
    auto egressd = EgressdProcess::Start();
    ASSERT_TRUE(egressd.ok()) << egressd.status();
    egressd_ = *std::move(egressd);
  }

  std::vector<std::string> Urls() const {
    std::vector<std::string> urls = {nginx_->Url("/hello.txt")};
    for (int port : extra_ports_) {
      urls.push_back(absl::StrCat("http://127.0.0.1:", port, "/hello.txt"));
    }
    return urls;
  }

  grpc::Status List(uint64_t start, uint32_t max, const std::string& address,
                    v1::ListConnectionsResponse* out) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(5));
    v1::ListConnectionsRequest request;
    request.set_start_id(start);
    request.set_max_results(max);
    request.set_address(address);
    return egressd_->admin().ListConnections(&context, request, out);
  }

  std::vector<int> extra_ports_;
  std::unique_ptr<NginxServer> nginx_;
  std::unique_ptr<EgressdProcess> egressd_;
};

TEST_F(PoolAdminTest, ListConnectionsPagesLikeChannelz) {
  std::set<uint64_t> ids;
  for (const std::string& url : Urls()) {
    v1::FetchResponse response;
    ASSERT_TRUE(egressd_->Fetch(Get(url), &response).ok());
    ids.insert(response.connection().id());
  }
  ASSERT_EQ(ids.size(), static_cast<size_t>(kPorts));

  std::set<uint64_t> listed;
  uint64_t start = 0;
  int pages = 0;
  while (true) {
    v1::ListConnectionsResponse page;
    ASSERT_TRUE(List(start, 2, "", &page).ok());
    ++pages;
    ASSERT_LE(page.connections_size(), 2);
    for (const auto& c : page.connections()) {
      EXPECT_TRUE(listed.insert(c.id()).second) << "listed twice: " << c.id();
      EXPECT_EQ(c.success_count(), 1u);
      EXPECT_EQ(c.allocations(), 0u);
      EXPECT_TRUE(c.has_idle_since());
      EXPECT_EQ(c.protocol(), "http/1.1");
      EXPECT_THAT(c.remote_address(), HasSubstr("127.0.0.1:"));
      EXPECT_GT(c.local_port(), 0u);
      start = c.id() + 1;
    }
    if (page.end()) break;
    ASSERT_LT(pages, 10);
  }
  EXPECT_EQ(pages, 3);
  EXPECT_EQ(listed, ids);

  v1::ListConnectionsResponse one;
  ASSERT_TRUE(
      List(0, 0, absl::StrCat("http://127.0.0.1:", nginx_->port()), &one).ok());
  ASSERT_EQ(one.connections_size(), 1);
  EXPECT_TRUE(one.end());

  v1::ListConnectionsResponse bad;
  grpc::Status status = List(0, 0, "not an address", &bad);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("scheme://host:port"));
}

TEST_F(PoolAdminTest, EvictIdleAndDrainAreCountedByReason) {
  for (const std::string& url : Urls()) {
    v1::FetchResponse response;
    ASSERT_TRUE(egressd_->Fetch(Get(url), &response).ok());
  }
  {
    grpc::ClientContext context;
    v1::EvictIdleRequest request;
    request.set_address(absl::StrCat("http://127.0.0.1:", nginx_->port()));
    v1::EvictIdleResponse response;
    ASSERT_TRUE(egressd_->admin().EvictIdle(&context, request, &response).ok());
    EXPECT_EQ(response.evicted(), 1u);
  }
  {
    grpc::ClientContext context;
    v1::DrainResponse response;
    ASSERT_TRUE(
        egressd_->admin().Drain(&context, v1::DrainRequest(), &response).ok());
    EXPECT_EQ(response.marked(), static_cast<uint32_t>(kPorts - 1));
  }
  absl::StatusOr<v1::PoolStats> stats = egressd_->PoolStats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->connection_count(), 0u);
  EXPECT_EQ(stats->closed_by_reason().at("evict_request"), 1u);
  EXPECT_EQ(stats->closed_by_reason().at("drain"),
            static_cast<uint64_t>(kPorts - 1));
  EXPECT_EQ(stats->connections_opened(), static_cast<uint64_t>(kPorts));
  EXPECT_EQ(stats->config().max_connections_per_address(), 1024u);

  v1::FetchResponse after;
  ASSERT_TRUE(egressd_->Fetch(Get(Urls()[0]), &after).ok());
  EXPECT_FALSE(after.connection().reused());
}

TEST_F(PoolAdminTest, FetchReportsWhereItsTimeWent) {
  v1::FetchResponse first;
  ASSERT_TRUE(egressd_->Fetch(Get(Urls()[0]), &first).ok());
  const v1::Timing& t = first.timing();
  EXPECT_TRUE(t.has_connect()) << "a new connection was opened";
  EXPECT_TRUE(t.has_total());
  const auto nanos = [](const google::protobuf::Duration& d) {
    return d.seconds() * 1000000000 + d.nanos();
  };
  EXPECT_LE(nanos(t.connection_acquired()), nanos(t.request_written()));
  EXPECT_LE(nanos(t.request_written()), nanos(t.first_byte()));
  EXPECT_LE(nanos(t.first_byte()), nanos(t.total()));

  v1::FetchResponse second;
  ASSERT_TRUE(egressd_->Fetch(Get(Urls()[0]), &second).ok());
  EXPECT_FALSE(second.timing().has_connect()) << "the connection was reused";
  EXPECT_FALSE(second.timing().has_queue_wait());

  // PoolStats sums the timings of every call.
  v1::FetchResponse failed;
  EXPECT_FALSE(egressd_->Fetch(Get("http://127.0.0.1:1/"), &failed).ok());
  absl::StatusOr<v1::PoolStats> stats = egressd_->PoolStats();
  ASSERT_TRUE(stats.ok());
  const v1::CallTotals& totals = stats->call_totals();
  EXPECT_EQ(totals.succeeded(), 2u);
  EXPECT_EQ(totals.failed(), 1u);
  EXPECT_EQ(totals.on_new_connection(), 1u);
  EXPECT_EQ(totals.on_reused_connection(), 1u);
  EXPECT_EQ(nanos(totals.connect()), nanos(t.connect()))
      << "only the first call connected";
  EXPECT_EQ(nanos(totals.total()),
            nanos(t.total()) + nanos(second.timing().total()));
}

}  // namespace
}  // namespace egress::testing
