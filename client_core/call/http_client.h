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
// Proxies (ConnectorOptions::proxies): the selector orders the routes to an
// origin (direct or proxies); a connect that fails through one proxy
// (unreachable, or a refusing tunnel) moves on to the next, and that proxy
// is tried last by later calls for a while (ProxyDatabase).
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
// kResourceExhausted naming the limit. Before that, a request over
// RequestLimits (URL, header count and bytes, body) and a caller over
// max_in_flight_per_caller (caller_limits.h) are refused the same way,
// before anything is sent.
//
// Read timeouts (read_watchdog.h): first byte (until the response head) and
// idle read (between body pieces), DEADLINE_EXCEEDED naming the timeout; the
// call's deadline caps both. Enforced through the call's ExchangeSink and
// CallAbort, so the codecs need not know them.
//
// Redirects (redirect.h), only when the request asks: each hop is a new
// exchange through the pool (the egress policy judges every hop), and the
// hops are reported in Response::redirects. A redirect's own body is read
// and dropped (at most Connection::kMaxDrainBytes, else its connection is
// closed).
//
// Connect retries, only when the request asks (Request::connect_retries) and
// only for idempotent methods: a connect that failed (DNS, TCP, TLS, every
// route; nothing was sent) is tried again after a jittered backoff (up to
// 25 ms, doubling, at most 250 ms), when the RetryBudget (retry_budget.h)
// has room; otherwise the connect error says the budget was exhausted.
//
// Decompression (content_decoder.h), only when the request asks: egressd
// sends Accept-Encoding and decodes gzip, deflate and br, bounded by
// max_decompression_ratio and a size (unary: max_response_body_bytes;
// streamed: max_decompressed_bytes): past either, kResourceExhausted.
// Otherwise bodies pass through untouched.
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
#include <optional>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "asio/awaitable.hpp"
#include "client_core/base/sync.h"
#include "client_core/call/caller_limits.h"
#include "client_core/call/leak_registry.h"
#include "client_core/call/read_watchdog.h"
#include "client_core/call/request_limits.h"
#include "client_core/call/retry_budget.h"
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
  // What callers may send (request_limits.h).
  RequestLimits request_limits;
  // Read timeouts of every exchange (read_watchdog.h); zero: off (the
  // call's deadline alone). A Request may set shorter ones.
  absl::Duration first_byte_timeout = absl::ZeroDuration();
  absl::Duration idle_read_timeout = absl::ZeroDuration();
  // Decoding (Request::decompress): the largest decoded / encoded ratio once
  // the decoded body passes 1 MiB (0: none), and the largest decoded body of
  // a streamed call (0: none; a unary call stops at max_response_body_bytes).
  uint64_t max_decompression_ratio = 100;
  uint64_t max_decompressed_bytes = uint64_t{1} << 30;
  // Bounds connect retries (Request::connect_retries).
  RetryBudgetOptions retry_budget;
  // Calls one caller (Request::caller_id) may have in flight; 0: no limit.
  size_t max_in_flight_per_caller = 0;
  // Pool partition by caller: a connection carries the exchanges of one
  // caller (Request::caller_id) only; the caller is part of its Address.
  // HTTP/1.1 pairs responses with requests by order alone, so an origin
  // that sends bytes nobody asked for while two callers' exchanges follow
  // each other on a connection can hand one caller the other's response;
  // partitioned, it can only hand a caller its own. Costs a connection (and
  // its handshake) per caller and origin instead of per origin; measured in
  // docs/benchmarks.md. Off by default.
  bool partition_pool_by_caller = false;
};

// Counts of what the safety and resilience features did, since start.
struct ResilienceTotals {
  // Connect retries started, and those the retry budget refused.
  uint64_t connect_retries = 0;
  uint64_t retry_budget_exhausted = 0;
  uint64_t redirects_followed = 0;
  // Calls refused by max_in_flight_per_caller, and by RequestLimits.
  uint64_t rejected_per_caller = 0;
  uint64_t rejected_request_limits = 0;
  // Exchanges ended by the read timeouts.
  uint64_t first_byte_timeouts = 0;
  uint64_t idle_read_timeouts = 0;
  // Responses decoded, and decodings stopped by a size or ratio limit.
  uint64_t responses_decoded = 0;
  uint64_t decompression_limit_hits = 0;
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
  // kInvalidArgument when the request is malformed (see ValidateRequest and
  // ValidateCallOptions) and with kResourceExhausted when it is over a
  // RequestLimit or its caller over max_in_flight_per_caller, otherwise
  // later on an event-loop thread. Error codes as in DESIGN.md:
  // kUnavailable (DNS, connect, connection failure, malformed response or
  // body encoding, invalid redirect), kDeadlineExceeded (request.deadline,
  // read timeouts), kResourceExhausted (limits, decompression bombs, too
  // many redirects), kPermissionDenied (egress policy, https to http
  // redirect), kCancelled (client shutting down).
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
  ResilienceTotals resilience() const;
  const RetryBudget& retry_budget() const { return retry_budget_; }
  const CallerLimiter& caller_limiter() const { return callers_; }
  const HttpClientOptions& options() const { return options_; }

