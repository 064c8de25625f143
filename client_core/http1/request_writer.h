// Serialises a Request into HTTP/1.1 wire bytes (RFC 9112).
#ifndef EGRESS_CLIENT_CORE_HTTP1_REQUEST_WRITER_H_
#define EGRESS_CLIENT_CORE_HTTP1_REQUEST_WRITER_H_

#include <string>

#include "absl/status/status.h"
#include "client_core/http/request.h"

namespace egress {

// OK when `request` can be sent faithfully: the method is a token; every
// header passes ValidateHeaderField; no connection-management header
// (Host, Content-Length, Transfer-Encoding, Connection, Keep-Alive, Upgrade,
// TE, Proxy-Connection) is set by the caller, since egressd owns framing and
// connection reuse. The one exception is "Connection: close": the caller
// asks that the connection not be reused after this request. Errors are kInvalidArgument with a message naming the
// field, e.g. "header 'X-A' value contains a CR (0x0d) at offset 3".
absl::Status ValidateRequest(const Request& request);

// The request line, a Host header from request.url.Authority(), the caller's
// headers in order, Content-Length when the body is non-empty or the method
// is POST, PUT or PATCH, and the empty line. The body is not included (the
// caller writes it after, to avoid a copy). Precondition:
// ValidateRequest(request).ok().
std::string SerializeRequestHead(const Request& request);

// The field is "Connection: close" (case-insensitive, whitespace trimmed).
bool IsConnectionClose(const HeaderField& field);

}  // namespace egress

#endif  // EGRESS_CLIENT_CORE_HTTP1_REQUEST_WRITER_H_
