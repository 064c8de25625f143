// The access log: one JSON line per Fetch or FetchStream, written when the
// call completes (log.h has the line's shape). On by default
// (logging.access_log, --access_log); written whatever the log level.
//
// A line, wrapped here:
//   {"ts":"...","level":"info","msg":"access","rpc":"Fetch","call_id":7,
//    "caller":"ipv4:127.0.0.1:53412","method":"GET","scheme":"https",
//    "host":"api.example.com","port":443,"path":"/v1/items",
//    "grpc_code":"OK","status":200,"protocol":"h2","connection_id":3,
//    "reused":true,"total_ms":12.204,"queue_ms":0.000,"dns_ms":0.000,
//    "connect_ms":0.000,"tls_ms":0.000,"first_byte_ms":11.873,
//    "bytes_in":5120,"bytes_out":0}
// A failed call has "grpc_code" (e.g. "UNAVAILABLE") and "error" (the
// message the caller got) instead of status ... first_byte_ms.
//
// Redaction: the URL is logged as scheme, host, port and path only: never
// its query string, fragment or userinfo, and a URL egressd could not parse
// is not logged at all ("url_invalid":true). No header is logged. Error
// messages are client_core's, which never quote header values or queries.
//
// Thread-safe.
#ifndef EGRESS_SERVER_LOG_ACCESS_LOG_H_
#define EGRESS_SERVER_LOG_ACCESS_LOG_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "client_core/http/request.h"

namespace egress::log {

// What a call was, beside its result.
struct AccessRecord {
  // "Fetch" or "FetchStream".
  absl::string_view rpc;
  uint64_t call_id = 0;
  // The gRPC peer.
  absl::string_view caller;
  absl::string_view method;
  // As the caller sent it.
  absl::string_view url;
  // Request body bytes, and response body bytes delivered to the caller.
  uint64_t bytes_out = 0;
  uint64_t bytes_in = 0;
};

// The access line for `record` and `result`, '\n' included.
std::string FormatAccessLine(absl::Time ts, const AccessRecord& record,
                             const absl::StatusOr<Response>& result);

// Turns the access log on or off (on at start).
void SetAccessLogEnabled(bool enabled);
bool AccessLogEnabled();

// Writes the line to Default() if the access log is on.
void LogAccess(const AccessRecord& record,
               const absl::StatusOr<Response>& result);

}  // namespace egress::log

#endif  // EGRESS_SERVER_LOG_ACCESS_LOG_H_
