// Listen addresses of egressd's servers, "HOST:PORT" as gRPC takes them.
#ifndef EGRESS_SERVER_LISTEN_ADDRESS_H_
#define EGRESS_SERVER_LISTEN_ADDRESS_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace egress {

struct ListenAddress {
  // As given: an IPv4 address, a host name, or a bracketed IPv6 address.
  std::string host;
  // 0 asks the kernel for a free port.
  uint16_t port = 0;

  // "host:port", ready for grpc::ServerBuilder::AddListeningPort.
  std::string ToString() const;
  // True for 127.0.0.0/8, [::1] and "localhost".
  bool IsLoopback() const;
};

// Parses "HOST:PORT" ("127.0.0.1:7070", "[::1]:0", "0.0.0.0:7070",
// "localhost:7070"). `flag` names the flag in the error message, e.g.
// "--listen: 'x' is not HOST:PORT (e.g. 127.0.0.1:7070)".
absl::StatusOr<ListenAddress> ParseListenAddress(absl::string_view flag,
                                                 absl::string_view text);

}  // namespace egress

#endif  // EGRESS_SERVER_LISTEN_ADDRESS_H_
