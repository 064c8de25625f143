// The pool's limits, pending queue, lifetime, drain and eviction, exercised
// through HttpClient against a scripted origin whose answers the test holds
// back, so "in use" and "pending" are states the test controls.
#include <memory>
#include <string>
#include <vector>

#include "client_core/base/sync.h"
#include "client_core/call/http_client.h"
#include "client_core/url/url.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/scripted_origin.h"

namespace egress {
namespace {

using ::egress::testing::ScriptedOrigin;
using ::testing::HasSubstr;

// Results of calls started without waiting.
class Calls {
 public:
  void Start(HttpClient& client, const std::string& url) {
    Request request;
    request.method = "GET";
    request.url = *ParseUrl(url);
    request.deadline = absl::Now() + absl::Seconds(20);
    {
      MutexLock lock(&mu_);
      ++started_;
    }
    client.Execute(std::move(request), [this](absl::StatusOr<Response> r) {
      MutexLock lock(&mu_);
      results_.push_back(std::move(r));
    });
  }
  // Blocks until `n` calls finished; returns all results so far.
  std::vector<absl::StatusOr<Response>> Await(size_t n) {
    MutexLock lock(&mu_);
    mu_.Await([&]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
      return results_.size() >= n;
    });
    return results_;
  }

 private:
  Mutex mu_;
  int started_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<absl::StatusOr<Response>> results_ ABSL_GUARDED_BY(mu_);
};

// An origin that answers only once the test opens the gate.
struct GatedOrigin {
  Notification gate;
  ScriptedOrigin origin{[this](int, const std::string&) {
    gate.WaitForNotification();
    return ScriptedOrigin::Reply{ScriptedOrigin::Ok("done"), false};
  }};
  ~GatedOrigin() {
    if (!gate.HasBeenNotified()) gate.Notify();
  }
};

// The pool state the test waits for has no event of its own; poll the
// snapshot, bounded.
bool EventuallyPending(HttpClient& client, uint32_t pending) {
  for (int i = 0; i < 2000; ++i) {
    if (client.pool().Snapshot().pending_count == pending) return true;
    absl::SleepFor(absl::Milliseconds(1));
  }
  return false;
}

uint64_t Closed(const PoolSnapshot& s, CloseReason reason) {
  return s.closed_by_reason[static_cast<size_t>(reason)];
}

HttpClientOptions Options() {
  HttpClientOptions options;
  options.event_loops = 2;
  return options;
}

TEST(PoolLimitsTest, PerAddressConnectionLimitQueuesTheRestAndAllSucceed) {
  GatedOrigin gated;
  HttpClientOptions options = Options();
  options.pool.max_connections_per_address = 2;
  HttpClient client(options);
  Calls calls;
  for (int i = 0; i < 5; ++i) calls.Start(client, gated.origin.Url("/slow"));
  gated.origin.AwaitRequests(2);
  ASSERT_TRUE(EventuallyPending(client, 3));
  PoolSnapshot during = client.pool().Snapshot();
  EXPECT_EQ(during.connection_count, 2u);
  EXPECT_EQ(during.in_use_count, 2u);
  EXPECT_EQ(during.requests_in_flight, 5u);
  ASSERT_EQ(during.addresses.size(), 1u);
  EXPECT_EQ(during.addresses[0].pending_count, 3u);

  gated.gate.Notify();
  std::vector<absl::StatusOr<Response>> results = calls.Await(5);
  int reused = 0;
  for (const auto& r : results) {
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->body, "done");
    if (r->connection.reused) {
      ++reused;
      EXPECT_GT(r->timing.queue_wait, absl::ZeroDuration());
    }
  }
  EXPECT_EQ(reused, 3) << "queued calls take over released connections";
  PoolSnapshot after = client.pool().Snapshot();
  EXPECT_EQ(after.connections_opened, 2u);
  EXPECT_EQ(after.pending_count, 0u);
  EXPECT_EQ(after.requests_in_flight, 0u);
  EXPECT_EQ(gated.origin.connections_accepted(), 2);
}

