// Issue 8: a live egressd against FaultOrigin, an origin that misbehaves on
// purpose. For each fault: the caller's status code and message, egressd
// still serving, the pool holding no broken or busy connection afterwards,
// and egressd's file descriptors back to where they were.
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "proto/egress/v1/fetch.grpc.pb.h"
#include "tests/integration/egressd_watch.h"
#include "tests/support/egressd_process.h"
#include "tests/support/fault_origin.h"

namespace egress::testing {
namespace {

using ::testing::AnyOf;
using ::testing::HasSubstr;

void SetDuration(absl::Duration d, google::protobuf::Duration* out) {
  out->set_seconds(absl::ToInt64Seconds(d));
  out->set_nanos(static_cast<int32_t>(
      absl::ToInt64Nanoseconds(d - absl::Seconds(absl::ToInt64Seconds(d)))));
}

grpc::Status FetchWithin(EgressdProcess& egressd,
                         const v1::FetchRequest& request,
                         v1::FetchResponse* response,
                         absl::Duration deadline = absl::Seconds(20)) {
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + deadline));
  return egressd.fetcher().Fetch(&context, request, response);
}

class HostileOriginTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    origin_ = new FaultOrigin();
    absl::StatusOr<std::unique_ptr<EgressdProcess>> started =
        EgressdProcess::Start({"--event_loops=2", "--completion_queues=2"});
    ASSERT_TRUE(started.ok()) << started.status();
    egressd_ = started->release();
    // Warm up: the gRPC channels, and every event loop (asio makes a loop's
    // epoll, timerfd and eventfd when the loop first does I/O; calls that
    // find no idle connection go to the loops in turn). Then measure
    // egressd's descriptors with an empty pool.
    for (int i = 0; i < 4; ++i) {
      v1::FetchResponse response;
      ASSERT_TRUE(egressd_->Fetch(Get(origin_->Url("/ok")), &response).ok());
      ASSERT_EQ(PoolProblems(*egressd_), "");
      ASSERT_TRUE(EmptyThePool(*egressd_));
    }
    int previous = -2;
    ASSERT_TRUE(Eventually([&] {
      const int now = CountFds(egressd_->process().pid());
      const bool stable = now == previous;
      previous = now;
      if (!stable) absl::SleepFor(absl::Milliseconds(100));
      return stable;
    }));
    baseline_fds_ = previous;
    baseline_ = DescribeFds(egressd_->process().pid());
  }

  static void TearDownTestSuite() {
    // A clean exit after every fault: under ASan, LeakSanitizer checks
    // egressd's heap at exit and fails it if any allocation leaked.
    if (egressd_ != nullptr) {
      absl::StatusOr<int> exit =
          egressd_->process().Stop(SIGTERM, absl::Seconds(60));
      if (!exit.ok()) {
        ADD_FAILURE() << exit.status();
      } else if (!WIFEXITED(*exit) || WEXITSTATUS(*exit) != 0) {
        ADD_FAILURE() << "egressd exit status " << *exit;
      }
    }
    delete egressd_;
    egressd_ = nullptr;
    delete origin_;
    origin_ = nullptr;
  }

  pid_t pid() const { return egressd_->process().pid(); }

  // Runs `request` against the fault origin and returns the status; then
  // checks that egressd serves, the pool is quiet, and descriptors return
  // to the baseline once the pool is emptied.
  grpc::Status Fault(const v1::FetchRequest& request,
                     v1::FetchResponse* response = nullptr,
                     absl::Duration deadline = absl::Seconds(20)) {
    v1::FetchResponse ignored;
    const absl::Time start = absl::Now();
    grpc::Status status = FetchWithin(*egressd_, request,
                                      response ? response : &ignored, deadline);
    took_ = absl::Now() - start;
    AfterFault();
    return status;
  }

  void AfterFault() {
    EXPECT_TRUE(Alive(pid())) << "egressd died";
    v1::FetchResponse ok;
    grpc::Status healthy = egressd_->Fetch(Get(origin_->Url("/ok")), &ok);
    EXPECT_TRUE(healthy.ok()) << healthy.error_message();
    EXPECT_EQ(ok.body(), "ok");
    std::string problems;
    EXPECT_TRUE(Eventually([&] {
      problems = PoolProblems(*egressd_);
      return problems.empty();
    })) << problems;
    EXPECT_TRUE(EmptyThePool(*egressd_));
    int fds = 0;
    EXPECT_TRUE(Eventually([&] {
      fds = CountFds(pid());
      return fds == baseline_fds_;
    })) << "egressd has " << fds << " descriptors, " << baseline_fds_
        << " before: " << DescribeFds(pid()) << "; before: " << baseline_;
  }

  uint64_t Closed(const std::string& reason) {
    absl::StatusOr<v1::PoolStats> stats = egressd_->PoolStats();
    EXPECT_TRUE(stats.ok());
    if (!stats.ok()) return 0;
    auto it = stats->closed_by_reason().find(reason);
    return it == stats->closed_by_reason().end() ? 0 : it->second;
  }

  static FaultOrigin* origin_;
  static EgressdProcess* egressd_;
  static int baseline_fds_;
  static std::string baseline_;
  absl::Duration took_;
};

FaultOrigin* HostileOriginTest::origin_ = nullptr;
EgressdProcess* HostileOriginTest::egressd_ = nullptr;
int HostileOriginTest::baseline_fds_ = 0;
std::string HostileOriginTest::baseline_;

