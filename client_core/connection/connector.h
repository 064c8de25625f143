// Connector: resolves an Address and opens a TCP connection to it, racing its
// routes.
//
// The steps of one Connect():
//   1. Resolve the host through the Resolver (an IP literal skips it). DNS
//      never blocks the event loop (see resolver.h).
//   2. Order the routes (RouteSelector): IPv6 and IPv4 interleaved, routes
//      that failed recently last.
//   3. Race them ("Happy Eyeballs", RFC 8305): start an attempt on the first
//      route; start the next one every `fallback_delay` while earlier attempts
//      are still pending, and at once when an attempt fails. The first attempt
//      to connect wins; the others are cancelled and their sockets closed.
//   4. Through a proxy (the Address names it): steps 1-3 dial the proxy,
//      whose addresses the egress policy does not judge (the origin's IP is,
//      when the URL names one); then a CONNECT tunnel (HTTP proxy, https),
//      a SOCKS5 connect, or nothing (HTTP proxy, http: absolute-form
//      requests on the proxy's connection).
//   5. For https, the TLS handshake (TlsClient: verification, ALPN,
//      resumption); the protocol is HTTP/2 when ALPN selected h2, or for
//      http when the destination asks for h2c with prior knowledge.
//   6. Record the outcome in the RouteDatabase: a route whose attempt failed
//      or timed out is failed; so is one that was still pending when a route
//      started after it won (it had a head start of at least one fallback
//      delay and lost: RFC 8305 section 5 would prefer the winner next time
//      too). The winning route is forgotten (it works).
//
// Ownership and threading: Connect() runs on the calling coroutine's
// executor, which must not run two handlers at once (an EventLoops loop); the
// Connection is created on that executor. A Connector is thread-safe: one
// serves every event loop (its RouteDatabase and Resolver are thread-safe).
// It must outlive its Connect() calls.
#ifndef EGRESS_CLIENT_CORE_CONNECTION_CONNECTOR_H_
#define EGRESS_CLIENT_CORE_CONNECTION_CONNECTOR_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "asio/awaitable.hpp"
#include "asio/ip/address.hpp"
#include "asio/ip/tcp.hpp"
#include "client_core/connection/address.h"
#include "client_core/connection/connection.h"
#include "client_core/http2/http2_options.h"
#include "client_core/proxy/proxy_rules.h"
#include "client_core/policy/egress_policy.h"
#include "client_core/route/resolver.h"
#include "client_core/route/route.h"
#include "client_core/route/route_database.h"
#include "client_core/tls/tls_client.h"

