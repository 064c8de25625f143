// NginxServer: a real nginx (Debian's package, 1.22) on loopback, started by
// a test with its own configuration, prefix directory and ports, stopped by
// PID.
//
// One nginx, one `server` block, up to three *listeners* on 127.0.0.1 (and
// optionally the same ports on [::1]):
//   plain   always: HTTP/1.1 in cleartext on port().
//   tls     with NginxOptions::tls: TLS on tls_port(), ALPN "h2" and
//           "http/1.1" (or "http/1.1" only), optionally requiring a client
//           certificate (mTLS); session tickets and a session cache on, so
//           a client's TLS resumption shows in the access log.
//   h2c     with NginxOptions::h2c: HTTP/2 with prior knowledge in cleartext
//           on h2c_port() (nginx 1.22 `listen PORT http2;`: that port
//           speaks only HTTP/2, no HTTP/1.1 Upgrade).
// Files and server_directives (locations) apply to every listener.
//
// Not thread-safe: one test thread owns it. AccessLog*() may be called while
// nginx serves (it reads the log file).
#ifndef EGRESS_TESTS_SUPPORT_NGINX_H_
#define EGRESS_TESTS_SUPPORT_NGINX_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "tests/support/subprocess.h"

namespace egress::testing {

struct NginxTlsOptions {
  // PEM chain nginx presents (leaf first; TestPki's IssuedCert::chain_file)
  // and its private key. Required.
  std::string cert_file;
  std::string key_file;
  // ALPN offers "h2" and "http/1.1" when true (`listen PORT ssl http2;`),
  // only "http/1.1" when false. nginx 1.22 rejects a handshake whose ALPN
  // list has nothing it speaks (a client offering only "h2" to a
  // http2 = false listener gets a no_application_protocol alert).
  bool http2 = true;
  // ssl_protocols.
  std::string protocols = "TLSv1.2 TLSv1.3";
  // Non-empty: mTLS. nginx asks for a client certificate and verifies it
  // against this PEM file (TestPki::ca_file()); `ssl_verify_client on`.
  // nginx does not fail the handshake when the client sends none or a bad
  // one: it answers HTTP 400 ("No required SSL certificate was sent" /
  // "The SSL certificate error"), and logs client_verify NONE / FAILED:...
  std::string client_ca_file;
  // Resumption. Tickets (TLS 1.2 and 1.3) with keys nginx makes at start;
  // a shared session cache (TLS 1.2 session IDs, and TLS 1.3 resumption
  // when tickets are off). Turn one off to test the other.
  bool session_tickets = true;
  bool session_cache = true;
};

struct NginxOptions {
  // Files served from the document root: path ("hello.txt") -> contents.
  std::map<std::string, std::string> files = {{"hello.txt", "hello\n"}};
  // Extra directives inside the server block (locations and such).
  std::string server_directives;
  std::string keepalive_timeout = "75s";
  // A TLS listener besides the plain one (see the file comment).
  std::optional<NginxTlsOptions> tls;
  // An h2c (HTTP/2 prior knowledge, cleartext) listener.
  bool h2c = false;
  // Every listener also on [::1], same port number.
  bool ipv6_loopback = false;
  // Every listener also on these loopback addresses ("127.0.0.2"), same
  // port number: an origin reachable by more than one address, for policy
  // tests that deny one of them.
  std::vector<std::string> extra_loopback_hosts;
};

// One line of the access log, parsed. nginx writes "-" for an empty value;
// these fields hold "" then.
struct NginxAccessLogEntry {
  std::string request;           // "GET /hello.txt HTTP/1.1" ("HTTP/2.0")
  int status = 0;                // HTTP status sent
  int port = 0;                  // listener port that took the connection
  std::string protocol;          // $server_protocol: "HTTP/1.1", "HTTP/2.0"
  std::string tls_protocol;      // "TLSv1.3", "TLSv1.2"; "" in cleartext
  std::string alpn;              // "h2", "http/1.1"; "" when none agreed
  std::string sni;               // server name the client sent; "" if none
  bool session_reused = false;   // TLS session resumed (ticket or cache)
  int64_t connection = 0;        // nginx's connection serial: equal values,
                                 // same TCP connection
  int64_t connection_requests = 0;  // n-th request on that connection
  std::string client_verify;     // mTLS: "SUCCESS", "NONE", "FAILED:why"
  std::string line;              // the raw line
};

class NginxServer {
 public:
  // Errors: kUnavailable when nginx does not come up (its logs attached).
  static absl::StatusOr<std::unique_ptr<NginxServer>> Start(
      const NginxOptions& options = NginxOptions());
  ~NginxServer();  // SIGQUIT (graceful), SIGKILL after 5 s

  int port() const { return port_; }
  // 0 unless NginxOptions::tls was set.
  int tls_port() const { return tls_port_; }
  // 0 unless NginxOptions::h2c was set.
  int h2c_port() const { return h2c_port_; }

  // "http://127.0.0.1:PORT" + path.
  std::string Url(const std::string& path) const;
  // "https://127.0.0.1:TLS_PORT" + path.
  std::string TlsUrl(const std::string& path) const;
  // "http://127.0.0.1:H2C_PORT" + path.
  std::string H2cUrl(const std::string& path) const;
  // A URL naming `host` (e.g. "a.test" for a test's static resolver, or
  // "::1", bracketed for you) on the listener for `scheme`: "http" (plain),
  // "https" (tls) or "h2c" (written as an http:// URL to h2c_port()).
  std::string UrlFor(const std::string& scheme, const std::string& host,
                     const std::string& path) const;

  const std::string& dir() const { return dir_; }
  // Lines of nginx's access log (one per request served). Each line is
  // nginx's "combined" format followed by
  //   port=.. proto=.. tls=.. alpn=.. sni=.. reused=r|. conn=.. reqs=..
  //   client_verify=".."
  std::string AccessLog() const;
  // The same, parsed.
  std::vector<NginxAccessLogEntry> AccessLogEntries() const;
  // AccessLogEntries() once it holds at least `count` lines. nginx logs an
  // HTTP/2 request when it frees the stream, which can be after the client
  // has read the whole response, so a test must wait for the line rather
  // than read at once. Errors: kDeadlineExceeded after `timeout`.
  absl::StatusOr<std::vector<NginxAccessLogEntry>> AwaitAccessLogEntries(
      size_t count, absl::Duration timeout = absl::Seconds(10)) const;

 private:
  NginxServer() = default;
  std::string dir_;
  int port_ = 0;
  int tls_port_ = 0;
  int h2c_port_ = 0;
  std::unique_ptr<Subprocess> process_;
};

}  // namespace egress::testing

#endif  // EGRESS_TESTS_SUPPORT_NGINX_H_
