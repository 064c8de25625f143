// LoopbackServer: the TCP plumbing our own test servers share (ScriptedOrigin,
// FaultOrigin, FaultProxy, Socks5Server): a listener on 127.0.0.1 at a port
// the kernel picks, an accept thread, one thread per accepted connection
// running the owner's Serve function, and a Stop() that ends all of it.
//
// Contract for Serve(fd, connection): `connection` counts accepted
// connections from 0. Serve owns the conversation but not the descriptor:
// it may shutdown() `fd` (e.g. to close early and say so), never close()
// it; the server closes it once Serve returns (after SO_LINGER or any other
// option Serve set). Other descriptors Serve blocks on (an upstream socket)
// can be Track()ed so that Stop() unblocks them too.
//
// Lifetime: construct (binds and listens, so port() is known), Start(serve)
// once, then Stop() before anything Serve uses is destroyed: an owner calls
// it first in its destructor. The destructor also calls it.
//
// Thread-safety: every method may be called from any thread.
#ifndef EGRESS_TESTS_SUPPORT_LOOPBACK_SERVER_H_
#define EGRESS_TESTS_SUPPORT_LOOPBACK_SERVER_H_

#include <atomic>
#include <functional>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/string_view.h"
#include "client_core/base/sync.h"

namespace egress::testing {

class LoopbackServer {
 public:
  using Serve = std::function<void(int fd, int connection)>;

  // Listens on 127.0.0.1 with `backlog`; aborts if it cannot (a test
  // machine without loopback is not one these tests can run on).
  explicit LoopbackServer(int backlog = 128);
  ~LoopbackServer();

  LoopbackServer(const LoopbackServer&) = delete;
  LoopbackServer& operator=(const LoopbackServer&) = delete;

  // Starts accepting; each connection is served on its own thread.
  void Start(Serve serve);
  // Stops accepting, shuts every tracked descriptor down (ending blocked
  // reads; writes fail) and joins every thread. Idempotent.
  void Stop();

  int port() const { return port_; }
  // True once Stop() began: Serve may check it before starting long work.
  bool stopping() const { return stopping_.load(); }
  int connections_accepted() const ABSL_LOCKS_EXCLUDED(mu_);
  // Accepted connections whose Serve has not returned yet.
  int connections_open() const ABSL_LOCKS_EXCLUDED(mu_);

  // Adds or removes a descriptor Stop() shuts down (besides the accepted
  // ones, which are tracked while their Serve runs).
  void Track(int fd) ABSL_LOCKS_EXCLUDED(mu_);
  void Untrack(int fd) ABSL_LOCKS_EXCLUDED(mu_);

 private:
  void AcceptLoop();

  int listen_fd_ = -1;
  int port_ = 0;
  Serve serve_;
  std::atomic<bool> stopping_{false};
  std::thread acceptor_;
  mutable Mutex mu_;
  std::vector<std::thread> workers_ ABSL_GUARDED_BY(mu_);
  // Descriptors Stop() shuts down: accepted ones while served, and tracked.
  std::vector<int> open_fds_ ABSL_GUARDED_BY(mu_);
  int accepted_ ABSL_GUARDED_BY(mu_) = 0;
  int serving_ ABSL_GUARDED_BY(mu_) = 0;
};

// Writes all of `bytes` to `fd` (no SIGPIPE); false once the peer is gone.
bool SendAll(int fd, absl::string_view bytes);

// Copies bytes both ways between two connected sockets until either side
// ends or fails (a proxy's tunnel). Shutting either down ends it.
void PumpBothWays(int a, int b);

}  // namespace egress::testing

#endif  // EGRESS_TESTS_SUPPORT_LOOPBACK_SERVER_H_
