// RawHttpExchange: one HTTP/1.1 request over a fresh TCP connection to
// 127.0.0.1, sent byte for byte as given, the response read to EOF and
// parsed (status, headers, body). For testing egressd's own small HTTP
// servers (/metrics, the pool page) with requests a client library would
// not send. Blocking; a 10 s receive timeout bounds every read.
#ifndef EGRESS_TESTS_SUPPORT_RAW_HTTP_H_
#define EGRESS_TESTS_SUPPORT_RAW_HTTP_H_

#include <map>
#include <string>

#include "absl/status/statusor.h"

namespace egress::testing {

struct RawHttpReply {
  int status = 0;
  // Lower-case names.
  std::map<std::string, std::string> headers;
  std::string body;
};

// Sends `request` as is to 127.0.0.1:`port` and reads the response to EOF.
// Errors: kUnavailable (no connection), kDataLoss (no or malformed head).
absl::StatusOr<RawHttpReply> RawHttpExchange(int port,
                                             const std::string& request);

// `method` `path` with Host and Connection: close.
absl::StatusOr<RawHttpReply> RawHttp(int port, const std::string& method,
                                     const std::string& path);

}  // namespace egress::testing

#endif  // EGRESS_TESTS_SUPPORT_RAW_HTTP_H_
