// Connect: resolves an Address and opens a TCP connection to it.
//
// DNS runs on Asio's resolver, whose getaddrinfo calls happen on a private
// thread, so no event loop blocks on a lookup. IP-literal hosts skip DNS.
// Resolved addresses are tried in order until one connects.
// (RouteSelector, route failure memory and fast fallback arrive with the pool
// issue; this is their seam.)
#ifndef EGRESS_CLIENT_CORE_CONNECTION_CONNECTOR_H_
#define EGRESS_CLIENT_CORE_CONNECTION_CONNECTOR_H_

#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "asio/awaitable.hpp"
#include "client_core/connection/address.h"
#include "client_core/connection/connection.h"

namespace egress {

struct ConnectOptions {
  // Bound on each TCP connect attempt (the call's deadline caps it too).
  absl::Duration connect_timeout = absl::Seconds(10);
};

// Opens a connection with id `connection_id` on the calling coroutine's
// executor. Errors: kUnavailable naming the host and cause ("DNS lookup of
// 'x' failed: ...", "connect to 1.2.3.4:80 failed: Connection refused"),
// kDeadlineExceeded when `deadline` passed first.
asio::awaitable<absl::StatusOr<std::shared_ptr<Connection>>> Connect(
    const Address& address, uint64_t connection_id,
    const ConnectOptions& options, absl::Time deadline);

}  // namespace egress

#endif  // EGRESS_CLIENT_CORE_CONNECTION_CONNECTOR_H_
