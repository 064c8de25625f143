// PoolEventsHub: fan-out to several subscriptions, the address filter, the
// bounded queue with its lost count, the wake callback, Close and
// Unsubscribe, and publishers racing subscribers. No gRPC: runs under TSan.
#include "server/pool_events_hub.h"

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "client_core/base/sync.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace egress {
namespace {

using Kind = PoolEventRecord::Kind;
using Next = PoolEventsHub::NextResult;

Address Http(uint16_t port) { return Address{"http", "127.0.0.1", port, ""}; }

// Counts wake calls and lets a test wait for them.
class Waker {
 public:
  absl::AnyInvocable<void()> Callback() {
    return [this] {
      MutexLock lock(&mu_);
      ++wakes_;
    };
  }
  // Blocks until at least `n` wakes happened.
  void AwaitWakes(int n) {
    MutexLock lock(&mu_);
    mu_.Await([&]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return wakes_ >= n; });
  }
  int wakes() {
    MutexLock lock(&mu_);
    return wakes_;
  }

 private:
  Mutex mu_;
  int wakes_ ABSL_GUARDED_BY(mu_) = 0;
};

// Everything queued for `s` now.
std::vector<PoolEventsHub::Delivery> Drain(PoolEventsHub& hub,
                                           PoolEventsHub::Subscription& s) {
  std::vector<PoolEventsHub::Delivery> out;
  PoolEventsHub::Delivery d;
  while (hub.Next(s, &d) == Next::kEvent) out.push_back(d);
  return out;
}

TEST(PoolEventsHubTest, EveryListenerEventReachesEverySubscription) {
  PoolEventsHub hub;
  auto a = hub.Subscribe("", [] {});
  auto b = hub.Subscribe("", [] {});
  EXPECT_EQ(hub.subscriber_count(), 2u);
  const Address address = Http(8080);
  hub.OnConnectionOpened(7, address);
  hub.OnConnectionAcquired(7, address, /*reused=*/false);
  hub.OnConnectionReleased(7, address, /*succeeded=*/true);
  hub.OnConnectionIdle(7, address);
  hub.OnConnectionClosed(7, address, CloseReason::kEvictRequest);
  hub.OnConnectFailed(8, address, ConnectFailure::kRefused);
  LeakReport leak;
  leak.call_id = 3;
  leak.url = "http://127.0.0.1:8080/slow";
  hub.OnLeakDetected(9, address, leak);

  for (auto* s : {a.get(), b.get()}) {
    std::vector<PoolEventsHub::Delivery> got = Drain(hub, *s);
    ASSERT_EQ(got.size(), 7u);
    const Kind kinds[] = {Kind::kOpened,       Kind::kAcquired,
                          Kind::kReleased,     Kind::kIdle,
                          Kind::kClosed,       Kind::kConnectFailed,
                          Kind::kLeakDetected};
    for (size_t i = 0; i < got.size(); ++i) {
      EXPECT_EQ(got[i].event->kind, kinds[i]) << i;
      EXPECT_EQ(got[i].event->address, "http://127.0.0.1:8080");
      EXPECT_EQ(got[i].lost, 0u);
      EXPECT_NE(got[i].event->time, absl::Time());
    }
    EXPECT_EQ(got[0].event->connection_id, 7u);
    EXPECT_FALSE(got[1].event->reused);
    EXPECT_TRUE(got[2].event->succeeded);
    EXPECT_EQ(got[4].event->reason, "evict_request");
    EXPECT_EQ(got[5].event->reason, "refused");
    EXPECT_EQ(got[5].event->connection_id, 8u);
    ASSERT_TRUE(got[6].event->leak.has_value());
    EXPECT_EQ(got[6].event->leak->call_id, 3u);
  }
  // Both saw the same record: it is shared, not copied per watcher.
  hub.OnConnectionIdle(1, address);
  PoolEventsHub::Delivery da, db;
  ASSERT_EQ(hub.Next(*a, &da), Next::kEvent);
  ASSERT_EQ(hub.Next(*b, &db), Next::kEvent);
  EXPECT_EQ(da.event.get(), db.event.get());
}

