#include "client_core/call/http_client.h"

#include <exception>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "asio/co_spawn.hpp"
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
  AcquiredConnection pooled =
      pool_->AcquireIdle(Address::FromUrl(request.url));
  // A pooled connection's exchange runs on the connection's own loop; a new
  // connection is made on the next loop round-robin.
  asio::any_io_executor executor =
      pooled.connection ? pooled.connection->executor() : loops_.Next();
  asio::co_spawn(
      executor, Run(std::move(request), std::move(pooled)),
      [this, done = std::move(done)](std::exception_ptr error,
                                     absl::StatusOr<Response> result) mutable {
        if (error) {
          result = absl::InternalError("unexpected exception in a call");
        }
        std::move(done)(std::move(result));
        CallEnded();
      });
}

asio::awaitable<absl::StatusOr<Response>> HttpClient::Run(
    Request request, AcquiredConnection pooled) {
  const Address address = Address::FromUrl(request.url);
  for (int attempt = 0;; ++attempt) {
    AcquiredConnection acquired;
    if (attempt == 0 && pooled.connection) {
      acquired = std::move(pooled);
    } else {
      absl::StatusOr<std::shared_ptr<Connection>> connected =
          co_await Connect(address, pool_->NextConnectionId(),
                           options_.connect, request.deadline);
      if (!connected.ok()) co_return connected.status();
      acquired.connection = *std::move(connected);
      if (!pool_->AddAllocated(acquired.connection)) {
        acquired.connection->Close();
        co_return absl::CancelledError("egressd is shutting down");
      }
    }
    std::shared_ptr<Connection>& connection = acquired.connection;
    ExchangeResult result = co_await connection->Exchange(
        request, options_.http1, options_.max_response_body_bytes,
        request.deadline);
    pool_->Release(connection, result.response.ok(), result.close_reason);

    if (!result.response.ok()) {
      const bool stale_connection =
          acquired.reused && result.nothing_received &&
          absl::IsUnavailable(result.response.status());
      const bool safe = !result.request_written || IsIdempotent(request.method);
      if (attempt == 0 && stale_connection && safe) continue;
      co_return result.response.status();
    }
    Response& response = *result.response;
    response.connection.connection_id = connection->id();
    response.connection.reused = acquired.reused;
    response.connection.remote_address = connection->remote_address();
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
