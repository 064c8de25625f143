#include "client_core/net/transport.h"

#include <openssl/ssl.h>

#include <utility>

#include "asio/experimental/as_tuple.hpp"
#include "asio/use_awaitable.hpp"
#include "asio/write.hpp"

namespace egress {
namespace {

constexpr auto kNoThrow = asio::experimental::as_tuple(asio::use_awaitable);

// Only the socket's loop writes the counters: a relaxed load and store, no
// read-modify-write.
void Count(std::atomic<uint64_t>& counter, size_t n) {
  counter.store(counter.load(std::memory_order_relaxed) + n,
                std::memory_order_relaxed);
}

}  // namespace

Transport::Transport(asio::ip::tcp::socket socket)
    : plain_(std::make_unique<asio::ip::tcp::socket>(std::move(socket))),
      native_fd_(plain_->native_handle()) {}

Transport::Transport(std::unique_ptr<TlsStream> tls,
                     std::shared_ptr<const TlsInfo> info)
    : tls_(std::move(tls)),
      tls_info_(std::move(info)),
      native_fd_(tls_->next_layer().native_handle()) {}

Transport::~Transport() = default;

asio::ip::tcp::socket& Transport::socket() {
  return tls_ != nullptr ? tls_->next_layer() : *plain_;
}

asio::awaitable<std::tuple<asio::error_code, size_t>> Transport::ReadSome(
    asio::mutable_buffer buffer) {
  if (tls_ != nullptr) {
    auto [ec, n] = co_await tls_->async_read_some(buffer, kNoThrow);
    // A peer that closes TCP without close_notify (common, and harmless for
    // HTTP: its framing says where a message ends) is an EOF, as in
    // cleartext; the codec decides whether the message was complete.
    if (ec == asio::ssl::error::stream_truncated) ec = asio::error::eof;
    Count(bytes_read_, n);
    co_return std::make_tuple(ec, n);
  }
  auto [ec, n] = co_await plain_->async_read_some(buffer, kNoThrow);
  Count(bytes_read_, n);
  co_return std::make_tuple(ec, n);
}

asio::awaitable<std::tuple<asio::error_code, size_t>> Transport::Write(
    absl::Span<const asio::const_buffer> buffers) {
  if (tls_ != nullptr) {
    auto [ec, n] = co_await asio::async_write(*tls_, buffers, kNoThrow);
    Count(bytes_written_, n);
    co_return std::make_tuple(ec, n);
  }
  auto [ec, n] = co_await asio::async_write(*plain_, buffers, kNoThrow);
  Count(bytes_written_, n);
  co_return std::make_tuple(ec, n);
}

void Transport::Close() {
  if (tls_ != nullptr) {
    // Marks the TLS connection as shut down: OpenSSL otherwise takes a
    // session freed without shutdown for a bad one and stops it from being
    // resumed (ssl_clear_bad_session), which would cost every new
    // connection to the origin a full handshake.
    SSL_set_shutdown(tls_->native_handle(),
                     SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
  }
  asio::ip::tcp::socket& s = socket();
  asio::error_code ignored;
  s.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
  s.close(ignored);
}

}  // namespace egress
