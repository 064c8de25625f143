// HTTP proxies: the CONNECT tunnel for https:// (OkHttp's createTunnel /
// connectTunnel), and the absolute-form request head for http://.
//
// A *tunnel* is a TCP connection to an HTTP proxy on which the proxy
// answered `CONNECT host:port` with a 2xx: from then on the connection is a
// byte pipe to host:port, and the caller runs TLS to the origin over it
// (TlsClient::Handshake with the origin's Address, exactly as direct).
//
// One EstablishTunnel() call sends CONNECT requests on one TCP connection:
//
//   CONNECT host:port HTTP/1.1
//   Host: host:port
//   Proxy-Connection: Keep-Alive
//   User-Agent: egressd
//   Proxy-Authorization: Basic ...      (when the proxy has credentials and
//                                        preemptive_auth is on, or after a
//                                        407 asked for them)
//
// and reads each answer:
//   - 2xx: the tunnel is up (kEstablished). Bytes the proxy sent after the
//     response head and before TLS are an error (a proxy that talks first
//     would corrupt the TLS handshake; OkHttp refuses them too).
//   - 407: the challenge is answered with the configured Basic credentials
//     and CONNECT is sent again; on the same connection when the proxy keeps
//     it open (its 407 body is read and dropped), otherwise the call returns
//     kReconnect: the caller opens a NEW TCP connection to the same proxy and
//     calls EstablishTunnel again with the same TunnelProgress, which carries
//     the Proxy-Authorization to send.
//   - anything else: an error naming the proxy and its status line.
// At most TunnelOptions::max_attempts (21, as OkHttp) CONNECT requests are
// sent over all connections of one TunnelProgress.
//
// When credentials count as *rejected* (kPermissionDenied, no more
// attempts): a 407 answering a request that carried them, for a realm
// already answered or after they were sent preemptively. A 407 for a new
// realm (a *two-step challenge*, e.g. chained proxies asking one after the
// other) is answered once more. So wrong credentials cost one round trip,
// not 21: repeating a rejected password invites account lock-outs.
//
// Error codes (messages name the proxy as Proxy::Describe() and the target;
// they never hold the password or the Authorization value, even when a
// proxy echoes them in its reason phrase):
//   kPermissionDenied  407 with no credentials configured, credentials
//                      rejected, a challenge with no Basic scheme, a 401 or
//                      403 answer ("proxy 'corp' (http://p:3128) refused
//                      CONNECT to a.test:443: HTTP/1.1 403 Forbidden"), or
//                      more than max_attempts 407s;
//   kUnavailable       I/O failures, the proxy closing, a malformed answer,
//                      any other status (5xx, 3xx, ...), unexpected bytes
//                      after the 2xx ("proxy ... sent 7 unexpected bytes
//                      after the CONNECT response");
//   kResourceExhausted the answer's head exceeds Http1Limits;
//   kDeadlineExceeded  `deadline` passed; kCancelled: `abort` fired;
//   kInvalidArgument   a target host with bytes no host has.
//
// Threading: runs on the socket's executor (an event loop); the socket must
// not be used by anyone else meanwhile.
#ifndef EGRESS_CLIENT_CORE_PROXY_HTTP_TUNNEL_H_
#define EGRESS_CLIENT_CORE_PROXY_HTTP_TUNNEL_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "asio/awaitable.hpp"
#include "asio/ip/tcp.hpp"
#include "client_core/http/request.h"
#include "client_core/http1/limits.h"
#include "client_core/net/call_abort.h"
#include "client_core/proxy/proxy_rules.h"