TEST_F(HostileOriginTest, ClosesAfterHeaders) {
  grpc::Status s = Fault(Get(origin_->Url("/close-after-headers")));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(s.error_message(),
              HasSubstr("connection closed before the response was complete"));
}

TEST_F(HostileOriginTest, ResetsMidBody) {
  grpc::Status s = Fault(Get(origin_->Url("/reset-mid-body")));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(s.error_message(),
              AnyOf(HasSubstr("reset by peer"), HasSubstr("closed before")));
}

TEST_F(HostileOriginTest, BodyLongerThanContentLength) {
  const uint64_t before = Closed("protocol_error");
  v1::FetchResponse response;
  grpc::Status s = Fault(Get(origin_->Url("/long-body")), &response);
  ASSERT_TRUE(s.ok()) << s.error_message();
  // The response is what Content-Length said; the connection, which carried
  // bytes nobody asked for, is not reused.
  EXPECT_EQ(response.body(), std::string(10, 'y'));
  EXPECT_EQ(Closed("protocol_error"), before + 1);
}

TEST_F(HostileOriginTest, BodyShorterThanContentLength) {
  grpc::Status s = Fault(Get(origin_->Url("/short-body")));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(s.error_message(),
              HasSubstr("connection closed before the response was complete"));
}

TEST_F(HostileOriginTest, NeverAnswers) {
  v1::FetchRequest request = Get(origin_->Url("/never"));
  SetDuration(absl::Milliseconds(500), request.mutable_first_byte_timeout());
  grpc::Status s = Fault(request);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_THAT(s.error_message(), HasSubstr("first_byte timeout"));
  EXPECT_LT(took_, absl::Seconds(5));

  // Without read timeouts, the caller's deadline ends it, and egressd lets
  // go of the exchange.
  grpc::Status by_deadline = Fault(Get(origin_->Url("/never")), nullptr,
                                   absl::Milliseconds(700));
  EXPECT_EQ(by_deadline.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
}

TEST_F(HostileOriginTest, SlowlorisHeadAtOneBytePerSecond) {
  v1::FetchRequest request = Get(origin_->Url("/slow-head?ms=1000"));
  SetDuration(absl::Milliseconds(1500), request.mutable_first_byte_timeout());
  grpc::Status s = Fault(request);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_THAT(s.error_message(), HasSubstr("no response head from"));
}

TEST_F(HostileOriginTest, SlowlorisBodyAtOneBytePerSecond) {
  v1::FetchRequest request = Get(origin_->Url("/slow-body?ms=1000"));
  SetDuration(absl::Milliseconds(400), request.mutable_idle_read_timeout());
  grpc::Status s = Fault(request);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_THAT(s.error_message(), HasSubstr("idle_read timeout"));
}

TEST_F(HostileOriginTest, TenMegabytesOfHeaders) {
  grpc::Status s = Fault(Get(origin_->Url("/huge-headers")));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(s.error_message(),
              HasSubstr("response header section exceeds 65536 bytes"));
}

TEST_F(HostileOriginTest, InvalidChunkSize) {
  grpc::Status s = Fault(Get(origin_->Url("/bad-chunk")));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(s.error_message(), HasSubstr("invalid chunk size"));
}

TEST_F(HostileOriginTest, GzipBomb) {
  v1::FetchRequest request = Get(origin_->Url("/gzip-bomb"));
  request.set_decompress(true);
  grpc::Status s = Fault(request);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(s.error_message(), HasSubstr("decompression bomb"));
  // Not asked to decode: the bytes pass through as they came.
  v1::FetchResponse raw;
  grpc::Status plain = Fault(Get(origin_->Url("/gzip-bomb")), &raw);
  ASSERT_TRUE(plain.ok()) << plain.error_message();
  EXPECT_LT(raw.body().size(), 1u << 20);
  EXPECT_EQ(raw.decoded_content_encoding(), "");
}

// Issue 8's keep-alive race: the origin closes connections idle for 30 ms
// while many callers fetch with pauses around that long, so egressd keeps
// picking connections the origin is closing. Every call must succeed (the
// pool checks idle connections before reuse, and retries a GET whose reused
// connection died before answering).
TEST_F(HostileOriginTest, IdleKeepAliveClosesUnderLoad) {
  FaultOrigin::Options options;
  options.idle_close_after = absl::Milliseconds(30);
  FaultOrigin closing(options);
  std::atomic<int> failures{0};
  std::vector<std::string> errors(16);
  std::vector<std::thread> callers;
  for (int t = 0; t < 16; ++t) {
    callers.emplace_back([&, t] {
      std::minstd_rand random(t + 1);
      for (int i = 0; i < 25; ++i) {
        v1::FetchResponse response;
        grpc::Status s = egressd_->Fetch(Get(closing.Url("/ok")), &response);
        if (!s.ok() || response.body() != "ok") {
          ++failures;
          errors[t] = s.error_message();
        }
        // Load shape, not synchronisation: pauses around the origin's idle
        // timeout.
        absl::SleepFor(absl::Milliseconds(random() % 60));
      }
    });
  }
  for (auto& c : callers) c.join();
  EXPECT_EQ(failures.load(), 0) << absl::StrJoin(errors, " | ");
  EXPECT_GT(closing.idle_closes(), 0) << "the race was not exercised";
  AfterFault();
}

}  // namespace
}  // namespace egress::testing
