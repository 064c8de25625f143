#include "client_core/call/http_client.h"

#include <exception>
#include <optional>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "asio/async_result.hpp"
#include "asio/co_spawn.hpp"
#include "asio/post.hpp"
#include "asio/steady_timer.hpp"
#include "asio/this_coro.hpp"
#include "asio/use_awaitable.hpp"
#include "client_core/connection/connector.h"
#include "client_core/http1/request_writer.h"
#include "client_core/http2/http2_connection.h"

namespace egress {
namespace {

size_t LoopCount(size_t requested) {
  if (requested > 0) return requested;
  const unsigned cores = std::thread::hardware_concurrency();
  return cores == 0 ? 1 : cores;
}

// RFC 9110 9.2.2: repeating these has the same effect as sending once.
bool IsIdempotent(absl::string_view method) {
  return method == "GET" || method == "HEAD" || method == "OPTIONS" ||
         method == "TRACE" || method == "PUT" || method == "DELETE";
}

}  // namespace

HttpClient::HttpClient(const HttpClientOptions& options,
                       PoolListener* listener)
    : options_(options),
      loops_(LoopCount(options.event_loops)),
      pool_(std::make_unique<ConnectionPool>(options.pool, loops_.executor(0),
                                             listener)),
      connector_(options.connector, options.resolver) {}

HttpClient::~HttpClient() {
  Shutdown(absl::ZeroDuration());
  loops_.Stop();
}

std::shared_ptr<CallAbort> HttpClient::Execute(Request request,
                                               Callback done) {
  auto abort = std::make_shared<CallAbort>();
  Start(std::move(request), nullptr, abort, std::move(done));
  return abort;
}

std::shared_ptr<StreamCall> HttpClient::Stream(
    Request request, std::shared_ptr<StreamConsumer> consumer) {
  std::shared_ptr<StreamCall> call(new StreamCall(consumer));
  Start(std::move(request), call, call->abort_,
        [consumer](absl::StatusOr<Response> result) {
          consumer->OnDone(std::move(result));
        });
  return call;
}

void HttpClient::Start(Request request, std::shared_ptr<StreamCall> stream,
                       std::shared_ptr<CallAbort> abort, Callback done) {
  if (absl::Status valid = ValidateRequest(request); !valid.ok()) {
    std::move(done)(std::move(valid));
    return;
  }
  // Counted before the check, so Shutdown either sees this call in flight or
  // the call sees the shutdown.
  in_flight_.fetch_add(1, std::memory_order_acq_rel);
  if (shutting_down_.load(std::memory_order_acquire)) {
    CallEnded();
    std::move(done)(absl::CancelledError("egressd is shutting down"));
    return;
  }
  const Address address = Address::FromUrl(request.url);
  if (absl::Status admitted = pool_->BeginRequest(address); !admitted.ok()) {
    CallEnded();
    std::move(done)(std::move(admitted));
    return;
  }
  const absl::Time started = absl::Now();
  // Fast path: an idle pooled connection, whose exchange then runs on the
  // connection's own loop with no further hop. Otherwise the call starts on
  // the next loop round-robin and waits or connects there.
  Lease idle = pool_->TryAcquireIdle(address);
  asio::any_io_executor executor =
      idle.connection ? idle.connection->executor() : loops_.Next();
  asio::co_spawn(
      executor,
      Run(std::move(request), address, std::move(idle), started,
          std::move(stream), std::move(abort)),
      [this, address, done = std::move(done)](
          std::exception_ptr error, absl::StatusOr<Response> result) mutable {
        if (error) {
          result = absl::InternalError("unexpected exception in a call");
        }
        pool_->EndRequest(address);
        Count(result);
        std::move(done)(std::move(result));
        CallEnded();
      });
}

// Delivers a streamed exchange to its StreamCall's consumer, waiting for the
// consumer's `ready` after each piece and reporting a leak when it stalls.
class StreamCall::Sink : public ExchangeSink {
 public:
  Sink(HttpClient* client, std::shared_ptr<StreamCall> call,
       const Request& request, const Connection& connection, bool reused,
       absl::Time started)
      : client_(client),
        call_(std::move(call)),
        connection_id_(connection.id()),
        remote_address_(connection.remote_address()),
        reused_(reused) {
    auto leak = std::make_shared<LeakReport>();
    leak->call_id = request.call_id;
    leak->method = request.method;
    leak->url = request.url.Redacted();
    leak->connection_id = connection.id();
    leak->caller = request.caller;
    leak->detected_at = started;  // replaced when detected; age from it
    leak_template_ = std::move(leak);
  }

