// MetricsServer: egressd's small HTTP/1.1 server on --metrics_listen for
// Prometheus and people:
//   GET /metrics    the Prometheus text format (pool_metrics.h)
//   GET /           the pool's live web page (page_html.h)
//   GET /api/pool   the JSON the page polls (pool_json.h)
// HEAD is answered like GET without the body; another method on those paths
// is 405, any other path 404.
//
// Who may ask:
//   - Every request must name this listener in its Host header: the address
//     the connection came in on, the configured host, "localhost", or a name
//     in allowed_hosts (any port); otherwise 403. A page from another origin
//     whose name was re-pointed at this address (DNS rebinding) has its own
//     name in Host, so it cannot read the pool through a browser.
//   - /metrics: anyone who can connect (Prometheus scrapes the Pod IP).
//   - / and /api/*: open when the listener is bound to loopback (judged on
//     the address bound); otherwise only with the admin token, as
//     "Authorization: Bearer <token>" or as the password of HTTP Basic
//     authentication (any user name), which a browser asks for after the 401.
//     Without a configured token they answer 403 off loopback. One request per connection (the response says
// Connection: close); a request head must arrive within the request timeout
// and fit in 16 KiB.
//
// Threads: the server runs on an io_context and a thread of its own, so a
// slow scraper or page never holds up egressd's event loops; rendering
// takes the pool's lock only for the moment PoolSnapshot and
// ListConnections copy its state.
//
// Lifetime: Start() binds and starts serving; Stop() (or the destructor)
// stops accepting, closes open connections and joins the thread. `client`
// and `call_metrics` must outlive the server.
#ifndef EGRESS_SERVER_METRICS_METRICS_SERVER_H_
#define EGRESS_SERVER_METRICS_METRICS_SERVER_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "asio/awaitable.hpp"
#include "asio/io_context.hpp"
#include "asio/ip/tcp.hpp"
#include "client_core/call/http_client.h"
#include "server/listen_address.h"
#include "server/metrics/call_metrics.h"
#include "server/metrics/pool_events.h"

namespace egress::metrics {

struct MetricsServerOptions {
  // Per-address series in /metrics (--metrics_per_address).
  bool per_address = false;
  // Connections the page lists (lowest ids first); it says how many more.
  size_t max_connections_listed = 500;
  // Connections served at once; one more is closed at once unanswered.
  size_t max_clients = 64;
  // A request head must be complete within this.
  absl::Duration request_timeout = absl::Seconds(10);
  // listeners.admin_token: lets / and /api/* answer off loopback to a
  // request that carries it. Empty: they answer only on loopback.
  std::string admin_token;
  // Host header names accepted besides the connection's own address, the
  // configured host and "localhost" (listeners.metrics_allowed_hosts), e.g.
  // the name Prometheus or a port-forward uses. Lower-case.
  std::vector<std::string> allowed_hosts;
};

// Whether a request's Host header `host` ("name", "name:port",
// "10.0.0.7:9902", "[::1]:9902") names this listener: the IP the connection
// came in on (`local`), the configured host, "localhost", or an entry of
// `allowed_hosts`. The port is not compared (a port-forward changes it).
bool HostNamesListener(absl::string_view host, const asio::ip::address& local,
                       absl::string_view configured_host,
                       const std::vector<std::string>& allowed_hosts);

class MetricsServer {
 public:
  // Binds `address` (port 0: a free port) and starts serving. kUnavailable
  // naming the address when it cannot be bound (in use, not local), or its
  // host name does not resolve.
  static absl::StatusOr<std::unique_ptr<MetricsServer>> Start(
      const ListenAddress& address, HttpClient* client,
      const CallMetrics* call_metrics, const MetricsServerOptions& options);
  ~MetricsServer();

  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  // The address bound (an IP, also when a name was configured), with the
  // port the kernel chose for port 0.
  const ListenAddress& bound() const { return bound_; }

  // Stops accepting, closes open connections, joins the thread. Idempotent;
  // not from the server's own thread.
  void Stop();

 private:
  // One response, before it is framed.
  struct Reply {
    int status = 200;
    std::string content_type;
    std::string body;
    std::vector<std::pair<std::string, std::string>> headers;
  };

  MetricsServer(HttpClient* client, const CallMetrics* call_metrics,
                const MetricsServerOptions& options);

  asio::awaitable<void> Accept();
  // Answers one request on `socket` (already in open_) and closes it.
  asio::awaitable<void> Serve(std::shared_ptr<asio::ip::tcp::socket> socket);
  // The reply to a request head (request line and header fields) that came
  // in on `local`, the connection's own address.
  Reply Answer(absl::string_view head, const asio::ip::address& local);
  Reply Route(absl::string_view method, absl::string_view path,
              absl::string_view authorization);
  std::string RenderMetrics(int* status);
  std::string RenderPool();

  HttpClient* const client_;
  const CallMetrics* const call_metrics_;
  const MetricsServerOptions options_;
  const absl::Time started_ = absl::Now();
  ListenAddress bound_;
  // The host as configured, lower-case: a name the Host header may carry.
  std::string configured_host_;
  // Bound to loopback: / and /api/* need no token.
  bool page_open_ = false;
  PoolEventLog events_;

  asio::io_context context_{1};
  asio::ip::tcp::acceptor acceptor_{context_};
  // Touched only on the server's thread.
  absl::flat_hash_set<asio::ip::tcp::socket*> open_;
  std::thread thread_;
  bool stopped_ = false;
};

// The response's status line text: 200 -> "OK", 404 -> "Not Found", ...
absl::string_view ReasonPhrase(int status);

}  // namespace egress::metrics

#endif  // EGRESS_SERVER_METRICS_METRICS_SERVER_H_