  // OK when the request's per-call options are in range: max_redirects
  // 0..20, connect_retries 0..kMaxConnectRetries, no negative read timeout,
  // and no Accept-Encoding field together with decompress (egressd sets
  // it). kInvalidArgument naming the field otherwise. Execute and Stream
  // check it.
  static absl::Status ValidateCallOptions(const Request& request);
  static constexpr int kMaxConnectRetries = 5;

 private:
  // Receives an exchange's response for a call: streams it to the
  // StreamCall's consumer, or buffers it (unary); decodes it; spots a
  // redirect to follow; tells the ReadWatchdog about progress.
  class ResponseSink;
  // Holds a RetryBudget slot until released (at the latest with the call's
  // hop).
  class RetrySlot;
  // Why the call coroutines below write their results through pointers and
  // keep big locals in short-lived sub-coroutines: g++ 12 gives every local
  // and temporary of a coroutine body, and its return value, a slot of its
  // own in the frame for as long as the coroutine lives, and with 10,000
  // calls in flight these frames are a large part of egressd's memory
  // (docs/benchmarks.md, scenario 5). A call waiting for a connection holds
  // only Run's and RunHop's frames. In them, callables and results are
  // named locals, never temporaries inside a co_await expression: g++ 12
  // destroys such temporaries twice (seen here as a connection freed while
  // pooled).
  //
  // A redirect to follow (status 0: none): its status code and Location.
  struct Redirect {
    int status = 0;
    std::string location;
  };
  // What a call ends with: the result, and the address whose in-flight
  // count (BeginRequest) the call still holds, if any. With them on the
  // heap, the state Run carries from hop to hop (Run's frame is the one
  // every waiting call holds; this object's size class had room).
  struct RunResult {
    absl::StatusOr<Response> result;
    std::optional<Address> counted;
    int connect_retries = 0;
    std::vector<RedirectHop> redirects;  // the hops followed so far
    Redirect redirect;                   // the last hop's, if any
  };
  // The read timeouts of one exchange (zero: off).
  struct ReadTimeouts {
    absl::Duration first_byte;
    absl::Duration idle_read;
    bool any() const {
      return first_byte > absl::ZeroDuration() ||
             idle_read > absl::ZeroDuration();
    }
  };
  struct Exchanged {
    ExchangeResult result;
    // The read timeout that ended the exchange (ReadWatchdog::Expired).
    int expired = 0;
  };
  // What RunHop does after one exchange.
  enum class AfterExchange {
    kDone,                     // the hop has its result or redirect
    kRetry,                    // HTTP/2 did not process the request
    kRetryOnFreshConnection,   // a stale pooled connection failed
    kRetryWithoutCoalescing,   // 421 on a coalesced connection
  };
  // Admits the call (request limits, caller and in-flight limits), takes
  // the idle fast path, and spawns Run; `done` gets the result. `stream` is
  // null for a unary call.
  void Start(Request request, std::shared_ptr<StreamCall> stream,
             std::shared_ptr<CallAbort> abort, Callback done);
  // The whole call: one hop, then one per redirect followed; ends with
  // `*run` set. `routes`: the ways to the origin in order (routes[0] gave
  // `address`).
  asio::awaitable<void> Run(Request request, Address address,
                            std::vector<ProxyChoice> routes, Lease idle,
                            absl::Time started,
                            std::shared_ptr<StreamCall> stream,
                            std::shared_ptr<CallAbort> abort, RunResult* run);
  // Moves a call on to `run->redirect`'s target: `*request`, `*routes` and
  // `*address` become the next hop's, `run->redirects` records the hop, and
  // the in-flight count moves to the new origin. An error ends the call.
  absl::Status FollowRedirect(Request* request,
                              std::vector<ProxyChoice>* routes,
                              Address* address, RunResult* run);
  // One request and its response, with the safe retries (stale connection,
  // HTTP/2 refused streams, 421) and the opted-in connect retries; a failed
  // connect moves on to the next route, which changes `*hop_address` (and a
  // retried round `*hop_routes`). `*idle`: a pooled connection for the
  // first attempt, if any (taken). Ends with `run->result` set, or with
  // `run->redirect` set to follow. `timing` and `run->connect_retries`
  // accumulate over hops; `run->redirects` are the hops before this one (a
  // streamed head carries them).
  asio::awaitable<void> RunHop(const Request& request, Address* hop_address,
                               std::vector<ProxyChoice>* hop_routes,
                               Lease* idle, absl::Time started,
                               const std::shared_ptr<StreamCall>& stream,
                               const std::shared_ptr<CallAbort>& abort,
                               CallTiming* timing, RunResult* run);
  // What RunHop does after connecting for a lease.
  enum class AfterConnect {
    kConnected,  // `*lease` has the connection
    kNextRoute,  // this route failed; another is left
    kRetry,      // every route failed; retry the round (backed off already)
    kFailed,     // `run->result` has the error
  };
  // Opens a connection to `address` through `route` for RunHop's `*lease`;
  // `another_route`: routes are left after this one.
  asio::awaitable<AfterConnect> ConnectLease(
      const Request& request, const Address& address, const ProxyChoice& route,
      bool another_route, RetrySlot* retry_slot,
      const std::shared_ptr<CallAbort>& abort, CallTiming* timing,
      Lease* lease, RunResult* run);
  // One exchange of RunHop on `lease`'s connection (attempt number
  // `attempt`), which it gives back to the pool; with kDone, `run->result`
  // or `run->redirect` is set.
  asio::awaitable<AfterExchange> ExchangeOnce(
      const Request& request, const Address& address, const Lease& lease,
      int attempt, absl::Time started,
      const std::shared_ptr<StreamCall>& stream,
      const std::shared_ptr<CallAbort>& abort, ReadTimeouts timeouts,
      bool wants_sink, CallTiming* timing, RunResult* run);
  // The error of an exchange a read timeout ended (counted).
  absl::Status ReadTimeoutError(ReadWatchdog::Expired expired,
                                const Request& request,
                                const ReadTimeouts& timeouts);
  // The ways to reach `url`'s origin, in order: direct, or proxies (one
  // that failed recently goes last). Never empty.
  std::vector<ProxyChoice> SelectRoutes(const Url& url);
  // The pool's Address for `request`'s URL reached through `route` (with
  // its caller as the partition when partition_pool_by_caller is on).
  Address AddressFor(const Request& request, const ProxyChoice& route) const;
  // Whether a call to `address` may use another host's HTTP/2 connection:
  // https, direct.
  static bool MayCoalesceOnto(const Address& address) {
    return address.scheme == "https" && address.proxy.empty();
  }
  // The read timeouts for `request`: the shorter of its own and the
  // client's, for each.
  ReadTimeouts TimeoutsFor(const Request& request) const;
  // Runs the exchange on the connection's own event loop, with a
  // ReadWatchdog there when `timeouts` has any (it aborts `abort`), into
  // `*out`.
  asio::awaitable<void> ExchangeOn(std::shared_ptr<Connection> connection,
                                   const Request& request, ResponseSink* sink,
                                   std::shared_ptr<CallAbort> abort,
                                   ReadTimeouts timeouts, Exchanged* out);
  // ExchangeOn run on `connection`'s own loop (from another one).
  asio::awaitable<void> ExchangeOnItsLoop(
      const std::shared_ptr<Connection>& connection, const Request& request,
      ResponseSink* sink, const std::shared_ptr<CallAbort>& abort,
      ReadTimeouts timeouts, Exchanged* out);
  // Waits before connect retry number `retry` (1-based): full jitter over
  // 25 ms * 2^(retry-1), at most 250 ms; ends early at `deadline` or when
  // `abort` is aborted.
  asio::awaitable<void> RetryBackoff(int retry, absl::Time deadline,
                                     CallAbort* abort);
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
  RetryBudget retry_budget_;
  CallerLimiter callers_;
  std::atomic<uint64_t> redirects_followed_{0};
  std::atomic<uint64_t> rejected_request_limits_{0};
  std::atomic<uint64_t> first_byte_timeouts_{0};
  std::atomic<uint64_t> idle_read_timeouts_{0};
  std::atomic<uint64_t> responses_decoded_{0};
  std::atomic<uint64_t> decompression_limit_hits_{0};
  EventLoops loops_;
  // Declared after loops_: destroyed first, while the io_contexts still exist
  // (its timer and sockets belong to them); the loops are joined before.
  std::unique_ptr<ConnectionPool> pool_;
  Connector connector_;
  LeakRegistry leaks_;
  // Proxies that failed recently are tried last (thread-safe).
  ProxyDatabase proxy_db_;
  mutable Mutex totals_mu_;
  CallTotals totals_ ABSL_GUARDED_BY(totals_mu_);
  std::atomic<bool> shutting_down_{false};
  std::atomic<int64_t> in_flight_{0};
  // Shutdown waits on it for in_flight_ to reach 0.
  Mutex drain_mu_;
};

}  // namespace egress

#endif  // EGRESS_CLIENT_CORE_CALL_HTTP_CLIENT_H_
