// Address: what makes two requests able to share a connection.
//
// Two requests may use the same pooled connection only when their Addresses
// are equal: same scheme, host and port (and, as later issues add them, the
// same proxy and TLS settings). The pool's lookup is a hash lookup by Address,
// never a scan of every connection.
#ifndef EGRESS_CLIENT_CORE_CONNECTION_ADDRESS_H_
#define EGRESS_CLIENT_CORE_CONNECTION_ADDRESS_H_

#include <cstdint>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "client_core/url/url.h"

namespace egress {

struct Address {
  std::string scheme;  // "http" or "https"
  std::string host;    // as in Url::host (IPv6 without brackets)
  uint16_t port = 0;

  static Address FromUrl(const Url& url) {
    return Address{url.scheme, url.host, url.port};
  }

  // "scheme://host:port", IPv6 hosts bracketed. Used as the address's name in
  // stats and logs.
  std::string ToString() const {
    const bool v6 = host.find(':') != std::string::npos;
    return absl::StrCat(scheme, "://", v6 ? "[" : "", host, v6 ? "]" : "", ":",
                        port);
  }

  friend bool operator==(const Address& a, const Address& b) {
    return a.port == b.port && a.scheme == b.scheme && a.host == b.host;
  }
  friend bool operator!=(const Address& a, const Address& b) {
    return !(a == b);
  }
  template <typename H>
  friend H AbslHashValue(H h, const Address& a) {
    return H::combine(std::move(h), a.scheme, a.host, a.port);
  }
};

}  // namespace egress

#endif  // EGRESS_CLIENT_CORE_CONNECTION_ADDRESS_H_
