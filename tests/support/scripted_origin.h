// ScriptedOrigin: a tiny HTTP/1.1 origin on 127.0.0.1 for faults no real
// server produces on demand (closing a keep-alive connection silently right
// after a response, answering garbage, sending bytes nobody asked for a
// while after a response, answering before the request body arrived). One
// thread per connection (plus one per delayed write); blocking sockets; test
// use only.
#ifndef EGRESS_TESTS_SUPPORT_SCRIPTED_ORIGIN_H_
#define EGRESS_TESTS_SUPPORT_SCRIPTED_ORIGIN_H_

#include <functional>
#include <string>

#include "absl/time/time.h"

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
    // Unsolicited bytes written `later_after` after `bytes` (by a separate
    // write, so in a segment of their own), while the origin goes on
    // reading and answering the next requests: a late body after HEAD,
    // bytes after a 204, a second response.
    std::string later;
    absl::Duration later_after;
  };
  struct Options {
    // TCP_NODELAY on accepted connections. Without it (the default, as
    // many origins run) a small write waits for the ACK of the previous
    // one (Nagle): stray bytes then wait for the client's ACK.
    bool tcp_nodelay = false;
    // Reply as soon as a request's head has arrived, without reading its
    // body (an origin refusing an upload: 413, 401, a redirect); with
    // close_after the unread body makes the close a reset.
    bool reply_after_head = false;
  };
  // Decides the reply to the n-th request (0-based, over all connections);
  // `request_head` is the request line and headers.
  using Script = std::function<Reply(int n, const std::string& request_head)>;

  explicit ScriptedOrigin(Script script);
  ScriptedOrigin(Script script, Options options);
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
  // Replies' `later` bytes written so far.
  int later_written() const ABSL_LOCKS_EXCLUDED(mu_);

  // "HTTP/1.1 200 OK" with Content-Length and `body`.
  static std::string Ok(const std::string& body);

 private:
  void Serve(int fd);

  Script script_;
  const Options options_;
  mutable Mutex mu_;
  int later_written_ ABSL_GUARDED_BY(mu_) = 0;
  int requests_ ABSL_GUARDED_BY(mu_) = 0;
  int closed_by_origin_ ABSL_GUARDED_BY(mu_) = 0;
  LoopbackServer server_;
};

}  // namespace egress::testing

#endif  // EGRESS_TESTS_SUPPORT_SCRIPTED_ORIGIN_H_
