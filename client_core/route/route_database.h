// RouteDatabase: the routes that failed recently, so new connections try
// them last.
//
// A route is *failed* from the moment a connection attempt on it fails until
// it connects again or its failure *expires* (`expiry` after the failure). A
// route is *postponed* while it is failed and unexpired: RouteSelector moves
// it behind every other route of its address. It is still tried, last, so an
// address whose routes all failed keeps working as soon as one recovers.
//
// Why failures expire (OkHttp's RouteDatabase never forgets): an IP that
// failed once is usually fine again soon (a restarted backend, a rolled load
// balancer, a blip). Without expiry it would stay last for the life of the
// process — and if the other routes keep connecting it is never tried again,
// so it never gets the chance to clear itself, and its share of the load
// stays on the others. Expiry also bounds the database's size to the routes
// that failed within one expiry period.
//
// Thread-safety: thread-safe; one database serves every event loop. Each
// operation is O(1) (amortised: expired entries are swept when the table has
// doubled since the last sweep). Time is a parameter so tests need no
// sleeps.
#ifndef EGRESS_CLIENT_CORE_ROUTE_ROUTE_DATABASE_H_
#define EGRESS_CLIENT_CORE_ROUTE_ROUTE_DATABASE_H_

#include <cstddef>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/time/time.h"
#include "client_core/base/sync.h"
#include "client_core/route/route.h"

namespace egress {

class RouteDatabase {
 public:
  // Default expiry: 5 minutes, long enough that a dead IP does not cost each
  // new connection a failed attempt (or a fallback delay) more than once in
  // a while, short enough that a recovered IP gets its traffic back soon.
  static constexpr absl::Duration kDefaultExpiry = absl::Minutes(5);

  explicit RouteDatabase(absl::Duration expiry = kDefaultExpiry);

  RouteDatabase(const RouteDatabase&) = delete;
  RouteDatabase& operator=(const RouteDatabase&) = delete;

  // A connection attempt on `route` failed at `now` (a later failure renews
  // the entry).
  void Failed(const Route& route, absl::Time now = absl::Now());
  // A connection on `route` succeeded: it is not failed any more.
  void Connected(const Route& route);
  // True while `route` is failed and its failure has not expired at `now`.
  bool ShouldPostpone(const Route& route, absl::Time now = absl::Now());

  absl::Duration expiry() const { return expiry_; }
  // Failed routes held, expired ones not yet swept included.
  size_t size() const;

 private:
  void SweepExpired(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const absl::Duration expiry_;
  mutable Mutex mu_;
  // Route -> time of its last failure.
  absl::flat_hash_map<Route, absl::Time> failed_ ABSL_GUARDED_BY(mu_);
  // Size after the last sweep; the next sweep happens at twice that.
  size_t swept_size_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace egress

#endif  // EGRESS_CLIENT_CORE_ROUTE_ROUTE_DATABASE_H_
