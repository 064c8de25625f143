#include "client_core/call/http_client.h"

#include <exception>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "asio/co_spawn.hpp"
#include "asio/this_coro.hpp"
#include "asio/use_awaitable.hpp"
#include "client_core/connection/connector.h"
#include "client_core/http1/request_writer.h"

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
                                             listener)) {}

HttpClient::~HttpClient() {
  Shutdown(absl::ZeroDuration());
  loops_.Stop();
}

void HttpClient::Execute(Request request, Callback done) {
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
      executor, Run(std::move(request), std::move(idle), started),
      [this, address, done = std::move(done)](
          std::exception_ptr error, absl::StatusOr<Response> result) mutable {
        if (error) {
          result = absl::InternalError("unexpected exception in a call");
        }
        pool_->EndRequest(address);
        std::move(done)(std::move(result));
        CallEnded();
      });
}

asio::awaitable<ExchangeResult> HttpClient::ExchangeOn(
    std::shared_ptr<Connection> connection, const Request& request) {
  // Results and callables are named locals, never temporaries inside a
  // co_await expression: g++ 12 destroys such temporaries twice (seen here as
  // a connection freed while pooled).
  asio::any_io_executor here = co_await asio::this_coro::executor;
  if (connection->executor() == here) {
    ExchangeResult result = co_await connection->Exchange(
        request, options_.http1, options_.max_response_body_bytes,
        request.deadline);
    co_return result;
  }
  // A connection handed over from another loop: its I/O runs on its own
  // loop, and this call resumes here when it is done.
  auto exchange = [this, connection,
                   &request]() -> asio::awaitable<ExchangeResult> {
    ExchangeResult result = co_await connection->Exchange(
        request, options_.http1, options_.max_response_body_bytes,
        request.deadline);
    co_return result;
  };
  ExchangeResult result = co_await asio::co_spawn(connection->executor(),
                                                  exchange, asio::use_awaitable);
  co_return result;
}

asio::awaitable<absl::StatusOr<Response>> HttpClient::Run(Request request,
                                                          Lease idle,
                                                          absl::Time started) {
  const Address address = Address::FromUrl(request.url);
  CallTiming timing;
  for (int attempt = 0;; ++attempt) {
    Lease lease;
    if (attempt == 0 && idle.connection) {
      lease = std::move(idle);
    } else {
      // A retry after a stale connection wants a fresh one.
      absl::StatusOr<Lease> acquired = co_await pool_->Acquire(
          address, request.deadline, /*allow_idle=*/attempt == 0);
      if (!acquired.ok()) co_return acquired.status();
      lease = *std::move(acquired);
      timing.queue_wait += lease.queue_wait;
    }
    if (lease.may_connect()) {
      const absl::Time connect_start = absl::Now();
      absl::StatusOr<std::shared_ptr<Connection>> connected =
          co_await Connect(address, pool_->NextConnectionId(),
                           options_.connect, request.deadline);
      timing.connect += absl::Now() - connect_start;
      if (!connected.ok()) {
        pool_->ConnectFailed(address);
        co_return connected.status();
      }
      lease.connection = *std::move(connected);
      lease.reused = false;
      if (!pool_->AddConnected(lease.connection)) {
        lease.connection->Close();
        co_return absl::CancelledError("egressd is shutting down");
      }
    }
    const std::shared_ptr<Connection> connection = lease.connection;
    timing.connection_acquired = absl::Now() - started;
    ExchangeResult result = co_await ExchangeOn(connection, request);
    pool_->Release(connection, result.response.ok(), result.close_reason);

    if (!result.response.ok()) {
      const bool stale_connection =
          lease.reused && result.nothing_received &&
          absl::IsUnavailable(result.response.status());
      const bool safe = !result.request_written || IsIdempotent(request.method);
      if (attempt == 0 && stale_connection && safe) continue;
      co_return result.response.status();
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
  // In-flight calls end by themselves (each has a deadline); the grace period
  // bounds how long shutdown waits for them.
  {
    MutexLock lock(&drain_mu_);
    drain_mu_.AwaitWithTimeout([this] { return in_flight_.load() == 0; },
                               grace);
  }
  pool_->Shutdown(/*close_in_use=*/true);
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
