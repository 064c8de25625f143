#include "client_core/call/http_client.h"

#include <algorithm>
#include <exception>
#include <optional>
#include <random>
#include <thread>
#include <utility>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "asio/async_result.hpp"
#include "asio/co_spawn.hpp"
#include "asio/experimental/as_tuple.hpp"
#include "asio/post.hpp"
#include "asio/steady_timer.hpp"
#include "asio/this_coro.hpp"
#include "asio/use_awaitable.hpp"
#include "client_core/call/read_watchdog.h"
#include "client_core/call/redirect.h"
#include "client_core/connection/connector.h"
#include "client_core/http/content_decoder.h"
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

absl::string_view AsAbsl(std::string_view s) { return {s.data(), s.size()}; }

// Whether a response to `method` with `status_code` has a body (RFC 9110
// section 6.4.1).
bool HasBody(absl::string_view method, int status_code) {
  return method != "HEAD" && status_code >= 200 && status_code != 204 &&
         status_code != 304;
}

void RemoveFields(HeaderList* headers,
                  std::initializer_list<absl::string_view> names) {
  headers->erase(
      std::remove_if(headers->begin(), headers->end(),
                     [&](const HeaderField& field) {
                       for (absl::string_view name : names) {
                         if (absl::EqualsIgnoreCase(AsAbsl(field.name), name)) {
                           return true;
                         }
                       }
                       return false;
                     }),
      headers->end());
}

// Decoded pieces handed on at a time: a decompression bomb never holds more
// than this in memory beyond the limits.
constexpr size_t kDecodedPiece = 64 * 1024;

absl::Duration ShorterOf(absl::Duration a, absl::Duration b) {
  if (a <= absl::ZeroDuration()) return b;
  if (b <= absl::ZeroDuration()) return a;
  return std::min(a, b);
}

}  // namespace

class HttpClient::RetrySlot {
 public:
  explicit RetrySlot(RetryBudget* budget) : budget_(budget) {}
  ~RetrySlot() { Release(); }
  RetrySlot(const RetrySlot&) = delete;
  RetrySlot& operator=(const RetrySlot&) = delete;
  void Hold() { held_ = true; }
  void Release() {
    if (held_) budget_->Release();
    held_ = false;
  }

 private:
  RetryBudget* const budget_;
  bool held_ = false;
};

HttpClient::HttpClient(const HttpClientOptions& options,
                       PoolListener* listener)
    : options_(options),
      retry_budget_(options.retry_budget),
      callers_(options.max_in_flight_per_caller),
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

absl::Status HttpClient::ValidateCallOptions(const Request& request) {
  if (request.max_redirects < 0 || request.max_redirects > kMaxRedirectsLimit) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_redirects must be 0..", kMaxRedirectsLimit,
                     ", got ", request.max_redirects));
  }
  if (request.connect_retries < 0 ||
      request.connect_retries > kMaxConnectRetries) {
    return absl::InvalidArgumentError(
        absl::StrCat("connect_retries must be 0..", kMaxConnectRetries,
                     ", got ", request.connect_retries));
  }
  if (request.first_byte_timeout < absl::ZeroDuration() ||
      request.idle_read_timeout < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("read timeouts must not be negative");
  }
  if (request.decompress &&
      FindHeader(request.headers, "Accept-Encoding").has_value()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "header 'Accept-Encoding' cannot be set with decompress: egressd "
        "sends 'Accept-Encoding: ",
        AsAbsl(kAcceptEncoding), "' and decodes the response itself"));
  }
  return absl::OkStatus();
}

std::vector<ProxyChoice> HttpClient::SelectRoutes(const Url& url) {
  std::vector<ProxyChoice> routes;
  if (const ProxySelector* proxies = connector_.options().proxies.get()) {
    routes = proxies->Select(url.scheme, url.host, &proxy_db_);
  }
  if (routes.empty()) routes.push_back(ProxyChoice::Direct());
  return routes;
}

HttpClient::ReadTimeouts HttpClient::TimeoutsFor(const Request& request) const {
  return {ShorterOf(options_.first_byte_timeout, request.first_byte_timeout),
          ShorterOf(options_.idle_read_timeout, request.idle_read_timeout)};
}

