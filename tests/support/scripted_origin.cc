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
  listen_fd_ = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      listen(listen_fd_, 128) != 0) {
    abort();
  }
  socklen_t len = sizeof addr;
  getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  acceptor_ = std::thread([this] { AcceptLoop(); });
}

ScriptedOrigin::~ScriptedOrigin() {
  stopping_ = true;
  shutdown(listen_fd_, SHUT_RDWR);
  acceptor_.join();
  close(listen_fd_);
  std::vector<std::thread> workers;
  {
    MutexLock lock(&mu_);
    for (int fd : open_fds_) shutdown(fd, SHUT_RDWR);
    workers.swap(workers_);
  }
  for (auto& t : workers) t.join();
}

std::string ScriptedOrigin::Url(const std::string& path) const {
  return absl::StrCat("http://127.0.0.1:", port_, path);
}

int ScriptedOrigin::connections_accepted() const {
  MutexLock lock(&mu_);
  return accepted_;
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

void ScriptedOrigin::AcceptLoop() {
  while (!stopping_) {
    const int fd = accept(listen_fd_, nullptr, nullptr);
    if (fd < 0) return;
    MutexLock lock(&mu_);
    ++accepted_;
    open_fds_.push_back(fd);
    workers_.emplace_back([this, fd] { Serve(fd); });
  }
}

void ScriptedOrigin::Serve(int fd) {
  std::string buffer;
  char chunk[4096];
  while (true) {
    size_t end;
    while ((end = buffer.find("\r\n\r\n")) == std::string::npos) {
      const ssize_t n = read(fd, chunk, sizeof chunk);
      if (n <= 0) goto done;
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
        if (n <= 0) goto done;
        buffer.append(chunk, n);
      }
      buffer.erase(0, end + 4 + body_length);
      int n;
      {
        MutexLock lock(&mu_);
        n = requests_++;
      }
      const Reply reply = script_(n, head);
      size_t written = 0;
      while (written < reply.bytes.size()) {
        const ssize_t w = send(fd, reply.bytes.data() + written,
                               reply.bytes.size() - written, MSG_NOSIGNAL);
        if (w <= 0) goto done;
        written += w;
      }
      if (reply.close_after) {
        MutexLock lock(&mu_);
        open_fds_.erase(std::remove(open_fds_.begin(), open_fds_.end(), fd),
                        open_fds_.end());
        close(fd);
        ++closed_by_origin_;
        return;
      }
    }
  }
done:
  MutexLock lock(&mu_);
  open_fds_.erase(std::remove(open_fds_.begin(), open_fds_.end(), fd),
                  open_fds_.end());
  close(fd);
}

}  // namespace egress::testing
