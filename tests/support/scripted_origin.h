// ScriptedOrigin: a tiny HTTP/1.1 origin on 127.0.0.1 for faults no real
// server produces on demand (closing a keep-alive connection silently right
// after a response, answering garbage). One thread per connection; blocking
// sockets; test use only.
#ifndef EGRESS_TESTS_SUPPORT_SCRIPTED_ORIGIN_H_
#define EGRESS_TESTS_SUPPORT_SCRIPTED_ORIGIN_H_

#include <functional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "client_core/base/sync.h"
#include "tests/support/loopback_server.h"

namespace egress::testing {

class ScriptedOrigin {
 public:
  struct Reply {
    // Bytes written back for the request.
    std::string bytes;
    // Close the connection after writing (without saying so in headers).
    bool close_after = false;
  };
  // Decides the reply to the n-th request (0-based, over all connections);
  // `request_head` is the request line and headers.
  using Script = std::function<Reply(int n, const std::string& request_head)>;

  explicit ScriptedOrigin(Script script);
  ~ScriptedOrigin();  // stops accepting, closes connections, joins threads

  int port() const { return server_.port(); }
  std::string Url(const std::string& path) const;

  int connections_accepted() const ABSL_LOCKS_EXCLUDED(mu_);
  int requests_received() const ABSL_LOCKS_EXCLUDED(mu_);
  // Blocks until `n` requests have arrived (over all connections).
  void AwaitRequests(int n) ABSL_LOCKS_EXCLUDED(mu_);
  // Blocks until the origin has closed `n` connections itself
  // (close_after replies).
  void AwaitClosedByOrigin(int n) ABSL_LOCKS_EXCLUDED(mu_);

  // "HTTP/1.1 200 OK" with Content-Length and `body`.
  static std::string Ok(const std::string& body);

 private:
  void Serve(int fd);

  Script script_;
  mutable Mutex mu_;
  int requests_ ABSL_GUARDED_BY(mu_) = 0;
  int closed_by_origin_ ABSL_GUARDED_BY(mu_) = 0;
  LoopbackServer server_;
};

}  // namespace egress::testing

#endif  // EGRESS_TESTS_SUPPORT_SCRIPTED_ORIGIN_H_