void HttpClient::Start(Request request, std::shared_ptr<StreamCall> stream,
                       std::shared_ptr<CallAbort> abort, Callback done) {
  if (absl::Status valid = ValidateRequest(request); !valid.ok()) {
    std::move(done)(std::move(valid));
    return;
  }
  if (absl::Status valid = ValidateCallOptions(request); !valid.ok()) {
    std::move(done)(std::move(valid));
    return;
  }
  if (absl::Status within = CheckRequestLimits(request, options_.request_limits);
      !within.ok()) {
    rejected_request_limits_.fetch_add(1, std::memory_order_relaxed);
    std::move(done)(std::move(within));
    return;
  }
  // Per request, before a route is chosen, the same for every route kind:
  // an http:// Address through an HTTP proxy names no origin (its
  // connection serves every origin), so the Connector cannot judge it.
  if (absl::Status allowed = connector_.CheckOrigin(
          request.url.scheme, request.url.host, request.url.port);
      !allowed.ok()) {
    std::move(done)(std::move(allowed));
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
  if (absl::Status admitted = callers_.Acquire(request.caller_id);
      !admitted.ok()) {
    CallEnded();
    std::move(done)(std::move(admitted));
    return;
  }
  std::string caller_id = callers_.enabled() ? request.caller_id : "";
  // The ways to reach the origin in order (direct, or proxies; a proxy that
  // failed recently goes last). The first one's Address is the call's.
  std::vector<ProxyChoice> routes = SelectRoutes(request.url);
  const Address address = AddressFor(request, routes[0]);
  if (absl::Status admitted = pool_->BeginRequest(address); !admitted.ok()) {
    callers_.Release(caller_id);
    CallEnded();
    std::move(done)(std::move(admitted));
    return;
  }
  if (request.decompress) {
    request.headers.push_back(
        {"Accept-Encoding", std::string(kAcceptEncoding)});
  }
  const absl::Time started = absl::Now();
  // Fast path: an idle pooled connection, whose exchange then runs on the
  // connection's own loop with no further hop. Otherwise the call starts on
  // the next loop round-robin and waits or connects there.
  Lease idle = pool_->TryAcquireIdle(address);
  asio::any_io_executor executor =
      idle.connection ? idle.connection->executor() : loops_.Next();
  // The call's result outlives Run's frame (and an exception out of it).
  auto run = std::make_unique<RunResult>();
  RunResult* result = run.get();
  asio::co_spawn(
      executor,
      Run(std::move(request), address, std::move(routes), std::move(idle),
          started, std::move(stream), std::move(abort), result),
      [this, caller_id = std::move(caller_id), done = std::move(done),
       run = std::move(run)](std::exception_ptr error) mutable {
        if (error) {
          run->result = absl::InternalError("unexpected exception in a call");
        }
        if (run->counted.has_value()) pool_->EndRequest(*run->counted);
        callers_.Release(caller_id);
        Count(run->result);
        std::move(done)(std::move(run->result));
        CallEnded();
      });
}

// Receives one exchange's response for a call (see the declaration).
//
// Runs on the connection's executor during the exchange; the call reads its
// results (redirect, failure, body) after the exchange completed.
class HttpClient::ResponseSink final : public ExchangeSink {
 public:
  ResponseSink(HttpClient* client, std::shared_ptr<StreamCall> call,
               const Request& request, const Connection& connection,
               bool reused, absl::Time started,
               const std::vector<RedirectHop>* redirects)
      : client_(client),
        call_(std::move(call)),
        request_(request),
        connection_id_(connection.id()),
        remote_address_(connection.remote_address()),
        protocol_(ProtocolName(connection.protocol())),
        reused_(reused),
        redirects_(redirects) {
    if (call_ != nullptr) {
      auto leak = std::make_shared<LeakReport>();
      leak->call_id = request.call_id;
      leak->method = request.method;
      leak->url = request.url.Redacted();
      leak->connection_id = connection.id();
      leak->caller = request.caller;
      leak->detected_at = started;  // replaced when detected; age from it
      leak_template_ = std::move(leak);
    }
  }

  // Set for the exchange only (the watchdog lives on the connection's loop).
  void set_watchdog(ReadWatchdog* watchdog) { watchdog_ = watchdog; }
  // The request went to an HTTP proxy without its credentials: a 407 with
  // Proxy-Authenticate is the proxy's challenge, not the origin's answer.
  void expect_proxy_challenge() { expect_proxy_challenge_ = true; }

  asio::awaitable<bool> OnHead(const ResponseHead& h) override {
    if (watchdog_ != nullptr) watchdog_->HeadArrived();
    if (expect_proxy_challenge_ && h.status_code == 407 &&
        FindHeader(h.headers, "Proxy-Authenticate").has_value()) {
      // Nothing reached the origin; the call sends the request again with
      // the credentials. The 407's body is not wanted.
      proxy_challenged_ = true;
      co_return false;
    }
    if (request_.follow_redirects && IsFollowedRedirect(h.status_code)) {
      if (std::optional<std::string_view> location =
              FindHeader(h.headers, "Location")) {
        // The redirect's own body is not wanted: abandoning it drains a
        // short one (the connection stays) or closes the connection.
        redirect_status_ = h.status_code;
        location_ = std::string(*location);
        co_return false;
      }
    }
    head_.status_code = h.status_code;
    head_.reason = h.reason;
    head_.headers = h.headers;
    head_.protocol = std::string(protocol_);
    head_.connection = {connection_id_, reused_, remote_address_};
    // A 206 carries a byte range of the encoded body, which cannot be
    // decoded on its own: it passes through.
    if (request_.decompress && HasBody(request_.method, h.status_code) &&
        h.status_code != 206) {
      if (std::optional<ContentCoding> coding = DecodableCoding(h.headers)) {
        DecompressionLimits limits;
        limits.max_ratio = client_->options_.max_decompression_ratio;
        limits.max_decoded_bytes =
            call_ != nullptr ? client_->options_.max_decompressed_bytes
                             : client_->options_.max_response_body_bytes;
        decoder_ = ContentDecoder::Create(*coding, limits);
        // The body the caller gets is neither encoded nor of that length.
        RemoveFields(&head_.headers, {"Content-Encoding", "Content-Length"});
        head_.decoded_content_encoding = std::string(ContentCodingName(*coding));
      }
    }
    if (call_ == nullptr) co_return true;
    Response head = head_;
    head.redirects = *redirects_;
    if (!head.redirects.empty()) head.final_url = request_.url.ToString();
    auto deliver = [&](StreamConsumer::Ready ready) {
      call_->consumer_->OnHead(head, std::move(ready));
    };
    const bool proceed = co_await Wait(deliver);
    co_return proceed;
  }

  asio::awaitable<bool> OnBody(std::string chunk) override {
    if (watchdog_ != nullptr) watchdog_->Progress();
    if (decoder_ == nullptr) {
      const bool proceed = co_await Deliver(std::move(chunk));
      co_return proceed;
    }
    decoder_->Feed(chunk);
    for (;;) {
      absl::StatusOr<std::string> piece = decoder_->Read(kDecodedPiece);
      if (!piece.ok()) {
        failure_ = DecodeFailure(piece.status());
        co_return false;
      }
      if (piece->empty()) break;
      const bool proceed = co_await Deliver(*std::move(piece));
      if (!proceed) co_return false;
    }
    co_return true;
  }

  // After the exchange.
  bool proxy_challenged() const { return proxy_challenged_; }
  int redirect_status() const { return redirect_status_; }
  const std::string& location() const { return location_; }
  // Why the sink abandoned the response (a limit, a corrupt encoding); OK
  // if it did not.
  const absl::Status& failure() const { return failure_; }
  bool decoded() const { return decoder_ != nullptr; }

  // The exchange completed: ends decoding (a truncated or corrupt encoded
  // body is an error) and moves the buffered body and the head as the
  // caller sees it into `response`.
  absl::Status Complete(Response* response) {
    if (decoder_ != nullptr) {
      if (absl::Status finished = decoder_->Finish(); !finished.ok()) {
        return DecodeFailure(finished);
      }
      response->headers = std::move(head_.headers);
      response->decoded_content_encoding =
          std::move(head_.decoded_content_encoding);
    }
    if (call_ == nullptr) response->body = std::move(body_);
    return absl::OkStatus();
  }

 private:
  // Hands a piece of the (decoded) body on: to the consumer, waiting for it,
  // or into the buffer of a unary call, within max_response_body_bytes.
  asio::awaitable<bool> Deliver(std::string piece) {
    if (call_ == nullptr) {
      const uint64_t max = client_->options_.max_response_body_bytes;
      if (body_.size() + piece.size() > max) {
        failure_ = absl::ResourceExhaustedError(absl::StrCat(
            "response body of ", request_.url.Redacted(), " exceeds ", max,
            " bytes (max_response_body_bytes); use FetchStream for large "
            "bodies"));
        co_return false;
      }
      body_ += piece;
      co_return true;
    }
    call_->bytes_moved_ += piece.size();
    auto deliver = [&](StreamConsumer::Ready ready) {
      call_->consumer_->OnBody(std::move(piece), std::move(ready));
    };
    const bool proceed = co_await Wait(deliver);
    co_return proceed;
  }

  // The caller's error for a decoder's.
  absl::Status DecodeFailure(const absl::Status& status) {
    const std::string url = request_.url.Redacted();
    switch (decoder_->limit_hit()) {
      case ContentDecoder::LimitHit::kDecodedBytes:
        client_->decompression_limit_hits_.fetch_add(1);
        return absl::ResourceExhaustedError(absl::StrCat(
            "response body of ", url, ": ", status.message(), " (",
            call_ != nullptr ? "max_decompressed_bytes"
                             : "max_response_body_bytes",
            "): a decompression bomb, or a body too large for ",
            call_ != nullptr ? "egressd" : "Fetch (use FetchStream)"));
      case ContentDecoder::LimitHit::kRatio:
        client_->decompression_limit_hits_.fetch_add(1);
        return absl::ResourceExhaustedError(
            absl::StrCat("response body of ", url, ": ", status.message(),
                         " (max_decompression_ratio): a decompression bomb"));
      case ContentDecoder::LimitHit::kNone:
        break;
    }
    return absl::Status(status.code(),
                        absl::StrCat("origin ", remote_address_, " for ", url,
                                     ": ", status.message()));
  }

  // Hands a piece to the consumer and waits for its `ready` (true) or a
  // Cancel (false). The read timeouts do not run meanwhile: the call waits
  // for its own consumer, not for the origin.
  template <typename Deliver>
  asio::awaitable<bool> Wait(Deliver& deliver) {
    if (watchdog_ != nullptr) watchdog_->Pause();
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
    if (watchdog_ != nullptr) watchdog_->Resume();
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
    client->leaks_.Add(report);
    client->pool_->ReportLeak(report);  // the pool listener's leak event
    client->pool_->MarkNoNewExchanges(leak.connection_id, CloseReason::kLeaked);
  }

  HttpClient* const client_;
  // Null for a unary call.
  const std::shared_ptr<StreamCall> call_;
  const Request& request_;
  const uint64_t connection_id_;
  const std::string remote_address_;
  const std::string_view protocol_;
  const bool reused_;
  const std::vector<RedirectHop>* const redirects_;
  // The call's part of a leak report, filled in at detection.
  std::shared_ptr<const LeakReport> leak_template_;
  ReadWatchdog* watchdog_ = nullptr;
  bool expect_proxy_challenge_ = false;
  bool proxy_challenged_ = false;
  int redirect_status_ = 0;
  std::string location_;
  absl::Status failure_;
  // The head as the caller sees it (decoding removes fields).
  Response head_;
  std::unique_ptr<ContentDecoder> decoder_;
  // A unary call's body.
  std::string body_;
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

asio::awaitable<void> HttpClient::ExchangeOnItsLoop(
    const std::shared_ptr<Connection>& connection, const Request& request,
    ResponseSink* sink, const std::shared_ptr<CallAbort>& abort,
    ReadTimeouts timeouts, Exchanged* out) {
  // Not a coroutine: ExchangeOn's frame would otherwise hold this lambda
  // for every exchange.
  auto there = [this, connection, &request, sink, abort, timeouts, out] {
    return ExchangeOn(connection, request, sink, abort, timeouts, out);
  };
  return asio::co_spawn(connection->executor(), std::move(there),
                        asio::use_awaitable);
}

asio::awaitable<void> HttpClient::ExchangeOn(
    std::shared_ptr<Connection> connection, const Request& request,
    ResponseSink* sink, std::shared_ptr<CallAbort> abort,
    ReadTimeouts timeouts, Exchanged* out) {
  asio::any_io_executor here = co_await asio::this_coro::executor;
  if (connection->executor() != here) {
    // A connection handed over from another loop: the exchange runs on the
    // connection's own loop, and this call resumes here when it is done.
    co_await ExchangeOnItsLoop(connection, request, sink, abort, timeouts,
                               out);
    co_return;
  }
  // On the connection's own loop: the exchange's I/O, the sink's callbacks
  // and the watchdog's timer all happen here.
  std::optional<ReadWatchdog> watchdog;
  if (timeouts.any()) {
    watchdog.emplace(connection->executor(), timeouts.first_byte,
                     timeouts.idle_read, abort);
    if (sink != nullptr) sink->set_watchdog(&*watchdog);
  }
  co_await connection->ExchangeInto(
      request, options_.http1, options_.max_response_body_bytes,
      request.deadline, &out->result, sink, abort.get());
  if (watchdog.has_value()) {
    out->expired = static_cast<int>(watchdog->expired());
    if (sink != nullptr) sink->set_watchdog(nullptr);
  }
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

asio::awaitable<void> HttpClient::RetryBackoff(int retry, absl::Time deadline,
                                               CallAbort* abort) {
  // Envoy's retry back-off: full jitter over [0, 25 ms * 2^(retry-1)), the
  // ceiling at most 250 ms, so retries of many calls spread out.
  const int64_t ceiling_us =
      std::min<int64_t>(int64_t{25000} << std::min(retry - 1, 4), 250000);
  thread_local std::minstd_rand random(std::random_device{}());
  absl::Duration wait = absl::Microseconds(
      std::uniform_int_distribution<int64_t>(0, ceiling_us - 1)(random));
  wait = std::min(wait, deadline - absl::Now());
  if (wait <= absl::ZeroDuration()) co_return;
  asio::any_io_executor executor = co_await asio::this_coro::executor;
  auto timer = std::make_shared<asio::steady_timer>(executor);
  timer->expires_after(absl::ToChronoNanoseconds(wait));
  if (!abort->Register([executor, timer]() mutable {
        asio::post(executor, [timer] { timer->cancel(); });
      })) {
    co_return;  // aborted already: the caller sees it
  }
  auto [ec] = co_await timer->async_wait(
      asio::experimental::as_tuple(asio::use_awaitable));
  (void)ec;
  abort->Unregister();
}

Address HttpClient::AddressFor(const Request& request,
                               const ProxyChoice& route) const {
  const Url& url = request.url;
  Address address = Address::FromUrl(url);
  if (options_.partition_pool_by_caller) address.partition = request.caller_id;
  if (route.is_direct()) return address;
  address.proxy = route.proxy->name;
  if (route.proxy->scheme == Proxy::Scheme::kHttp && url.scheme == "http") {
    // The proxy forwards absolute-form requests to any origin: its
    // connections serve every http:// origin routed through it.
    address.host.clear();
    address.port = 0;
  }
  return address;
}

asio::awaitable<void> HttpClient::Run(Request request, Address address,
                                      std::vector<ProxyChoice> routes,
                                      Lease idle, absl::Time started,
                                      std::shared_ptr<StreamCall> stream,
                                      std::shared_ptr<CallAbort> abort,
                                      RunResult* run) {
  run->counted = address;
  CallTiming timing;
  for (;;) {
    run->redirect.status = 0;
    co_await RunHop(request, &address, &routes, &idle, started, stream, abort,
                    &timing, run);
    idle = Lease{};
    if (run->redirect.status == 0) {
      if (run->result.ok()) {
        Response& response = *run->result;
        if (!run->redirects.empty()) {
          response.final_url = request.url.ToString();
          response.redirects = std::move(run->redirects);
        }
        response.connect_retries = run->connect_retries;
      }
      co_return;
    }
    if (absl::Status followed =
            FollowRedirect(&request, &routes, &address, run);
        !followed.ok()) {
      run->result = std::move(followed);
      co_return;
    }
  }
}

absl::Status HttpClient::FollowRedirect(Request* request,
                                        std::vector<ProxyChoice>* routes,
                                        Address* address, RunResult* run) {
  const Redirect& redirect = run->redirect;
  std::vector<RedirectHop>* redirects = &run->redirects;
  if (static_cast<int>(redirects->size()) >= request->max_redirects) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "stopped after ", redirects->size(),
        " redirects (max_redirects=", request->max_redirects,
        "): ", request->url.Redacted(), " redirects again (",
        redirect.status, ")"));
  }
  absl::StatusOr<Request> next =
      RedirectRequest(*request, redirect.status, redirect.location);
  if (!next.ok()) return next.status();
  // Every hop is judged as the first was, before its route is chosen: a
  // pooled proxy connection would otherwise carry it unjudged.
  if (absl::Status allowed = connector_.CheckOrigin(
          next->url.scheme, next->url.host, next->url.port);
      !allowed.ok()) {
    return allowed;
  }
  redirects->push_back({request->url.ToString(), redirect.status});
  redirects_followed_.fetch_add(1, std::memory_order_relaxed);
  *request = *std::move(next);
  // A new origin is a new call for the pool's in-flight limits.
  *routes = SelectRoutes(request->url);
  *address = AddressFor(*request, (*routes)[0]);
  if (*address != *run->counted) {
    pool_->EndRequest(*run->counted);
    run->counted.reset();
    if (absl::Status admitted = pool_->BeginRequest(*address);
        !admitted.ok()) {
      return admitted;
    }
    run->counted = *address;
  }
  return absl::OkStatus();
}

