#include "tests/support/scripted_origin.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <netinet/tcp.h>

#include <algorithm>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/time/clock.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace egress::testing {

ScriptedOrigin::ScriptedOrigin(Script script)
    : ScriptedOrigin(std::move(script), Options()) {}

ScriptedOrigin::ScriptedOrigin(Script script, Options options)
    : script_(std::move(script)), options_(options) {
  server_.Start([this](int fd, int /*connection*/) { Serve(fd); });
}

int ScriptedOrigin::later_written() const {
  MutexLock lock(&mu_);
  return later_written_;
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
  if (options_.tcp_nodelay) {
    const int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  // Replies and delayed writes share the socket: one write at a time.
  std::mutex write_mu;
  std::vector<std::thread> delayed;
  auto join_delayed = absl::MakeCleanup([&delayed] {
    for (std::thread& t : delayed) t.join();
  });
  auto send = [&](const std::string& bytes) {
    std::lock_guard<std::mutex> lock(write_mu);
    return SendAll(fd, bytes);
  };
  auto send_later = [&](std::string bytes) {
    if (bytes.empty()) return true;
    if (!send(bytes)) return false;
    MutexLock lock(&mu_);
    ++later_written_;
    return true;
  };
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
      if (options_.reply_after_head) {
        buffer.clear();
      } else {
        while (buffer.size() < end + 4 + body_length) {
          const ssize_t n = read(fd, chunk, sizeof chunk);
          if (n <= 0) return;
          buffer.append(chunk, n);
        }
        buffer.erase(0, end + 4 + body_length);
      }
      int n;
      {
        MutexLock lock(&mu_);
        n = requests_++;
      }
      Reply reply = script_(n, head);
      if (!send(reply.bytes)) return;
      if (reply.later_after <= absl::ZeroDuration()) {
        if (!send_later(std::move(reply.later))) return;
      } else if (!reply.later.empty()) {
        // Written from a thread of its own while this one goes on serving.
        delayed.emplace_back([this, send_later, later = std::move(reply.later),
                              at = absl::Now() + reply.later_after]() mutable {
          while (absl::Now() < at && !server_.stopping()) {
            absl::SleepFor(std::min(at - absl::Now(), absl::Milliseconds(10)));
          }
          send_later(std::move(later));
        });
      }
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
