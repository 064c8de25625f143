// NghttpdServer: Debian's nghttpd (package nghttp2-server), the reference
// HTTP/2 server of the nghttp2 project, on a loopback address and a free
// port, started by a test and stopped by PID.
//
// Use it where nginx's HTTP/2 cannot be steered: a small
// SETTINGS_MAX_CONCURRENT_STREAMS, echoing request bodies, trailers, window
// sizes (extra_args). nghttpd speaks only HTTP/2:
//   TLS     (cert_file/key_file set): ALPN "h2" only; a client that does
//           not negotiate it cannot talk to nghttpd.
//   h2c     (no certificate; `--no-tls`): prior knowledge (the client
//           preface straight away) or an HTTP/1.1 Upgrade: h2c request.
//
// Not thread-safe: one test thread owns it.
#ifndef EGRESS_TESTS_SUPPORT_NGHTTPD_H_
#define EGRESS_TESTS_SUPPORT_NGHTTPD_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "tests/support/subprocess.h"

namespace egress::testing {

struct NghttpdOptions {
  // TLS: the PEM chain nghttpd presents (leaf first; TestPki's
  // IssuedCert::chain_file) and its key. Both empty: cleartext h2c.
  std::string cert_file;
  std::string key_file;
  // Where it listens: a loopback literal, "127.0.0.1" (or another
  // 127.0.0.0/8 address) or "::1".
  std::string address = "127.0.0.1";
  // SETTINGS_MAX_CONCURRENT_STREAMS it announces (-m).
  int max_concurrent_streams = 100;
  // Files served from the document root (-d): path -> contents.
  std::map<std::string, std::string> files = {{"hello.txt", "hello\n"}};
  // Answer POST and PUT with the request body (--echo-upload).
  bool echo_upload = false;
  // Log every frame (-v) to the log (see Log()); costs time per frame.
  bool verbose = false;
  // More nghttpd flags, passed as they are (e.g. "--trailer=x-t: 1",
  // "--window-bits=16", "--early-response").
  std::vector<std::string> extra_args;
};

class NghttpdServer {
 public:
  // Errors: kInvalidArgument for a non-loopback address or only one of
  // cert_file/key_file; kFailedPrecondition when nghttpd is not installed;
  // kUnavailable when it does not come up (its output attached).
  static absl::StatusOr<std::unique_ptr<NghttpdServer>> Start(
      const NghttpdOptions& options = NghttpdOptions());
  ~NghttpdServer();  // SIGTERM, SIGKILL after 5 s

  int port() const { return port_; }
  const std::string& address() const { return address_; }
  bool tls() const { return tls_; }
  // "https://ADDRESS:PORT" + path with TLS, else "http://ADDRESS:PORT" +
  // path (an IPv6 address is bracketed).
  std::string Url(const std::string& path) const;
  // The same naming `host` instead (e.g. "a.test" for a static resolver).
  std::string UrlFor(const std::string& host, const std::string& path) const;

  const std::string& dir() const { return dir_; }
  // nghttpd's stdout and stderr so far (frames, with verbose).
  std::string Log() const;

 private:
  NghttpdServer() = default;
  std::string dir_;
  std::string address_;
  int port_ = 0;
  bool tls_ = false;
  std::unique_ptr<Subprocess> process_;
};

}  // namespace egress::testing

#endif  // EGRESS_TESTS_SUPPORT_NGHTTPD_H_