asio::awaitable<void> HttpClient::RunHop(
    const Request& request, Address* hop_address,
    std::vector<ProxyChoice>* hop_routes, Lease* idle, absl::Time started,
    const std::shared_ptr<StreamCall>& stream,
    const std::shared_ptr<CallAbort>& abort, CallTiming* timing,
    RunResult* run) {
  Address& address = *hop_address;
  std::vector<ProxyChoice>& routes = *hop_routes;
  size_t route = 0;
  bool allow_idle = true;
  bool allow_coalescing = MayCoalesceOnto(address);
  const HttpProtocols protocols = connector_.tls().rules().For(address.host).protocols;
  const bool may_multiplex =
      address.scheme == "https" ? protocols != HttpProtocols::kHttp11
                                : protocols == HttpProtocols::kHttp2;
  const ReadTimeouts timeouts = TimeoutsFor(request);
  // A sink sees the response as it arrives; a unary call needs one only for
  // what the codec cannot do alone.
  const bool wants_sink = stream != nullptr || timeouts.any() ||
                          request.follow_redirects || request.decompress;
  RetrySlot retry_slot(&retry_budget_);
  for (int attempt = 0;; ++attempt) {
    Lease lease;
    if (abort->aborted()) {
      if (idle->connection) {
        pool_->Release(idle->connection, false, std::nullopt);
      }
      run->result = absl::CancelledError("the call was cancelled");
      co_return;
    }
    if (attempt == 0 && idle->connection) {
      lease = std::move(*idle);
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
        if (!acquired.ok()) {
          run->result = acquired.status();
          co_return;
        }
        lease = *std::move(acquired);
        timing->queue_wait += lease.queue_wait;
      }
    }
    if (lease.may_connect()) {
      const AfterConnect connected = co_await ConnectLease(
          request, address, routes[route], route + 1 < routes.size(),
          &retry_slot, abort, timing, &lease, run);
      if (connected == AfterConnect::kFailed) co_return;
      if (connected == AfterConnect::kNextRoute) {
        address = AddressFor(request, routes[++route]);
        allow_coalescing = MayCoalesceOnto(address);
        --attempt;  // a route change is not a retry
        continue;
      }
      if (connected == AfterConnect::kRetry) {
        routes = SelectRoutes(request.url);
        route = 0;
        address = AddressFor(request, routes[0]);
        allow_coalescing = MayCoalesceOnto(address);
        --attempt;  // connect retries have their own count
        continue;
      }
    }
    retry_slot.Release();  // a retry that found a connection without one
    const std::shared_ptr<Connection>& connection = lease.connection;
    if (connection->multiplexed() && lease.idle_for > absl::ZeroDuration() &&
        lease.idle_for >=
            options_.connector.http2.ping_before_reuse_after_idle) {
      // An HTTP/2 connection idle for long may sit behind a NAT that forgot
      // it; a PING finds out before a request is lost on it.
      absl::Status alive = co_await PingOn(connection);
      if (!alive.ok()) {
        pool_->Release(connection, false, CloseReason::kPingTimeout);
        if (attempt + 1 < kMaxAttempts) continue;
        run->result = std::move(alive);
        co_return;
      }
    }
    timing->connection_acquired = absl::Now() - started;
    if (stream != nullptr && stream->cancelled()) {
      pool_->Release(connection, false, std::nullopt);
      run->result = absl::CancelledError("the stream was cancelled");
      co_return;
    }
    const AfterExchange next =
        co_await ExchangeOnce(request, address, lease, attempt, started,
                              stream, abort, timeouts, wants_sink, timing, run);
    switch (next) {
      case AfterExchange::kDone:
        co_return;
      case AfterExchange::kRetry:
        allow_idle = true;
        break;
      case AfterExchange::kRetryOnFreshConnection:
        allow_idle = false;
        break;
      case AfterExchange::kRetryWithoutCoalescing:
        allow_coalescing = false;
        break;
    }
  }
}