namespace egress {

struct TunnelOptions {
  // Send the credentials with the first CONNECT instead of waiting for a
  // 407. Default true: it saves a round trip, and credentials configured
  // for a proxy are meant for that proxy anyway.
  bool preemptive_auth = true;
  // The User-Agent of CONNECT requests.
  std::string user_agent = "egressd";
  // CONNECT requests per tunnel, over every connection. Default 21
  // (OkHttp's MAX_TUNNEL_ATTEMPTS).
  int max_attempts = 21;
  // Bounds on the proxy's answer head.
  Http1Limits limits;
  // A 407 body longer than this is not read to the end: the connection is
  // given up and the next attempt reconnects. Default 64 KiB.
  size_t max_discarded_body_bytes = 64 * 1024;
};

// State carried over the attempts of one tunnel, across reconnects.
// Start with a default-constructed one. Holds a secret (the
// Proxy-Authorization value): never log it.
struct TunnelProgress {
  // CONNECT requests sent so far, over every connection.
  int attempts = 0;
  // TCP connections used so far (EstablishTunnel calls).
  int connections = 0;
  // The Proxy-Authorization value the next CONNECT carries; empty: none.
  std::string proxy_authorization;
  // The credentials went out before any challenge asked for them.
  bool sent_preemptively = false;
  // Realms whose 407 challenge the credentials answered.
  std::vector<std::string> answered_realms;
  // The status line of the last non-2xx answer ("HTTP/1.1 407 ..."), for
  // errors and logs.
  std::string last_status_line;
};

enum class TunnelOutcome {
  // The socket is a tunnel to the target: run TLS over it.
  kEstablished,
  // The proxy closed (or would not keep) the connection after a 407 that
  // will be answered: close this socket, open a new TCP connection to the
  // same proxy, and call EstablishTunnel again with the same progress.
  kReconnect,
};

// Runs CONNECT for `target_host`:`target_port` (a host name or IP literal,
// IPv6 without brackets) on `socket`, connected to `proxy` (an HTTP proxy).
// See the file comment for the exchange and the errors. On an error the
// socket is left open; the caller closes it.
asio::awaitable<absl::StatusOr<TunnelOutcome>> EstablishTunnel(
    asio::ip::tcp::socket& socket, const Proxy& proxy,
    const std::string& target_host, uint16_t target_port, absl::Time deadline,
    CallAbort* abort, TunnelProgress* progress,
    const TunnelOptions& options = TunnelOptions());

// Opens a new TCP connection to the proxy (for kReconnect), on the caller's
// executor. Errors are reported as they are.
using ProxyReconnect =
    std::function<asio::awaitable<absl::StatusOr<asio::ip::tcp::socket>>()>;

struct Tunnel {
  // The connection carrying the tunnel (the first one, or the last
  // reconnect's).
  asio::ip::tcp::socket socket;
  // CONNECT requests sent and TCP connections used.
  int attempts = 0;
  int connections = 0;
};

// EstablishTunnel over `socket`, reconnecting through `reconnect` as often
// as the proxy asks (within max_attempts). The convenience for callers that
// do not need to interleave anything between attempts.
asio::awaitable<absl::StatusOr<Tunnel>> ConnectTunnel(
    asio::ip::tcp::socket socket, const Proxy& proxy,
    const std::string& target_host, uint16_t target_port, absl::Time deadline,
    CallAbort* abort, ProxyReconnect reconnect,
    const TunnelOptions& options = TunnelOptions());

// "Basic " + base64(username ":" password): the Proxy-Authorization value
// for `proxy`; empty when it has no credentials. A secret.
std::string ProxyAuthorizationValue(const Proxy& proxy);

// The HTTP/1.1 request head for an http:// request sent to an HTTP proxy
// (RFC 9112 section 3.2.2): as SerializeRequestHead, but the request-target
// is the absolute form ("GET http://a.test:8080/x?y HTTP/1.1"), and a
// Proxy-Authorization header follows Host when `proxy` has credentials and
// `with_credentials` is true (a caller answering 407s can send the first
// request without them). Host stays the origin's authority. Precondition:
// ValidateRequest(request).ok() and request.url.scheme == "http" (https://
// goes through a tunnel, never in absolute form).
std::string SerializeProxiedRequestHead(const Request& request,
                                        const Proxy& proxy,
                                        bool with_credentials = true);

// "a.test:443", "[::1]:443": the CONNECT request-target and Host value.
std::string TunnelAuthority(const std::string& host, uint16_t port);

}  // namespace egress

#endif  // EGRESS_CLIENT_CORE_PROXY_HTTP_TUNNEL_H_