  asio::awaitable<bool> OnHead(const ResponseHead& h) override {
    Response head;
    head.status_code = h.status_code;
    head.reason = h.reason;
    head.headers = h.headers;
    head.protocol = "http/1.1";
    head.connection = {connection_id_, reused_, remote_address_};
    auto deliver = [&](StreamConsumer::Ready ready) {
      call_->consumer_->OnHead(head, std::move(ready));
    };
    const bool proceed = co_await Wait(deliver);
    co_return proceed;
  }

  asio::awaitable<bool> OnBody(std::string chunk) override {
    call_->bytes_moved_ += chunk.size();
    auto deliver = [&](StreamConsumer::Ready ready) {
      call_->consumer_->OnBody(std::move(chunk), std::move(ready));
    };
    const bool proceed = co_await Wait(deliver);
    co_return proceed;
  }

 private:
  // Hands a piece to the consumer and waits for its `ready` (true) or a
  // Cancel (false).
  template <typename Deliver>
  asio::awaitable<bool> Wait(Deliver& deliver) {
    asio::any_io_executor executor = co_await asio::this_coro::executor;
    asio::steady_timer leak_timer(executor);
    leak_timer.expires_after(
        absl::ToChronoNanoseconds(client_->options_.leak_threshold));
    // The timer may fire after this Sink is gone; its handler holds only
    // what it needs.
    leak_timer.async_wait([client = client_, call = call_,
                           leak = leak_template_](const asio::error_code& ec) {
      if (!ec) ReportLeak(client, *call, *leak);
    });
    auto initiation = [&](auto handler) {
      uint64_t wait;
      {
        MutexLock lock(&call_->mu_);
        if (call_->cancelled_) {
          asio::post(executor, [h = std::move(handler)]() mutable {
            std::move(h)(false);
          });
          return;
        }
        wait = ++call_->wait_number_;
        call_->pending_ = std::move(handler);
        call_->pending_executor_ = executor;
      }
      deliver([call = call_, wait]() { call->Resume(wait, true); });
    };
    const bool proceed =
        co_await asio::async_initiate<const asio::use_awaitable_t<>,
                                      void(bool)>(initiation,
                                                  asio::use_awaitable);
    leak_timer.cancel();
    co_return proceed;
  }

  // Reports the call's leak once; its connection takes no new exchanges.
  static void ReportLeak(HttpClient* client, StreamCall& call,
                         const LeakReport& leak) {
    if (call.leak_reported_) return;
    call.leak_reported_ = true;
    LeakReport report = leak;
    report.detected_at = absl::Now();
    report.age = report.detected_at - leak.detected_at;
    report.bytes_moved = call.bytes_moved_;
    client->leaks_.Add(std::move(report));
    client->pool_->MarkNoNewExchanges(leak.connection_id, CloseReason::kLeaked);
  }

