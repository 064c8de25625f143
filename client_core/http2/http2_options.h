// Http2Options: how egressd runs its HTTP/2 connections. Every field says its
// default and why; egressd's flags and config map onto these.
#ifndef EGRESS_CLIENT_CORE_HTTP2_HTTP2_OPTIONS_H_
#define EGRESS_CLIENT_CORE_HTTP2_HTTP2_OPTIONS_H_

#include <cstdint>

#include "absl/time/time.h"

namespace egress {

struct Http2Options {
  // The client's own cap on concurrent streams per connection; the
  // connection's allocation limit is min(this, the peer's
  // SETTINGS_MAX_CONCURRENT_STREAMS). 0: the peer's limit alone. Default
  // 100: RFC 9113's recommended minimum for servers, and what keeps one
  // slow connection from holding a thousand calls (OkHttp #5950, #8386).
  uint32_t max_concurrent_streams = 100;

  // Our SETTINGS_INITIAL_WINDOW_SIZE (per stream) and the connection window.
  // Default 1 MiB per stream, 16 MiB per connection: the 64 KiB defaults
  // cap one stream at 64 KiB per round trip (5 MB/s at 12 ms), far below a
  // sidecar's link; 16 MiB lets 16 streams run at full window.
  uint32_t stream_window_bytes = 1 << 20;
  uint32_t connection_window_bytes = 16 << 20;

  // Our SETTINGS_MAX_HEADER_LIST_SIZE: the largest response header list we
  // accept (decoded size); a larger one resets the stream. Default 256 KiB,
  // as Http1Limits' header bytes.
  uint32_t max_header_list_bytes = 256 * 1024;

  // A PING is sent after this long without any frame from the peer; no
  // answer within ping_timeout marks the connection dead (no new exchanges,
  // reason ping_timeout; streams in progress fail). 0: no keep-alive pings.
  // Default 30 s, the pool's keep-alive: a dead peer behind a silent NAT is
  // found before the pool would reuse the connection.
  absl::Duration ping_interval = absl::Seconds(30);
  absl::Duration ping_timeout = absl::Seconds(5);

  // A connection idle at least this long is PINGed before it serves a call
  // (HttpClient awaits the PONG, bounded by ping_timeout). Default 10 s.
  absl::Duration ping_before_reuse_after_idle = absl::Seconds(10);
};

}  // namespace egress

#endif  // EGRESS_CLIENT_CORE_HTTP2_HTTP2_OPTIONS_H_
