// Connection: one connection to an origin (TCP, perhaps TLS) and the
// exchanges it carries: one at a time for HTTP/1.1 (Http1Connection), many at
// once for HTTP/2 (Http2Connection).
//
// Vocabulary (used the same way in pool.h):
//   - An *exchange* is one request written and its response read.
//   - A connection is *reusable* after an exchange when the response was
//     complete, both sides agreed to keep the connection (no
//     "Connection: close"), and nothing unexpected followed the response.
//
// Ownership and threading: created by the call that connected it, then owned
// by the ConnectionPool (shared_ptr; the call holding an allocation keeps a
// reference too). All I/O methods run on executor() only; the connection is
// confined to that event loop's thread. Close() must also run there.
// id(), address(), remote_address() and ProbeHealth() may be used from any
// thread.
//
// An exchange's result says what it means for the connection: for HTTP/1.1
// any failure mid-exchange closes the connection; for HTTP/2 a stream's
// failure (reset, refused) leaves the connection as it is unless
// close_reason is set.
#ifndef EGRESS_CLIENT_CORE_CONNECTION_CONNECTION_H_
#define EGRESS_CLIENT_CORE_CONNECTION_CONNECTION_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "asio/awaitable.hpp"
#include "asio/ip/tcp.hpp"
#include "client_core/connection/address.h"
#include "client_core/connection/close_reason.h"
#include "client_core/http/request.h"
#include "client_core/http1/limits.h"
#include "client_core/http1/response_parser.h"
#include "client_core/net/call_abort.h"
#include "client_core/net/transport.h"
#include "client_core/tls/tls_info.h"

namespace egress {

// What one exchange produced, and what it means for the connection.
struct ExchangeResult {
  absl::StatusOr<Response> response;
  // Set when the connection must not carry another exchange; the reason it
  // is closed under.
  std::optional<CloseReason> close_reason;
  // The failure happened before any byte of the response arrived. Combined
  // with `request_written` it tells whether a retry is safe.
  bool nothing_received = false;
  // Every byte of the request reached the socket (the origin may have acted
  // on it).
  bool request_written = false;
  // The whole response was read, even if the caller abandoned it (drained):
  // the exchange counts as a success for the connection.
  bool completed = false;
  // HTTP/2: the peer did not process the request (REFUSED_STREAM, or the
  // stream was above a GOAWAY's last-stream-id): a retry on another
  // connection is safe whatever the method.
  bool not_processed = false;
  // HTTP/2: specifically a REFUSED_STREAM reset (two on one connection stop
  // its new exchanges).
  bool refused_stream = false;
  // When the request was written, and when the first response byte arrived
  // (InfinitePast if never).
  absl::Time request_written_at = absl::InfinitePast();
  absl::Time first_byte_at = absl::InfinitePast();
};

// Receives a streamed response from Connection::Exchange. Runs on the
// connection's executor. Each method returns when the consumer took what it
// was given, which is how a slow consumer slows the reads from the origin;
// returning false abandons the rest of the response.
class ExchangeSink {
 public:
  virtual ~ExchangeSink() = default;
  virtual asio::awaitable<bool> OnHead(const ResponseHead& head) = 0;
  virtual asio::awaitable<bool> OnBody(std::string chunk) = 0;
};

// The application protocol a connection speaks.
enum class Protocol { kHttp11, kHttp2 };
// "http/1.1" or "h2": FetchResponse.protocol, stats and logs.
std::string_view ProtocolName(Protocol protocol);

// How a connection tells the pool about changes it discovers by itself
// (HTTP/2: the peer's SETTINGS, GOAWAY, a missed PING; HTTP/1.1: a byte or
// EOF that arrived while it was idle). Implemented by
// ConnectionPool; methods are thread-safe and may be called on the
// connection's executor at any time, also while an exchange runs.
class ConnectionObserver {
 public:
  virtual ~ConnectionObserver() = default;
  // allocation_limit() changed (e.g. SETTINGS_MAX_CONCURRENT_STREAMS).
  virtual void OnAllocationLimitChanged(uint64_t connection_id) = 0;
  // The connection takes no new exchanges from now on, for `reason` (GOAWAY,
  // ping_timeout, a connection-level error). Exchanges in progress may still
  // finish; the pool closes the connection once it carries none.
  virtual void OnNoNewExchanges(uint64_t connection_id,
                                CloseReason reason) = 0;
};

// One connection to an origin: identity, transport and a codec. The codec
// subclasses are Http1Connection (one exchange at a time) and
// Http2Connection (many streams at once).
class Connection {
 public:
  Connection(uint64_t id, Address address,
             std::unique_ptr<Transport> transport, Protocol protocol);
  virtual ~Connection();

  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  uint64_t id() const { return id_; }
  const Address& address() const { return address_; }
  // "ip:port" of the peer, fixed at connect time.
  const std::string& remote_address() const { return remote_address_; }
  // The peer's IP alone (coalescing compares it).
  const std::string& remote_ip() const { return remote_ip_; }
  uint16_t local_port() const { return local_port_; }
  asio::any_io_executor executor() { return transport_->executor(); }
  Protocol protocol() const { return protocol_; }
  // Null for cleartext. Safe from any thread.
  const TlsInfo* tls_info() const { return transport_->tls_info(); }
  bool multiplexed() const { return protocol_ == Protocol::kHttp2; }
  // Application bytes received from and sent to the peer so far. Safe from
  // any thread.
  uint64_t bytes_received() const { return transport_->bytes_read(); }
  uint64_t bytes_sent() const { return transport_->bytes_written(); }

