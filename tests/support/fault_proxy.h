// FaultProxy: an HTTP proxy of our own on 127.0.0.1 for what real proxies
// will not do on demand: a 407 with Connection: close, challenges in two
// steps, a refused CONNECT, garbage after a 200, endless challenges. A
// script decides the reply to every request; a CONNECT reply may then turn
// the connection into a real tunnel (relayed to a loopback target only).
// Every connection and request is recorded.
//
// One thread per connection, blocking sockets; test use only. Thread-safe:
// the accessors may be called while connections are served.
#ifndef EGRESS_TESTS_SUPPORT_FAULT_PROXY_H_
#define EGRESS_TESTS_SUPPORT_FAULT_PROXY_H_

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "client_core/base/sync.h"
#include "tests/support/loopback_server.h"

namespace egress::testing {

class FaultProxy {
 public:
  // One request as the proxy received it.
  struct Request {
    // 0-based index of the TCP connection it arrived on (accept order).
    int connection = 0;
    std::string method;  // "CONNECT", "GET", ...
    std::string target;  // "127.0.0.1:443", "http://a.test/x"
    // Request line and headers, CRLFs included.
    std::string head;
    // The Proxy-Authorization value, if the request had one.
    std::optional<std::string> proxy_authorization;
  };

  struct Reply {
    // Bytes written back.
    std::string bytes;
    // Close the connection after writing them.
    bool close_after = false;
    // For a CONNECT: after writing `bytes`, relay the connection to the
    // request's target until either side closes. Targets other than
    // 127.0.0.0/8 and ::1 are never dialled: the connection is closed.
    bool tunnel = false;
  };

  // Decides the reply to the n-th request (0-based, over all connections).
  using Script = std::function<Reply(int n, const Request& request)>;

  explicit FaultProxy(Script script);
  ~FaultProxy();  // stops accepting, closes every connection, joins threads

  FaultProxy(const FaultProxy&) = delete;
  FaultProxy& operator=(const FaultProxy&) = delete;

  int port() const { return server_.port(); }

  int connections_accepted() const ABSL_LOCKS_EXCLUDED(mu_);
  std::vector<Request> requests() const ABSL_LOCKS_EXCLUDED(mu_);

  // Canned replies.
  // "HTTP/1.1 200 Connection established", then the tunnel.
  static Reply Established();
  // A 407 with `Proxy-Authenticate: <challenge>` (e.g. `Basic
  // realm="proxy"`), a short body with Content-Length, and
  // `Connection: close` (closing after it) when `close` is set.
  static Reply AuthRequired(const std::string& challenge, bool close);
  // "HTTP/1.1 <code> <reason>" with an empty body (Content-Length: 0).
  static Reply Status(int code, const std::string& reason);

  // "Basic base64(user:password)", what a correct client sends.
  static std::string BasicCredentials(const std::string& user,
                                      const std::string& password);

 private:
  void Serve(int fd, int connection);
  // Tunnels `client_fd` to `target`, first forwarding `early_bytes` (sent
  // by the client after its CONNECT, before the reply).
  void Relay(int client_fd, const std::string& target,
             const std::string& early_bytes);

  Script script_;
  mutable Mutex mu_;
  std::vector<Request> requests_ ABSL_GUARDED_BY(mu_);
  LoopbackServer server_;
};

}  // namespace egress::testing

#endif  // EGRESS_TESTS_SUPPORT_FAULT_PROXY_H_