TEST(PoolEventsHubTest, TheFilterKeepsOneAddress) {
  PoolEventsHub hub;
  auto only = hub.Subscribe("http://127.0.0.1:1001", [] {});
  auto all = hub.Subscribe("", [] {});
  hub.OnConnectionOpened(1, Http(1001));
  hub.OnConnectionOpened(2, Http(1002));
  std::vector<PoolEventsHub::Delivery> got = Drain(hub, *only);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].event->connection_id, 1u);
  EXPECT_EQ(Drain(hub, *all).size(), 2u);
}

TEST(PoolEventsHubTest, AFullQueueDropsTheOldestAndCountsThem) {
  PoolEventsHub hub(/*queue_capacity=*/3);
  auto s = hub.Subscribe("", [] {});
  for (uint64_t id = 1; id <= 10; ++id) hub.OnConnectionOpened(id, Http(80));
  std::vector<PoolEventsHub::Delivery> got = Drain(hub, *s);
  ASSERT_EQ(got.size(), 3u);
  // The newest three; the first of them says 7 went before it.
  EXPECT_EQ(got[0].event->connection_id, 8u);
  EXPECT_EQ(got[0].lost, 7u);
  EXPECT_EQ(got[1].lost, 0u);
  EXPECT_EQ(got[2].event->connection_id, 10u);
  // Counted once: the next events lose nothing.
  hub.OnConnectionOpened(11, Http(80));
  got = Drain(hub, *s);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].lost, 0u);
}

TEST(PoolEventsHubTest, ACapacityOfOneStillCountsWhatWasLost) {
  PoolEventsHub hub(/*queue_capacity=*/1);
  auto s = hub.Subscribe("", [] {});
  for (uint64_t id = 1; id <= 4; ++id) hub.OnConnectionOpened(id, Http(80));
  std::vector<PoolEventsHub::Delivery> got = Drain(hub, *s);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].event->connection_id, 4u);
  EXPECT_EQ(got[0].lost, 3u);
}

TEST(PoolEventsHubTest, ASlowWatcherDoesNotHoldBackAFastOne) {
  PoolEventsHub hub(/*queue_capacity=*/2);
  auto slow = hub.Subscribe("", [] {});
  auto fast = hub.Subscribe("", [] {});
  uint64_t fast_seen = 0;
  for (uint64_t id = 1; id <= 100; ++id) {
    hub.OnConnectionOpened(id, Http(80));
    fast_seen += Drain(hub, *fast).size();
  }
  EXPECT_EQ(fast_seen, 100u);
  std::vector<PoolEventsHub::Delivery> got = Drain(hub, *slow);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].lost, 98u);
}

TEST(PoolEventsHubTest, WakeRunsOnceAfterNextFoundNothing) {
  PoolEventsHub hub;
  Waker waker;
  auto s = hub.Subscribe("", waker.Callback());
  // Not armed yet: events queue without a wake.
  hub.OnConnectionOpened(1, Http(80));
  PoolEventsHub::Delivery d;
  ASSERT_EQ(hub.Next(*s, &d), Next::kEvent);
  ASSERT_EQ(hub.Next(*s, &d), Next::kEmpty);  // arms
  hub.OnConnectionOpened(2, Http(80));
  hub.OnConnectionOpened(3, Http(80));  // already due: no second wake
  waker.AwaitWakes(1);
  EXPECT_EQ(Drain(hub, *s).size(), 2u);
  // Armed again by the empty Next inside Drain.
  hub.OnConnectionOpened(4, Http(80));
  waker.AwaitWakes(2);
  EXPECT_EQ(waker.wakes(), 2);
}