asio::awaitable<HttpClient::AfterConnect> HttpClient::ConnectLease(
    const Request& request, const Address& address, const ProxyChoice& route,
    bool another_route, RetrySlot* retry_slot,
    const std::shared_ptr<CallAbort>& abort, CallTiming* timing, Lease* lease,
    RunResult* run) {
  absl::StatusOr<ConnectResult> connected = co_await connector_.Connect(
      address, pool_->NextConnectionId(), request.deadline);
  retry_slot->Release();  // the retry's connect is done
  if (!connected.ok()) {
    pool_->ConnectFailed(address);
    // A proxy that could not be reached or refused to carry the call is
    // tried last from now on, and the next route takes over. Its verdicts
    // on credentials (PERMISSION_DENIED) and the call's own deadline are not
    // the route's fault.
    const bool route_failed = absl::IsUnavailable(connected.status()) ||
                              absl::IsInternal(connected.status());
    if (route_failed && !route.is_direct()) proxy_db_.Failed(route);
    if (route_failed && another_route) co_return AfterConnect::kNextRoute;
    // Every route failed before anything was sent: the caller may have
    // asked for another round (idempotent methods only), which the retry
    // budget must allow.
    const bool may_retry = absl::IsUnavailable(connected.status()) &&
                           run->connect_retries < request.connect_retries &&
                           IsIdempotent(request.method) && !abort->aborted() &&
                           absl::Now() < request.deadline;
    if (!may_retry) {
      run->result = connected.status();
      co_return AfterConnect::kFailed;
    }
    if (!retry_budget_.TryAcquire(in_flight_.load(std::memory_order_relaxed))) {
      run->result = absl::UnavailableError(absl::StrCat(
          connected.status().message(),
          "; not retried: the retry budget is exhausted (",
          retry_budget_.in_flight(), " retries in flight)"));
      co_return AfterConnect::kFailed;
    }
    retry_slot->Hold();
    ++run->connect_retries;
    co_await RetryBackoff(run->connect_retries, request.deadline, abort.get());
    co_return AfterConnect::kRetry;
  }
  if (!route.is_direct()) proxy_db_.Connected(route);
  timing->dns += connected->dns_time;
  timing->connect += connected->connect_time;
  timing->tls += connected->tls_time;
  // A multiplexed connection may lose to one another call opened meanwhile:
  // the pool says which one this call uses.
  lease->connection = pool_->AddConnected(connected->connection);
  if (lease->connection == nullptr) {
    connected->connection->Close();
    run->result = absl::CancelledError("egressd is shutting down");
    co_return AfterConnect::kFailed;
  }
  lease->reused = lease->connection != connected->connection;
  co_return AfterConnect::kConnected;
}

