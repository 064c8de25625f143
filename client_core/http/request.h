// Request and Response: one HTTP exchange as client_core's callers see it,
// independent of the protocol (HTTP/1.1 or HTTP/2) that carries it.
#ifndef EGRESS_CLIENT_CORE_HTTP_REQUEST_H_
#define EGRESS_CLIENT_CORE_HTTP_REQUEST_H_

#include <cstdint>
#include <string>

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
};

// Which pooled connection served an exchange.
struct ConnectionUse {
  uint64_t connection_id = 0;
  // The connection had completed an exchange before this one.
  bool reused = false;
  // "ip:port" of the origin (or proxy) the connection is connected to.
  std::string remote_address;
};

struct Response {
  int status_code = 0;
  std::string reason;
  HeaderList headers;
  std::string body;
  // "http/1.1" or "h2".
  std::string protocol;
  ConnectionUse connection;
};

}  // namespace egress

#endif  // EGRESS_CLIENT_CORE_HTTP_REQUEST_H_
