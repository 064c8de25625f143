// MetricsServer: egressd's small HTTP/1.1 server on --metrics_listen for
// Prometheus and people:
//   GET /metrics    the Prometheus text format (pool_metrics.h)
//   GET /           the pool's live web page (page_html.h)
//   GET /api/pool   the JSON the page polls (pool_json.h)
// HEAD is answered like GET without the body; another method on those paths
// is 405, any other path 404. One request per connection (the response says
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
};

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
  // The reply to a request head (request line and header fields).
  Reply Answer(absl::string_view head);
  Reply Route(absl::string_view method, absl::string_view path);
  std::string RenderMetrics(int* status);
  std::string RenderPool();

  HttpClient* const client_;
  const CallMetrics* const call_metrics_;
  const MetricsServerOptions options_;
  const absl::Time started_ = absl::Now();
  ListenAddress bound_;
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
