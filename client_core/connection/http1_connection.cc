#include "client_core/connection/http1_connection.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

#include <array>
#include <cerrno>
#include <memory>
#include <utility>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "asio/buffer.hpp"
#include "asio/experimental/as_tuple.hpp"
#include "asio/read.hpp"
#include "asio/this_coro.hpp"
#include "asio/use_awaitable.hpp"
#include "asio/write.hpp"
#include "client_core/http1/request_writer.h"
#include "client_core/proxy/http_tunnel.h"
#include "client_core/net/socket_deadline.h"

namespace egress {
namespace {

constexpr auto kNoThrow = asio::experimental::as_tuple(asio::use_awaitable);

// Read buffer per exchange. Allocated only while an exchange runs so that an
// idle pooled connection holds no buffer (idle connections are the many).
constexpr size_t kReadChunk = 16 * 1024;
// An exchange's first buffer, held while it waits for the origin: with
// 10,000 calls waiting on a slow origin, 16 KiB each is 160 MB of heap.
// (Resident only as far as pages get touched: a fresh process showed little
// of it in RSS, bench/inflight.sh, but recycled memory has been touched.)
// 2 KiB holds a typical response head and a small body; a read that fills
// it moves the exchange to kReadChunk.
constexpr size_t kFirstReadChunk = 2 * 1024;

}  // namespace

Http1Connection::Http1Connection(uint64_t id, Address address,
                                 std::unique_ptr<Transport> transport)
    : Connection(id, std::move(address), std::move(transport),
                 Protocol::kHttp11) {}

Http1Connection::Http1Connection(uint64_t id, Address address,
                                 asio::ip::tcp::socket socket)
    : Http1Connection(id, std::move(address),
                      std::make_unique<Transport>(std::move(socket))) {}

Http1Connection::~Http1Connection() = default;

void Http1Connection::AckNow() {
  const int one = 1;
  // Best effort: an error (not TCP, say) changes nothing for the exchange.
  (void)::setsockopt(transport().native_fd(), IPPROTO_TCP, TCP_QUICKACK, &one,
                     sizeof one);
}

void Http1Connection::WatchWhileIdle() {
  std::weak_ptr<Http1Connection> weak = weak_from_this();
  if (weak.expired()) return;  // not shared-owned: nobody to tell
  watching_ = true;
  const uint64_t generation = ++watch_generation_;
  // A read op, not a wait: asio tries it at once (the kernel may hold bytes
  // already) and otherwise queues it on the edge-triggered registration the
  // socket already has, so arming costs at most one recv.
  transport().socket().async_receive(
      asio::buffer(&watch_byte_, 1), asio::socket_base::message_peek,
      [weak = std::move(weak), generation](const asio::error_code& ec,
                                           size_t /*n*/) {
        if (ec == asio::error::operation_aborted) return;
        std::shared_ptr<Http1Connection> self = weak.lock();
        if (self == nullptr || self->watch_generation_ != generation) return;
        self->OnIdleReadable(ec);
      });
}

void Http1Connection::StopWatching() {
  if (!watching_) return;
  watching_ = false;
  ++watch_generation_;
  asio::error_code ignored;
  transport().socket().cancel(ignored);
}

void Http1Connection::OnIdleReadable(const asio::error_code& ec) {
  watching_ = false;
  if (!ec) {
    // Bytes. Over TLS they are most often an origin's close_notify with its
    // FIN right behind: a peer that shut its side counts as peer_closed.
    pollfd p{transport().native_fd(), POLLRDHUP, 0};
    const bool hung_up = ::poll(&p, 1, 0) == 1 && (p.revents & POLLRDHUP) != 0;
    idle_event_ =
        hung_up ? CloseReason::kPeerClosed : CloseReason::kUnsolicitedData;
  } else {
    idle_event_ = CloseReason::kPeerClosed;  // eof, reset
  }
  if (observer() != nullptr) observer()->OnNoNewExchanges(id(), *idle_event_);
}

void Http1Connection::Fail(const asio::error_code& ec, absl::string_view during,
                           const Request& request, const SocketDeadline& guard,
                           ExchangeResult* result) const {
  result->nothing_received = parser_->nothing_received();
  if (guard.aborted()) {
    result->response = absl::CancelledError(absl::StrCat(
        "the call was cancelled while ", during, " ", request.url.Redacted()));
    result->close_reason = CloseReason::kCallAborted;
  } else if (guard.expired()) {
    result->response = absl::DeadlineExceededError(absl::StrCat(
        "deadline exceeded while ", during, " ", request.url.Redacted()));
    result->close_reason = CloseReason::kCallAborted;
  } else {
    result->response = absl::UnavailableError(
        absl::StrCat("connection to ", remote_address(), " failed while ",
                     during, ": ", ec.message()));
    result->close_reason = ec == asio::error::eof ? CloseReason::kPeerClosed
                                                  : CloseReason::kIoError;
  }
}

void Http1Connection::FailOnOrigin(const absl::Status& what,
                                   const Request& request, CloseReason reason,
                                   ExchangeResult* result) const {
  result->nothing_received = parser_->nothing_received();
  result->response = absl::Status(
      what.code(), absl::StrCat("origin ", remote_address(), " for ",
                                request.url.Redacted(), ": ", what.message()));
  result->close_reason = reason;
}

void Http1Connection::Complete(const Request& request, std::string body,
                               ExchangeResult* result) const {
  const ResponseHead& h = parser_->head();
  Response& response = result->response.emplace();
  response.status_code = h.status_code;
  response.reason = h.reason;
  response.headers = h.headers;
  response.body = std::move(body);
  response.trailers = parser_->trailers();
  response.protocol = "http/1.1";
  if (!result->close_reason && !parser_->KeepAlive()) {
    result->close_reason = CloseReason::kConnectionClose;
  }
  if (!result->close_reason) {
    for (const HeaderField& field : request.headers) {
      if (IsConnectionClose(field)) {
        result->close_reason = CloseReason::kConnectionClose;
        break;
      }
    }
  }
  result->completed = true;
}

asio::awaitable<void> Http1Connection::ExchangeInto(
    const Request& request, const Http1Limits& limits, uint64_t max_body_bytes,
    absl::Time deadline, ExchangeResult* into, ExchangeSink* sink,
    CallAbort* abort) {
  // Every outcome fills the caller's result in place (see Fail in the
  // header for why).
  ExchangeResult& result = *into;
  bool head_delivered = false;
  parser_.emplace(limits);
  parser_->Reset(request.method == "HEAD");
  auto release_parser = absl::MakeCleanup([this] { parser_.reset(); });

  if (watching_) {
    StopWatching();
    // The watch may have missed bytes that arrived just now (the loop had
    // not polled yet): one peek right before the request goes out. Later
    // than the pool's check before reuse, and also done for a connection
    // handed straight from one call to the next.
    if (const Health health = ProbeHealth(); health != Health::kHealthy) {
      idle_event_ = health == Health::kPeerClosed
                        ? CloseReason::kPeerClosed
                        : CloseReason::kUnsolicitedData;
    }
  }
  if (idle_event_) {
    // The origin sent bytes or hung up while the connection was idle, and
    // this exchange got it before the pool could close it: nothing is
    // written, so the call may retry on another connection.
    result.nothing_received = true;
    result.response = absl::UnavailableError(absl::StrCat(
        "connection to ", remote_address(),
        *idle_event_ == CloseReason::kPeerClosed
            ? " was closed by the origin while idle"
            : " received bytes no request asked for while idle"));
    result.close_reason = idle_event_;
    co_return;
  }
  SocketDeadline guard(transport().socket(), deadline, abort);
  if (guard.aborted()) {
    // Cancelled before anything was written: the connection is untouched.
    result.response = absl::CancelledError("the call was cancelled");
    WatchWhileIdle();
    co_return;
  }
  const std::string head = http_proxy_ != nullptr
                               ? SerializeProxiedRequestHead(
                                     request, *http_proxy_,
                                     proxy_asked_for_credentials_ != nullptr &&
                                         proxy_asked_for_credentials_->load(
                                             std::memory_order_relaxed))
                               : SerializeRequestHead(request);
  std::array<asio::const_buffer, 2> out = {asio::buffer(head),
                                           asio::buffer(request.body)};
  auto [wec, wn] = co_await transport().Write(out);
  // The origin may answer early and stop reading (413, 401, a redirect with
  // "Connection: close") while a large body is still being written: the
  // write then fails (broken pipe, reset), but the whole response may be in
  // the socket already. It is read and returned; only if it is not is the
  // write's failure the result.
  const bool answered_early =
      wec && !guard.aborted() && !guard.expired() &&
      (wec == asio::error::broken_pipe || wec == asio::error::connection_reset);
  if (wec && !answered_early) {
    Fail(wec, "writing the request to", request, guard, &result);
    co_return;
  }
  if (!wec) {
    result.request_written = true;
    result.request_written_at = absl::Now();
  }

  size_t buffer_size = kFirstReadChunk;
  std::unique_ptr<char[]> buffer(new char[buffer_size]);
  std::string body;
  while (!parser_->message_complete()) {
    // An abort that arrived between two reads cancelled nothing pending.
    if (guard.aborted()) {
      Fail(asio::error::operation_aborted, "reading the response from",
           request, guard, &result);
      co_return;
    }
    auto [rec, n] = co_await transport().ReadSome(
        asio::buffer(buffer.get(), buffer_size));
    if (answered_early && rec && rec != asio::error::eof) {
      // No whole response before the failure: the write's error it is.
      Fail(wec, "writing the request to", request, guard, &result);
      co_return;
    }
    if (rec == asio::error::eof) {
      if (absl::Status eof = parser_->FeedEof(); !eof.ok()) {
        if (answered_early) {
          Fail(wec, "writing the request to", request, guard, &result);
        } else {
          FailOnOrigin(eof, request, CloseReason::kPeerClosed, &result);
        }
        co_return;
      }
      break;  // close-delimited body complete
    }
    if (rec) {
      Fail(rec, "reading the response from", request, guard, &result);
      co_return;
    }
    if (result.first_byte_at == absl::InfinitePast()) {
      result.first_byte_at = absl::Now();
    }
    absl::StatusOr<size_t> used = parser_->Feed(std::string_view(buffer.get(), n));
    if (!used.ok()) {
      FailOnOrigin(used.status(), request, CloseReason::kProtocolError,
                   &result);
      result.nothing_received = false;
      co_return;
    }
    if (sink != nullptr) {
      bool keep_going = true;
      if (!head_delivered && parser_->head_complete()) {
        head_delivered = true;
        keep_going = co_await sink->OnHead(parser_->head());
      }
      std::string chunk = parser_->TakeBody();
      if (keep_going && !chunk.empty()) {
        keep_going = co_await sink->OnBody(std::move(chunk));
      }
      if (!keep_going) {
        co_await Drain(*used < n, request, &result);
        co_return;
      }
    } else if (parser_->body_bytes() > max_body_bytes) {
      result.response = absl::ResourceExhaustedError(absl::StrCat(
          "response body of ", request.url.Redacted(), " exceeds ",
          max_body_bytes, " bytes (max_response_body_bytes); use FetchStream for large bodies"));
      result.close_reason = CloseReason::kCallAborted;
      co_return;
    }
    if (sink == nullptr) body += parser_->TakeBody();
    if (*used < n) {
      // Bytes after the response: the origin sent more than one response
      // for one request (or garbage). The response is fine; the connection
      // is not.
      result.close_reason = CloseReason::kProtocolError;
      break;
    }
    // The parser copied what it needs: the buffer may change.
    if (n == buffer_size && buffer_size < kReadChunk) {
      buffer_size = kReadChunk;
      buffer.reset(new char[buffer_size]);
    }
  }
  // The response is whole: stray bytes the origin holds back for our ACK
  // should arrive now, while the idle watch can see them.
  if (!result.close_reason && !answered_early) AckNow();
  if (answered_early) {
    // The request was cut short: the connection is done whatever the
    // response says.
    result.close_reason = CloseReason::kIoError;
  }
  if (sink == nullptr) {
    body += parser_->TakeBody();
  } else {
    bool keep_going = true;
    if (!head_delivered) {  // e.g. a HEAD or 204 completed in one read
      head_delivered = true;
      keep_going = co_await sink->OnHead(parser_->head());
    }
    std::string chunk = parser_->TakeBody();
    if (keep_going && !chunk.empty()) co_await sink->OnBody(std::move(chunk));
  }
  Complete(request, std::move(body), &result);
  if (!result.close_reason) WatchWhileIdle();
  co_return;
}

}  // namespace egress