asio::awaitable<HttpClient::AfterExchange> HttpClient::ExchangeOnce(
    const Request& request, const Address& address, const Lease& lease,
    int attempt, absl::Time started, const std::shared_ptr<StreamCall>& stream,
    const std::shared_ptr<CallAbort>& abort, ReadTimeouts timeouts,
    bool wants_sink, CallTiming* timing, RunResult* run) {
  const std::shared_ptr<Connection>& connection = lease.connection;
  // On the heap, and only when wanted: a plain unary call has none, and a
  // slot in this frame would cost every call its 648 bytes.
  std::unique_ptr<ResponseSink> sink;
  // An absolute-form request (its Address names no origin) to a proxy that
  // has not asked for its credentials yet goes without them.
  const bool may_be_challenged =
      address.host.empty() && !address.proxy.empty() &&
      connector_.ProxyAskedForCredentials(address.proxy) != nullptr &&
      !connector_.SendsProxyCredentials(address.proxy);
  if (wants_sink || may_be_challenged) {
    sink = std::make_unique<ResponseSink>(this, stream, request, *connection,
                                          lease.reused, started,
                                          &run->redirects);
    if (may_be_challenged) sink->expect_proxy_challenge();
  }
  // With read timeouts, the exchange gets its own CallAbort, which the
  // watchdog may abort; the call's abort reaches it through a link.
  std::shared_ptr<CallAbort> exchange_abort = abort;
  if (timeouts.any()) {
    exchange_abort = std::make_shared<CallAbort>();
    if (!abort->Register([link = exchange_abort]() mutable {
          link->Abort();
        })) {
      pool_->Release(connection, false, std::nullopt);
      run->result = absl::CancelledError("the call was cancelled");
      co_return AfterExchange::kDone;
    }
  }
  Exchanged exchanged;
  co_await ExchangeOn(connection, request, sink.get(), exchange_abort,
                      timeouts, &exchanged);
  if (exchange_abort != abort) abort->Unregister();
  ExchangeResult& exchange = exchanged.result;
  pool_->Release(connection, exchange.completed, exchange.close_reason);

  if (sink != nullptr) {
    if (sink->proxy_challenged()) {
      // From now on every request to this proxy carries the credentials;
      // this one again, whatever its method: the proxy forwarded nothing.
      connector_.ProxyAskedForCredentials(address.proxy)
          ->store(true, std::memory_order_relaxed);
      if (attempt + 1 < kMaxAttempts && !abort->aborted()) {
        co_return AfterExchange::kRetry;
      }
      run->result = absl::UnavailableError(
          absl::StrCat("proxy '", address.proxy,
                       "' asked for credentials on the last attempt"));
      co_return AfterExchange::kDone;
    }
    if (sink->redirect_status() != 0) {
      run->redirect.status = sink->redirect_status();
      run->redirect.location = sink->location();
      co_return AfterExchange::kDone;
    }
    if (!sink->failure().ok()) {
      run->result = sink->failure();
      co_return AfterExchange::kDone;
    }
  }
  if (!exchange.response.ok()) {
    const auto expired = static_cast<ReadWatchdog::Expired>(exchanged.expired);
    if (expired != ReadWatchdog::Expired::kNone) {
      run->result = ReadTimeoutError(expired, request, timeouts);
      co_return AfterExchange::kDone;
    }
    // HTTP/2 said the request was not processed (REFUSED_STREAM, above a
    // GOAWAY's last stream): safe to retry whatever the method.
    if (exchange.not_processed && attempt + 1 < kMaxAttempts &&
        !abort->aborted()) {
      co_return AfterExchange::kRetry;
    }
    const bool stale_connection =
        lease.reused && exchange.nothing_received &&
        absl::IsUnavailable(exchange.response.status());
    const bool safe = !exchange.request_written || IsIdempotent(request.method);
    if (attempt == 0 && stale_connection && safe) {
      // A retry after a stale connection wants a fresh one.
      co_return AfterExchange::kRetryOnFreshConnection;
    }
    run->result = exchange.response.status();
    co_return AfterExchange::kDone;
  }
  if (exchange.response->status_code == 421 &&
      connection->address() != address && attempt + 1 < kMaxAttempts) {
    // 421 Misdirected Request on a coalesced connection: the origin will
    // not serve this host there. Stop coalescing onto it and retry on
    // this host's own connection (RFC 9110 section 15.5.20).
    pool_->DisableCoalescing(connection->id());
    co_return AfterExchange::kRetryWithoutCoalescing;
  }
  Response& response = *exchange.response;
  if (sink != nullptr) {
    if (absl::Status body = sink->Complete(&response); !body.ok()) {
      run->result = std::move(body);
      co_return AfterExchange::kDone;
    }
    if (sink->decoded()) {
      responses_decoded_.fetch_add(1, std::memory_order_relaxed);
    }
  }
  response.connection.connection_id = connection->id();
  response.connection.reused = lease.reused;
  response.connection.remote_address = connection->remote_address();
  timing->request_written = exchange.request_written_at - started;
  timing->first_byte = exchange.first_byte_at - started;
  timing->total = absl::Now() - started;
  response.timing = *timing;
  run->result = std::move(response);
  co_return AfterExchange::kDone;
}