TEST(PoolLimitsTest, AFullPendingQueueIsResourceExhaustedNamingTheLimit) {
  GatedOrigin gated;
  HttpClientOptions options = Options();
  options.pool.max_connections_per_address = 1;
  options.pool.max_pending_per_address = 1;
  HttpClient client(options);
  Calls calls;
  calls.Start(client, gated.origin.Url("/a"));
  gated.origin.AwaitRequests(1);
  calls.Start(client, gated.origin.Url("/b"));
  ASSERT_TRUE(EventuallyPending(client, 1));
  calls.Start(client, gated.origin.Url("/c"));
  std::vector<absl::StatusOr<Response>> first = calls.Await(1);
  EXPECT_TRUE(absl::IsResourceExhausted(first[0].status())) << first[0].status();
  EXPECT_THAT(first[0].status().message(),
              HasSubstr("max_pending_per_address=1"));
  gated.gate.Notify();
  std::vector<absl::StatusOr<Response>> all = calls.Await(3);
  EXPECT_TRUE(all[1].ok() && all[2].ok());
  PoolSnapshot s = client.pool().Snapshot();
  EXPECT_EQ(s.rejected_by_limit[static_cast<size_t>(
                PoolLimit::kMaxPendingPerAddress)],
            1u);
}

TEST(PoolLimitsTest, PendingTimeoutIsResourceExhausted) {
  GatedOrigin gated;
  HttpClientOptions options = Options();
  options.pool.max_connections_per_address = 1;
  options.pool.pending_timeout = absl::Milliseconds(100);
  HttpClient client(options);
  Calls calls;
  calls.Start(client, gated.origin.Url("/a"));
  gated.origin.AwaitRequests(1);
  calls.Start(client, gated.origin.Url("/b"));
  std::vector<absl::StatusOr<Response>> first = calls.Await(1);
  EXPECT_TRUE(absl::IsResourceExhausted(first[0].status())) << first[0].status();
  EXPECT_THAT(first[0].status().message(), HasSubstr("pending_timeout"));
  gated.gate.Notify();
  calls.Await(2);
  EXPECT_EQ(client.pool().Snapshot().rejected_by_limit[static_cast<size_t>(
                PoolLimit::kPendingTimeout)],
            1u);
}

TEST(PoolLimitsTest, InFlightLimitRejectsAtOnce) {
  GatedOrigin gated;
  HttpClientOptions options = Options();
  options.pool.max_requests_in_flight = 1;
  HttpClient client(options);
  Calls calls;
  calls.Start(client, gated.origin.Url("/a"));
  gated.origin.AwaitRequests(1);
  calls.Start(client, gated.origin.Url("/b"));
  std::vector<absl::StatusOr<Response>> first = calls.Await(1);
  EXPECT_TRUE(absl::IsResourceExhausted(first[0].status()));
  EXPECT_THAT(first[0].status().message(), HasSubstr("max_requests_in_flight=1"));
  gated.gate.Notify();
  std::vector<absl::StatusOr<Response>> all = calls.Await(2);
  EXPECT_TRUE(all[1].ok());
}

TEST(PoolLimitsTest, GlobalConnectionLimitIsSharedAcrossAddresses) {
  GatedOrigin a;
  GatedOrigin b;
  HttpClientOptions options = Options();
  options.pool.max_connections = 1;
  options.pool.max_idle_connections = 0;  // a released connection frees the slot
  HttpClient client(options);
  Calls calls;
  calls.Start(client, a.origin.Url("/"));
  a.origin.AwaitRequests(1);
  calls.Start(client, b.origin.Url("/"));
  ASSERT_TRUE(EventuallyPending(client, 1));
  EXPECT_EQ(b.origin.connections_accepted(), 0);
  a.gate.Notify();
  b.gate.Notify();
  std::vector<absl::StatusOr<Response>> all = calls.Await(2);
  EXPECT_TRUE(all[0].ok() && all[1].ok());
  EXPECT_EQ(b.origin.connections_accepted(), 1);
}

TEST(PoolLimitsTest, BusyConnectionPastItsLifetimeClosesWhenItsRequestEnds) {
  GatedOrigin gated;
  HttpClientOptions options = Options();
  options.pool.max_connection_lifetime = absl::Milliseconds(20);
  HttpClient client(options);
  Calls calls;
  calls.Start(client, gated.origin.Url("/a"));
  gated.origin.AwaitRequests(1);
  // The lifetime is a span of time: let it pass while the request is held.
  absl::SleepFor(absl::Milliseconds(30));
  gated.gate.Notify();
  std::vector<absl::StatusOr<Response>> first = calls.Await(1);
  ASSERT_TRUE(first[0].ok());
  PoolSnapshot s = client.pool().Snapshot();
  EXPECT_EQ(Closed(s, CloseReason::kMaxLifetime), 1u);
  EXPECT_EQ(s.connection_count, 0u);
  calls.Start(client, gated.origin.Url("/b"));
  std::vector<absl::StatusOr<Response>> second = calls.Await(2);
  ASSERT_TRUE(second[1].ok());
  EXPECT_FALSE(second[1]->connection.reused);
  EXPECT_NE(second[1]->connection.connection_id,
            first[0]->connection.connection_id);
}

