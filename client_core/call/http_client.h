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
// HTTP/2: a stream the peer did not process (REFUSED_STREAM, or above a
// GOAWAY's last-stream-id) is retried on another stream, whatever the
// method, up to kMaxAttempts in all. A connection idle longer than
// Http2Options::ping_before_reuse_after_idle is PINGed first; no PONG closes
// it (ping_timeout) and the call moves on.
//
// Coalescing (HTTP/2, https only): before connecting, a call may take a
// stream on another host's HTTP/2 connection when one of its host's resolved
// IPs is that connection's remote IP, the connection's verified certificate
// covers its host, and both hosts get the same destination options. A 421
// Misdirected Request there stops coalescing onto that connection and the
// call is retried on its own.
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
#include "client_core/call/leak_registry.h"
#include "client_core/call/stream_consumer.h"
#include "client_core/connection/connector.h"
#include "client_core/connection/pool.h"
#include "client_core/connection/pool_options.h"
#include "client_core/http/request.h"
#include "client_core/http1/limits.h"
#include "client_core/net/call_abort.h"
#include "client_core/net/event_loops.h"

namespace egress {

struct HttpClientOptions {
  // Event loops (threads doing network I/O). 0: one per CPU core.
  size_t event_loops = 0;
  PoolOptions pool;
  // Routes, DNS and connect racing (connector.h).
  ConnectorOptions connector;
  // Resolves host names; null: DNS (c-ares) with a TTL-clamped cache. A
  // StaticResolver pins hosts (tests, --resolve).
  std::shared_ptr<Resolver> resolver;
  Http1Limits http1;
  // Largest response body a call will buffer (kResourceExhausted past it).
  // Default 4 MiB, gRPC's default largest message a client accepts.
  uint64_t max_response_body_bytes = 4 * 1024 * 1024;
  // A streamed call whose consumer holds a body piece longer than this is
  // reported as a leak (leak_registry.h). Default 30 s.
  absl::Duration leak_threshold = absl::Seconds(30);
};

// Sums over calls since start, for PoolStats: where calls' time went in
// total (divide by the counts for averages).
struct CallTotals {
  uint64_t succeeded = 0;
  uint64_t failed = 0;
  // Succeeded calls served by a new or a reused connection.
  uint64_t on_new_connection = 0;
  uint64_t on_reused_connection = 0;
  // Sums of CallTiming over succeeded calls.
  absl::Duration queue_wait;
  absl::Duration dns;
  absl::Duration connect;
  absl::Duration tls;
  absl::Duration first_byte;
  absl::Duration total;
};

// A streamed call in progress (HttpClient::Stream).
//
// Thread-safe. Cancel() may be called from any thread, any number of times:
// a pending wait for the consumer ends, the rest of the response is drained
// (if short) or the connection closed, and OnDone(kCancelled) follows unless
// the call already ended.
class StreamCall : public std::enable_shared_from_this<StreamCall> {
 public:
  void Cancel() ABSL_LOCKS_EXCLUDED(mu_);
  // Aborts the call's socket I/O; Cancel() uses it.
  const std::shared_ptr<CallAbort>& abort() const { return abort_; }

 private:
  friend class HttpClient;
  class Sink;
  using ResumeHandler = absl::AnyInvocable<void(bool)>;

  explicit StreamCall(std::shared_ptr<StreamConsumer> consumer)
      : consumer_(std::move(consumer)) {}
  bool cancelled() const ABSL_LOCKS_EXCLUDED(mu_);
  // Resumes the wait numbered `wait` with `proceed`, if it is still pending.
  void Resume(uint64_t wait, bool proceed) ABSL_LOCKS_EXCLUDED(mu_);