TEST(PoolEventsHubTest, CloseDeliversWhatIsQueuedThenSaysClosed) {
  PoolEventsHub hub;
  Waker waker;
  auto s = hub.Subscribe("", waker.Callback());
  PoolEventsHub::Delivery d;
  ASSERT_EQ(hub.Next(*s, &d), Next::kEmpty);
  hub.OnConnectionClosed(1, Http(80), CloseReason::kShutdown);
  hub.Close();
  waker.AwaitWakes(1);
  ASSERT_EQ(hub.Next(*s, &d), Next::kEvent);
  EXPECT_EQ(d.event->reason, "shutdown");
  EXPECT_EQ(hub.Next(*s, &d), Next::kClosed);
  // Nothing is queued after Close.
  hub.OnConnectionOpened(2, Http(80));
  EXPECT_EQ(hub.Next(*s, &d), Next::kClosed);
  // A late subscriber is closed at once.
  auto late = hub.Subscribe("", [] { FAIL() << "no wake for a closed one"; });
  EXPECT_EQ(hub.Next(*late, &d), Next::kClosed);
  hub.Unsubscribe(late);
  hub.Unsubscribe(s);
  EXPECT_EQ(hub.subscriber_count(), 0u);
}

TEST(PoolEventsHubTest, UnsubscribeStopsQueueingAndIsIdempotent) {
  PoolEventsHub hub;
  auto s = hub.Subscribe("", [] {});
  hub.OnConnectionOpened(1, Http(80));
  hub.Unsubscribe(s);
  hub.Unsubscribe(s);
  EXPECT_EQ(hub.subscriber_count(), 0u);
  hub.OnConnectionOpened(2, Http(80));
  PoolEventsHub::Delivery d;
  EXPECT_EQ(hub.Next(*s, &d), Next::kClosed);
}

TEST(PoolEventsHubTest, WithoutSubscribersNothingIsBuilt) {
  PoolEventsHub hub;
  hub.OnConnectionOpened(1, Http(80));  // no subscription: dropped
  auto s = hub.Subscribe("", [] {});
  PoolEventsHub::Delivery d;
  EXPECT_EQ(hub.Next(*s, &d), Next::kEmpty);
}

// Publishers on several threads while a consumer drains and subscriptions
// come and go: every event a steady subscription was sent is either
// delivered or counted lost.
TEST(PoolEventsHubTest, ConcurrentPublishersAndSubscribers) {
  PoolEventsHub hub(/*queue_capacity=*/64);
  Waker waker;
  auto steady = hub.Subscribe("", waker.Callback());
  constexpr int kThreads = 4;
  constexpr int kPerThread = 2000;
  std::atomic<bool> publishing{true};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&hub, t] {
      for (int i = 0; i < kPerThread; ++i) {
        hub.OnConnectionAcquired(static_cast<uint64_t>(t * kPerThread + i),
                                 Http(static_cast<uint16_t>(1000 + t)), true);
      }
    });
  }
  std::thread churn([&] {
    while (publishing.load()) {
      auto s = hub.Subscribe("http://127.0.0.1:1001", [] {});
      PoolEventsHub::Delivery d;
      hub.Next(*s, &d);
      hub.Unsubscribe(s);
    }
  });
  uint64_t delivered = 0;
  uint64_t lost = 0;
  const auto take = [&] {
    PoolEventsHub::Delivery d;
    while (hub.Next(*steady, &d) == Next::kEvent) {
      ++delivered;
      lost += d.lost;
    }
  };
  while (delivered + lost < kThreads * kPerThread) {
    take();
    if (delivered + lost >= kThreads * kPerThread) break;
    // Not yet all: the last Next armed the wake; wait for the next event.
    const int before = waker.wakes();
    take();
    if (delivered + lost >= kThreads * kPerThread) break;
    waker.AwaitWakes(before + 1);
  }
  for (auto& t : threads) t.join();
  publishing.store(false);
  churn.join();
  take();
  EXPECT_EQ(delivered + lost, static_cast<uint64_t>(kThreads * kPerThread));
  EXPECT_GT(delivered, 0u);
}

}  // namespace
}  // namespace egress