namespace egress {

class ConnectListener;

struct ConnectorOptions {
  // Bound on each TCP connect attempt; the call's deadline caps it too. An
  // attempt that times out counts as failed (and the next route starts).
  absl::Duration connect_timeout = absl::Seconds(10);
  // Head start of each attempt before the next route's attempt starts.
  // Default 250 ms: RFC 8305's recommended "Connection Attempt Delay", and
  // what Chrome and OkHttp use. Longer than a healthy connect on most
  // networks, short enough that a blackholed address costs little.
  absl::Duration fallback_delay = absl::Milliseconds(250);
  // How long a failed route is tried last (RouteDatabase).
  absl::Duration failed_route_expiry = RouteDatabase::kDefaultExpiry;
  // Options of the default resolver, CachingResolver(SystemResolver), built
  // when the Connector is given none.
  ResolverOptions resolver;
  // Judges every resolved address before it is dialled; null allows all
  // (client_core's default; egressd always sets one).
  std::shared_ptr<const EgressPolicy> policy;
  // TLS and protocol choice per destination; null: every destination gets
  // the defaults (verification against the system trust store, modern TLS,
  // ALPN h2 + http/1.1).
  std::shared_ptr<TlsClient> tls;
  // How HTTP/2 connections run.
  Http2Options http2;
  // The proxies an Address's `proxy` names; null: none (every Address is
  // direct).
  std::shared_ptr<const ProxySelector> proxies;
  // Told of every failed Connect() with its reason; may be null. Must
  // outlive the Connector.
  ConnectListener* listener = nullptr;
};

// Why a Connect() failed, counted per reason (PoolStats, metrics).
enum class ConnectFailure {
  kEgressPolicy,  // every resolved address denied, or cleartext refused
  kDns,           // resolution failed or found nothing
  kRefused,       // a route answered with a reset (connection refused)
  kTimeout,       // every route timed out (connect_timeout)
  kNetwork,       // unreachable, or another socket error
  kTls,           // the TLS handshake failed (TlsClient counts the cause)
  kDeadline,      // the call's deadline passed first
  kProxy,         // the proxy refused (CONNECT status, SOCKS5 reply, 407)
};
inline constexpr size_t kConnectFailureCount = 8;
// "egress_policy", "dns", "refused", "timeout", "network", "tls",
// "deadline", "proxy".
std::string_view ConnectFailureName(ConnectFailure failure);

// Receives the Connector's failures, each under its ConnectFailure (the pool
// only learns that a connecting slot ended: pool.h ConnectFailed). Called on
// the connecting coroutine's thread with no lock held, before Connect()
// returns the error; must be thread-safe and quick.
class ConnectListener {
 public:
  virtual ~ConnectListener() = default;
  // The connection that would have had id `connection_id` (never opened) to
  // `address` failed for `failure`.
  virtual void OnConnectFailed(uint64_t connection_id, const Address& address,
                               ConnectFailure failure) = 0;
};

struct ConnectResult {
  std::shared_ptr<Connection> connection;
  // The route that won.
  Route route;
  // Time spent resolving (zero for an IP literal or a cached answer's
  // near-zero).
  absl::Duration dns_time;
  // From the first attempt's start until the winner connected (TCP).
  absl::Duration connect_time;
  // The TLS handshake (zero for cleartext).
  absl::Duration tls_time;
  // Attempts started (1 when the first route connected before the fallback
  // delay).
  int attempts = 0;
};

class Connector {
 public:
  // `resolver` null: CachingResolver(SystemResolver) with options.resolver.
  explicit Connector(const ConnectorOptions& options,
                     std::shared_ptr<Resolver> resolver = nullptr);

  Connector(const Connector&) = delete;
  Connector& operator=(const Connector&) = delete;

  // Opens a connection with id `connection_id` to `address` (steps above).
  // `address` must stay valid until the returned awaitable completes.
  // Errors:
  //   - kPermissionDenied: the egress policy's host allow-list refused the
  //     host (before DNS), or the policy denied every resolved address (the
  //     first denial, naming its rule), or the destination does not allow
  //     cleartext and the scheme is http;
  //   - kUnavailable: the resolver's error ("DNS lookup of 'x' failed: ...",
  //     "... found no address", "no static address for host 'x'"), or every
  //     route failed: "connect to http://h:80 failed: 1.2.3.4:80: Connection
  //     refused; 1.2.3.5:80: timed out", or the TLS handshake failed
  //     (tls_client.h);
  //   - kDeadlineExceeded: `deadline` passed first, while resolving ("DNS
  //     lookup of 'x' timed out after ...") or connecting ("deadline exceeded
  //     while connecting to http://h:80 (...failures so far...)").
  asio::awaitable<absl::StatusOr<ConnectResult>> Connect(const Address& address,
                                                         uint64_t connection_id,
                                                         absl::Time deadline);

  // The checks that judge an origin before any DNS lookup and before a route
  // is chosen, the same for every route kind: the egress policy's
  // CheckDestination (an IP literal by the address rules, a name by the name
  // rules), and the destination rule's allow_cleartext for "http". OK, or
  // kPermissionDenied naming the rule. HttpClient applies them to every
  // request and every redirect hop (an http:// Address through an HTTP proxy
  // names no origin, and its pooled connection serves every origin);
  // Connect() applies them to its Address again. Thread-safe.
  absl::Status CheckOrigin(absl::string_view scheme, absl::string_view host,
                           uint16_t port) const;

  RouteDatabase& route_database() { return route_database_; }
  // Failed Connect() calls since start, indexed by ConnectFailure.
  std::array<uint64_t, kConnectFailureCount> failures() const;
  Resolver& resolver() { return *resolver_; }
  const ConnectorOptions& options() const { return options_; }
  TlsClient& tls() { return *tls_; }
  // The proxy named `name` (an Address's `proxy`), or null.
  std::shared_ptr<const Proxy> FindProxy(const std::string& name) const;

