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
#include "asio/post.hpp"
#include "asio/steady_timer.hpp"
#include "client_core/net/call_abort.h"

namespace egress {

class SocketDeadline {
 public:
  // No timer at all for absl::InfiniteFuture(). With an `abort`, its Abort()
  // cancels the pending operations too (aborted() then says so); if it was
  // aborted already, aborted() is true from the start and the caller must
  // not start any operation.
  SocketDeadline(asio::ip::tcp::socket& socket, absl::Time deadline,
                 CallAbort* abort = nullptr)
      : state_(std::make_shared<State>()), abort_(abort) {
    state_->socket = &socket;
    if (abort_ != nullptr) {
      // Posted to the socket's loop: the socket is touched only there.
      const bool registered = abort_->Register(
          [executor = socket.get_executor(),
           weak = std::weak_ptr<State>(state_)]() {
            asio::post(executor, [weak] {
              std::shared_ptr<State> state = weak.lock();
              if (state == nullptr || state->socket == nullptr) return;
              state->aborted = true;
              asio::error_code ignored;
              state->socket->cancel(ignored);
            });
          });
      if (!registered) state_->aborted = true;
    }
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
    if (abort_ != nullptr) abort_->Unregister();
  }

  SocketDeadline(const SocketDeadline&) = delete;
  SocketDeadline& operator=(const SocketDeadline&) = delete;

  // The deadline passed and pending operations were cancelled.
  bool expired() const { return state_->expired; }
  // The call was aborted (CallAbort::Abort) and pending operations were
  // cancelled, or it was aborted before this guard existed.
  bool aborted() const { return state_->aborted; }

 private:
  struct State {
    asio::ip::tcp::socket* socket = nullptr;
    bool expired = false;
    bool aborted = false;
  };
  std::shared_ptr<State> state_;
  CallAbort* const abort_;
  std::optional<asio::steady_timer> timer_;
};

}  // namespace egress

#endif  // EGRESS_CLIENT_CORE_NET_SOCKET_DEADLINE_H_
