// CallAbort: lets a call's owner abort the call's socket I/O from any thread
// (the gRPC caller went away, a stream was cancelled).
//
// The I/O in progress registers itself (SocketDeadline does, when given a
// CallAbort); Abort() then cancels its pending socket operations on the
// socket's own event loop, and every later registration sees the abort at
// once. Aborting is one-way.
//
// Thread-safe. Shared (shared_ptr) by the call's owner and the call.
#ifndef EGRESS_CLIENT_CORE_NET_CALL_ABORT_H_
#define EGRESS_CLIENT_CORE_NET_CALL_ABORT_H_

#include <functional>
#include <memory>

#include "absl/functional/any_invocable.h"
#include "client_core/base/sync.h"

namespace egress {

class CallAbort {
 public:
  // What aborting the current I/O does; runs once, on any thread.
  using Canceller = absl::AnyInvocable<void() &&>;

  // Aborts the registered I/O, if any, and all I/O registered later.
  void Abort() ABSL_LOCKS_EXCLUDED(mu_) {
    Canceller cancel;
    {
      MutexLock lock(&mu_);
      if (aborted_) return;
      aborted_ = true;
      cancel = std::move(current_);
      current_ = nullptr;
    }
    if (cancel) std::move(cancel)();
  }

  bool aborted() const ABSL_LOCKS_EXCLUDED(mu_) {
    MutexLock lock(&mu_);
    return aborted_;
  }

  // Registers the I/O now in progress. False (and `cancel` dropped) when
  // already aborted: the caller must not start the I/O.
  bool Register(Canceller cancel) ABSL_LOCKS_EXCLUDED(mu_) {
    MutexLock lock(&mu_);
    if (aborted_) return false;
    current_ = std::move(cancel);
    return true;
  }

  // The registered I/O ended.
  void Unregister() ABSL_LOCKS_EXCLUDED(mu_) {
    MutexLock lock(&mu_);
    current_ = nullptr;
  }

 private:
  mutable Mutex mu_;
  bool aborted_ ABSL_GUARDED_BY(mu_) = false;
  Canceller current_ ABSL_GUARDED_BY(mu_);
};

}  // namespace egress

#endif  // EGRESS_CLIENT_CORE_NET_CALL_ABORT_H_
