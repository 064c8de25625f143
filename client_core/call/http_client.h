// HttpClient: client_core's entry point. Executes Requests over the shared
// ConnectionPool on a set of event loops and reports each Response once.
//
// The path of one call (DESIGN.md): validate; take an idle pooled connection
// for the request's Address, or connect a new one; run the exchange on the
// connection's event loop; release the connection to the pool.
//
// The keep-alive race: an origin may close an idle connection just as egressd
// reuses it. When an exchange on a *reused* connection fails before any byte
// of the response arrived, and the request was not written or is idempotent
// (GET, HEAD, OPTIONS, TRACE, PUT, DELETE), the call is retried once on a
// fresh connection, and the caller never sees the stale connection's error.
//
// Limits: the pool's in-flight limits reject a call at once, its connection
// limits make it wait in a bounded queue (see pool.h); both with
// kResourceExhausted naming the limit.
//
// Thread-safety: Execute() and pool() may be used from any thread.
// Destruction closes every connection and joins the event loops; no callback
// runs after the destructor returns.
#ifndef EGRESS_CLIENT_CORE_CALL_HTTP_CLIENT_H_
#define EGRESS_CLIENT_CORE_CALL_HTTP_CLIENT_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "asio/awaitable.hpp"
#include "client_core/base/sync.h"
#include "client_core/connection/connector.h"
#include "client_core/connection/pool.h"
#include "client_core/connection/pool_options.h"
#include "client_core/http/request.h"
#include "client_core/http1/limits.h"
#include "client_core/net/event_loops.h"

namespace egress {

struct HttpClientOptions {
  // Event loops (threads doing network I/O). 0: one per CPU core.
  size_t event_loops = 0;
  PoolOptions pool;
  ConnectOptions connect;
  Http1Limits http1;
  // Largest response body a call will buffer (kResourceExhausted past it).
  // Default 4 MiB, gRPC's default largest message a client accepts.
  uint64_t max_response_body_bytes = 4 * 1024 * 1024;
};

class HttpClient {
 public:
  using Callback = absl::AnyInvocable<void(absl::StatusOr<Response>) &&>;

  // `listener` (may be null) receives pool events; it must outlive the
  // client.
  explicit HttpClient(const HttpClientOptions& options,
                      PoolListener* listener = nullptr);
  ~HttpClient();

  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Runs `request` and invokes `done` exactly once: inline with
  // kInvalidArgument when the request is malformed (see ValidateRequest),
  // otherwise later on an event-loop thread. Error codes as in DESIGN.md:
  // kUnavailable (DNS, connect, connection failure, malformed response),
  // kDeadlineExceeded (request.deadline), kResourceExhausted (limits),
  // kCancelled (client shutting down).
  void Execute(Request request, Callback done);

  // Stops taking calls, waits up to `grace` for in-flight calls, then fails
  // the rest and closes every connection. Idempotent; the destructor calls it
  // with a zero grace.
  void Shutdown(absl::Duration grace);

  ConnectionPool& pool() { return *pool_; }
  const HttpClientOptions& options() const { return options_; }

 private:
  asio::awaitable<absl::StatusOr<Response>> Run(Request request, Lease idle,
                                                absl::Time started);
  // Runs the exchange on the connection's own event loop.
  asio::awaitable<ExchangeResult> ExchangeOn(
      std::shared_ptr<Connection> connection, const Request& request);
  void CallEnded();

  const HttpClientOptions options_;
  EventLoops loops_;
  // Declared after loops_: destroyed first, while the io_contexts still exist
  // (its timer and sockets belong to them); the loops are joined before.
  std::unique_ptr<ConnectionPool> pool_;
  std::atomic<bool> shutting_down_{false};
  std::atomic<int64_t> in_flight_{0};
  // Shutdown waits on it for in_flight_ to reach 0.
  Mutex drain_mu_;
};

}  // namespace egress

#endif  // EGRESS_CLIENT_CORE_CALL_HTTP_CLIENT_H_
