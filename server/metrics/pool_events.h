// PoolEventLog: the latest pool events for the web page, derived by
// comparing what the pool looked like at two looks.
//
// Why derived: the pool reports its events to one PoolListener, given when
// the HttpClient is built, and the metrics server must not claim it (the
// admin's event stream may). So the page's server looks at the pool each
// time the page asks (every second or two) and names what changed since
// the previous look:
//   opened        a connection listed now was not listed before
//   acquired      an idle connection is now in use
//   served        a connection completed exchanges since the last look
//   no_new_exchanges  a connection was marked to take no new exchanges
//   closed        a listed connection is gone; its reason is named when the
//                 pool's close counters leave no doubt (one reason grew)
//   connect_failed, rejected, leak   the pool's counters grew
// What happens and un-happens between two looks (a connection opened and
// closed within a second) shows as a count, not per connection. Nothing is
// recorded while no page is open.
//
// Thread-safe.
#ifndef EGRESS_SERVER_METRICS_POOL_EVENTS_H_
#define EGRESS_SERVER_METRICS_POOL_EVENTS_H_

#include <array>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/time/time.h"
#include "client_core/base/sync.h"
#include "client_core/call/leak_registry.h"
#include "client_core/connection/pool.h"

namespace egress::metrics {

struct PoolEvent {
  // The look that saw it (the change happened since the previous look).
  absl::Time time;
  // One of the kinds above, or "watching" for the first look.
  std::string kind;
  // 0 when the event is not about one connection.
  uint64_t connection_id = 0;
  std::string address;
  std::string detail;
};

// One look at the pool's connections and leaks (its counters are the
// PoolSnapshot given beside it).
struct PoolLook {
  // Open connections, ascending ids: all of them when `complete`, else the
  // first ones.
  std::vector<ConnectionSnapshot> connections;
  bool complete = true;
  // The leak registry's reports, oldest first, and its total.
  std::vector<LeakReport> leaks;
  uint64_t leaks_total = 0;
};

class PoolEventLog {
 public:
  // Keeps the newest `capacity` events.
  explicit PoolEventLog(size_t capacity = 200) : capacity_(capacity) {}

  // Records what changed since the previous look (the first look records
  // one "watching" event).
  void Observe(const PoolSnapshot& pool, const PoolLook& look, absl::Time now)
      ABSL_LOCKS_EXCLUDED(mu_);

  // Newest first.
  std::vector<PoolEvent> Latest() const ABSL_LOCKS_EXCLUDED(mu_);

  // At most this many events per look; past it one event says how many
  // more changes there were.
  static constexpr size_t kMaxEventsPerLook = 50;

 private:
  struct Seen {
    std::string address;
    bool idle = false;
    uint64_t success_count = 0;
    bool no_new_exchanges = false;
  };
  struct Counters {
    uint64_t connections_opened = 0;
    std::array<uint64_t, kAllCloseReasons.size()> closed_by_reason{};
    uint64_t connect_failures = 0;
    std::array<uint64_t, kPoolLimitCount> rejected_by_limit{};
    uint64_t leaks_total = 0;
  };

  const size_t capacity_;
  mutable Mutex mu_;
  std::deque<PoolEvent> events_ ABSL_GUARDED_BY(mu_);
  bool looked_ ABSL_GUARDED_BY(mu_) = false;
  absl::flat_hash_map<uint64_t, Seen> seen_ ABSL_GUARDED_BY(mu_);
  Counters counters_ ABSL_GUARDED_BY(mu_);
  // The largest connection id any look listed.
  uint64_t max_id_seen_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace egress::metrics

#endif  // EGRESS_SERVER_METRICS_POOL_EVENTS_H_
