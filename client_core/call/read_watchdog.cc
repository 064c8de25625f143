#include "client_core/call/read_watchdog.h"

#include <utility>

namespace egress {
namespace {

std::chrono::steady_clock::duration ToClock(absl::Duration d) {
  if (d <= absl::ZeroDuration()) return std::chrono::steady_clock::duration::zero();
  return std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      absl::ToChronoNanoseconds(d));
}

}  // namespace

ReadWatchdog::ReadWatchdog(asio::any_io_executor executor,
                           absl::Duration first_byte, absl::Duration idle_read,
                           std::shared_ptr<CallAbort> abort)
    : first_byte_(ToClock(first_byte)),
      idle_read_(ToClock(idle_read)),
      abort_(std::move(abort)),
      alive_(std::make_shared<Alive>()),
      timer_(std::move(executor)),
      started_(Clock::now()),
      last_progress_(started_) {
  alive_->watchdog = this;
  if (first_byte_ > Clock::duration::zero()) Arm(started_ + first_byte_);
}

ReadWatchdog::~ReadWatchdog() {
  alive_->watchdog = nullptr;
  timer_.cancel();
}

void ReadWatchdog::HeadArrived() {
  if (head_arrived_) return;
  head_arrived_ = true;
  last_progress_ = Clock::now();
  if (idle_read_ > Clock::duration::zero() && !paused_) {
    Arm(last_progress_ + idle_read_);
  }
}

void ReadWatchdog::Resume() {
  paused_ = false;
  last_progress_ = Clock::now();
  if (head_arrived_ && idle_read_ > Clock::duration::zero()) {
    Arm(last_progress_ + idle_read_);
  }
}

void ReadWatchdog::Arm(Clock::time_point due) {
  if (expired_ != Expired::kNone) return;
  // A pending wait that ends no later is enough: OnTimer works out what is
  // due when it fires.
  if (armed_ && armed_due_ <= due) return;
  armed_ = true;
  armed_due_ = due;
  timer_.expires_at(due);  // cancels a later pending wait
  timer_.async_wait([alive = alive_](const asio::error_code& ec) {
    if (ec || alive->watchdog == nullptr) return;  // re-armed, or gone
    alive->watchdog->OnTimer();
  });
}

void ReadWatchdog::OnTimer() {
  armed_ = false;
  if (expired_ != Expired::kNone) return;
  const Clock::time_point now = Clock::now();
  Expired kind;
  Clock::time_point due;
  if (!head_arrived_) {
    if (first_byte_ == Clock::duration::zero()) return;
    kind = Expired::kFirstByte;
    due = started_ + first_byte_;
  } else {
    if (paused_ || idle_read_ == Clock::duration::zero()) return;
    kind = Expired::kIdleRead;
    due = last_progress_ + idle_read_;
  }
  if (now < due) {
    Arm(due);
    return;
  }
  expired_ = kind;
  abort_->Abort();
}

}  // namespace egress
