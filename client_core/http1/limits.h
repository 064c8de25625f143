// Limits the HTTP/1.1 codec enforces on what an origin sends. Each protects
// egressd's memory from a hostile or broken origin; exceeding one is a
// protocol error for that response and the connection is not reused.
#ifndef EGRESS_CLIENT_CORE_HTTP1_LIMITS_H_
#define EGRESS_CLIENT_CORE_HTTP1_LIMITS_H_

#include <cstddef>

namespace egress {

struct Http1Limits {
  // Status line plus all header lines, CRLFs included. Default 64 KiB
  // (nginx's large_client_header_buffers allow 4 x 8 KiB per line).
  size_t max_head_bytes = 64 * 1024;
  // Number of header fields in one response (trailers included).
  size_t max_header_count = 128;
  // Length of one chunk-size line, extensions included.
  size_t max_chunk_line_bytes = 1024;
  // Interim (1xx) responses skipped before the final one.
  size_t max_interim_responses = 16;
};

}  // namespace egress

#endif  // EGRESS_CLIENT_CORE_HTTP1_LIMITS_H_
