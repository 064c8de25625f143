// Socks5Server: a small SOCKS5 proxy of our own (RFC 1928 CONNECT, RFC 1929
// username/password) on 127.0.0.1.
//
// Why our own besides Debian's danted (tests/support/dante.h): danted checks
// usernames and passwords only against the system's user database or PAM,
// which a test cannot populate, and it produces reply codes only for the
// situations that cause them. This server takes its credentials from the
// test, can answer with any reply code on demand, and records every
// handshake.
//
// It only ever dials loopback: IP-literal targets in 127.0.0.0/8 or ::1, and
// names in Socks5ServerOptions::hosts (mapped to loopback IPs by the test)
// or "localhost". Anything else is refused with reply 2 (not allowed by
// ruleset); an unknown name gets reply 4 (host unreachable); a refused
// connect reply 5.
//
// One thread per connection, blocking sockets; test use only. Thread-safe.
#ifndef EGRESS_TESTS_SUPPORT_SOCKS5_SERVER_H_
#define EGRESS_TESTS_SUPPORT_SOCKS5_SERVER_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "client_core/base/sync.h"
#include "tests/support/loopback_server.h"

namespace egress::testing {

struct Socks5ServerOptions {
  // Non-empty: only username/password (method 2) with exactly these is
  // accepted. Empty: only "no authentication" (method 0).
  std::string username;
  std::string password;
  // Names resolved for domain-name (ATYP 3) requests: name -> loopback IP
  // literal ("127.0.0.1", "::1").
  std::map<std::string, std::string> hosts;
  // Non-zero: every CONNECT is answered with this reply code, nothing is
  // dialled.
  uint8_t forced_reply = 0;
};

class Socks5Server {
 public:
  // One handshake as the server saw it.
  struct Handshake {
    int connection = 0;
    std::vector<uint8_t> methods_offered;
    uint8_t method_chosen = 0xff;
    // RFC 1929: what the client sent (tests check it never leaks
    // elsewhere), and whether it matched.
    std::string username;
    std::string password;
    bool authenticated = false;
    // The CONNECT request: address type (1, 3, 4), host as text, port.
    uint8_t address_type = 0;
    std::string host;
    uint16_t port = 0;
    // The reply code sent; 0xff when the handshake ended before a reply.
    uint8_t reply = 0xff;
  };

  explicit Socks5Server(Socks5ServerOptions options = {});
  ~Socks5Server();  // stops accepting, closes every connection, joins

  Socks5Server(const Socks5Server&) = delete;
  Socks5Server& operator=(const Socks5Server&) = delete;

  int port() const { return server_.port(); }
  int connections_accepted() const ABSL_LOCKS_EXCLUDED(mu_);
  std::vector<Handshake> handshakes() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  void Serve(int fd, int connection);
  // Runs the handshake; returns the upstream fd to relay to, or -1. Records
  // the handshake (setting *recorded) before its last answer goes out.
  int Negotiate(int fd, Handshake* handshake, bool* recorded);
  void Record(const Handshake& handshake) ABSL_LOCKS_EXCLUDED(mu_);

  const Socks5ServerOptions options_;
  mutable Mutex mu_;
  std::vector<Handshake> handshakes_ ABSL_GUARDED_BY(mu_);
  LoopbackServer server_;
};

}  // namespace egress::testing

#endif  // EGRESS_TESTS_SUPPORT_SOCKS5_SERVER_H_
