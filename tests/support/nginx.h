// NginxServer: a real nginx (Debian's package) on 127.0.0.1, started by a
// test with its own configuration, prefix directory and port, stopped by PID.
#ifndef EGRESS_TESTS_SUPPORT_NGINX_H_
#define EGRESS_TESTS_SUPPORT_NGINX_H_

#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "tests/support/subprocess.h"

namespace egress::testing {

struct NginxOptions {
  // Files served from the document root: path ("hello.txt") -> contents.
  std::map<std::string, std::string> files = {{"hello.txt", "hello\n"}};
  // Extra directives inside the server block (locations and such).
  std::string server_directives;
  std::string keepalive_timeout = "75s";
};

class NginxServer {
 public:
  static absl::StatusOr<std::unique_ptr<NginxServer>> Start(
      const NginxOptions& options = NginxOptions());
  ~NginxServer();

  int port() const { return port_; }
  // "http://127.0.0.1:PORT" + path.
  std::string Url(const std::string& path) const;
  const std::string& dir() const { return dir_; }
  // Lines of nginx's access log (one per request served).
  std::string AccessLog() const;

 private:
  NginxServer() = default;
  std::string dir_;
  int port_ = 0;
  std::unique_ptr<Subprocess> process_;
};

}  // namespace egress::testing

#endif  // EGRESS_TESTS_SUPPORT_NGINX_H_
