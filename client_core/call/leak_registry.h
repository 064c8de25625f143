// LeakRegistry: the bounded record of leaked allocations.
//
// A *leak* is an allocation held with no I/O progress for longer than the
// client's leak threshold: a streamed call whose consumer stopped taking the
// body (OkHttp's "did you forget to close a response body?"). Each leak is
// reported once; its connection takes no new exchanges and is closed, with
// reason `leaked`, when the allocation is finally released.
//
// Thread-safe. Reports never hold a query string or header values.
#ifndef EGRESS_CLIENT_CORE_CALL_LEAK_REGISTRY_H_
#define EGRESS_CLIENT_CORE_CALL_LEAK_REGISTRY_H_

#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "client_core/base/sync.h"

namespace egress {

struct LeakReport {
  uint64_t call_id = 0;
  std::string method;
  // The URL without its query string.
  std::string url;
  // How long the call had run when the leak was detected.
  absl::Duration age;
  // Response bytes handed to the consumer before it stalled.
  uint64_t bytes_moved = 0;
  uint64_t connection_id = 0;
  // The calling peer, as the front end named it.
  std::string caller;
  absl::Time detected_at;
};

class LeakRegistry {
 public:
  // Keeps the newest `capacity` reports.
  explicit LeakRegistry(size_t capacity = 256) : capacity_(capacity) {}

  void Add(LeakReport report) ABSL_LOCKS_EXCLUDED(mu_) {
    MutexLock lock(&mu_);
    ++total_;
    reports_.push_back(std::move(report));
    while (reports_.size() > capacity_) reports_.pop_front();
  }
  // Oldest first.
  std::vector<LeakReport> List() const ABSL_LOCKS_EXCLUDED(mu_) {
    MutexLock lock(&mu_);
    return std::vector<LeakReport>(reports_.begin(), reports_.end());
  }
  // Leaks detected since start (including those the ring dropped).
  uint64_t total() const ABSL_LOCKS_EXCLUDED(mu_) {
    MutexLock lock(&mu_);
    return total_;
  }

 private:
  const size_t capacity_;
  mutable Mutex mu_;
  std::deque<LeakReport> reports_ ABSL_GUARDED_BY(mu_);
  uint64_t total_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace egress

#endif  // EGRESS_CLIENT_CORE_CALL_LEAK_REGISTRY_H_
