// Transport: the byte stream a Connection's codec reads and writes: a TCP
// socket, or TLS (OpenSSL, through asio::ssl) over one.
//
// The codecs (HTTP/1.1, HTTP/2) see only ReadSome and Write, so a codec never
// knows whether it speaks cleartext or TLS. Deadlines and aborts cancel the
// TCP socket (socket()), which ends pending TLS operations too.
//
// Ownership and threading: owned by its Connection. Confined to the socket's
// event loop (executor()): at most one ReadSome and one Write may be pending
// at a time (one of each at once is fine: HTTP/2 reads and writes
// concurrently). native_fd() and tls_info() may be read from any thread;
// tls_info() is fixed at construction.
#ifndef EGRESS_CLIENT_CORE_NET_TRANSPORT_H_
#define EGRESS_CLIENT_CORE_NET_TRANSPORT_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <tuple>

#include "absl/types/span.h"
#include "asio/awaitable.hpp"
#include "asio/buffer.hpp"
#include "asio/ip/tcp.hpp"
#include "asio/ssl/stream.hpp"
#include "client_core/tls/tls_info.h"

namespace egress {

class Transport {
 public:
  using TlsStream = asio::ssl::stream<asio::ip::tcp::socket>;

  // Cleartext over `socket`.
  explicit Transport(asio::ip::tcp::socket socket);
  // TLS over a stream whose handshake completed; `info` describes it.
  Transport(std::unique_ptr<TlsStream> tls, std::shared_ptr<const TlsInfo> info);
  ~Transport();

  Transport(const Transport&) = delete;
  Transport& operator=(const Transport&) = delete;

  // The TCP socket under everything: cancel() it to end pending operations,
  // read its endpoints.
  asio::ip::tcp::socket& socket();
  asio::any_io_executor executor() { return socket().get_executor(); }
  int native_fd() const { return native_fd_; }

  // Null for cleartext.
  const TlsInfo* tls_info() const { return tls_info_.get(); }
  bool is_tls() const { return tls_ != nullptr; }

  // Reads what is available (at least one byte), like async_read_some:
  // (error, bytes). eof when the peer closed (for TLS: closed the TCP
  // connection, with or without close_notify).
  asio::awaitable<std::tuple<asio::error_code, size_t>> ReadSome(
      asio::mutable_buffer buffer);

  // Writes every byte of `buffers`, in order: (error, bytes written).
  asio::awaitable<std::tuple<asio::error_code, size_t>> Write(
      absl::Span<const asio::const_buffer> buffers);

  // Bytes read and written through the transport (TLS: application bytes,
  // not records) since it was made. Safe from any thread.
  uint64_t bytes_read() const {
    return bytes_read_.load(std::memory_order_relaxed);
  }
  uint64_t bytes_written() const {
    return bytes_written_.load(std::memory_order_relaxed);
  }

  // Closes the TCP connection at once (no TLS close_notify: the pool closes
  // connections it no longer wants, and waiting for the peer is pointless).
  // Idempotent.
  void Close();

 private:
  std::unique_ptr<asio::ip::tcp::socket> plain_;
  std::unique_ptr<TlsStream> tls_;
  std::shared_ptr<const TlsInfo> tls_info_;
  int native_fd_ = -1;
  // Written on the socket's loop only; atomics so other threads may read.
  std::atomic<uint64_t> bytes_read_{0};
  std::atomic<uint64_t> bytes_written_{0};
};

}  // namespace egress

#endif  // EGRESS_CLIENT_CORE_NET_TRANSPORT_H_
