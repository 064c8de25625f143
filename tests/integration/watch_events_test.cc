// PoolAdmin.WatchPoolEvents against a live egressd with a real nginx behind
// it: one Fetch followed by EvictIdle is seen as open -> acquire -> release
// -> idle -> close (evict_request); reuse; the address filter; a connect
// failure with its reason; the admin token; a bad address; and the stream's
// clean end when egressd shuts down.
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "proto/egress/v1/admin.grpc.pb.h"
#include "tests/support/egressd_process.h"
#include "tests/support/nginx.h"
#include "tests/support/subprocess.h"

namespace egress::testing {
namespace {

using ::testing::HasSubstr;

// One WatchPoolEvents stream, started (egressd has sent its metadata: the
// watch is in place) when Start returns.
class Watch {
 public:
  Watch(v1::PoolAdmin::Stub& admin, const std::string& address = "",
        const std::string& token = "") {
    context_.set_deadline(std::chrono::system_clock::now() +
                          std::chrono::seconds(60));
    if (!token.empty()) {
      context_.AddMetadata("authorization", absl::StrCat("Bearer ", token));
    }
    v1::WatchPoolEventsRequest request;
    request.set_address(address);
    reader_ = admin.WatchPoolEvents(&context_, request);
    reader_->WaitForInitialMetadata();
  }
  ~Watch() {
    if (!finished_) {
      context_.TryCancel();
      reader_->Finish();
    }
  }

  // The next `n` events (fewer if the stream ended).
  std::vector<v1::PoolEvent> Next(size_t n) {
    std::vector<v1::PoolEvent> events;
    v1::PoolEvent event;
    while (events.size() < n && reader_->Read(&event)) events.push_back(event);
    return events;
  }
  // Reads to the end of the stream; returns what came and its status.
  grpc::Status ReadToEnd(std::vector<v1::PoolEvent>* events) {
    v1::PoolEvent event;
    while (reader_->Read(&event)) events->push_back(event);
    finished_ = true;
    return reader_->Finish();
  }

 private:
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReader<v1::PoolEvent>> reader_;
  bool finished_ = false;
};

std::string Describe(const v1::PoolEvent& e) {
  return absl::StrCat(v1::PoolEvent::Kind_Name(e.kind()), " ",
                      e.connection_id(), " ", e.address(), " ", e.reason(),
                      e.reused() ? " reused" : "",
                      e.succeeded() ? " succeeded" : "");
}

class WatchEventsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto nginx = NginxServer::Start();
    ASSERT_TRUE(nginx.ok()) << nginx.status();
    nginx_ = *std::move(nginx);
  }
  void StartEgressd(const std::vector<std::string>& flags = {}) {
    auto egressd = EgressdProcess::Start(flags);
    ASSERT_TRUE(egressd.ok()) << egressd.status();
    egressd_ = *std::move(egressd);
  }
  std::string Address() const {
    return absl::StrCat("http://127.0.0.1:", nginx_->port());
  }
  uint32_t EvictIdle() {
    grpc::ClientContext context;
    v1::EvictIdleResponse response;
    EXPECT_TRUE(egressd_->admin()
                    .EvictIdle(&context, v1::EvictIdleRequest(), &response)
                    .ok());
    return response.evicted();
  }
  v1::FetchResponse FetchHello() {
    v1::FetchResponse response;
    const grpc::Status status =
        egressd_->Fetch(Get(nginx_->Url("/hello.txt")), &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response;
  }

  std::unique_ptr<NginxServer> nginx_;
  std::unique_ptr<EgressdProcess> egressd_;
};

TEST_F(WatchEventsTest, OneFetchThenEvictIdle) {
  StartEgressd();
  Watch watch(egressd_->admin());
  const absl::Time before = absl::Now();
  const v1::FetchResponse response = FetchHello();
  const uint64_t id = response.connection().id();
  ASSERT_EQ(EvictIdle(), 1u);

  std::vector<v1::PoolEvent> events = watch.Next(5);
  ASSERT_EQ(events.size(), 5u);
  const v1::PoolEvent::Kind expected[] = {
      v1::PoolEvent::OPENED, v1::PoolEvent::ACQUIRED, v1::PoolEvent::RELEASED,
      v1::PoolEvent::IDLE, v1::PoolEvent::CLOSED};
  absl::Time previous = before - absl::Seconds(1);
  for (size_t i = 0; i < events.size(); ++i) {
    const v1::PoolEvent& e = events[i];
    EXPECT_EQ(e.kind(), expected[i]) << i << ": " << Describe(e);
    EXPECT_EQ(e.connection_id(), id) << Describe(e);
    EXPECT_EQ(e.address(), Address()) << Describe(e);
    EXPECT_EQ(e.lost(), 0u) << Describe(e);
    const absl::Time t = absl::FromUnixSeconds(e.time().seconds()) +
                         absl::Nanoseconds(e.time().nanos());
    EXPECT_GE(t, previous) << Describe(e);
    previous = t;
  }
  EXPECT_FALSE(events[1].reused());
  EXPECT_TRUE(events[2].succeeded());
  EXPECT_EQ(events[4].reason(), "evict_request");

  // A second Fetch on a fresh connection; a third reuses it.
  const uint64_t second = FetchHello().connection().id();
  ASSERT_EQ(FetchHello().connection().id(), second);
  events = watch.Next(7);
  ASSERT_EQ(events.size(), 7u);
  EXPECT_EQ(events[0].kind(), v1::PoolEvent::OPENED);
  EXPECT_EQ(events[4].kind(), v1::PoolEvent::ACQUIRED);
  EXPECT_TRUE(events[4].reused()) << Describe(events[4]);
  EXPECT_EQ(events[6].kind(), v1::PoolEvent::IDLE);
}

TEST_F(WatchEventsTest, ASlowWatcherLosesEventsAndIsToldHowMany) {
  StartEgressd();
  // A watcher that does not read, on a channel whose windows stay small:
  // egressd's writes stall, its queue fills, and it drops the oldest.
  grpc::ChannelArguments args;
  args.SetInt("grpc.http2.bdp_probe", 0);
  auto admin = v1::PoolAdmin::NewStub(grpc::CreateCustomChannel(
      egressd_->admin_listen(), grpc::InsecureChannelCredentials(), args));
  Watch slow(*admin);
  constexpr int kFetches = 5000;
  const absl::Time start = absl::Now();
  for (int i = 0; i < kFetches; ++i) {
    v1::FetchResponse response;
    ASSERT_TRUE(
        egressd_->Fetch(Get(nginx_->Url("/hello.txt")), &response).ok());
  }
  const absl::Duration took = absl::Now() - start;
  ASSERT_EQ(EvictIdle(), 1u);
  // opened; acquired, released, idle per Fetch; closed.
  const uint64_t expected = 1 + 3 * kFetches + 1;
  uint64_t delivered = 0;
  uint64_t lost = 0;
  uint64_t messages_with_lost = 0;
  while (true) {
    std::vector<v1::PoolEvent> events = slow.Next(1);
    ASSERT_EQ(events.size(), 1u);
    ++delivered;
    lost += events[0].lost();
    messages_with_lost += events[0].lost() > 0 ? 1 : 0;
    if (events[0].kind() == v1::PoolEvent::CLOSED) break;
  }
  EXPECT_EQ(delivered + lost, expected);
  EXPECT_GT(lost, 0u) << "the watcher never fell behind";
  EXPECT_GE(messages_with_lost, 1u);
  EXPECT_LT(delivered, expected);
  std::cerr << kFetches << " Fetches in " << took << " with a stalled watcher; "
            << delivered << " events delivered, " << lost << " lost\n";
}

TEST_F(WatchEventsTest, AnAddressFilterAndAConnectFailure) {
  StartEgressd();
  const int closed_port = PickFreePort();
  const std::string closed_address =
      absl::StrCat("http://127.0.0.1:", closed_port);
  Watch only_closed(egressd_->admin(), closed_address);
  Watch all(egressd_->admin());
  FetchHello();
  v1::FetchResponse response;
  const grpc::Status failed = egressd_->Fetch(
      Get(absl::StrCat(closed_address, "/nothing")), &response);
  ASSERT_EQ(failed.error_code(), grpc::StatusCode::UNAVAILABLE);

  std::vector<v1::PoolEvent> events = only_closed.Next(1);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind(), v1::PoolEvent::CONNECT_FAILED)
      << Describe(events[0]);
  EXPECT_EQ(events[0].reason(), "refused");
  EXPECT_EQ(events[0].address(), closed_address);
  EXPECT_NE(events[0].connection_id(), 0u);
  // The unfiltered watch saw the Fetch's four events, then the failure.
  events = all.Next(5);
  ASSERT_EQ(events.size(), 5u);
  EXPECT_EQ(events[0].address(), Address());
  EXPECT_EQ(events[4].kind(), v1::PoolEvent::CONNECT_FAILED);
}

