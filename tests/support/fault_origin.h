// FaultOrigin: a hostile HTTP/1.1 origin on 127.0.0.1, for the faults real
// servers do not produce on demand. The request path picks the behaviour:
//
//   /ok                  200 with the body "ok" (keep-alive)
//   /echo                200 whose body is the request head (keep-alive)
//   /close-after-headers a head promising 100 bytes, then close
//   /reset-mid-body      a head promising 1 MB, 1000 bytes, then a TCP RST
//   /long-body           Content-Length: 10 and 20 bytes of body
//   /short-body          Content-Length: 100, 50 bytes, then close
//   /never               reads the request and never answers
//   /slow-head?ms=N      the head one byte every N ms (slowloris; default
//                        1000), then "slow"
//   /slow-body?ms=N&n=B  the head at once (Content-Length: B, default
//                        1000), then one body byte every N ms
//   /huge-headers        a status line and then 10 MB of header lines
//   /bad-chunk           chunked, with the chunk size "zz"
//   /gzip                "hello, gzip! " x 1000, gzip-encoded, with
//                        Content-Encoding: gzip
//   /gzip-bomb           64 MiB of zeros gzip-encoded (about 64 KiB sent)
//   /redirect?status=S&to=URL   S (default 302) with Location: URL (the
//                        query value as it is, not decoded)
//   /redirect-loop       302 with Location: /redirect-loop
//   anything else        404
//
// With Options::idle_close_after, a connection that stays idle that long
// after a response is closed by the origin (the keep-alive race of issue 8:
// under load, egressd reuses connections the origin is closing).
//
// One thread per connection, blocking sockets; every wait ends when the
// origin is destroyed. Test use only.
#ifndef EGRESS_TESTS_SUPPORT_FAULT_ORIGIN_H_
#define EGRESS_TESTS_SUPPORT_FAULT_ORIGIN_H_

#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/time/time.h"
#include "client_core/base/sync.h"
#include "tests/support/loopback_server.h"

namespace egress::testing {

class FaultOrigin {
 public:
  struct Options {
    // Close a keep-alive connection idle this long after a response
    // (InfiniteDuration: never).
    absl::Duration idle_close_after = absl::InfiniteDuration();
  };

  FaultOrigin() : FaultOrigin(Options()) {}
  explicit FaultOrigin(const Options& options);
  // Stops accepting, ends every connection's waits, joins the threads.
  ~FaultOrigin();

  FaultOrigin(const FaultOrigin&) = delete;
  FaultOrigin& operator=(const FaultOrigin&) = delete;

  int port() const { return server_.port(); }
  // "http://127.0.0.1:PORT" + path.
  std::string Url(const std::string& path) const;

  int connections_accepted() const ABSL_LOCKS_EXCLUDED(mu_);
  // Connections the origin has not closed yet.
  int connections_open() const ABSL_LOCKS_EXCLUDED(mu_);
  int requests_received() const ABSL_LOCKS_EXCLUDED(mu_);
  // Connections closed by idle_close_after.
  int idle_closes() const ABSL_LOCKS_EXCLUDED(mu_);
  // Blocks until `n` requests have arrived (over all connections), or
  // `timeout` passed; returns whether they had.
  bool AwaitRequests(int n, absl::Duration timeout) ABSL_LOCKS_EXCLUDED(mu_);

  // The gzip encoding of `data` (for tests that check what egressd decoded).
  static std::string Gzip(const std::string& data);

 private:
  void Serve(int fd);
  // Sleeps `d` or until the origin stops; false if it stopped.
  bool Sleep(absl::Duration d) ABSL_LOCKS_EXCLUDED(mu_);

  const Options options_;
  mutable Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  int requests_ ABSL_GUARDED_BY(mu_) = 0;
  int idle_closes_ ABSL_GUARDED_BY(mu_) = 0;
  LoopbackServer server_;
};

}  // namespace egress::testing

#endif  // EGRESS_TESTS_SUPPORT_FAULT_ORIGIN_H_
