// egressd's graceful shutdown (issue 7), with egressd as a process and an
// origin that holds its replies until the test opens a gate: on SIGTERM,
// health turns NOT_SERVING, new Fetches are refused, Fetches already in
// flight finish if the origin answers within timeouts.shutdown_grace and are
// cancelled if it does not, and egressd exits 0 either way.
//
// Once no Fetch is left to answer, egressd does not wait for idle client
// connections (an idle gRPC C++ client closes up to 5 s after the GOAWAY) or
// open health Watches (which gRPC's default health service ends only at the
// deadline): it cancels them and exits (server/main.cc).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client_core/base/sync.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/proto/health.grpc.pb.h"
#include "tests/support/egressd_process.h"
#include "tests/support/scripted_origin.h"

namespace egress::testing {
namespace {

using ::testing::AnyOf;
using ::testing::Eq;

constexpr char kBody[] = "slow but complete\n";

// An origin whose every reply waits until Open(). Open() runs on destruction
// too, so no origin thread is left blocked.
class GatedOrigin {
 public:
  GatedOrigin()
      : origin_([this](int, const std::string&) {
          gate_.WaitForNotification();
          return ScriptedOrigin::Reply{ScriptedOrigin::Ok(kBody)};
        }) {}
  ~GatedOrigin() { Open(); }

  void Open() { gate_.Notify(); }
  ScriptedOrigin& origin() { return origin_; }

 private:
  Notification gate_;  // before origin_: outlives its threads
  ScriptedOrigin origin_;
};

// One Fetch on its own thread.
class FetchInFlight {
 public:
  FetchInFlight(v1::Fetcher::Stub& stub, const std::string& url)
      : thread_([this, &stub, url] {
          grpc::ClientContext context;
          context.set_deadline(std::chrono::system_clock::now() +
                               std::chrono::seconds(60));
          status_ = stub.Fetch(&context, Get(url), &response_);
        }) {}
  ~FetchInFlight() {
    if (thread_.joinable()) thread_.join();
  }

  // Waits for the Fetch to end.
  const grpc::Status& status() {
    if (thread_.joinable()) thread_.join();
    return status_;
  }
  const v1::FetchResponse& response() {
    status();
    return response_;
  }

 private:
  grpc::Status status_;
  v1::FetchResponse response_;
  std::thread thread_;  // last: starts after the members it writes exist
};

int PortOf(const std::string& host_port) {
  int port = 0;
  EXPECT_TRUE(absl::SimpleAtoi(host_port.substr(host_port.rfind(':') + 1),
                               &port))
      << host_port;
  return port;
}

// Waits until nothing accepts on 127.0.0.1:`port` any more. The listener's
// close announces nothing a test can wait on, so the port is polled.
bool WaitForPortClosed(int port, absl::Duration timeout) {
  const absl::Time give_up = absl::Now() + timeout;
  while (absl::Now() < give_up) {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<uint16_t>(port));
    const int r = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    close(fd);
    if (r != 0) return true;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return false;
}

// A health Watch on egress.v1.Fetcher (tests/proto's Health has only Check,
// so the stream is opened the way generated code would).
class HealthWatch {
 public:
  explicit HealthWatch(const std::shared_ptr<grpc::Channel>& channel) {
    grpc::health::v1::HealthCheckRequest request;
    request.set_service("egress.v1.Fetcher");
    reader_.reset(grpc::internal::ClientReaderFactory<
                  grpc::health::v1::HealthCheckResponse>::
                      Create(channel.get(),
                             grpc::internal::RpcMethod(
                                 "/grpc.health.v1.Health/Watch",
                                 grpc::internal::RpcMethod::SERVER_STREAMING),
                             &context_, request));
  }
  ~HealthWatch() {
    context_.TryCancel();
    grpc::health::v1::HealthCheckResponse ignored;
    while (reader_->Read(&ignored)) {
    }
    reader_->Finish().IgnoreError();
  }

  // The next status egressd reports; UNKNOWN if the stream ended.
  grpc::health::v1::HealthCheckResponse::ServingStatus Next() {
    grpc::health::v1::HealthCheckResponse response;
    if (!reader_->Read(&response)) {
      return grpc::health::v1::HealthCheckResponse::UNKNOWN;
    }
    return response.status();
  }

