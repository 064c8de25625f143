// Http2Connection: a Connection speaking HTTP/2 (RFC 9113) through nghttp2,
// carrying many exchanges (streams) at once. See connection.h for the
// Connection contract; this says what HTTP/2 adds.
//
// Driven by the connection's event loop: a reader coroutine feeds every byte
// from the Transport to nghttp2 (nghttp2_session_mem_recv); a writer flushes
// nghttp2's output (nghttp2_session_mem_send) whenever there is some, one
// write at a time. Each Exchange submits a stream and awaits its events.
//
// Allocation limit: min(Http2Options::max_concurrent_streams, the peer's
// SETTINGS_MAX_CONCURRENT_STREAMS), updated live when the peer's SETTINGS
// change (the observer is told); before the peer's first SETTINGS, 1
// (allocation_limit_known() false), so that the pool does not pile streams
// onto a connection on a guess. A peer allowing no streams
// (SETTINGS_MAX_CONCURRENT_STREAMS 0) stops new exchanges (observer:
// kRefusedStream), and the streams nghttp2 holds unsent fail at once with
// not_processed, never at their deadlines.
//
// Failures:
//   - GOAWAY: no new exchanges (observer: kGoaway); streams above its
//     last-stream-id fail with not_processed (the caller retries them
//     elsewhere); the others finish.
//   - REFUSED_STREAM: the exchange fails with not_processed and
//     refused_stream; the second one on this connection stops its new
//     exchanges (observer: kRefusedStream). Only a stream's first reset
//     counts: a REFUSED_STREAM after another reset, or after the stream
//     closed, changes nothing (the request may have been processed).
//   - Another stream reset: the exchange fails (kUnavailable naming the
//     error code); the connection stays.
//   - PING keep-alive (Http2Options): no PONG within ping_timeout → dead:
//     observer kPingTimeout, streams in progress fail with kUnavailable.
//   - Transport error or peer close: every stream fails; observer
//     kPeerClosed / kIoError; a connection-level protocol error:
//     kProtocolError.
//
// A stream's failure never sets ExchangeResult::close_reason while the
// connection lives (the pool learns of GOAWAY, refused streams and missed
// PINGs through the observer, and closes the connection when its last
// exchange ends); close_reason is set only once the connection is dead
// (transport closed), on every result from then on.
//
// Ownership: must be owned by a shared_ptr (Start() uses
// shared_from_this()). The reader, writer and PING coroutines hold a
// reference until the connection ends (peer close, error, missed PING) or
// Close() is called, so an owner that drops it must Close() it first.
//
// Threading: confined to executor(), except allocation_limit(),
// ProbeHealth() and stream_counts() (any thread).
#ifndef EGRESS_CLIENT_CORE_HTTP2_HTTP2_CONNECTION_H_
#define EGRESS_CLIENT_CORE_HTTP2_HTTP2_CONNECTION_H_

#include <atomic>
#include <cstdint>
#include <memory>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "client_core/connection/connection.h"
#include "client_core/http2/http2_options.h"

namespace egress {

class Http2Connection final : public Connection,
                              public std::enable_shared_from_this<Http2Connection> {
 public:
  Http2Connection(uint64_t id, Address address,
                  std::unique_ptr<Transport> transport,
                  const Http2Options& options);
  ~Http2Connection() override;

  int allocation_limit() const override;
  bool allocation_limit_known() const override;
  void Start() override;
  asio::awaitable<void> ExchangeInto(
      const Request& request, const Http1Limits& limits,
      uint64_t max_body_bytes, absl::Time deadline, ExchangeResult* result,
      ExchangeSink* sink = nullptr, CallAbort* abort = nullptr) override;
  Health ProbeHealth() const override;
  void Close() override;

  // Sends a PING and waits for its PONG, at most `timeout`. OK, or
  // kUnavailable (no PONG in time: the connection is then dead, as for a
  // missed keep-alive PING). Runs on executor().
  asio::awaitable<absl::Status> Ping(absl::Duration timeout);

  // When the peer last sent a frame, and streams started / succeeded /
  // failed (for ListConnections). Safe from any thread.
  struct StreamCounts {
    uint64_t started = 0;
    uint64_t succeeded = 0;
    uint64_t failed = 0;
    uint32_t peer_max_concurrent_streams = 0;  // 0 until the first SETTINGS
    // When bytes from the peer last arrived (InfinitePast: never).
    absl::Time last_frame_received = absl::InfinitePast();
  };
  StreamCounts stream_counts() const;

 private:
  // The nghttp2 session and everything on the loop (http2_connection.cc);
  // kept out of this header so that nghttp2 stays an implementation detail.
  class Impl;
  const std::unique_ptr<Impl> impl_;
};

}  // namespace egress

#endif  // EGRESS_CLIENT_CORE_HTTP2_HTTP2_CONNECTION_H_
