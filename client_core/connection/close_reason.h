// CloseReason: why a pooled connection was closed. Every closed connection is
// counted under exactly one reason (PoolStats.closed_by_reason), so an
// operator can tell "the origin hung up" from "we evicted it".
#ifndef EGRESS_CLIENT_CORE_CONNECTION_CLOSE_REASON_H_
#define EGRESS_CLIENT_CORE_CONNECTION_CLOSE_REASON_H_

#include <array>
#include <string_view>

namespace egress {

enum class CloseReason {
  // Idle for longer than the pool's keep-alive.
  kIdleTimeout,
  // Went idle while the pool already held max_idle_connections idle ones
  // (the least recently used idle connection is the one closed).
  kMaxIdle,
  // Found dead or with stray bytes by the health check before reuse.
  kUnhealthy,
  // The origin closed the connection (EOF) or reset it: seen while it was
  // idle (the idle watch), by the health check before reuse, or mid-exchange.
  kPeerClosed,
  // The origin or egressd asked to close after the exchange:
  // "Connection: close", or an HTTP/1.0 response without keep-alive, or a
  // close-delimited body.
  kConnectionClose,
  // The origin broke HTTP/1.1 framing (malformed response, bytes after the
  // body), so the connection's state is unknown.
  kProtocolError,
  // A read or write failed mid-exchange (reset, broken pipe).
  kIoError,
  // The call ended mid-exchange (deadline, cancellation, body too large):
  // an HTTP/1.1 connection cannot be reused with a response half-read.
  kCallAborted,
  // Older than the pool's max_connection_lifetime.
  kMaxLifetime,
  // An allocation on it was leaked (outlived its call or stalled).
  kLeaked,
  // An operator asked to evict idle connections.
  kEvictRequest,
  // An operator drained the pool: closed as soon as it went idle.
  kDrain,
  // The pool is shutting down.
  kShutdown,
  // HTTP/2: the peer sent GOAWAY; closed when its last stream ended.
  kGoaway,
  // HTTP/2: the peer refused two streams (REFUSED_STREAM) on it, or allows
  // none (SETTINGS_MAX_CONCURRENT_STREAMS 0).
  kRefusedStream,
  // HTTP/2: the peer did not answer a PING in time.
  kPingTimeout,
  // HTTP/2: another call had already opened a multiplexed connection to the
  // same address when this one completed its handshake; one is kept.
  kDuplicate,
  // HTTP/1.1: bytes arrived while no request was outstanding (a late body
  // after HEAD, bytes after a 204, a second response). Whatever they are,
  // the next request would read them as its response: closed at once.
  kUnsolicitedData,
};

inline constexpr std::array<CloseReason, 18> kAllCloseReasons = {
    CloseReason::kIdleTimeout,     CloseReason::kMaxIdle,
    CloseReason::kUnhealthy,       CloseReason::kPeerClosed,
    CloseReason::kConnectionClose, CloseReason::kProtocolError,
    CloseReason::kIoError,         CloseReason::kCallAborted,
    CloseReason::kMaxLifetime,     CloseReason::kLeaked,
    CloseReason::kEvictRequest,    CloseReason::kDrain,
    CloseReason::kShutdown,        CloseReason::kGoaway,
    CloseReason::kRefusedStream,   CloseReason::kPingTimeout,
    CloseReason::kDuplicate,       CloseReason::kUnsolicitedData,
};

// The stable snake_case name used in stats, metrics and logs.
inline std::string_view CloseReasonName(CloseReason reason) {
  switch (reason) {
    case CloseReason::kIdleTimeout: return "idle_timeout";
    case CloseReason::kMaxIdle: return "max_idle";
    case CloseReason::kUnhealthy: return "unhealthy";
    case CloseReason::kPeerClosed: return "peer_closed";
    case CloseReason::kConnectionClose: return "connection_close";
    case CloseReason::kProtocolError: return "protocol_error";
    case CloseReason::kIoError: return "io_error";
    case CloseReason::kCallAborted: return "call_aborted";
    case CloseReason::kMaxLifetime: return "max_lifetime";
    case CloseReason::kLeaked: return "leaked";
    case CloseReason::kEvictRequest: return "evict_request";
    case CloseReason::kDrain: return "drain";
    case CloseReason::kShutdown: return "shutdown";
    case CloseReason::kGoaway: return "goaway";
    case CloseReason::kRefusedStream: return "refused_stream";
    case CloseReason::kPingTimeout: return "ping_timeout";
    case CloseReason::kDuplicate: return "duplicate";
    case CloseReason::kUnsolicitedData: return "unsolicited_data";
  }
  return "unknown";
}

}  // namespace egress

#endif  // EGRESS_CLIENT_CORE_CONNECTION_CLOSE_REASON_H_