  HttpClient* const client_;
  const std::shared_ptr<StreamCall> call_;
  const uint64_t connection_id_;
  const std::string remote_address_;
  const bool reused_;
  // The call's part of a leak report, filled in at detection.
  std::shared_ptr<const LeakReport> leak_template_;
};

bool StreamCall::cancelled() const {
  MutexLock lock(&mu_);
  return cancelled_;
}

void StreamCall::Cancel() {
  uint64_t wait;
  {
    MutexLock lock(&mu_);
    if (cancelled_) return;
    cancelled_ = true;
    wait = wait_number_;
  }
  // A wait for the consumer ends (and a short rest is drained); socket I/O
  // in progress (a slow origin) is aborted.
  Resume(wait, false);
  abort_->Abort();
}

void StreamCall::Resume(uint64_t wait, bool proceed) {
  ResumeHandler handler;
  asio::any_io_executor executor;
  {
    MutexLock lock(&mu_);
    if (wait != wait_number_ || !pending_) return;
    handler = std::move(pending_);
    pending_ = nullptr;
    executor = pending_executor_;
  }
  asio::post(executor, [h = std::move(handler), proceed]() mutable {
    std::move(h)(proceed);
  });
}

asio::awaitable<ExchangeResult> HttpClient::ExchangeOn(
    std::shared_ptr<Connection> connection, const Request& request,
    ExchangeSink* sink, CallAbort* abort) {
  // Results and callables are named locals, never temporaries inside a
  // co_await expression: g++ 12 destroys such temporaries twice (seen here as
  // a connection freed while pooled).
  asio::any_io_executor here = co_await asio::this_coro::executor;
  if (connection->executor() == here) {
    ExchangeResult result = co_await connection->Exchange(
        request, options_.http1, options_.max_response_body_bytes,
        request.deadline, sink, abort);
    co_return result;
  }
  // A connection handed over from another loop: its I/O runs on its own
  // loop, and this call resumes here when it is done.
  auto exchange = [this, connection, &request, sink,
                   abort]() -> asio::awaitable<ExchangeResult> {
    ExchangeResult result = co_await connection->Exchange(
        request, options_.http1, options_.max_response_body_bytes,
        request.deadline, sink, abort);
    co_return result;
  };
  ExchangeResult result = co_await asio::co_spawn(connection->executor(),
                                                  exchange, asio::use_awaitable);
  co_return result;
}

asio::awaitable<Lease> HttpClient::TryCoalesce(const Address& address,
                                               absl::Time deadline) {
  absl::StatusOr<std::vector<asio::ip::address>> resolved =
      co_await connector_.resolver().Resolve(address.host, deadline);
  if (!resolved.ok()) co_return Lease{};  // Connect reports DNS errors
  std::vector<std::string> ips;
  ips.reserve(resolved->size());
  for (const asio::ip::address& ip : *resolved) ips.push_back(ip.to_string());
  const DestinationRules& rules = connector_.tls().rules();
  const size_t rule = rules.IndexFor(address.host);
  auto eligible = [&](const Connection& connection) {
    const TlsInfo* tls = connection.tls_info();
    return tls != nullptr && tls->verified &&
           tls->CertificateCovers(address.host) &&
           rules.IndexFor(connection.address().host) == rule;
  };
  Lease lease = pool_->TryAcquireCoalesced(address, ips, eligible);
  co_return lease;
}

asio::awaitable<absl::Status> HttpClient::PingOn(
    std::shared_ptr<Connection> connection) {
  auto* h2 = static_cast<Http2Connection*>(connection.get());
  const absl::Duration timeout = options_.connector.http2.ping_timeout;
  asio::any_io_executor here = co_await asio::this_coro::executor;
  if (connection->executor() == here) {
    absl::Status status = co_await h2->Ping(timeout);
    co_return status;
  }
  auto ping = [connection, h2, timeout]() -> asio::awaitable<absl::Status> {
    absl::Status status = co_await h2->Ping(timeout);
    co_return status;
  };
  absl::Status status =
      co_await asio::co_spawn(connection->executor(), ping, asio::use_awaitable);
  co_return status;
}

asio::awaitable<absl::StatusOr<Response>> HttpClient::Run(
    Request request, Address address, Lease idle, absl::Time started,
    std::shared_ptr<StreamCall> stream, std::shared_ptr<CallAbort> abort) {
  CallTiming timing;
  bool allow_idle = true;
  bool allow_coalescing = address.scheme == "https";
  const HttpProtocols protocols = connector_.tls().rules().For(address.host).protocols;
  const bool may_multiplex =
      address.scheme == "https" ? protocols != HttpProtocols::kHttp11
                                : protocols == HttpProtocols::kHttp2;
  for (int attempt = 0;; ++attempt) {
    Lease lease;
    if (abort->aborted()) {
      if (idle.connection) pool_->Release(idle.connection, false, std::nullopt);
      co_return absl::CancelledError("the call was cancelled");
    }
    if (attempt == 0 && idle.connection) {
      lease = std::move(idle);
    } else {
      Lease coalesced;
      if (allow_idle && allow_coalescing && pool_->MayCoalesce()) {
        // An HTTP/2 connection of another host at the same IP, with a
        // certificate that covers this one.
        coalesced = co_await TryCoalesce(address, request.deadline);
      }
      if (coalesced.connection != nullptr) {
        lease = std::move(coalesced);
      } else {
        absl::StatusOr<Lease> acquired = co_await pool_->Acquire(
            address, request.deadline, allow_idle, may_multiplex);
        if (!acquired.ok()) co_return acquired.status();
        lease = *std::move(acquired);
        timing.queue_wait += lease.queue_wait;
      }
    }
    if (lease.may_connect()) {
      absl::StatusOr<ConnectResult> connected = co_await connector_.Connect(
          address, pool_->NextConnectionId(), request.deadline);
      if (!connected.ok()) {
        pool_->ConnectFailed(address);
        co_return connected.status();
      }
      timing.dns += connected->dns_time;
      timing.connect += connected->connect_time;
      timing.tls += connected->tls_time;
      // A multiplexed connection may lose to one another call opened
      // meanwhile: the pool says which one this call uses.
      lease.connection = pool_->AddConnected(connected->connection);
      if (lease.connection == nullptr) {
        connected->connection->Close();
        co_return absl::CancelledError("egressd is shutting down");
      }
      lease.reused = lease.connection != connected->connection;
    }
    const std::shared_ptr<Connection> connection = lease.connection;
    if (connection->multiplexed() && lease.idle_for > absl::ZeroDuration() &&
        lease.idle_for >=
            options_.connector.http2.ping_before_reuse_after_idle) {
      // An HTTP/2 connection idle for long may sit behind a NAT that forgot
      // it; a PING finds out before a request is lost on it.
      absl::Status alive = co_await PingOn(connection);
      if (!alive.ok()) {
        pool_->Release(connection, false, CloseReason::kPingTimeout);
        if (attempt + 1 < kMaxAttempts) continue;
        co_return alive;
      }
    }
    timing.connection_acquired = absl::Now() - started;
    std::optional<StreamCall::Sink> sink;
    if (stream != nullptr) {
      if (stream->cancelled()) {
        pool_->Release(connection, false, std::nullopt);
        co_return absl::CancelledError("the stream was cancelled");
      }
      sink.emplace(this, stream, request, *connection, lease.reused, started);
    }
    ExchangeResult result = co_await ExchangeOn(
        connection, request, sink ? &*sink : nullptr, abort.get());
    pool_->Release(connection, result.completed, result.close_reason);

    if (!result.response.ok()) {
      // HTTP/2 said the request was not processed (REFUSED_STREAM, above a
      // GOAWAY's last stream): safe to retry whatever the method.
      if (result.not_processed && attempt + 1 < kMaxAttempts &&
          !abort->aborted()) {
        allow_idle = true;
        continue;
      }
      const bool stale_connection =
          lease.reused && result.nothing_received &&
          absl::IsUnavailable(result.response.status());
      const bool safe = !result.request_written || IsIdempotent(request.method);
      if (attempt == 0 && stale_connection && safe) {
        allow_idle = false;  // a retry after a stale connection wants a fresh one
        continue;
      }
      co_return result.response.status();
    }
    if (result.response->status_code == 421 &&
        connection->address() != address && attempt + 1 < kMaxAttempts) {
      // 421 Misdirected Request on a coalesced connection: the origin will
      // not serve this host there. Stop coalescing onto it and retry on
      // this host's own connection (RFC 9110 section 15.5.20).
      pool_->DisableCoalescing(connection->id());
      allow_coalescing = false;
      continue;
    }
    Response& response = *result.response;
    response.connection.connection_id = connection->id();
    response.connection.reused = lease.reused;
    response.connection.remote_address = connection->remote_address();
    timing.request_written = result.request_written_at - started;
    timing.first_byte = result.first_byte_at - started;
    timing.total = absl::Now() - started;
    response.timing = timing;
    co_return std::move(response);
  }
}

void HttpClient::Shutdown(absl::Duration grace) {
  if (shutting_down_.exchange(true)) return;
  const auto no_calls = [this] { return in_flight_.load() == 0; };
  {
    // In-flight calls end by themselves (each has a deadline); the grace
    // period bounds how long shutdown waits for them.
    MutexLock lock(&drain_mu_);
    drain_mu_.AwaitWithTimeout(no_calls, grace);
  }
  pool_->Shutdown(/*close_in_use=*/true);
  {
    // Closing their connections fails the rest promptly; once this returns
    // every callback has run, so the caller may tear down what they touch.
    MutexLock lock(&drain_mu_);
    drain_mu_.AwaitWithTimeout(no_calls, kShutdownCallbackWait);
  }
}

void HttpClient::Count(const absl::StatusOr<Response>& result) {
  MutexLock lock(&totals_mu_);
  if (!result.ok()) {
    ++totals_.failed;
    return;
  }
  ++totals_.succeeded;
  ++(result->connection.reused ? totals_.on_reused_connection
                               : totals_.on_new_connection);
  const CallTiming& t = result->timing;
  totals_.queue_wait += t.queue_wait;
  totals_.dns += t.dns;
  totals_.connect += t.connect;
  totals_.tls += t.tls;
  totals_.first_byte += t.first_byte;
  totals_.total += t.total;
}

CallTotals HttpClient::totals() const {
  MutexLock lock(&totals_mu_);
  return totals_;
}

void HttpClient::CallEnded() {
  if (in_flight_.fetch_sub(1, std::memory_order_acq_rel) == 1 &&
      shutting_down_.load(std::memory_order_acquire)) {
    // Wakes Shutdown's wait: Mutex re-evaluates waiters' conditions on
    // unlock.
    MutexLock lock(&drain_mu_);
  }
}

}  // namespace egress
