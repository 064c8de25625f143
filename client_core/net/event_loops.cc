#include "client_core/net/event_loops.h"

#include <pthread.h>

#include <string>

namespace egress {

EventLoops::EventLoops(size_t count) {
  if (count == 0) count = 1;
  loops_.reserve(count);
  for (size_t i = 0; i < count; ++i) {
    auto loop = std::make_unique<Loop>();
    Loop* raw = loop.get();
    raw->thread = std::thread([raw] { raw->context.run(); });
    // Named threads make `top -H` and perf readable.
    const std::string name = "egress-loop-" + std::to_string(i);
    pthread_setname_np(raw->thread.native_handle(), name.c_str());
    loops_.push_back(std::move(loop));
  }
}

EventLoops::~EventLoops() { Stop(); }

asio::any_io_executor EventLoops::executor(size_t i) const {
  return loops_[i]->context.get_executor();
}

asio::any_io_executor EventLoops::Next() {
  const size_t i = next_.fetch_add(1, std::memory_order_relaxed);
  return loops_[i % loops_.size()]->context.get_executor();
}

void EventLoops::Stop() {
  if (stopped_) return;
  stopped_ = true;
  for (auto& loop : loops_) loop->work.reset();
  for (auto& loop : loops_) {
    if (loop->thread.joinable()) loop->thread.join();
  }
}

}  // namespace egress
