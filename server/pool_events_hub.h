// PoolEventsHub: fans the pool's connection events out to any number of
// watchers (PoolAdmin.WatchPoolEvents streams), each with its own bounded
// queue.
//
// The pool and the Connector each report to a single listener; the hub is
// that listener and copies each event to every subscription. A publisher
// (an event loop, the cleanup timer, an admin RPC) only appends to queues
// under a short lock and never waits for a watcher: when a watcher's queue
// is full its oldest event is dropped, and the event that then heads the
// queue carries how many were lost before it. With no subscription an event
// costs one atomic load.
//
// Delivery is pull: a subscriber takes events with Next() until it reports
// kEmpty, which arms the subscription's `wake` callback; the hub runs that
// callback once, on its own thread, when the next event arrives or the hub
// closes. So a subscriber's writing (gRPC) never runs on a publisher's
// thread.
//
// Thread-safety: every method is thread-safe. Lifetime: the hub must
// outlive the HttpClient it listens to and every Subscription's use; the
// destructor closes the hub and joins its thread.
#ifndef EGRESS_SERVER_POOL_EVENTS_HUB_H_
#define EGRESS_SERVER_POOL_EVENTS_HUB_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "client_core/base/sync.h"
#include "client_core/call/leak_registry.h"
#include "client_core/connection/connector.h"
#include "client_core/connection/pool.h"

namespace egress {

// One connection event, as published to every watcher.
struct PoolEventRecord {
  enum class Kind {
    kOpened,
    kAcquired,
    kReleased,
    kIdle,
    kClosed,
    kConnectFailed,
    kLeakDetected,
  };
  // When the hub received it.
  absl::Time time;
  Kind kind = Kind::kOpened;
  uint64_t connection_id = 0;
  // Address::ToString() of the connection ("http://host:80 via proxy").
  std::string address;
  // kClosed: the CloseReasonName; kConnectFailed: the ConnectFailureName;
  // empty otherwise.
  std::string reason;
  // kAcquired: the connection had served before (Lease::reused).
  bool reused = false;
  // kReleased: the exchange completed.
  bool succeeded = false;
  // kLeakDetected: the report (no query string, no header value).
  std::optional<LeakReport> leak;
};

// "opened", "acquired", "released", "idle", "closed", "connect_failed",
// "leak_detected".
absl::string_view PoolEventKindName(PoolEventRecord::Kind kind);

class PoolEventsHub final : public PoolListener, public ConnectListener {
 public:
  // Each subscription holds at most this many undelivered events.
  static constexpr size_t kDefaultQueueCapacity = 4096;

  enum class NextResult { kEvent, kEmpty, kClosed };

  // What Next() hands out: an event and how many events this subscription
  // lost (dropped, its queue full) just before it.
  struct Delivery {
    std::shared_ptr<const PoolEventRecord> event;
    uint64_t lost = 0;
  };

  // One watcher's queue. Created by Subscribe; ended by Unsubscribe or the
  // hub's Close.
  class Subscription {
   private:
    friend class PoolEventsHub;
    Subscription(std::string address_filter,
                 absl::AnyInvocable<void()> wake)
        : address_filter_(std::move(address_filter)), wake_(std::move(wake)) {}

    struct Queued {
      std::shared_ptr<const PoolEventRecord> event;
      uint64_t lost_before = 0;
    };
    // Empty: every address. Immutable.
    const std::string address_filter_;
    // Called on the hub's thread only; immutable.
    absl::AnyInvocable<void()> wake_;
    // The rest is guarded by the hub's mu_.
    std::deque<Queued> queue_;
    // Dropped while the queue was empty of a successor to carry the count.
    uint64_t lost_pending_ = 0;
    // Next() found nothing: wake when something comes.
    bool wake_armed_ = false;
    bool closed_ = false;
    bool subscribed_ = true;
  };

  explicit PoolEventsHub(size_t queue_capacity = kDefaultQueueCapacity);
  ~PoolEventsHub() override;

  PoolEventsHub(const PoolEventsHub&) = delete;
  PoolEventsHub& operator=(const PoolEventsHub&) = delete;

  // A new subscription to events of `address_filter` (Address::ToString();
  // empty: all). It receives events published after this returns. `wake`
  // runs on the hub's thread, one run at a time, after Next() returned
  // kEmpty and then an event arrived or the hub closed. It may run once
  // more after Unsubscribe returned (a run already due), so it must hold
  // only what stays valid (e.g. a weak_ptr to its watcher). After Close(),
  // the subscription is closed at once.
  std::shared_ptr<Subscription> Subscribe(std::string address_filter,
                                          absl::AnyInvocable<void()> wake)
      ABSL_LOCKS_EXCLUDED(mu_);

  // Takes the oldest queued event of `subscription` into `out`. kEmpty arms
  // the wake callback; kClosed: the hub closed and every event was taken.
  NextResult Next(Subscription& subscription, Delivery* out)
      ABSL_LOCKS_EXCLUDED(mu_);

  // Ends `subscription`: nothing more is queued for it and its queue is
  // dropped. Idempotent; may be called from anywhere, the wake callback
  // included.
  void Unsubscribe(const std::shared_ptr<Subscription>& subscription)
      ABSL_LOCKS_EXCLUDED(mu_);

  // Closes every subscription (each still gets what is queued, then
  // kClosed) and refuses new ones (Subscribe returns closed subscriptions).
  // For shutdown: watchers end after the pool's last events. Idempotent.
  void Close() ABSL_LOCKS_EXCLUDED(mu_);

  // Subscriptions not yet unsubscribed.
  size_t subscriber_count() const {
    return subscribers_.load(std::memory_order_acquire);
  }

  // PoolListener.
  void OnConnectionOpened(uint64_t id, const Address& address) override;
  void OnConnectionAcquired(uint64_t id, const Address& address,
                            bool reused) override;
  void OnConnectionReleased(uint64_t id, const Address& address,
                            bool succeeded) override;
  void OnConnectionIdle(uint64_t id, const Address& address) override;
  void OnConnectionClosed(uint64_t id, const Address& address,
                          CloseReason reason) override;
  void OnLeakDetected(uint64_t id, const Address& address,
                      const LeakReport& report) override;
  // ConnectListener.
  void OnConnectFailed(uint64_t connection_id, const Address& address,
                       ConnectFailure failure) override;

  // Queues `event` for every subscription whose filter matches (the
  // listener methods above build it). Public for tests.
  void Publish(std::shared_ptr<const PoolEventRecord> event)
      ABSL_LOCKS_EXCLUDED(mu_);

 private:
  // Builds the record only when someone listens.
  template <typename Fill>
  void PublishIfWatched(PoolEventRecord::Kind kind, uint64_t id,
                        const Address& address, Fill fill);
  // Queues `subscription` for the waker thread if its wake is armed.
  void WakeLocked(const std::shared_ptr<Subscription>& subscription)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The waker thread: runs due wake callbacks outside mu_.
  void RunWaker() ABSL_LOCKS_EXCLUDED(mu_);

  const size_t queue_capacity_;
  std::atomic<size_t> subscribers_{0};

  mutable Mutex mu_;
  std::vector<std::shared_ptr<Subscription>> subscriptions_
      ABSL_GUARDED_BY(mu_);
  // Subscriptions whose wake callback is due, in order.
  std::vector<std::shared_ptr<Subscription>> to_wake_ ABSL_GUARDED_BY(mu_);
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;

  std::thread waker_;
};

}  // namespace egress

#endif  // EGRESS_SERVER_POOL_EVENTS_HUB_H_
