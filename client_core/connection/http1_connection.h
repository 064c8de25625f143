// Http1Connection: a Connection speaking HTTP/1.1, one exchange at a time,
// with egressd's own codec (http1/). See connection.h for the contract.
//
// Stray bytes. HTTP/1.1 pairs responses with requests by order alone, so a
// byte the origin sends while no request is outstanding (a late body after
// HEAD, bytes after a 204, a second response) would be read as the next
// request's response, and every response after it would go to the request
// after its own: one caller reading another's data. The connection guards
// against it three ways:
//   - after each response it may be reused after, it acknowledges at once
//     (TCP_QUICKACK), so that an origin whose stray bytes wait for our ACK
//     (Nagle) sends them now, while the connection is idle, rather than
//     after the next request;
//   - while idle it stays watched (a pending one-byte peek): any byte or EOF
//     makes it tell its observer (the pool), which closes it at once
//     (unsolicited_data, peer_closed); an exchange started before the pool
//     could act fails before writing anything (UNAVAILABLE, safe to retry);
//   - framing that invites stray bytes (a 204/304/1xx with a body framing,
//     Transfer-Encoding with Content-Length) is never reused after.
// Bytes that arrive only after the next request was written cannot be told
// from its response; they spoil that one exchange, and the watch closes the
// connection once the real response shows up behind them.
//
// Early answers. An origin that answers and closes while a large body is
// still being written (413, 401, a redirect with "Connection: close") fails
// the write (broken pipe, reset); the response it sent first is read and
// returned if it is whole (the connection then closes, io_error), and the
// write's failure is the result otherwise.
//
// Ownership: the idle watch needs the connection owned by a shared_ptr (as
// the Connector and the pool own it); one that is not is never watched.
//
// Threading: confined to executor(), except ProbeHealth (any thread, idle).
#ifndef EGRESS_CLIENT_CORE_CONNECTION_HTTP1_CONNECTION_H_
#define EGRESS_CLIENT_CORE_CONNECTION_HTTP1_CONNECTION_H_

#include <cstdint>
#include <atomic>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "asio/error_code.hpp"

#include "client_core/connection/connection.h"
#include "client_core/http1/response_parser.h"
#include "client_core/proxy/proxy_rules.h"

namespace egress {

class SocketDeadline;

class Http1Connection final
    : public Connection,
      public std::enable_shared_from_this<Http1Connection> {
 public:
  Http1Connection(uint64_t id, Address address,
                  std::unique_ptr<Transport> transport);
  // Cleartext over `socket` (tests and benchmarks).
  Http1Connection(uint64_t id, Address address, asio::ip::tcp::socket socket);
  ~Http1Connection() override;

  // The connection goes to an HTTP proxy that forwards http:// requests:
  // heads are written in absolute form (proxy/http_tunnel.h), with the
  // proxy's credentials once `asked_for_credentials` is set (the
  // Connector's per-proxy flag; null when the proxy has none). Set before
  // the first exchange.
  void set_http_proxy(std::shared_ptr<const Proxy> proxy,
                      std::shared_ptr<const std::atomic<bool>>
                          asked_for_credentials) {
    http_proxy_ = std::move(proxy);
    proxy_asked_for_credentials_ = std::move(asked_for_credentials);
  }

  asio::awaitable<void> ExchangeInto(
      const Request& request, const Http1Limits& limits,
      uint64_t max_body_bytes, absl::Time deadline, ExchangeResult* result,
      ExchangeSink* sink = nullptr, CallAbort* abort = nullptr) override;

 private:
  // Reads and discards the rest of an abandoned response (see Exchange),
  // completing `result`.
  asio::awaitable<void> Drain(bool extra_bytes, const Request& request,
                              ExchangeResult* result);

  // Pushes out the ACK for what was read so far (TCP_QUICKACK), so an
  // origin holding more bytes for it sends them now.
  void AckNow();
  // Arms the idle watch: a one-byte peek that completes on the first byte or
  // EOF to arrive (at once if one is there already).
  void WatchWhileIdle();
  // Disarms it: an exchange starts.
  void StopWatching();
  // The peek completed while idle: records what arrived and tells the
  // observer.
  void OnIdleReadable(const asio::error_code& ec);

  // The parts of Exchange that build its result, kept out of the coroutine:
  // g++ 12 gives every local and temporary of a coroutine body its own slot
  // in the frame for as long as the exchange runs (an ExchangeResult is 480
  // bytes), and with 10,000 calls in flight frames are most of egressd's
  // memory. Each fills `result` in place.
  //
  // I/O failed (`ec`) while `during` ("writing the request to", ...);
  // `guard` says whether the call's abort or deadline caused it.
  void Fail(const asio::error_code& ec, absl::string_view during,
            const Request& request, const SocketDeadline& guard,
            ExchangeResult* result) const;
  // The parser refused what the origin sent (`what`), or its EOF.
  void FailOnOrigin(const absl::Status& what, const Request& request,
                    CloseReason reason, ExchangeResult* result) const;
  // The response is complete: moves it from the parser into `result`.
  void Complete(const Request& request, std::string body,
                ExchangeResult* result) const;

  // Present only while an exchange runs, so that an idle pooled connection
  // holds no parse state (the idle ones are the many).
  std::optional<ResponseParser> parser_;
  std::shared_ptr<const Proxy> http_proxy_;
  std::shared_ptr<const std::atomic<bool>> proxy_asked_for_credentials_;
  // The idle watch's peek is pending; counts arms, so that a completion
  // queued before an exchange disarmed it is ignored.
  bool watching_ = false;
  uint64_t watch_generation_ = 0;
  char watch_byte_ = 0;
  // What the idle watch saw (unsolicited_data or peer_closed): the
  // connection takes no further exchange.
  std::optional<CloseReason> idle_event_;
};

}  // namespace egress

#endif  // EGRESS_CLIENT_CORE_CONNECTION_HTTP1_CONNECTION_H_