  const std::shared_ptr<StreamConsumer> consumer_;
  const std::shared_ptr<CallAbort> abort_ = std::make_shared<CallAbort>();
  mutable Mutex mu_;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t wait_number_ ABSL_GUARDED_BY(mu_) = 0;
  ResumeHandler pending_ ABSL_GUARDED_BY(mu_);
  asio::any_io_executor pending_executor_ ABSL_GUARDED_BY(mu_);
  // Touched only by the call's coroutine.
  bool leak_reported_ = false;
  uint64_t bytes_moved_ = 0;
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
  //
  // The returned CallAbort cancels the call from any thread: pending socket
  // I/O ends at once and `done` gets kCancelled (a connection mid-exchange
  // is closed, one not yet written to stays pooled).
  std::shared_ptr<CallAbort> Execute(Request request, Callback done);

  // Runs `request` and streams the response to `consumer` with flow control
  // (stream_consumer.h); errors as for Execute, reported through OnDone.
  // No response body limit applies. The returned StreamCall cancels it.
  std::shared_ptr<StreamCall> Stream(Request request,
                                     std::shared_ptr<StreamConsumer> consumer);

  // Stops taking calls, waits up to `grace` for in-flight calls, then fails
  // the rest and closes every connection, and waits (up to
  // kShutdownCallbackWait) until their callbacks have run. Idempotent; the
  // destructor calls it with a zero grace.
  void Shutdown(absl::Duration grace);
  static constexpr absl::Duration kShutdownCallbackWait = absl::Seconds(5);

  ConnectionPool& pool() { return *pool_; }
  Connector& connector() { return connector_; }
  const LeakRegistry& leaks() const { return leaks_; }
  CallTotals totals() const ABSL_LOCKS_EXCLUDED(totals_mu_);
  const HttpClientOptions& options() const { return options_; }

 private:
  friend class StreamCall::Sink;
  // Admits the call (in-flight limits), takes the idle fast path, and spawns
  // Run; `done` gets the result. `stream` is null for a unary call.
  void Start(Request request, std::shared_ptr<StreamCall> stream,
             std::shared_ptr<CallAbort> abort, Callback done);
  asio::awaitable<absl::StatusOr<Response>> Run(
      Request request, Address address, Lease idle, absl::Time started,
      std::shared_ptr<StreamCall> stream, std::shared_ptr<CallAbort> abort);
  // Runs the exchange on the connection's own event loop.
  asio::awaitable<ExchangeResult> ExchangeOn(
      std::shared_ptr<Connection> connection, const Request& request,
      ExchangeSink* sink, CallAbort* abort);
  // A stream on another host's HTTP/2 connection at one of this host's IPs
  // whose verified certificate covers this host (pool.h,
  // TryAcquireCoalesced); a null lease if none.
  asio::awaitable<Lease> TryCoalesce(const Address& address,
                                     absl::Time deadline);
  // PINGs an HTTP/2 connection on its own event loop (http2_options.h).
  asio::awaitable<absl::Status> PingOn(std::shared_ptr<Connection> connection);
  // Attempts per call: the first, plus retries of the safe kinds (stale
  // keep-alive connection once; HTTP/2 streams the peer did not process).
  static constexpr int kMaxAttempts = 3;
  void CallEnded();
  void Count(const absl::StatusOr<Response>& result)
      ABSL_LOCKS_EXCLUDED(totals_mu_);

  const HttpClientOptions options_;
  EventLoops loops_;
  // Declared after loops_: destroyed first, while the io_contexts still exist
  // (its timer and sockets belong to them); the loops are joined before.
  std::unique_ptr<ConnectionPool> pool_;
  Connector connector_;
  LeakRegistry leaks_;
  mutable Mutex totals_mu_;
  CallTotals totals_ ABSL_GUARDED_BY(totals_mu_);
  std::atomic<bool> shutting_down_{false};
  std::atomic<int64_t> in_flight_{0};
  // Shutdown waits on it for in_flight_ to reach 0.
  Mutex drain_mu_;
};

}  // namespace egress

#endif  // EGRESS_CLIENT_CORE_CALL_HTTP_CLIENT_H_
