// Mutex, MutexLock and Notification: egressd's synchronisation primitives.
//
// Why not absl::Mutex: Debian's abseil is not built with ThreadSanitizer, so
// TSan cannot see its lock operations and reports every access it guards as
// a race. These wrap std::mutex and std::condition_variable (pthreads, which
// TSan intercepts) and keep Abseil's thread-safety annotations, so clang's
// -Wthread-safety still checks ABSL_GUARDED_BY and friends.
//
// Mutex::Await gives absl::Mutex's convenience: a waiter's predicate is
// re-checked whenever the mutex is released, so state changes need no
// explicit signal. Unlock costs one extra branch while nobody waits.
#ifndef EGRESS_CLIENT_CORE_BASE_SYNC_H_
#define EGRESS_CLIENT_CORE_BASE_SYNC_H_

#include <chrono>
#include <condition_variable>
#include <mutex>

#include "absl/base/thread_annotations.h"
#include "absl/time/time.h"

namespace egress {

class ABSL_LOCKABLE Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void Lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() { mu_.lock(); }
  void Unlock() ABSL_UNLOCK_FUNCTION() {
    // Notified under the lock: a woken waiter may destroy this Mutex (e.g. a
    // Notification on its stack) as soon as it can take the lock.
    if (waiters_ > 0) cv_.notify_all();
    mu_.unlock();
  }

  // Blocks until `condition()` is true; it is evaluated with the mutex held.
  // The caller holds the mutex, and holds it again on return.
  template <typename Condition>
  void Await(Condition condition) ABSL_EXCLUSIVE_LOCKS_REQUIRED(this) {
    std::unique_lock<std::mutex> lock(mu_, std::adopt_lock);
    ++waiters_;
    cv_.wait(lock, condition);
    --waiters_;
    lock.release();
  }

  // As Await, giving up after `timeout`; returns the condition's last value.
  template <typename Condition>
  bool AwaitWithTimeout(Condition condition, absl::Duration timeout)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(this) {
    std::unique_lock<std::mutex> lock(mu_, std::adopt_lock);
    ++waiters_;
    const bool result =
        cv_.wait_for(lock, absl::ToChronoNanoseconds(timeout), condition);
    --waiters_;
    lock.release();
    return result;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int waiters_ = 0;  // guarded by mu_
};

// Holds a Mutex for its scope.
class ABSL_SCOPED_LOCKABLE MutexLock {
 public:
  explicit MutexLock(Mutex* mu) ABSL_EXCLUSIVE_LOCK_FUNCTION(mu) : mu_(mu) {
    mu_->Lock();
  }
  ~MutexLock() ABSL_UNLOCK_FUNCTION() { mu_->Unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex* const mu_;
};

// A one-shot event: Notify() once, any number of waiters.
class Notification {
 public:
  void Notify() {
    MutexLock lock(&mu_);
    notified_ = true;
  }
  bool HasBeenNotified() {
    MutexLock lock(&mu_);
    return notified_;
  }
  void WaitForNotification() {
    MutexLock lock(&mu_);
    mu_.Await([this]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return notified_; });
  }

 private:
  Mutex mu_;
  bool notified_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace egress

#endif  // EGRESS_CLIENT_CORE_BASE_SYNC_H_
