// RouteSelector: orders the routes of one Address for connecting.
//
// Given the Address and the IPs its host resolved to (in the resolver's
// order), the routes are:
//   1. one per distinct IP, at the address's port;
//   2. interleaved by family, starting with the family of the first answer
//      (RFC 8305 section 4: "IPv6, IPv4, IPv6, IPv4, ..." when the resolver
//      put an IPv6 address first), so that if one family is broken the race
//      reaches the other family after one fallback delay, not after all the
//      broken family's addresses;
//   3. with postponed routes (RouteDatabase::ShouldPostpone) moved to the
//      end, each group keeping the order of step 2.
//
// Selection is pure given the database's state: O(n) in the number of IPs,
// no I/O. (Proxies join here later: routes through each proxy in turn.)
//
// Thread-safety: as the RouteDatabase it reads (thread-safe).
#ifndef EGRESS_CLIENT_CORE_ROUTE_ROUTE_SELECTOR_H_
#define EGRESS_CLIENT_CORE_ROUTE_ROUTE_SELECTOR_H_

#include <vector>

#include "absl/time/time.h"
#include "absl/types/span.h"
#include "asio/ip/address.hpp"
#include "client_core/connection/address.h"
#include "client_core/route/route.h"
#include "client_core/route/route_database.h"

namespace egress {

class RouteSelector {
 public:
  // `database` may be null (nothing postponed); it must outlive the
  // selector.
  explicit RouteSelector(RouteDatabase* database) : database_(database) {}

  // The routes to try for `address`, in order; empty only when `ips` is.
  std::vector<Route> Select(const Address& address,
                            absl::Span<const asio::ip::address> ips,
                            absl::Time now = absl::Now()) const;

 private:
  RouteDatabase* const database_;
};

}  // namespace egress

#endif  // EGRESS_CLIENT_CORE_ROUTE_ROUTE_SELECTOR_H_
