// ReadWatchdog: the read timeouts of one exchange, enforced from outside the
// codec.
//
//   first byte  from the watchdog's start (the exchange starts sending the
//               request) until the response head (status line and every
//               header) has arrived. A head that trickles in byte by byte
//               counts as not arrived: slowloris on headers is caught here.
//   idle read   after the head, the longest time without a piece of the
//               body arriving. Time the call spends waiting for its own
//               consumer (FetchStream flow control) does not count: the
//               watchdog is paused then.
//
// The codec reports progress through the call's ExchangeSink (HeadArrived,
// Progress); when a timeout passes, the watchdog aborts the exchange through
// its CallAbort (an HTTP/1.1 connection is then closed, an HTTP/2 stream
// reset) and expired() says which timeout it was. One timer, re-armed only
// when a period ends, not on every read.
//
// Threading: lives on the exchange's event loop (the connection's executor)
// and is used only there; it must be destroyed there before the executor
// stops. A timer that fires after destruction does nothing.
#ifndef EGRESS_CLIENT_CORE_CALL_READ_WATCHDOG_H_
#define EGRESS_CLIENT_CORE_CALL_READ_WATCHDOG_H_

#include <chrono>
#include <memory>

#include "absl/time/time.h"
#include "asio/any_io_executor.hpp"
#include "asio/steady_timer.hpp"
#include "client_core/net/call_abort.h"

namespace egress {

class ReadWatchdog {
 public:
  enum class Expired { kNone, kFirstByte, kIdleRead };

  // A zero (or negative) duration turns that timeout off. `abort` is what
  // the exchange was given; it is aborted when a timeout passes.
  ReadWatchdog(asio::any_io_executor executor, absl::Duration first_byte,
               absl::Duration idle_read, std::shared_ptr<CallAbort> abort);
  ~ReadWatchdog();

  ReadWatchdog(const ReadWatchdog&) = delete;
  ReadWatchdog& operator=(const ReadWatchdog&) = delete;

  // The response head arrived: the first-byte timeout ends, the idle one
  // starts.
  void HeadArrived();
  // A piece of the body arrived.
  void Progress() { last_progress_ = Clock::now(); }
  // The call waits for its consumer / is done waiting.
  void Pause() { paused_ = true; }
  void Resume();

  Expired expired() const { return expired_; }

 private:
  using Clock = std::chrono::steady_clock;
  // What a timer handler needs to reach the watchdog, if it still exists.
  struct Alive {
    ReadWatchdog* watchdog = nullptr;
  };

  void Arm(Clock::time_point due);
  void OnTimer();

  const Clock::duration first_byte_;
  const Clock::duration idle_read_;
  const std::shared_ptr<CallAbort> abort_;
  const std::shared_ptr<Alive> alive_;
  asio::steady_timer timer_;
  const Clock::time_point started_;
  Clock::time_point last_progress_;
  Clock::time_point armed_due_;
  bool armed_ = false;
  bool head_arrived_ = false;
  bool paused_ = false;
  Expired expired_ = Expired::kNone;
};

}  // namespace egress

#endif  // EGRESS_CLIENT_CORE_CALL_READ_WATCHDOG_H_
