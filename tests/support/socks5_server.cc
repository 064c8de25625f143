#include "tests/support/socks5_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>

namespace egress::testing {
namespace {

bool ReadExactly(int fd, void* out, size_t n) {
  auto* p = static_cast<char*>(out);
  size_t got = 0;
  while (got < n) {
    const ssize_t r = read(fd, p + got, n - got);
    if (r <= 0) return false;
    got += r;
  }
  return true;
}

bool SendAll(int fd, const void* data, size_t n) {
  return egress::testing::SendAll(
      fd, absl::string_view(static_cast<const char*>(data), n));
}

bool SendReply(int fd, uint8_t code) {
  // Bound address 0.0.0.0:0: clients must read and ignore it.
  const uint8_t reply[] = {5, code, 0, 1, 0, 0, 0, 0, 0, 0};
  return SendAll(fd, reply, sizeof reply);
}

}  // namespace

Socks5Server::Socks5Server(Socks5ServerOptions options)
    : options_(std::move(options)) {
  server_.Start([this](int fd, int connection) { Serve(fd, connection); });
}

Socks5Server::~Socks5Server() { server_.Stop(); }

int Socks5Server::connections_accepted() const {
  return server_.connections_accepted();
}

std::vector<Socks5Server::Handshake> Socks5Server::handshakes() const {
  MutexLock lock(&mu_);
  return handshakes_;
}

void Socks5Server::Record(const Handshake& handshake) {
  MutexLock lock(&mu_);
  handshakes_.push_back(handshake);
}

int Socks5Server::Negotiate(int fd, Handshake* h, bool* recorded) {
  // Every decision is recorded before the client hears it, so a test that
  // got its answer finds the handshake in handshakes().
  const auto answer = [&](const void* bytes, size_t n) {
    Record(*h);
    *recorded = true;
    return SendAll(fd, bytes, n);
  };
  const auto reply = [&](uint8_t code) {
    h->reply = code;
    Record(*h);
    *recorded = true;
    return SendReply(fd, code);
  };
  // Greeting.
  uint8_t head[2];
  if (!ReadExactly(fd, head, 2) || head[0] != 5) return -1;
  h->methods_offered.resize(head[1]);
  if (!ReadExactly(fd, h->methods_offered.data(), head[1])) return -1;
  const uint8_t wanted = options_.username.empty() ? 0 : 2;
  const bool offered =
      std::find(h->methods_offered.begin(), h->methods_offered.end(),
                wanted) != h->methods_offered.end();
  h->method_chosen = offered ? wanted : 0xff;
  const uint8_t choice[] = {5, h->method_chosen};
  if (!offered) {
    answer(choice, 2);
    return -1;
  }
  if (!SendAll(fd, choice, 2)) return -1;

  // RFC 1929.
  if (wanted == 2) {
    uint8_t version_and_length[2];
    if (!ReadExactly(fd, version_and_length, 2)) return -1;
    h->username.resize(version_and_length[1]);
    if (!ReadExactly(fd, h->username.data(), h->username.size())) return -1;
    uint8_t password_length = 0;
    if (!ReadExactly(fd, &password_length, 1)) return -1;
    h->password.resize(password_length);
    if (!ReadExactly(fd, h->password.data(), h->password.size())) return -1;
    h->authenticated = version_and_length[0] == 1 &&
                       h->username == options_.username &&
                       h->password == options_.password;
    const uint8_t verdict[] = {1, static_cast<uint8_t>(h->authenticated ? 0 : 1)};
    if (!h->authenticated) {
      answer(verdict, 2);
      return -1;
    }
    if (!SendAll(fd, verdict, 2)) return -1;
  }

  // CONNECT.
  uint8_t request[4];
  if (!ReadExactly(fd, request, 4) || request[0] != 5) return -1;
  h->address_type = request[3];
  sockaddr_storage addr{};
  socklen_t len = 0;
  auto* a4 = reinterpret_cast<sockaddr_in*>(&addr);
  auto* a6 = reinterpret_cast<sockaddr_in6*>(&addr);
  bool known = true;
  if (request[3] == 1) {
    if (!ReadExactly(fd, &a4->sin_addr, 4)) return -1;
    a4->sin_family = AF_INET;
    len = sizeof *a4;
    char text[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &a4->sin_addr, text, sizeof text);
    h->host = text;
  } else if (request[3] == 4) {
    if (!ReadExactly(fd, &a6->sin6_addr, 16)) return -1;
    a6->sin6_family = AF_INET6;
    len = sizeof *a6;
    char text[INET6_ADDRSTRLEN];
    inet_ntop(AF_INET6, &a6->sin6_addr, text, sizeof text);
    h->host = text;
  } else if (request[3] == 3) {
    uint8_t name_length = 0;
    if (!ReadExactly(fd, &name_length, 1)) return -1;
    h->host.resize(name_length);
    if (!ReadExactly(fd, h->host.data(), name_length)) return -1;
    std::string ip = h->host == "localhost" ? "127.0.0.1" : "";
    if (auto it = options_.hosts.find(h->host); it != options_.hosts.end()) {
      ip = it->second;
    }
    if (inet_pton(AF_INET, ip.c_str(), &a4->sin_addr) == 1) {
      a4->sin_family = AF_INET;
      len = sizeof *a4;
    } else if (inet_pton(AF_INET6, ip.c_str(), &a6->sin6_addr) == 1) {
      a6->sin6_family = AF_INET6;
      len = sizeof *a6;
    } else {
      known = false;
    }
  } else {
    reply(8);
    return -1;
  }
  uint8_t port_bytes[2];
  if (!ReadExactly(fd, port_bytes, 2)) return -1;
  h->port = static_cast<uint16_t>(port_bytes[0] << 8 | port_bytes[1]);

  uint8_t refusal = 0;
  if (options_.forced_reply != 0) {
    refusal = options_.forced_reply;
  } else if (request[1] != 1) {
    refusal = 7;  // command not supported
  } else if (!known) {
    refusal = 4;  // host unreachable
  } else if (addr.ss_family == AF_INET
                 ? (ntohl(a4->sin_addr.s_addr) >> 24) != 127
                 : !IN6_IS_ADDR_LOOPBACK(&a6->sin6_addr)) {
    refusal = 2;  // tests dial loopback only
  }
  if (refusal != 0) {
    reply(refusal);
    return -1;
  }
  if (addr.ss_family == AF_INET) {
    a4->sin_port = htons(h->port);
  } else {
    a6->sin6_port = htons(h->port);
  }
  const int upstream = socket(addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (upstream < 0) {
    reply(1);
    return -1;
  }
  if (connect(upstream, reinterpret_cast<sockaddr*>(&addr), len) != 0) {
    const uint8_t code = errno == ECONNREFUSED ? 5 : 1;
    close(upstream);
    reply(code);
    return -1;
  }
  if (!reply(0)) {
    close(upstream);
    return -1;
  }
  return upstream;
}

void Socks5Server::Serve(int fd, int connection) {
  Handshake handshake;
  handshake.connection = connection;
  bool recorded = false;
  const int upstream = Negotiate(fd, &handshake, &recorded);
  // Not recorded yet when the client went away mid-handshake.
  if (!recorded) Record(handshake);
  if (upstream >= 0) {
    server_.Track(upstream);
    // Stop() may have shut the tracked fds down just before `upstream` was
    // tracked; do not start pumping then.
    if (!server_.stopping()) PumpBothWays(fd, upstream);
    server_.Untrack(upstream);
    close(upstream);
  }
}

}  // namespace egress::testing
