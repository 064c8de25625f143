#include "tests/support/nghttpd.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace egress::testing {
namespace {

// Debian installs it in /usr/sbin; some builds put it in /usr/bin.
constexpr const char* kNghttpdPaths[] = {"/usr/sbin/nghttpd", "/usr/bin/nghttpd"};

// Fills `addr` for a loopback literal; false for anything else, so a test
// can never point nghttpd (or a probe) at a routable address.
bool LoopbackAddress(const std::string& ip, int port, sockaddr_storage* addr,
                     socklen_t* len) {
  *addr = {};
  auto* a6 = reinterpret_cast<sockaddr_in6*>(addr);
  auto* a4 = reinterpret_cast<sockaddr_in*>(addr);
  if (inet_pton(AF_INET6, ip.c_str(), &a6->sin6_addr) == 1) {
    if (!IN6_IS_ADDR_LOOPBACK(&a6->sin6_addr)) return false;
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons(port);
    *len = sizeof *a6;
    return true;
  }
  if (inet_pton(AF_INET, ip.c_str(), &a4->sin_addr) == 1) {
    if ((ntohl(a4->sin_addr.s_addr) >> 24) != 127) return false;
    a4->sin_family = AF_INET;
    a4->sin_port = htons(port);
    *len = sizeof *a4;
    return true;
  }
  return false;
}

bool Accepts(const std::string& ip, int port) {
  sockaddr_storage addr;
  socklen_t len = 0;
  if (!LoopbackAddress(ip, port, &addr, &len)) return false;
  const int fd = socket(addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  const bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), len) == 0;
  close(fd);
  return ok;
}

// Waits until `ip`:`port` accepts, or `process` exits (port taken, bad
// flags), or `timeout` passes.
absl::Status WaitUntilAccepting(Subprocess& process, const std::string& ip,
                                int port, absl::Duration timeout) {
  const absl::Time give_up = absl::Now() + timeout;
  while (!Accepts(ip, port)) {
    if (absl::StatusOr<int> exit = process.Wait(absl::ZeroDuration());
        exit.ok()) {
      return absl::UnavailableError(absl::StrCat(
          "nghttpd exited (wait status ", *exit, ") before accepting on ", ip,
          " port ", port));
    }
    if (absl::Now() >= give_up) {
      return absl::DeadlineExceededError(
          absl::StrCat("nothing accepted on ", ip, " port ", port, " within ",
                       absl::FormatDuration(timeout)));
    }
    // nghttpd announces nothing when it listens; poll its port.
    absl::SleepFor(absl::Milliseconds(10));
  }
  return absl::OkStatus();
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

absl::StatusOr<std::unique_ptr<NghttpdServer>> NghttpdServer::Start(
    const NghttpdOptions& options) {
  sockaddr_storage unused;
  socklen_t unused_len;
  if (!LoopbackAddress(options.address, 0, &unused, &unused_len)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "NghttpdOptions.address '", options.address,
        "' is not a loopback address (127.0.0.0/8 or ::1)"));
  }
  if (options.cert_file.empty() != options.key_file.empty()) {
    return absl::InvalidArgumentError(
        "NghttpdOptions: set both cert_file and key_file (TLS) or neither "
        "(h2c)");
  }
  if (options.max_concurrent_streams < 0) {
    return absl::InvalidArgumentError(
        "NghttpdOptions.max_concurrent_streams must be >= 0");
  }
  std::string binary;
  for (const char* path : kNghttpdPaths) {
    if (access(path, X_OK) == 0) {
      binary = path;
      break;
    }
  }
  if (binary.empty()) {
    return absl::FailedPreconditionError(
        "nghttpd not found in /usr/sbin or /usr/bin (Debian package "
        "nghttp2-server)");
  }

  auto server = std::unique_ptr<NghttpdServer>(new NghttpdServer());
  server->dir_ = MakeTempDir("nghttpd");
  server->address_ = options.address;
  server->tls_ = !options.cert_file.empty();
  const std::string& dir = server->dir_;
  const std::string docroot = dir + "/www";
  const std::string log = dir + "/nghttpd.log";
  mkdir(docroot.c_str(), 0755);
  for (const auto& [path, contents] : options.files) {
    if (absl::Status s = WriteFile(docroot + "/" + path, contents); !s.ok()) {
      return s;
    }
  }

  absl::Status last = absl::UnknownError("not started");
  // A picked port can be taken by someone else before nghttpd binds it.
  for (int attempt = 0; attempt < 5; ++attempt) {
    server->port_ = PickFreePort();
    // Through sh only to send stdout to a file: with -v nghttpd writes a
    // line per frame, which would fill an unread pipe and stall it. `exec`
    // keeps the PID, so stopping by PID stops nghttpd itself.
    std::vector<std::string> argv = {
        "/bin/sh", "-c", "exec \"$@\" >>\"$0\" 2>&1", log, binary,
        "--address=" + options.address, "--htdocs=" + docroot,
        absl::StrCat("--max-concurrent-streams=", options.max_concurrent_streams)};
    if (options.echo_upload) argv.push_back("--echo-upload");
    if (options.verbose) argv.push_back("--verbose");
    if (!server->tls_) argv.push_back("--no-tls");
    for (const std::string& arg : options.extra_args) argv.push_back(arg);
    argv.push_back(absl::StrCat(server->port_));
    if (server->tls_) {
      argv.push_back(options.key_file);
      argv.push_back(options.cert_file);
    }
    absl::StatusOr<Subprocess> process = Subprocess::Start(argv);
    if (!process.ok()) return process.status();
    server->process_ = std::make_unique<Subprocess>(*std::move(process));
    last = WaitUntilAccepting(*server->process_, options.address,
                              server->port_, absl::Seconds(10));
    if (last.ok()) return server;
    server->process_->Stop(SIGKILL, absl::Seconds(5)).IgnoreError();
  }
  return absl::UnavailableError(absl::StrCat(
      "nghttpd did not start: ", last.message(), "; its output:\n",
      ReadAll(log)));
}

NghttpdServer::~NghttpdServer() {
  if (process_ != nullptr) {
    process_->Stop(SIGTERM, absl::Seconds(5)).IgnoreError();
  }
}

std::string NghttpdServer::Url(const std::string& path) const {
  return UrlFor(address_, path);
}

std::string NghttpdServer::UrlFor(const std::string& host,
                                  const std::string& path) const {
  const bool ipv6 = host.find(':') != std::string::npos;
  return absl::StrCat(tls_ ? "https://" : "http://", ipv6 ? "[" : "", host,
                      ipv6 ? "]" : "", ":", port_, path);
}

std::string NghttpdServer::Log() const { return ReadAll(dir_ + "/nghttpd.log"); }

}  // namespace egress::testing
