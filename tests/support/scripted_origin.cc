#include "tests/support/scripted_origin.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace egress::testing {

ScriptedOrigin::ScriptedOrigin(Script script) : script_(std::move(script)) {
  server_.Start([this](int fd, int /*connection*/) { Serve(fd); });
}

ScriptedOrigin::~ScriptedOrigin() { server_.Stop(); }

std::string ScriptedOrigin::Url(const std::string& path) const {
  return absl::StrCat("http://127.0.0.1:", server_.port(), path);
}

int ScriptedOrigin::connections_accepted() const {
  return server_.connections_accepted();
}

int ScriptedOrigin::requests_received() const {
  MutexLock lock(&mu_);
  return requests_;
}

void ScriptedOrigin::AwaitRequests(int n) {
  MutexLock lock(&mu_);
  mu_.Await([this, n]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
    return requests_ >= n;
  });
}

void ScriptedOrigin::AwaitClosedByOrigin(int n) {
  MutexLock lock(&mu_);
  mu_.Await([this, n]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
    return closed_by_origin_ >= n;
  });
}

std::string ScriptedOrigin::Ok(const std::string& body) {
  return absl::StrCat("HTTP/1.1 200 OK\r\nContent-Length: ", body.size(),
                      "\r\n\r\n", body);
}

void ScriptedOrigin::Serve(int fd) {
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
      const std::string head = buffer.substr(0, end + 4);
      size_t body_length = 0;
      for (absl::string_view line : absl::StrSplit(head, "\r\n")) {
        if (absl::StartsWithIgnoreCase(line, "content-length:")) {
          line.remove_prefix(15);
          absl::SimpleAtoi(absl::StripAsciiWhitespace(line), &body_length);
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
        n = requests_++;
      }
      const Reply reply = script_(n, head);
      if (!SendAll(fd, reply.bytes)) return;
      if (reply.close_after) {
        // The FIN goes out now; the server closes the descriptor on return.
        shutdown(fd, SHUT_RDWR);
        MutexLock lock(&mu_);
        ++closed_by_origin_;
        return;
      }
    }
  }
}

}  // namespace egress::testing
