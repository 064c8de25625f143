#include "tests/support/fault_proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace egress::testing {
namespace {

// Connects to "ip:port" / "[ip6]:port" when the IP is loopback; -1
// otherwise. Test servers never dial anything else.
int ConnectLoopback(const std::string& target) {
  std::string host;
  std::string port_text;
  if (absl::StartsWith(target, "[")) {
    const size_t close = target.find(']');
    if (close == std::string::npos || close + 1 >= target.size() ||
        target[close + 1] != ':') {
      return -1;
    }
    host = target.substr(1, close - 1);
    port_text = target.substr(close + 2);
  } else {
    const size_t colon = target.rfind(':');
    if (colon == std::string::npos) return -1;
    host = target.substr(0, colon);
    port_text = target.substr(colon + 1);
  }
  int port = 0;
  if (!absl::SimpleAtoi(port_text, &port) || port <= 0 || port > 65535) {
    return -1;
  }
  if (host == "localhost") host = "127.0.0.1";
  sockaddr_storage addr{};
  socklen_t len = 0;
  auto* a4 = reinterpret_cast<sockaddr_in*>(&addr);
  auto* a6 = reinterpret_cast<sockaddr_in6*>(&addr);
  if (inet_pton(AF_INET, host.c_str(), &a4->sin_addr) == 1) {
    if ((ntohl(a4->sin_addr.s_addr) >> 24) != 127) return -1;
    a4->sin_family = AF_INET;
    a4->sin_port = htons(port);
    len = sizeof *a4;
  } else if (inet_pton(AF_INET6, host.c_str(), &a6->sin6_addr) == 1) {
    if (!IN6_IS_ADDR_LOOPBACK(&a6->sin6_addr)) return -1;
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons(port);
    len = sizeof *a6;
  } else {
    return -1;
  }
  const int fd = socket(addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), len) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// Copies bytes both ways until either side closes (or is shut down).
}  // namespace

FaultProxy::FaultProxy(Script script) : script_(std::move(script)) {
  server_.Start([this](int fd, int connection) { Serve(fd, connection); });
}

FaultProxy::~FaultProxy() { server_.Stop(); }

int FaultProxy::connections_accepted() const {
  return server_.connections_accepted();
}

std::vector<FaultProxy::Request> FaultProxy::requests() const {
  MutexLock lock(&mu_);
  return requests_;
}

FaultProxy::Reply FaultProxy::Established() {
  return Reply{"HTTP/1.1 200 Connection established\r\n\r\n", false, true};
}

FaultProxy::Reply FaultProxy::AuthRequired(const std::string& challenge,
                                           bool close) {
  const std::string body = "proxy authentication required\n";
  return Reply{
      absl::StrCat("HTTP/1.1 407 Proxy Authentication Required\r\n"
                   "Proxy-Authenticate: ",
                   challenge, "\r\nContent-Type: text/plain\r\n",
                   "Content-Length: ", body.size(), "\r\n",
                   close ? "Connection: close\r\n" : "", "\r\n", body),
      close, false};
}

FaultProxy::Reply FaultProxy::Status(int code, const std::string& reason) {
  return Reply{absl::StrCat("HTTP/1.1 ", code, " ", reason,
                            "\r\nContent-Length: 0\r\n\r\n"),
               false, false};
}

std::string FaultProxy::BasicCredentials(const std::string& user,
                                         const std::string& password) {
  return absl::StrCat("Basic ",
                      absl::Base64Escape(absl::StrCat(user, ":", password)));
}

void FaultProxy::Relay(int client_fd, const std::string& target,
                       const std::string& early_bytes) {
  const int upstream = ConnectLoopback(target);
  if (upstream < 0) return;
  server_.Track(upstream);
  if (!SendAll(upstream, early_bytes)) {
    server_.Untrack(upstream);
    close(upstream);
    return;
  }
  // The destructor may have shut every tracked fd down just before
  // `upstream` was tracked; do not start pumping then.
  if (!server_.stopping()) PumpBothWays(client_fd, upstream);
  server_.Untrack(upstream);
  close(upstream);
}

void FaultProxy::Serve(int fd, int connection) {
  std::string buffer;
  char chunk[4096];
  while (true) {
    size_t end;
    while ((end = buffer.find("\r\n\r\n")) == std::string::npos) {
      const ssize_t n = read(fd, chunk, sizeof chunk);
      if (n <= 0) return;
      buffer.append(chunk, n);
    }
    {
      Request request;
      request.connection = connection;
      request.head = buffer.substr(0, end + 4);
      size_t body_length = 0;
      bool first = true;
      for (absl::string_view line : absl::StrSplit(request.head, "\r\n")) {
        if (first) {
          std::vector<std::string> parts = absl::StrSplit(line, ' ');
          if (parts.size() >= 2) {
            request.method = parts[0];
            request.target = parts[1];
          }
          first = false;
          continue;
        }
        const size_t colon = line.find(':');
        if (colon == absl::string_view::npos) continue;
        const absl::string_view name = line.substr(0, colon);
        const absl::string_view value =
            absl::StripAsciiWhitespace(line.substr(colon + 1));
        if (absl::EqualsIgnoreCase(name, "Content-Length")) {
          absl::SimpleAtoi(value, &body_length);
        } else if (absl::EqualsIgnoreCase(name, "Proxy-Authorization")) {
          request.proxy_authorization = std::string(value);
        }
      }
      while (buffer.size() < end + 4 + body_length) {
        const ssize_t n = read(fd, chunk, sizeof chunk);
        if (n <= 0) return;
        buffer.append(chunk, n);
      }
      buffer.erase(0, end + 4 + body_length);
      int n;
      {
        MutexLock lock(&mu_);
        n = static_cast<int>(requests_.size());
        requests_.push_back(request);
      }
      const Reply reply = script_(n, request);
      if (!SendAll(fd, reply.bytes)) return;
      if (reply.tunnel && request.method == "CONNECT") {
        Relay(fd, request.target, buffer);
        return;
      }
      if (reply.close_after) return;
    }
  }
}

}  // namespace egress::testing
