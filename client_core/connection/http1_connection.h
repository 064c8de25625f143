// Http1Connection: a Connection speaking HTTP/1.1, one exchange at a time,
// with egressd's own codec (http1/). See connection.h for the contract.
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

class Http1Connection final : public Connection {
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
};

}  // namespace egress

#endif  // EGRESS_CLIENT_CORE_CONNECTION_HTTP1_CONNECTION_H_