  // Proxy credentials go out only when asked for (issue 14: a proxy that
  // does not consume Proxy-Authorization hands it to the origin): with the
  // first request when the proxy is configured preemptive_auth, otherwise
  // once the proxy has answered a request without them with 407. The flag
  // is per proxy and one-way: once set, every later CONNECT and
  // absolute-form request to that proxy carries them. Null for a name that
  // is not a configured proxy with credentials. Thread-safe, lock-free.
  std::shared_ptr<std::atomic<bool>> ProxyAskedForCredentials(
      const std::string& name) const;
  // Whether a request to proxy `name` now carries its credentials.
  bool SendsProxyCredentials(const std::string& name) const;

 private:
  // The steps of Connect(), each a function of its own so that Connect()
  // reads as the list above (and so that a coroutine frame holds a step's
  // locals only while the step runs: every connecting call has one). A step
  // that fails counts the failure (CountFailure) and returns the error
  // Connect() returns.
  //
  // The connect the race won: its socket and route, the attempts started,
  // and the time from the first attempt's start to the win.
  struct RaceWinner {
    asio::ip::tcp::socket socket;
    Route route;
    int attempts = 0;
    absl::Duration connect_time;
  };
  // Counts a failed Connect() by kind and tells the listener.
  void CountFailure(ConnectFailure failure, const Address& address,
                    uint64_t connection_id);
  // What is judged before any lookup: the origin (CheckOrigin),
  // the proxy (`*proxy`, null when direct) and the origin's IP literal
  // through it, and the deadline.
  absl::Status CheckBeforeDialling(const Address& address,
                                   uint64_t connection_id, absl::Time deadline,
                                   std::shared_ptr<const Proxy>* proxy);
  // Steps 1 and the policy: the addresses of `dial_host` (the origin's, or
  // the proxy's when `through_proxy`) that may be dialled; `*dns_time` is
  // the lookup's time.
  asio::awaitable<absl::StatusOr<std::vector<asio::ip::address>>>
  ResolveForDialling(const Address& address, uint64_t connection_id,
                     const std::string& dial_host, bool through_proxy,
                     absl::Time deadline, absl::Duration* dns_time);
  // Steps 2, 3 and 6: orders the routes to `dial_address` at `ips`, races
  // them and records the outcome. `address` names the call's origin in
  // errors.
  asio::awaitable<absl::StatusOr<RaceWinner>> RaceRoutes(
      const Address& address, const Address& dial_address,
      uint64_t connection_id, const std::vector<asio::ip::address>& ips,
      absl::Time deadline);
  // Step 4 on `socket`, connected to `proxy` at `proxy_endpoint`: a CONNECT
  // tunnel or a SOCKS5 connect to `address`'s origin (`socket` becomes the
  // tunnel's), or nothing for an HTTP proxy's http:// connection.
  asio::awaitable<absl::Status> ThroughProxy(
      asio::ip::tcp::socket& socket, const Proxy& proxy,
      const Address& address,
      const asio::ip::tcp::endpoint& proxy_endpoint, absl::Time deadline);
  // Step 5: TLS for https, then the Connection for the protocol, started,
  // into `result->connection` (and `result->tls_time`).
  asio::awaitable<absl::Status> Establish(asio::ip::tcp::socket socket,
                                          const Address& address,
                                          uint64_t connection_id,
                                          const std::shared_ptr<const Proxy>& proxy,
                                          const Route& route,
                                          absl::Time deadline,
                                          ConnectResult* result);

  const ConnectorOptions options_;
  const std::shared_ptr<Resolver> resolver_;
  const std::shared_ptr<TlsClient> tls_;
  std::array<std::atomic<uint64_t>, kConnectFailureCount> failures_{};
  RouteDatabase route_database_;
  // ProxyAskedForCredentials' flags: one per configured proxy with
  // credentials, made at construction (the map never changes after).
  absl::flat_hash_map<std::string, std::shared_ptr<std::atomic<bool>>>
      proxy_asked_;
};

// The process-wide default resolver: CachingResolver(SystemResolver) with
// default options. Created on first use, never destroyed.
std::shared_ptr<Resolver> DefaultResolver();

}  // namespace egress

#endif  // EGRESS_CLIENT_CORE_CONNECTION_CONNECTOR_H_