namespace egress {

asio::awaitable<void> Http1Connection::Drain(bool extra_bytes,
                                             const Request& request,
                                             ExchangeResult* result) {
  result->request_written = true;
  result->response = absl::CancelledError(absl::StrCat(
      "the consumer abandoned the response of ", request.url.Redacted()));
  if (extra_bytes) {
    result->close_reason = CloseReason::kProtocolError;
    co_return;
  }
  // A short rest is cheaper to read than a new connection is to open.
  SocketDeadline guard(transport().socket(), absl::Now() + kMaxDrainTime);
  const uint64_t limit = parser_->body_bytes() + kMaxDrainBytes;
  std::unique_ptr<char[]> buffer(new char[kReadChunk]);
  while (!parser_->message_complete()) {
    if (parser_->body_bytes() > limit) {
      result->close_reason = CloseReason::kCallAborted;
      co_return;
    }
    auto [ec, n] = co_await transport().ReadSome(
        asio::buffer(buffer.get(), kReadChunk));
    if (ec) {
      result->close_reason = CloseReason::kCallAborted;
      co_return;
    }
    absl::StatusOr<size_t> used =
        parser_->Feed(std::string_view(buffer.get(), n));
    parser_->TakeBody();
    if (!used.ok() || *used < n) {
      result->close_reason = CloseReason::kProtocolError;
      co_return;
    }
  }
  result->completed = true;
  if (!parser_->KeepAlive()) {
    result->close_reason = CloseReason::kConnectionClose;
    co_return;
  }
  AckNow();
  WatchWhileIdle();
}

}  // namespace egress
