#include "client_core/connection/connection.h"

#include <sys/socket.h>

#include <cerrno>
#include <utility>

#include "absl/strings/str_cat.h"

namespace egress {
namespace {

std::string IpString(const asio::ip::address& a) { return a.to_string(); }

}  // namespace

std::string_view ProtocolName(Protocol protocol) {
  switch (protocol) {
    case Protocol::kHttp11: return "http/1.1";
    case Protocol::kHttp2: return "h2";
  }
  return "unknown";
}

Connection::Connection(uint64_t id, Address address,
                       std::unique_ptr<Transport> transport, Protocol protocol)
    : id_(id),
      address_(std::move(address)),
      transport_(std::move(transport)),
      protocol_(protocol) {
  asio::ip::tcp::socket& socket = transport_->socket();
  asio::error_code ec;
  const auto remote = socket.remote_endpoint(ec);
  if (!ec) {
    remote_ip_ = IpString(remote.address());
    remote_address_ = remote.address().is_v6()
                          ? absl::StrCat("[", remote_ip_, "]:", remote.port())
                          : absl::StrCat(remote_ip_, ":", remote.port());
  }
  const auto local = socket.local_endpoint(ec);
  if (!ec) local_port_ = local.port();
  // Requests are written whole; Nagle would only add latency.
  socket.set_option(asio::ip::tcp::no_delay(true), ec);
}

Connection::~Connection() = default;

Connection::Health Connection::ProbeHealth() const {
  char byte;
  const ssize_t n =
      ::recv(transport_->native_fd(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n == 0) return Health::kPeerClosed;  // the origin closed it while idle
  // No request is outstanding. Over TLS the bytes are a record nobody asked
  // for: most often the close_notify alert of an origin closing the
  // connection; either way the connection is not worth a request.
  if (n > 0) return Health::kStrayBytes;
  if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
    return Health::kHealthy;
  }
  return Health::kPeerClosed;  // ECONNRESET and friends
}

void Connection::Close() { transport_->Close(); }

asio::awaitable<ExchangeResult> Connection::Exchange(
    const Request& request, const Http1Limits& limits, uint64_t max_body_bytes,
    absl::Time deadline, ExchangeSink* sink, CallAbort* abort) {
  ExchangeResult result;
  co_await ExchangeInto(request, limits, max_body_bytes, deadline, &result,
                        sink, abort);
  co_return result;
}

}  // namespace egress
