#include "tests/support/loopback_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <utility>

namespace egress::testing {

LoopbackServer::LoopbackServer(int backlog) {
  listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      listen(listen_fd_, backlog) != 0) {
    abort();
  }
  socklen_t len = sizeof addr;
  getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
}

LoopbackServer::~LoopbackServer() {
  Stop();
  close(listen_fd_);
}

void LoopbackServer::Start(Serve serve) {
  serve_ = std::move(serve);
  acceptor_ = std::thread([this] { AcceptLoop(); });
}

void LoopbackServer::Stop() {
  if (stopping_.exchange(true)) return;
  shutdown(listen_fd_, SHUT_RDWR);
  if (acceptor_.joinable()) acceptor_.join();
  std::vector<std::thread> workers;
  {
    MutexLock lock(&mu_);
    for (int fd : open_fds_) shutdown(fd, SHUT_RDWR);
    workers.swap(workers_);
  }
  for (auto& t : workers) t.join();
}

int LoopbackServer::connections_accepted() const {
  MutexLock lock(&mu_);
  return accepted_;
}

int LoopbackServer::connections_open() const {
  MutexLock lock(&mu_);
  return serving_;
}

void LoopbackServer::Track(int fd) {
  MutexLock lock(&mu_);
  open_fds_.push_back(fd);
}

void LoopbackServer::Untrack(int fd) {
  MutexLock lock(&mu_);
  open_fds_.erase(std::remove(open_fds_.begin(), open_fds_.end(), fd),
                  open_fds_.end());
}

void LoopbackServer::AcceptLoop() {
  for (;;) {
    const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) return;
    MutexLock lock(&mu_);
    if (stopping_) {  // accepted while Stop() began: nobody will serve it
      close(fd);
      return;
    }
    const int connection = accepted_++;
    ++serving_;
    open_fds_.push_back(fd);
    workers_.emplace_back([this, fd, connection] {
      serve_(fd, connection);
      MutexLock done(&mu_);
      open_fds_.erase(std::remove(open_fds_.begin(), open_fds_.end(), fd),
                      open_fds_.end());
      --serving_;
      close(fd);
    });
  }
}

bool SendAll(int fd, absl::string_view bytes) {
  size_t written = 0;
  while (written < bytes.size()) {
    const ssize_t w = send(fd, bytes.data() + written, bytes.size() - written,
                           MSG_NOSIGNAL);
    if (w <= 0) return false;
    written += static_cast<size_t>(w);
  }
  return true;
}

void PumpBothWays(int a, int b) {
  char buffer[16384];
  pollfd fds[2] = {{a, POLLIN, 0}, {b, POLLIN, 0}};
  while (true) {
    if (poll(fds, 2, -1) < 0) return;
    for (int i = 0; i < 2; ++i) {
      if ((fds[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
      const ssize_t n = read(fds[i].fd, buffer, sizeof buffer);
      if (n <= 0) return;
      if (!SendAll(fds[1 - i].fd,
                   absl::string_view(buffer, static_cast<size_t>(n)))) {
        return;
      }
    }
  }
}

}  // namespace egress::testing
