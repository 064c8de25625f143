// Address: what makes two requests able to share a connection.
//
// Two requests may use the same pooled connection only when their Addresses
// are equal: same scheme, host and port, and the same proxy. (TLS settings
// depend on the host alone: DestinationRules.)
//
// With the pool partitioned by caller (HttpClientOptions::
// partition_pool_by_caller), the caller is part of the Address too, so
// connections are never shared between callers.
//
// Through an HTTP proxy, an http:// Address names the proxy only (empty host,
// port 0): the proxy forwards absolute-form requests to any origin, so its
// connections serve every http:// origin routed through it. https:// (a
// CONNECT tunnel per origin) and SOCKS5 keep the origin in the Address. The pool's lookup is a hash lookup by Address,
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
  // The name of the proxy the connection goes through (ProxySelector's
  // proxies); empty for a direct connection.
  std::string proxy;
  // The caller (Request::caller_id) whose exchanges alone the connection
  // carries; empty when the pool is not partitioned by caller.
  std::string partition;

  static Address FromUrl(const Url& url) {
    return Address{url.scheme, url.host, url.port};
  }

  // "scheme://host:port", IPv6 hosts bracketed, then " via NAME" through a
  // proxy ("http://* via corp" for a proxy's http:// connections), then
  // " for CALLER" when partitioned. Used as
  // the address's name in stats and logs.
  std::string ToString() const {
    const bool v6 = host.find(':') != std::string::npos;
    std::string out =
        host.empty() ? absl::StrCat(scheme, "://*")
                     : absl::StrCat(scheme, "://", v6 ? "[" : "", host,
                                    v6 ? "]" : "", ":", port);
    if (!proxy.empty()) absl::StrAppend(&out, " via ", proxy);
    if (!partition.empty()) absl::StrAppend(&out, " for ", partition);
    return out;
  }

  friend bool operator==(const Address& a, const Address& b) {
    return a.port == b.port && a.scheme == b.scheme && a.host == b.host &&
           a.proxy == b.proxy && a.partition == b.partition;
  }
  friend bool operator!=(const Address& a, const Address& b) {
    return !(a == b);
  }
  template <typename H>
  friend H AbslHashValue(H h, const Address& a) {
    // An unpartitioned address (the common case) hashes as it did before
    // partitions existed: one field fewer to mix on every pool lookup.
    h = H::combine(std::move(h), a.scheme, a.host, a.port, a.proxy);
    if (a.partition.empty()) return h;
    return H::combine(std::move(h), a.partition);
  }
};

}  // namespace egress

#endif  // EGRESS_CLIENT_CORE_CONNECTION_ADDRESS_H_
