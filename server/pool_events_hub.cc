#include "server/pool_events_hub.h"

#include <pthread.h>

#include <algorithm>
#include <utility>

#include "absl/time/clock.h"

namespace egress {

absl::string_view PoolEventKindName(PoolEventRecord::Kind kind) {
  switch (kind) {
    case PoolEventRecord::Kind::kOpened: return "opened";
    case PoolEventRecord::Kind::kAcquired: return "acquired";
    case PoolEventRecord::Kind::kReleased: return "released";
    case PoolEventRecord::Kind::kIdle: return "idle";
    case PoolEventRecord::Kind::kClosed: return "closed";
    case PoolEventRecord::Kind::kConnectFailed: return "connect_failed";
    case PoolEventRecord::Kind::kLeakDetected: return "leak_detected";
  }
  return "unknown";
}

PoolEventsHub::PoolEventsHub(size_t queue_capacity)
    : queue_capacity_(std::max<size_t>(1, queue_capacity)) {
  waker_ = std::thread([this] { RunWaker(); });
  pthread_setname_np(waker_.native_handle(), "egress-events");
}

PoolEventsHub::~PoolEventsHub() {
  Close();
  {
    MutexLock lock(&mu_);
    stopping_ = true;
  }
  waker_.join();
}

std::shared_ptr<PoolEventsHub::Subscription> PoolEventsHub::Subscribe(
    std::string address_filter, absl::AnyInvocable<void()> wake) {
  std::shared_ptr<Subscription> subscription(
      new Subscription(std::move(address_filter), std::move(wake)));
  MutexLock lock(&mu_);
  if (closed_) {
    subscription->closed_ = true;
    subscription->subscribed_ = false;
    return subscription;
  }
  subscriptions_.push_back(subscription);
  subscribers_.fetch_add(1, std::memory_order_release);
  return subscription;
}

PoolEventsHub::NextResult PoolEventsHub::Next(
    Subscription& subscription, Delivery* out) {
  MutexLock lock(&mu_);
  if (!subscription.queue_.empty()) {
    Subscription::Queued& front = subscription.queue_.front();
    out->event = std::move(front.event);
    out->lost = front.lost_before;
    subscription.queue_.pop_front();
    return NextResult::kEvent;
  }
  if (subscription.closed_) return NextResult::kClosed;
  subscription.wake_armed_ = true;
  return NextResult::kEmpty;
}

void PoolEventsHub::Unsubscribe(
    const std::shared_ptr<Subscription>& subscription) {
  MutexLock lock(&mu_);
  if (!subscription->subscribed_) return;
  subscription->subscribed_ = false;
  subscription->closed_ = true;
  subscription->wake_armed_ = false;
  subscription->queue_.clear();
  subscriptions_.erase(std::remove(subscriptions_.begin(),
                                   subscriptions_.end(), subscription),
                       subscriptions_.end());
  subscribers_.fetch_sub(1, std::memory_order_release);
}

void PoolEventsHub::Close() {
  MutexLock lock(&mu_);
  if (closed_) return;
  closed_ = true;
  for (const std::shared_ptr<Subscription>& subscription : subscriptions_) {
    subscription->closed_ = true;
    WakeLocked(subscription);
  }
}

void PoolEventsHub::WakeLocked(
    const std::shared_ptr<Subscription>& subscription) {
  if (!subscription->wake_armed_) return;
  subscription->wake_armed_ = false;
  to_wake_.push_back(subscription);
}

void PoolEventsHub::Publish(std::shared_ptr<const PoolEventRecord> event) {
  if (subscribers_.load(std::memory_order_acquire) == 0) return;
  MutexLock lock(&mu_);
  for (const std::shared_ptr<Subscription>& subscription : subscriptions_) {
    Subscription& s = *subscription;
    if (s.closed_) continue;
    if (!s.address_filter_.empty() && s.address_filter_ != event->address) {
      continue;
    }
    if (s.queue_.size() >= queue_capacity_) {
      // The oldest goes: a watcher following the pool live wants the
      // present. The count moves to the event that now heads the queue.
      const uint64_t carried = s.queue_.front().lost_before + 1;
      s.queue_.pop_front();
      if (s.queue_.empty()) {
        s.lost_pending_ += carried;
      } else {
        s.queue_.front().lost_before += carried;
      }
    }
    s.queue_.push_back({event, s.lost_pending_});
    s.lost_pending_ = 0;
    WakeLocked(subscription);
  }
}

void PoolEventsHub::RunWaker() {
  std::vector<std::shared_ptr<Subscription>> due;
  while (true) {
    {
      MutexLock lock(&mu_);
      mu_.Await([this]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
        return stopping_ || !to_wake_.empty();
      });
      if (to_wake_.empty()) return;  // stopping, nothing left to run
      due.swap(to_wake_);
    }
    for (const std::shared_ptr<Subscription>& subscription : due) {
      {
        MutexLock lock(&mu_);
        if (!subscription->subscribed_) continue;
      }
      subscription->wake_();
    }
    due.clear();
  }
}

template <typename Fill>
void PoolEventsHub::PublishIfWatched(PoolEventRecord::Kind kind, uint64_t id,
                                     const Address& address, Fill fill) {
  // The common case in production: nobody watches, nothing is built.
  if (subscribers_.load(std::memory_order_acquire) == 0) return;
  auto event = std::make_shared<PoolEventRecord>();
  event->time = absl::Now();
  event->kind = kind;
  event->connection_id = id;
  event->address = address.ToString();
  fill(*event);
  Publish(std::move(event));
}

void PoolEventsHub::OnConnectionOpened(uint64_t id, const Address& address) {
  PublishIfWatched(PoolEventRecord::Kind::kOpened, id, address,
                   [](PoolEventRecord&) {});
}

void PoolEventsHub::OnConnectionAcquired(uint64_t id, const Address& address,
                                         bool reused) {
  PublishIfWatched(PoolEventRecord::Kind::kAcquired, id, address,
                   [reused](PoolEventRecord& e) { e.reused = reused; });
}

void PoolEventsHub::OnConnectionReleased(uint64_t id, const Address& address,
                                         bool succeeded) {
  PublishIfWatched(PoolEventRecord::Kind::kReleased, id, address,
                   [succeeded](PoolEventRecord& e) {
                     e.succeeded = succeeded;
                   });
}

void PoolEventsHub::OnConnectionIdle(uint64_t id, const Address& address) {
  PublishIfWatched(PoolEventRecord::Kind::kIdle, id, address,
                   [](PoolEventRecord&) {});
}

void PoolEventsHub::OnConnectionClosed(uint64_t id, const Address& address,
                                       CloseReason reason) {
  PublishIfWatched(PoolEventRecord::Kind::kClosed, id, address,
                   [reason](PoolEventRecord& e) {
                     e.reason = std::string(CloseReasonName(reason));
                   });
}

void PoolEventsHub::OnLeakDetected(uint64_t id, const Address& address,
                                   const LeakReport& report) {
  PublishIfWatched(PoolEventRecord::Kind::kLeakDetected, id, address,
                   [&report](PoolEventRecord& e) { e.leak = report; });
}

void PoolEventsHub::OnConnectFailed(uint64_t connection_id,
                                    const Address& address,
                                    ConnectFailure failure) {
  PublishIfWatched(PoolEventRecord::Kind::kConnectFailed, connection_id,
                   address, [failure](PoolEventRecord& e) {
                     e.reason = std::string(ConnectFailureName(failure));
                   });
}

}  // namespace egress
