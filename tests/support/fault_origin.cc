#include "tests/support/fault_origin.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cstdlib>
#include <map>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"

namespace egress::testing {
namespace {

// What the connection does after a reply.
enum class After { kKeepAlive, kClose, kReset };

std::map<std::string, std::string> ParseQuery(absl::string_view query) {
  std::map<std::string, std::string> out;
  for (absl::string_view pair : absl::StrSplit(query, '&', absl::SkipEmpty())) {
    const size_t eq = pair.find('=');
    if (eq == absl::string_view::npos) {
      out[std::string(pair)] = "";
    } else {
      out[std::string(pair.substr(0, eq))] = std::string(pair.substr(eq + 1));
    }
  }
  return out;
}

std::string Response(absl::string_view status, absl::string_view fields,
                     absl::string_view body) {
  return absl::StrCat("HTTP/1.1 ", status, "\r\n", fields,
                      "Content-Length: ", body.size(), "\r\n\r\n", body);
}

const std::string& GzipBomb() {
  static const std::string* bomb =
      new std::string(FaultOrigin::Gzip(std::string(64 << 20, '\0')));
  return *bomb;
}

}  // namespace

std::string FaultOrigin::Gzip(const std::string& data) {
  z_stream z{};
  if (deflateInit2(&z, Z_BEST_COMPRESSION, Z_DEFLATED, 16 + MAX_WBITS, 9,
                   Z_DEFAULT_STRATEGY) != Z_OK) {
    abort();
  }
  std::string out(deflateBound(&z, data.size()), '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = static_cast<uInt>(data.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  if (deflate(&z, Z_FINISH) != Z_STREAM_END) abort();
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

FaultOrigin::FaultOrigin(const Options& options)
    : options_(options), server_(/*backlog=*/1024) {
  server_.Start([this](int fd, int /*connection*/) { Serve(fd); });
}

FaultOrigin::~FaultOrigin() {
  {
    MutexLock lock(&mu_);
    stopping_ = true;  // ends Sleep()s at once
  }
  server_.Stop();
}

std::string FaultOrigin::Url(const std::string& path) const {
  return absl::StrCat("http://127.0.0.1:", server_.port(), path);
}

int FaultOrigin::connections_accepted() const {
  return server_.connections_accepted();
}

int FaultOrigin::connections_open() const { return server_.connections_open(); }

int FaultOrigin::requests_received() const {
  MutexLock lock(&mu_);
  return requests_;
}

int FaultOrigin::idle_closes() const {
  MutexLock lock(&mu_);
  return idle_closes_;
}

bool FaultOrigin::AwaitRequests(int n, absl::Duration timeout) {
  MutexLock lock(&mu_);
  return mu_.AwaitWithTimeout(
      [this, n]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return requests_ >= n; },
      timeout);
}

bool FaultOrigin::Sleep(absl::Duration d) {
  MutexLock lock(&mu_);
  return !mu_.AwaitWithTimeout(
      [this]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return stopping_; }, d);
}

void FaultOrigin::Serve(int fd) {
  std::string buffer;
  char chunk[4096];
  int served = 0;
  After after = After::kClose;
  for (;;) {
    size_t end;
    while ((end = buffer.find("\r\n\r\n")) == std::string::npos) {
      if (buffer.empty() && served > 0 &&
          options_.idle_close_after != absl::InfiniteDuration()) {
        // Idle between requests: close after idle_close_after, as servers'
        // keep-alive timeouts do, even if a request is on its way.
        pollfd p{fd, POLLIN, 0};
        const int ready = poll(
            &p, 1,
            static_cast<int>(absl::ToInt64Milliseconds(options_.idle_close_after)));
        if (ready == 0) {
          MutexLock lock(&mu_);
          ++idle_closes_;
          goto done;
        }
      }
      const ssize_t n = read(fd, chunk, sizeof chunk);
      if (n <= 0) goto done;
      buffer.append(chunk, static_cast<size_t>(n));
    }
    {
      const std::string head = buffer.substr(0, end + 4);
      size_t body_length = 0;
      for (absl::string_view line : absl::StrSplit(head, "\r\n")) {
        if (absl::StartsWithIgnoreCase(line, "content-length:")) {
          line.remove_prefix(15);
          if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(line),
                                &body_length)) {
            goto done;
          }
        }
      }
      while (buffer.size() < end + 4 + body_length) {
        const ssize_t n = read(fd, chunk, sizeof chunk);
        if (n <= 0) goto done;
        buffer.append(chunk, static_cast<size_t>(n));
      }
      buffer.erase(0, end + 4 + body_length);
      {
        MutexLock lock(&mu_);
        ++requests_;
      }
      ++served;
      // "GET /path?query HTTP/1.1"
      const absl::string_view request_line =
          absl::string_view(head).substr(0, head.find("\r\n"));
      std::vector<absl::string_view> parts =
          absl::StrSplit(request_line, ' ');
      const absl::string_view target = parts.size() > 1 ? parts[1] : "/";
      const size_t q = target.find('?');
      const absl::string_view path = target.substr(0, q);
      const std::map<std::string, std::string> query =
          ParseQuery(q == absl::string_view::npos ? "" : target.substr(q + 1));
      auto param = [&](const char* name, int fallback) {
        int value = fallback;
        auto it = query.find(name);
        if (it != query.end()) absl::SimpleAtoi(it->second, &value);
        return value;
      };

      after = After::kKeepAlive;
      if (path == "/ok") {
        if (!SendAll(fd, Response("200 OK", "", "ok"))) goto done;
      } else if (path == "/echo") {
        if (!SendAll(fd, Response("200 OK", "", head))) goto done;
      } else if (path == "/close-after-headers") {
        SendAll(fd, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n");
        after = After::kClose;
      } else if (path == "/reset-mid-body") {
        SendAll(fd, absl::StrCat("HTTP/1.1 200 OK\r\nContent-Length: 1000000"
                                 "\r\n\r\n",
                                 std::string(1000, 'x')));
        Sleep(absl::Milliseconds(50));  // let the bytes arrive first
        after = After::kReset;
      } else if (path == "/long-body") {
        if (!SendAll(fd, absl::StrCat("HTTP/1.1 200 OK\r\nContent-Length: 10"
                                      "\r\n\r\n",
                                      std::string(20, 'y')))) {
          goto done;
        }
      } else if (path == "/short-body") {
        SendAll(fd, absl::StrCat("HTTP/1.1 200 OK\r\nContent-Length: 100"
                                 "\r\n\r\n",
                                 std::string(50, 'z')));
        after = After::kClose;
      } else if (path == "/never") {
        // Until the peer goes away or the origin stops.
        while (read(fd, chunk, sizeof chunk) > 0) {
        }
        goto done;
      } else if (path == "/slow-head") {
        const std::string reply =
            "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nslow";
        for (char c : reply) {
          if (!SendAll(fd, absl::string_view(&c, 1)) ||
              !Sleep(absl::Milliseconds(param("ms", 1000)))) {
            goto done;
          }
        }
      } else if (path == "/slow-body") {
        const int n = param("n", 1000);
        if (!SendAll(fd, absl::StrCat("HTTP/1.1 200 OK\r\nContent-Length: ",
                                      n, "\r\n\r\n"))) {
          goto done;
        }
        for (int i = 0; i < n; ++i) {
          if (!Sleep(absl::Milliseconds(param("ms", 1000))) ||
              !SendAll(fd, "s")) {
            goto done;
          }
        }
      } else if (path == "/huge-headers") {
        SendAll(fd, "HTTP/1.1 200 OK\r\n");
        const std::string line =
            absl::StrCat("X-Junk: ", std::string(1000, 'j'), "\r\n");
        for (size_t sent = 0; sent < (10u << 20); sent += line.size()) {
          if (!SendAll(fd, line)) break;
        }
        SendAll(fd, "Content-Length: 0\r\n\r\n");
        after = After::kClose;
      } else if (path == "/bad-chunk") {
        if (!SendAll(fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
                         "\r\nzz\r\nhello\r\n0\r\n\r\n")) {
          goto done;
        }
      } else if (path == "/gzip") {
        std::string text;
        for (int i = 0; i < 1000; ++i) text += "hello, gzip! ";
        if (!SendAll(fd, Response("200 OK", "Content-Encoding: gzip\r\n",
                                  Gzip(text)))) {
          goto done;
        }
      } else if (path == "/gzip-bomb") {
        if (!SendAll(fd, Response("200 OK", "Content-Encoding: gzip\r\n",
                                  GzipBomb()))) {
          goto done;
        }
      } else if (path == "/redirect") {
        auto to = query.find("to");
        const int status = param("status", 302);
        if (!SendAll(fd, Response(absl::StrCat(status, " Redirect"),
                                  absl::StrCat("Location: ",
                                               to == query.end() ? "/"
                                                                 : to->second,
                                               "\r\n"),
                                  ""))) {
          goto done;
        }
      } else if (path == "/redirect-loop") {
        if (!SendAll(fd, Response("302 Found", "Location: /redirect-loop\r\n",
                                  ""))) {
          goto done;
        }
      } else {
        if (!SendAll(fd, Response("404 Not Found", "", "not found"))) {
          goto done;
        }
      }
      if (after != After::kKeepAlive) goto done;
    }
  }
done:
  if (after == After::kReset) {
    linger l{1, 0};  // the server's close() sends a RST instead of a FIN
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  }
}

}  // namespace egress::testing
