// RequestLimits: bounds on what a caller may ask egressd to send, checked
// before anything is sent (HttpClient, after ValidateRequest).
//
// Each protects an origin and egressd from a caller's mistake (a URL or a
// header section servers refuse anyway: nginx answers 414 and 431 past 8 KiB
// lines) and egressd's memory from a huge body. Sizes are counted as they
// go on the wire in HTTP/1.1:
//   - URL: scheme "://" authority path-and-query (what Url::ToString gives);
//   - header bytes: name + ": " + value + CRLF for each caller header;
//   - body: its length.
// A request over a limit fails with kResourceExhausted naming the limit and
// both sizes, e.g.
//   request body is 5000000 bytes, over the limit of 4194304
//   (max_request_body_bytes)
//
// Thread-safety: pure function.
#ifndef EGRESS_CLIENT_CORE_CALL_REQUEST_LIMITS_H_
#define EGRESS_CLIENT_CORE_CALL_REQUEST_LIMITS_H_

#include <cstddef>
#include <cstdint>

#include "absl/status/status.h"
#include "client_core/http/request.h"

namespace egress {

// 0 means no limit for every field.
struct RequestLimits {
  // Default 16 KiB: above what common servers accept on a request line
  // (nginx and Apache 8 KiB, IIS 16 KiB), so only nonsense is refused here.
  size_t max_url_bytes = 16 * 1024;
  // Default 100 fields and 64 KiB, like Envoy's max_headers_count and
  // max_request_headers_kb (60 KiB).
  size_t max_header_count = 100;
  size_t max_header_bytes = 64 * 1024;
  // Default 4 MiB (gRPC's default largest message).
  uint64_t max_body_bytes = 4 * 1024 * 1024;
};

absl::Status CheckRequestLimits(const Request& request,
                                const RequestLimits& limits);

}  // namespace egress

#endif  // EGRESS_CLIENT_CORE_CALL_REQUEST_LIMITS_H_
