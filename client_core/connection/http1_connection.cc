#include "client_core/connection/http1_connection.h"

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

  SocketDeadline guard(transport().socket(), deadline, abort);
  if (guard.aborted()) {
    // Cancelled before anything was written: the connection is untouched.
    result.response = absl::CancelledError("the call was cancelled");
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
  if (wec) {
    Fail(wec, "writing the request to", request, guard, &result);
    co_return;
  }
  result.request_written = true;
  result.request_written_at = absl::Now();

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
    if (rec == asio::error::eof) {
      if (absl::Status eof = parser_->FeedEof(); !eof.ok()) {
        FailOnOrigin(eof, request, CloseReason::kPeerClosed, &result);
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
  if (!parser_->KeepAlive()) result->close_reason = CloseReason::kConnectionClose;
}

}  // namespace egress