TEST_F(WatchEventsTest, ABadAddressIsInvalidArgument) {
  StartEgressd();
  Watch watch(egressd_->admin(), "not an address");
  std::vector<v1::PoolEvent> events;
  const grpc::Status status = watch.ReadToEnd(&events);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("not an address"));
  EXPECT_TRUE(events.empty());
}

TEST_F(WatchEventsTest, TheAdminTokenGuardsTheWatch) {
  const std::string dir = MakeTempDir("watch-token");
  const std::string config = dir + "/egressd.yaml";
  ASSERT_TRUE(
      WriteFile(config, "listeners:\n  admin_token: watch-token-5521\n").ok());
  StartEgressd({absl::StrCat("--config=", config)});
  {
    Watch without(egressd_->admin());
    std::vector<v1::PoolEvent> events;
    const grpc::Status status = without.ReadToEnd(&events);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  }
  {
    Watch wrong(egressd_->admin(), "", "not-the-token");
    std::vector<v1::PoolEvent> events;
    EXPECT_EQ(wrong.ReadToEnd(&events).error_code(),
              grpc::StatusCode::UNAUTHENTICATED);
  }
  Watch with(egressd_->admin(), "", "watch-token-5521");
  FetchHello();
  std::vector<v1::PoolEvent> events = with.Next(1);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind(), v1::PoolEvent::OPENED);
}

TEST_F(WatchEventsTest, TheStreamEndsWithOkAfterThePoolsLastEvents) {
  StartEgressd();
  Watch watch(egressd_->admin());
  const uint64_t id = FetchHello().connection().id();
  ASSERT_EQ(watch.Next(4).size(), 4u);  // opened .. idle
  ASSERT_EQ(kill(egressd_->process().pid(), SIGTERM), 0);
  std::vector<v1::PoolEvent> events;
  const grpc::Status status = watch.ReadToEnd(&events);
  EXPECT_TRUE(status.ok()) << status.error_code() << " "
                           << status.error_message();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind(), v1::PoolEvent::CLOSED);
  EXPECT_EQ(events[0].connection_id(), id);
  EXPECT_EQ(events[0].reason(), "shutdown");
  absl::StatusOr<int> exit = egressd_->process().Wait(absl::Seconds(20));
  ASSERT_TRUE(exit.ok()) << exit.status();
  EXPECT_TRUE(WIFEXITED(*exit) && WEXITSTATUS(*exit) == 0);
}

}  // namespace
}  // namespace egress::testing
