// Request and Response: one HTTP exchange as client_core's callers see it,
// independent of the protocol (HTTP/1.1 or HTTP/2) that carries it.
#ifndef EGRESS_CLIENT_CORE_HTTP_REQUEST_H_
#define EGRESS_CLIENT_CORE_HTTP_REQUEST_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "client_core/http/header.h"
#include "client_core/url/url.h"

namespace egress {

struct Request {
  // An HTTP token, e.g. "GET".
  std::string method;
  Url url;
  // Caller's header fields. Host, Content-Length, Transfer-Encoding,
  // Connection, Keep-Alive, Upgrade, TE and Proxy-Connection are connection
  // management that egressd owns; ValidateRequest rejects them.
  HeaderList headers;
  std::string body;
  // The whole call must finish by then (absl::InfiniteFuture(): no limit).
  absl::Time deadline = absl::InfiniteFuture();
  // Identifies the call in logs and leak reports.
  uint64_t call_id = 0;
  // Who asked (e.g. the gRPC peer "ipv4:10.0.0.7:51234"), for leak reports
  // and logs.
  std::string caller;

  // The rest is per-call behaviour beyond one exchange (HttpClient checks
  // the ranges; see http_client.h).
  //
  // The caller's identity for the per-caller in-flight limit
  // (HttpClientOptions::max_in_flight_per_caller), e.g. a metadata value or
  // the peer's IP. Empty: the call is not counted per caller.
  std::string caller_id;
  // Follow 301, 302, 303, 307 and 308 responses (redirect.h), at most
  // max_redirects (0..20) times. An https:// to http:// redirect is refused
  // unless allow_insecure_redirects.
  bool follow_redirects = false;
  int max_redirects = 10;
  bool allow_insecure_redirects = false;
  // Send Accept-Encoding and decode the response body (content_decoder.h);
  // the caller must then not set Accept-Encoding itself.
  bool decompress = false;
  // Retries (0..5) after a connect failure (DNS, TCP, TLS: nothing was
  // sent), for idempotent methods only, within the client's retry budget.
  int connect_retries = 0;
  // Read timeouts for this call (zero: the client's own, see
  // HttpClientOptions); the shorter of the two applies.
  absl::Duration first_byte_timeout;
  absl::Duration idle_read_timeout;
};

// One redirect a call followed.
struct RedirectHop {
  // The URL that answered with the redirect (query included), and its
  // status code (301, 302, 303, 307 or 308).
  std::string url;
  int status_code = 0;
};

// Which pooled connection served an exchange.
struct ConnectionUse {
  uint64_t connection_id = 0;
  // The connection had completed an exchange before this one.
  bool reused = false;
  // "ip:port" of the origin (or proxy) the connection is connected to.
  std::string remote_address;
};

// Where a call's time went, each phase measured from the call's start
// (Execute) unless it says otherwise. Phases that did not happen are zero.
struct CallTiming {
  // Waiting in the pool's pending queue for a connection.
  absl::Duration queue_wait;
  // DNS lookup, TCP connect and TLS handshake of a new connection.
  absl::Duration dns;
  absl::Duration connect;
  absl::Duration tls;
  // From the call's start until the connection was acquired, the request
  // written, the first response byte received, and the call done.
  absl::Duration connection_acquired;
  absl::Duration request_written;
  absl::Duration first_byte;
  absl::Duration total;
};

struct Response {
  int status_code = 0;
  std::string reason;
  HeaderList headers;
  std::string body;
  // Trailer fields of a chunked body (rare).
  HeaderList trailers;
  // "http/1.1" or "h2".
  std::string protocol;
  ConnectionUse connection;
  CallTiming timing;
  // Redirects followed before this response, in order (empty unless
  // Request::follow_redirects).
  std::vector<RedirectHop> redirects;
  // This response's URL when redirects were followed; empty otherwise.
  std::string final_url;
  // The Content-Encoding egressd decoded ("gzip", "deflate", "br"); empty
  // when the body is as the origin sent it. When set, the Content-Encoding
  // and Content-Length fields are gone from `headers`.
  std::string decoded_content_encoding;
  // Connects retried by Request::connect_retries.
  int connect_retries = 0;
};

}  // namespace egress

#endif  // EGRESS_CLIENT_CORE_HTTP_REQUEST_H_
