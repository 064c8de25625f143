// Listen addresses of egressd's servers, "HOST:PORT" as gRPC takes them, and
// what they bind.
//
// Vocabulary:
//   host      the address as configured: an IP address or a host name.
//   bound     the one IP address a listener really binds: the host's IP, or
//             the first address its name resolves to (ResolveListenAddress).
//   loopback  a bound address only this host (this pod) can connect to:
//             127.0.0.0/8 or ::1. A wildcard (0.0.0.0, ::) binds every
//             interface and is never loopback.
//
// Whether a listener is loopback is judged on the bound address, never on
// how the host is spelled: "127.attacker.example" may resolve to 0.0.0.0.
#ifndef EGRESS_SERVER_LISTEN_ADDRESS_H_
#define EGRESS_SERVER_LISTEN_ADDRESS_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "asio/ip/address.hpp"
#include "asio/ip/tcp.hpp"

namespace egress {

struct ListenAddress {
  // As given: an IPv4 address, a host name, or a bracketed IPv6 address.
  std::string host;
  // 0 asks the kernel for a free port.
  uint16_t port = 0;

  // "host:port", ready for grpc::ServerBuilder::AddListeningPort.
  std::string ToString() const;
  // The host as an IP address (brackets dropped); nullopt for a name.
  std::optional<asio::ip::address> Ip() const;
  // True if the host is an IP address and a loopback one (127.0.0.0/8,
  // [::1]). False for a name, "localhost" included: only its resolved
  // address says where it binds (ResolveListenAddress, IsLoopbackAddress).
  bool IsLoopback() const;
};

// Parses "HOST:PORT" ("127.0.0.1:7070", "[::1]:0", "0.0.0.0:7070",
// "localhost:7070"). `flag` names the flag in the error message, e.g.
// "--listen: 'x' is not HOST:PORT (e.g. 127.0.0.1:7070)".
absl::StatusOr<ListenAddress> ParseListenAddress(absl::string_view flag,
                                                 absl::string_view text);

// The endpoint a listener on `address` binds: the host's IP, or the first
// address its name resolves to for a listening socket (getaddrinfo with
// AI_PASSIVE: /etc/hosts, then DNS), with `address.port`. egressd resolves
// each listener once, judges that address and binds exactly it, so a name
// cannot be judged as one address and bound as another. kUnavailable naming
// the host when it does not resolve.
absl::StatusOr<asio::ip::tcp::endpoint> ResolveListenAddress(
    const ListenAddress& address);

// True for 127.0.0.0/8, ::1 and IPv4-mapped 127.0.0.0/8: only this host can
// connect. False for a wildcard (0.0.0.0, ::) and every other address.
bool IsLoopbackAddress(const asio::ip::address& address);

// "10.0.0.7:7070", "[::1]:7070": a bound endpoint as gRPC's
// AddListeningPort takes it and as egressd prints it.
std::string EndpointString(const asio::ip::tcp::endpoint& endpoint);

}  // namespace egress

#endif  // EGRESS_SERVER_LISTEN_ADDRESS_H_
