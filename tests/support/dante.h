// DanteServer: Debian's dante-server (danted 1.4) on 127.0.0.1 as a SOCKS5
// proxy without authentication, started by a test with its own
// configuration, log and PID file in a fresh directory under $TEST_TMPDIR,
// in the foreground, stopped by PID.
//
// Clients from 127.0.0.0/8 may CONNECT to 127.0.0.0/8 only (names are
// resolved by danted through the system resolver: "localhost" works);
// every other destination is blocked. Username/password authentication is
// not offered: danted checks it against the system's user database (or
// PAM), which a test cannot populate; tests/support/socks5_server.h covers
// RFC 1929.
//
// As root, danted runs in a user namespace where it is uid 1000, like
// squid (see squid.h), so that it never tries to switch to users Bazel's
// sandbox does not have.
//
// Not thread-safe: one test thread owns it.
#ifndef EGRESS_TESTS_SUPPORT_DANTE_H_
#define EGRESS_TESTS_SUPPORT_DANTE_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "tests/support/subprocess.h"

namespace egress::testing {

class DanteServer {
 public:
  // Errors: kUnavailable when danted does not come up (its log attached).
  static absl::StatusOr<std::unique_ptr<DanteServer>> Start();
  ~DanteServer();  // SIGTERM (danted stops its children), SIGKILL after 5 s

  int port() const { return port_; }
  const std::string& dir() const { return dir_; }
  std::string Log() const;

 private:
  DanteServer() = default;
  std::string dir_;
  int port_ = 0;
  std::unique_ptr<Subprocess> process_;
};

}  // namespace egress::testing

#endif  // EGRESS_TESTS_SUPPORT_DANTE_H_
