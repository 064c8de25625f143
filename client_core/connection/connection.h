// Connection: one TCP connection to an origin and the HTTP/1.1 exchanges it
// carries, one at a time.
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
#ifndef EGRESS_CLIENT_CORE_CONNECTION_CONNECTION_H_
#define EGRESS_CLIENT_CORE_CONNECTION_CONNECTION_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

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

class Connection {
 public:
  Connection(uint64_t id, Address address, asio::ip::tcp::socket socket);
  ~Connection();

  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  uint64_t id() const { return id_; }
  const Address& address() const { return address_; }
  // "ip:port" of the peer, fixed at connect time.
  const std::string& remote_address() const { return remote_address_; }
  uint16_t local_port() const { return local_port_; }
  asio::any_io_executor executor() { return socket_.get_executor(); }

  // Runs one HTTP/1.1 exchange: writes `request`, reads the whole response
  // (body bounded by `max_body_bytes`), and fails with DeadlineExceeded at
  // `deadline`. Runs on executor(); at most one exchange at a time.
  //
  // With a `sink`, the head and body go to the sink as they arrive (the
  // result's body stays empty; `max_body_bytes` does not apply). If the sink
  // abandons the response, at most kMaxDrainBytes of the rest are read and
  // discarded so the connection can be reused; a longer rest closes it
  // (call_aborted). The result is then kCancelled.
  //
  // With an `abort`, CallAbort::Abort() ends the exchange promptly with
  // kCancelled: before anything was written the connection is untouched;
  // mid-exchange it is closed (call_aborted).
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

  // Health check before reuse, for an idle connection: a non-blocking peek
  // at the socket. Unhealthy when the peer closed (EOF), reset, or sent bytes
  // nobody asked for. Safe from any thread while no exchange runs (the pool
  // calls it under its lock on an idle connection; it reads no state that
  // I/O changes and consumes nothing).
  enum class Health { kHealthy, kPeerClosed, kStrayBytes };
  Health ProbeHealth() const;

  // Closes the socket. Runs on executor(). Idempotent.
  void Close();

 private:
  // Reads and discards the rest of an abandoned response (see Exchange).
  asio::awaitable<ExchangeResult> Drain(bool extra_bytes,
                                        const Request& request);

  const uint64_t id_;
  const Address address_;
  asio::ip::tcp::socket socket_;
  const int native_fd_;
  std::string remote_address_;
  uint16_t local_port_ = 0;
  // Present only while an exchange runs, so that an idle pooled connection
  // holds no parse state (the idle ones are the many).
  std::optional<ResponseParser> parser_;
};

}  // namespace egress

#endif  // EGRESS_CLIENT_CORE_CONNECTION_CONNECTION_H_