TEST(PoolLimitsTest, DrainClosesIdleNowAndBusyWhenReleased) {
  GatedOrigin gated;
  HttpClient client(Options());
  Calls calls;
  calls.Start(client, gated.origin.Url("/a"));
  calls.Start(client, gated.origin.Url("/b"));
  gated.origin.AwaitRequests(2);
  gated.gate.Notify();
  calls.Await(2);
  ASSERT_EQ(client.pool().Snapshot().idle_count, 2u);

  // One busy connection: hold a new request at a second gated origin.
  GatedOrigin held;
  calls.Start(client, held.origin.Url("/busy"));
  held.origin.AwaitRequests(1);
  EXPECT_EQ(client.pool().Drain(), 3u);
  PoolSnapshot s = client.pool().Snapshot();
  EXPECT_EQ(Closed(s, CloseReason::kDrain), 2u);
  EXPECT_EQ(s.connection_count, 1u);
  held.gate.Notify();
  std::vector<absl::StatusOr<Response>> r = calls.Await(3);
  ASSERT_TRUE(r[2].ok());
  s = client.pool().Snapshot();
  EXPECT_EQ(Closed(s, CloseReason::kDrain), 3u);
  EXPECT_EQ(s.connection_count, 0u);
  // New connections are not drained.
  calls.Start(client, gated.origin.Url("/c"));
  ASSERT_TRUE(calls.Await(4)[3].ok());
  EXPECT_EQ(client.pool().Snapshot().idle_count, 1u);
}

TEST(PoolLimitsTest, EvictIdleForOneAddressLeavesOthers) {
  GatedOrigin a;
  GatedOrigin b;
  a.gate.Notify();
  b.gate.Notify();
  HttpClient client(Options());
  Calls calls;
  calls.Start(client, a.origin.Url("/"));
  calls.Start(client, b.origin.Url("/"));
  calls.Await(2);
  const Address a_address = Address::FromUrl(*ParseUrl(a.origin.Url("/")));
  EXPECT_EQ(client.pool().EvictIdle(a_address), 1u);
  PoolSnapshot s = client.pool().Snapshot();
  EXPECT_EQ(Closed(s, CloseReason::kEvictRequest), 1u);
  ASSERT_EQ(s.addresses.size(), 1u);
  EXPECT_EQ(s.addresses[0].address.port, b.origin.port());
  bool end = false;
  std::vector<ConnectionSnapshot> listed =
      client.pool().ListConnections(0, 10, std::nullopt, &end);
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_TRUE(end);
  EXPECT_EQ(listed[0].success_count, 1u);
  EXPECT_EQ(listed[0].allocations, 0);
  EXPECT_NE(listed[0].idle_since, absl::InfinitePast());
  EXPECT_EQ(client.pool().EvictIdle(std::nullopt), 1u);
  EXPECT_EQ(client.pool().Snapshot().connection_count, 0u);
}

}  // namespace
}  // namespace egress

namespace egress {
namespace {

TEST(PoolLimitsTest, PerAddressCountsSayWhatClosedItsConnections) {
  GatedOrigin gated;
  HttpClientOptions options = Options();
  options.pool.max_idle_per_address = 1;
  HttpClient client(options);
  Calls calls;
  for (int i = 0; i < 2; ++i) calls.Start(client, gated.origin.Url("/slow"));
  gated.origin.AwaitRequests(2);
  gated.gate.Notify();
  calls.Await(2);
  // The second connection to go idle was one too many for the address.
  const PoolSnapshot after = client.pool().Snapshot();
  ASSERT_EQ(after.addresses.size(), 1u);
  const PoolSnapshot::AddressCounts& a = after.addresses[0];
  EXPECT_EQ(a.connection_count, 1u);
  EXPECT_EQ(a.closed_by_reason[static_cast<size_t>(CloseReason::kMaxIdle)],
            1u);
  EXPECT_EQ(a.connect_failures, 0u);
  EXPECT_EQ(a.leaks, 0u);
  EXPECT_GT(a.bytes_in, 0u);
}

}  // namespace
}  // namespace egress