 private:
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReader<grpc::health::v1::HealthCheckResponse>>
      reader_;
};

grpc::Status HealthCheck(const std::shared_ptr<grpc::Channel>& channel,
                         grpc::health::v1::HealthCheckResponse* response) {
  auto health = grpc::health::v1::Health::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(5));
  grpc::health::v1::HealthCheckRequest request;
  request.set_service("egress.v1.Fetcher");
  return health->Check(&context, request, response);
}

TEST(GracefulShutdownTest, InFlightFetchesFinishAndNewOnesAreRefused) {
  GatedOrigin origin;
  auto started = EgressdProcess::Start({"--shutdown_grace=5s"});
  ASSERT_TRUE(started.ok()) << started.status();
  EgressdProcess& egressd = **started;
  const std::string url = origin.origin().Url("/slow");
  auto watch = std::make_unique<HealthWatch>(egressd.fetch_channel());
  ASSERT_EQ(watch->Next(), grpc::health::v1::HealthCheckResponse::SERVING);

  std::vector<std::unique_ptr<FetchInFlight>> fetches;
  for (int i = 0; i < 3; ++i) {
    fetches.push_back(std::make_unique<FetchInFlight>(egressd.fetcher(), url));
  }
  origin.origin().AwaitRequests(3);

  ASSERT_EQ(kill(egressd.process().pid(), SIGTERM), 0);
  const absl::Time sigterm = absl::Now();
  // Health turns NOT_SERVING first, so load balancers and probes stop
  // sending before the listener goes.
  EXPECT_EQ(watch->Next(), grpc::health::v1::HealthCheckResponse::NOT_SERVING);
  watch.reset();  // an open Watch would hold the drain until the grace ends
  absl::StatusOr<std::string> draining =
      egressd.process().ReadLineMatching("EGRESSD_DRAINING", absl::Seconds(10));
  ASSERT_TRUE(draining.ok()) << draining.status();
  EXPECT_EQ(*draining, "EGRESSD_DRAINING grace=5s");
  // A Check now says NOT_SERVING, or the server already refuses the call:
  // UNAVAILABLE, or CANCELLED for a stream that crossed the server's GOAWAY.
  grpc::health::v1::HealthCheckResponse health;
  grpc::Status health_status = HealthCheck(egressd.fetch_channel(), &health);
  if (health_status.ok()) {
    EXPECT_EQ(health.status(),
              grpc::health::v1::HealthCheckResponse::NOT_SERVING);
  } else {
    EXPECT_THAT(health_status.error_code(),
                AnyOf(Eq(grpc::StatusCode::UNAVAILABLE),
                      Eq(grpc::StatusCode::CANCELLED)))
        << health_status.error_message();
  }

  // No new Fetch starts: not on a new connection once the listener is gone,
  // and not on the in-flight Fetches' connection once the client has read
  // the server's GOAWAY (its channel then leaves READY).
  ASSERT_TRUE(WaitForPortClosed(PortOf(egressd.listen()), absl::Seconds(5)));
  grpc::ChannelArguments own_connection;  // not the shared subchannel
  own_connection.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  auto fresh = v1::Fetcher::NewStub(grpc::CreateCustomChannel(
      egressd.listen(), grpc::InsecureChannelCredentials(), own_connection));
  std::shared_ptr<grpc::Channel> old_channel = egressd.fetch_channel();
  if (old_channel->GetState(false) == GRPC_CHANNEL_READY) {
    ASSERT_TRUE(old_channel->WaitForStateChange(
        GRPC_CHANNEL_READY,
        std::chrono::system_clock::now() + std::chrono::seconds(5)))
        << "the client never saw the GOAWAY";
  }
  for (v1::Fetcher::Stub* stub : {fresh.get(), &egressd.fetcher()}) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(5));
    v1::FetchResponse response;
    grpc::Status status = stub->Fetch(&context, Get(url), &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE)
        << (stub == fresh.get() ? "new connection: " : "old connection: ")
        << status.error_message();
  }

  // The origin answers within the grace: every in-flight Fetch completes.
  origin.Open();
  for (auto& fetch : fetches) {
    ASSERT_TRUE(fetch->status().ok()) << fetch->status().error_message();
    EXPECT_EQ(fetch->response().status_code(), 200);
    EXPECT_EQ(fetch->response().body(), kBody);
  }
  absl::StatusOr<int> exit = egressd.process().Wait(absl::Seconds(10));
  ASSERT_TRUE(exit.ok()) << exit.status();
  EXPECT_TRUE(WIFEXITED(*exit) && WEXITSTATUS(*exit) == 0) << *exit;
  EXPECT_LT(absl::Now() - sigterm, absl::Seconds(5))
      << "egressd waited out the grace after the last Fetch had finished";
  EXPECT_EQ(origin.origin().requests_received(), 3)
      << "a Fetch started after SIGTERM reached the origin";
}