  // How many exchanges the connection may carry at once right now: 1 for
  // HTTP/1.1; for HTTP/2 the peer's SETTINGS_MAX_CONCURRENT_STREAMS capped
  // by the client's own limit. Changes are reported to the observer. Safe
  // from any thread.
  virtual int allocation_limit() const { return 1; }
  // False until the limit is the peer's (HTTP/2: before its first SETTINGS,
  // the limit is 1); the observer is told when it becomes known. Safe from
  // any thread.
  virtual bool allocation_limit_known() const { return true; }

  // Set by the pool when it takes the connection; null before. Called once,
  // before any exchange. The observer outlives the connection's handlers.
  void set_observer(ConnectionObserver* observer) { observer_ = observer; }

  // Starts the connection's own background work (HTTP/2: the reader and the
  // PING timer). Runs on executor(), once, before the first exchange.
  virtual void Start() {}

  // Runs one exchange: writes `request`, reads the whole response (body
  // bounded by `max_body_bytes`), and fails with DeadlineExceeded at
  // `deadline`. Runs on executor(). Http1Connection: one exchange at a time;
  // Http2Connection: up to allocation_limit() at once.
  //
  // With a `sink`, the head and body go to the sink as they arrive (the
  // result's body stays empty; `max_body_bytes` does not apply). If the sink
  // abandons the response: HTTP/1.1 reads and discards at most
  // kMaxDrainBytes of the rest so the connection can be reused (a longer
  // rest closes it, call_aborted); HTTP/2 resets the stream. The result is
  // then kCancelled.
  //
  // With an `abort`, CallAbort::Abort() ends the exchange promptly with
  // kCancelled: before anything was written the connection is untouched;
  // mid-exchange an HTTP/1.1 connection is closed (call_aborted) and an
  // HTTP/2 stream is reset (the connection stays).
  //
  // The result goes to `*result`, a default-constructed ExchangeResult the
  // caller keeps until the exchange ends: a coroutine's return value would
  // take one more slot (480 bytes) in every frame it passes through, for as
  // long as the exchange runs.
  virtual asio::awaitable<void> ExchangeInto(
      const Request& request, const Http1Limits& limits,
      uint64_t max_body_bytes, absl::Time deadline, ExchangeResult* result,
      ExchangeSink* sink = nullptr, CallAbort* abort = nullptr) = 0;
  // ExchangeInto, returning the result (tests, tools).
  asio::awaitable<ExchangeResult> Exchange(const Request& request,
                                           const Http1Limits& limits,
                                           uint64_t max_body_bytes,
                                           absl::Time deadline,
                                           ExchangeSink* sink = nullptr,
                                           CallAbort* abort = nullptr);

  // How much of an abandoned response is read to keep the connection, and
  // for how long at most. Past either, closing is cheaper than draining.
  static constexpr uint64_t kMaxDrainBytes = 64 * 1024;
  static constexpr absl::Duration kMaxDrainTime = absl::Milliseconds(100);

  // Health check before reuse, for an idle connection. Unhealthy when the
  // peer closed (EOF), reset, or sent bytes nobody asked for (HTTP/1.1), or
  // the connection stopped taking exchanges (HTTP/2: GOAWAY, dead reader).
  // Safe from any thread while the connection is idle (the pool calls it
  // under its lock; it consumes nothing).
  enum class Health { kHealthy, kPeerClosed, kStrayBytes };
  virtual Health ProbeHealth() const;

  // Closes the connection; exchanges in progress fail. Runs on executor().
  // Idempotent.
  virtual void Close();

 protected:
  Transport& transport() { return *transport_; }
  ConnectionObserver* observer() const { return observer_; }

 private:
  const uint64_t id_;
  const Address address_;
  const std::unique_ptr<Transport> transport_;
  const Protocol protocol_;
  std::string remote_address_;
  std::string remote_ip_;
  uint16_t local_port_ = 0;
  ConnectionObserver* observer_ = nullptr;
};

}  // namespace egress

#endif  // EGRESS_CLIENT_CORE_CONNECTION_CONNECTION_H_
