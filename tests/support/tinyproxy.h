// TinyproxyServer: Debian's tinyproxy (1.11) on 127.0.0.1, started by a test
// with its own configuration, log and PID file in a fresh directory under
// $TEST_TMPDIR, in the foreground (tinyproxy -d), stopped by PID.
//
// Forward proxying of http:// (absolute-form requests) and CONNECT to any
// port; clients from 127.0.0.1 only; optionally Basic authentication with
// one user (tinyproxy's BasicAuth). Tests only ever name loopback targets.
// Note tinyproxy answers in HTTP/1.0 (so a 407 closes the connection), and
// answers wrong credentials with "401 Unauthorized" rather than 407.
//
// Not thread-safe: one test thread owns it.
#ifndef EGRESS_TESTS_SUPPORT_TINYPROXY_H_
#define EGRESS_TESTS_SUPPORT_TINYPROXY_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "tests/support/subprocess.h"

namespace egress::testing {

struct TinyproxyOptions {
  // Non-empty: BasicAuth with this user and password.
  std::string username;
  std::string password;
};

class TinyproxyServer {
 public:
  // Errors: kUnavailable when tinyproxy does not come up (its log attached).
  static absl::StatusOr<std::unique_ptr<TinyproxyServer>> Start(
      const TinyproxyOptions& options = TinyproxyOptions());
  ~TinyproxyServer();  // SIGTERM, SIGKILL after 5 s

  int port() const { return port_; }
  std::string Url() const;  // "http://127.0.0.1:PORT"
  const std::string& dir() const { return dir_; }
  // tinyproxy's log (LogLevel Connect: one "Request" line per request).
  std::string Log() const;

 private:
  TinyproxyServer() = default;
  std::string dir_;
  int port_ = 0;
  std::unique_ptr<Subprocess> process_;
};

}  // namespace egress::testing

#endif  // EGRESS_TESTS_SUPPORT_TINYPROXY_H_
