// Route: one concrete way to reach an Address — the IP endpoint a TCP
// connection is opened to.
//
// Vocabulary (as in OkHttp): an *Address* says what the caller wants to talk
// to (scheme, host, port; later proxy and TLS settings); a *Route* says how one
// connection gets there. A host name with three IPs gives one Address and three
// Routes. RouteSelector orders an Address's routes; RouteDatabase remembers
// which routes failed recently; Connector races them.
//
// A value type; thread-compatible.
#ifndef EGRESS_CLIENT_CORE_ROUTE_ROUTE_H_
#define EGRESS_CLIENT_CORE_ROUTE_ROUTE_H_

#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "asio/ip/tcp.hpp"
#include "client_core/connection/address.h"

namespace egress {

// "1.2.3.4:80", "[::1]:443" (IPv6 bracketed, with "%scope" when it has one).
inline std::string EndpointToString(const asio::ip::tcp::endpoint& endpoint) {
  const asio::ip::address ip = endpoint.address();
  if (ip.is_v6())
    return absl::StrCat("[", ip.to_string(), "]:", endpoint.port());
  return absl::StrCat(ip.to_string(), ":", endpoint.port());
}

struct Route {
  Address address;
  // The IP and port a connection for `address` is opened to. The port is
  // always address.port.
  asio::ip::tcp::endpoint endpoint;
  // A proxy field joins here when proxies arrive (OkHttp's Route.proxy): a
  // route through a proxy connects to the proxy's endpoint and tunnels to
  // `address`. It will take part in equality and hashing like the others.

  // "http://example.com:80 via 93.184.216.34:80". For logs and errors.
  std::string ToString() const {
    return absl::StrCat(address.ToString(), " via ",
                        EndpointToString(endpoint));
  }

  friend bool operator==(const Route& a, const Route& b) {
    return a.endpoint == b.endpoint && a.address == b.address;
  }
  friend bool operator!=(const Route& a, const Route& b) { return !(a == b); }

  template <typename H>
  friend H AbslHashValue(H h, const Route& r) {
    const asio::ip::address ip = r.endpoint.address();
    if (ip.is_v4()) {
      h = H::combine(std::move(h), ip.to_v4().to_uint());
    } else {
      const asio::ip::address_v6 v6 = ip.to_v6();
      const asio::ip::address_v6::bytes_type bytes = v6.to_bytes();
      h = H::combine_contiguous(std::move(h), bytes.data(), bytes.size());
      h = H::combine(std::move(h), v6.scope_id());
    }
    return H::combine(std::move(h), r.endpoint.port(), r.address);
  }
};

}  // namespace egress

#endif  // EGRESS_CLIENT_CORE_ROUTE_ROUTE_H_