absl::Status HttpClient::ReadTimeoutError(ReadWatchdog::Expired expired,
                                          const Request& request,
                                          const ReadTimeouts& timeouts) {
  if (expired == ReadWatchdog::Expired::kFirstByte) {
    first_byte_timeouts_.fetch_add(1, std::memory_order_relaxed);
    return absl::DeadlineExceededError(absl::StrCat(
        "no response head from ", request.url.Redacted(), " within ",
        absl::FormatDuration(timeouts.first_byte),
        " of sending the request (first_byte timeout)"));
  }
  idle_read_timeouts_.fetch_add(1, std::memory_order_relaxed);
  return absl::DeadlineExceededError(absl::StrCat(
      "no data from ", request.url.Redacted(), " for ",
      absl::FormatDuration(timeouts.idle_read),
      " while reading the response body (idle_read timeout)"));
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

ResilienceTotals HttpClient::resilience() const {
  ResilienceTotals t;
  t.connect_retries = retry_budget_.granted();
  t.retry_budget_exhausted = retry_budget_.denied();
  t.redirects_followed = redirects_followed_.load(std::memory_order_relaxed);
  t.rejected_per_caller = callers_.rejected();
  t.rejected_request_limits =
      rejected_request_limits_.load(std::memory_order_relaxed);
  t.first_byte_timeouts = first_byte_timeouts_.load(std::memory_order_relaxed);
  t.idle_read_timeouts = idle_read_timeouts_.load(std::memory_order_relaxed);
  t.responses_decoded = responses_decoded_.load(std::memory_order_relaxed);
  t.decompression_limit_hits =
      decompression_limit_hits_.load(std::memory_order_relaxed);
  return t;
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