TEST(GracefulShutdownTest, IdleClientsAndHealthWatchesDoNotHoldTheDrain) {
  GatedOrigin origin;
  origin.Open();
  auto started = EgressdProcess::Start({"--shutdown_grace=30s"});
  ASSERT_TRUE(started.ok()) << started.status();
  EgressdProcess& egressd = **started;
  // A Fetch that finished: the client's connection stays open, idle.
  v1::FetchResponse response;
  ASSERT_TRUE(egressd.Fetch(Get(origin.origin().Url("/slow")), &response).ok());
  HealthWatch watch(egressd.fetch_channel());
  ASSERT_EQ(watch.Next(), grpc::health::v1::HealthCheckResponse::SERVING);

  ASSERT_EQ(kill(egressd.process().pid(), SIGTERM), 0);
  const absl::Time sigterm = absl::Now();
  // The Watch sees NOT_SERVING, or its stream ends: both say "go elsewhere".
  const auto status = watch.Next();
  EXPECT_THAT(status,
              AnyOf(Eq(grpc::health::v1::HealthCheckResponse::NOT_SERVING),
                    Eq(grpc::health::v1::HealthCheckResponse::UNKNOWN)));
  absl::StatusOr<int> exit = egressd.process().Wait(absl::Seconds(20));
  ASSERT_TRUE(exit.ok()) << exit.status() << ": still draining";
  EXPECT_TRUE(WIFEXITED(*exit) && WEXITSTATUS(*exit) == 0) << *exit;
  // Before this change it waited for the open Watch until the 30 s grace.
  // The bound leaves room for a slow machine; the old wait was >= 30 s.
  EXPECT_LT(absl::Now() - sigterm, absl::Seconds(4))
      << "egressd drained with no Fetch left to answer";
}

TEST(GracefulShutdownTest, AFetchOutlastingTheGraceIsCancelledAndEgressdExits) {
  GatedOrigin origin;
  auto started = EgressdProcess::Start({"--shutdown_grace=1s"});
  ASSERT_TRUE(started.ok()) << started.status();
  EgressdProcess& egressd = **started;

  FetchInFlight fetch(egressd.fetcher(), origin.origin().Url("/slow"));
  origin.origin().AwaitRequests(1);

  ASSERT_EQ(kill(egressd.process().pid(), SIGTERM), 0);
  const absl::Time sigterm = absl::Now();
  absl::StatusOr<int> exit =
      egressd.process().Wait(absl::Seconds(1) + absl::Seconds(5));
  ASSERT_TRUE(exit.ok()) << exit.status();
  EXPECT_TRUE(WIFEXITED(*exit) && WEXITSTATUS(*exit) == 0) << *exit;
  const absl::Duration took = absl::Now() - sigterm;
  EXPECT_GE(took, absl::Seconds(1)) << "the Fetch got its grace";
  EXPECT_THAT(fetch.status().error_code(),
              AnyOf(Eq(grpc::StatusCode::CANCELLED),
                    Eq(grpc::StatusCode::UNAVAILABLE)))
      << fetch.status().error_message();
}

// The health listener (--health_listen, which kubelet probes) says what the
// Fetch listener says: NOT_SERVING for the whole drain; and its open
// Watches do not hold the drain.
TEST(GracefulShutdownTest, TheHealthListenerTurnsNotServingForTheDrain) {
  GatedOrigin origin;
  const int health_port = PickFreePort();
  auto started = EgressdProcess::Start(
      {"--shutdown_grace=30s",
       absl::StrCat("--health_listen=127.0.0.1:", health_port)});
  ASSERT_TRUE(started.ok()) << started.status();
  EgressdProcess& egressd = **started;
  const std::shared_ptr<grpc::Channel> probe = grpc::CreateChannel(
      absl::StrCat("127.0.0.1:", health_port),
      grpc::InsecureChannelCredentials());
  HealthWatch watch(probe);
  ASSERT_EQ(watch.Next(), grpc::health::v1::HealthCheckResponse::SERVING);

  // A Fetch in flight keeps egressd draining.
  FetchInFlight fetch(egressd.fetcher(), origin.origin().Url("/slow"));
  origin.origin().AwaitRequests(1);
  ASSERT_EQ(kill(egressd.process().pid(), SIGTERM), 0);
  EXPECT_EQ(watch.Next(), grpc::health::v1::HealthCheckResponse::NOT_SERVING);
  ASSERT_TRUE(egressd.process()
                  .ReadLineMatching("EGRESSD_DRAINING", absl::Seconds(10))
                  .ok());
  grpc::health::v1::HealthCheckResponse health;
  grpc::Status checked = HealthCheck(probe, &health);
  ASSERT_TRUE(checked.ok()) << "the probe listener answers while draining: "
                            << checked.error_message();
  EXPECT_EQ(health.status(),
            grpc::health::v1::HealthCheckResponse::NOT_SERVING);

  const absl::Time opened = absl::Now();
  origin.Open();
  absl::StatusOr<int> exit = egressd.process().Wait(absl::Seconds(20));
  ASSERT_TRUE(exit.ok()) << exit.status() << ": still draining";
  EXPECT_TRUE(WIFEXITED(*exit) && WEXITSTATUS(*exit) == 0) << *exit;
  EXPECT_LT(absl::Now() - opened, absl::Seconds(4))
      << "the open Watch on the health listener held the drain";
  EXPECT_TRUE(fetch.status().ok()) << fetch.status().error_message();
  EXPECT_EQ(watch.Next(), grpc::health::v1::HealthCheckResponse::UNKNOWN);
}

}  // namespace
}  // namespace egress::testing
