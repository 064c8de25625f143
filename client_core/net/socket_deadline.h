// SocketDeadline: cancels a socket's pending operations when a deadline
// passes, so an awaited read, write or connect completes with
// operation_aborted and expired() says why.
//
// Lifetime: the object must live on the socket's executor and be destroyed
// (normally at scope exit) before the socket; a timer that fires after that
// does nothing. Not thread-safe: use it on the socket's event loop only.
#ifndef EGRESS_CLIENT_CORE_NET_SOCKET_DEADLINE_H_
#define EGRESS_CLIENT_CORE_NET_SOCKET_DEADLINE_H_

#include <memory>
#include <optional>

#include "absl/time/time.h"
#include "asio/ip/tcp.hpp"
#include "asio/steady_timer.hpp"

namespace egress {

class SocketDeadline {
 public:
  // No timer at all for absl::InfiniteFuture().
  SocketDeadline(asio::ip::tcp::socket& socket, absl::Time deadline)
      : state_(std::make_shared<State>()) {
    state_->socket = &socket;
    if (deadline == absl::InfiniteFuture()) return;
    timer_.emplace(socket.get_executor());
    absl::Duration left = deadline - absl::Now();
    if (left < absl::ZeroDuration()) left = absl::ZeroDuration();
    timer_->expires_after(absl::ToChronoNanoseconds(left));
    timer_->async_wait([state = state_](const asio::error_code& ec) {
      // The timer may fire after the operation it guards has completed and
      // the socket is gone; `state` says so.
      if (ec || state->socket == nullptr) return;
      state->expired = true;
      asio::error_code ignored;
      state->socket->cancel(ignored);
    });
  }

  ~SocketDeadline() {
    state_->socket = nullptr;
    if (timer_) timer_->cancel();
  }

  SocketDeadline(const SocketDeadline&) = delete;
  SocketDeadline& operator=(const SocketDeadline&) = delete;

  // The deadline passed and pending operations were cancelled.
  bool expired() const { return state_->expired; }

 private:
  struct State {
    asio::ip::tcp::socket* socket = nullptr;
    bool expired = false;
  };
  std::shared_ptr<State> state_;
  std::optional<asio::steady_timer> timer_;
};

}  // namespace egress

#endif  // EGRESS_CLIENT_CORE_NET_SOCKET_DEADLINE_H_
