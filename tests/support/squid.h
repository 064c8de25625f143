// SquidServer: Debian's squid (5.x) on 127.0.0.1 as an HTTP forward proxy,
// started by a test with its own squid.conf, password file, logs and PID
// file in a fresh directory under $TEST_TMPDIR, run in the foreground
// (squid -N), stopped by PID.
//
// What it is set up for:
//   - forward proxying of http:// (absolute-form requests) and CONNECT
//     tunnels to any port;
//   - only loopback destinations (127.0.0.0/8, ::1): everything else is
//     denied, and squid's DNS points at 127.0.0.1, so nothing leaves the
//     machine. Names resolve through `hosts` (squid's hosts_file);
//   - with `users`: Basic authentication through basic_ncsa_auth against a
//     password file this class writes (SHA-256 crypt(3) hashes). Without:
//     no authentication;
//   - no cache, no ICP/HTCP, no pinger.
//
// Running as root: squid refuses to keep root and wants to switch to an
// unprivileged user — which does not exist inside Bazel's sandbox (only
// root is mapped there). So as root squid runs in a user namespace of its
// own where it is uid 1000 (`unshare --user --map-user=1000`): still the
// same files and network, but not root in squid's eyes.
//
// Not thread-safe: one test thread owns it. AccessLog*() may be called
// while squid serves.
#ifndef EGRESS_TESTS_SUPPORT_SQUID_H_
#define EGRESS_TESTS_SUPPORT_SQUID_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "tests/support/subprocess.h"

namespace egress::testing {

struct SquidOptions {
  // user -> password. Non-empty: every request must carry Basic
  // credentials of one of them (407 otherwise). Passwords: printable
  // ASCII.
  std::map<std::string, std::string> users;
  // The Basic realm squid announces.
  std::string realm = "egress-test";
  // Host names squid resolves (its hosts_file): name -> loopback IP.
  std::map<std::string, std::string> hosts;
  // Extra squid.conf lines, appended.
  std::string extra_config;
};

// One line of squid's access log (written when a transaction ends: for a
// CONNECT tunnel, when the tunnel closes). Connections that closed before
// sending a request (Start()'s readiness probes, which squid may log late)
// are left out.
struct SquidAccessLogEntry {
  std::string result;       // squid's result code, e.g. "TCP_TUNNEL",
                            // "TCP_MISS", "TCP_DENIED"
  int status = 0;           // HTTP status sent to the client
  std::string method;       // "CONNECT", "GET"
  std::string url;          // "127.0.0.1:8443", "http://127.0.0.1:80/x"
  std::string user;         // authenticated user; "" when none
  int client_port = 0;      // the client's source port: equal values, same
                            // TCP connection
  std::string line;         // the raw line
};

class SquidServer {
 public:
  // Errors: kUnavailable when squid does not come up (its log attached).
  static absl::StatusOr<std::unique_ptr<SquidServer>> Start(
      const SquidOptions& options = SquidOptions());
  ~SquidServer();  // SIGTERM, SIGKILL after 5 s

  int port() const { return port_; }
  // "http://127.0.0.1:PORT"
  std::string Url() const;
  const std::string& dir() const { return dir_; }

  std::string AccessLog() const;
  std::vector<SquidAccessLogEntry> AccessLogEntries() const;
  // The entries `filter` accepts (all when null), once there are at least
  // `count` of them. squid logs a transaction when it ends, which may be
  // after the client is done with it (a tunnel: after both sides closed), so
  // tests wait for their lines and pick them by a filter rather than
  // counting lines (an earlier test's tunnel may be logged late). Errors:
  // kDeadlineExceeded after `timeout`.
  absl::StatusOr<std::vector<SquidAccessLogEntry>> AwaitAccessLogEntries(
      size_t count,
      std::function<bool(const SquidAccessLogEntry&)> filter = nullptr,
      absl::Duration timeout = absl::Seconds(10)) const;
  // squid's cache.log (its diagnostics), for failure messages.
  std::string CacheLog() const;

 private:
  SquidServer() = default;
  std::string dir_;
  int port_ = 0;
  std::unique_ptr<Subprocess> process_;
};

}  // namespace egress::testing

#endif  // EGRESS_TESTS_SUPPORT_SQUID_H_
