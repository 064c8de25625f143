// EventLoops: a fixed set of Asio event loops, one thread each.
//
// Every socket belongs to exactly one loop for its whole life and is touched
// only from that loop's thread, so connection I/O needs no locks. Calls are
// spread over the loops round-robin.
//
// Thread-safe: Next() and executors may be used from any thread. Stop() joins
// the threads; it must not be called from a loop thread.
#ifndef EGRESS_CLIENT_CORE_NET_EVENT_LOOPS_H_
#define EGRESS_CLIENT_CORE_NET_EVENT_LOOPS_H_

#include <atomic>
#include <cstddef>
#include <memory>
#include <thread>
#include <vector>

#include "asio/any_io_executor.hpp"
#include "asio/executor_work_guard.hpp"
#include "asio/io_context.hpp"

namespace egress {

class EventLoops {
 public:
  // Starts `count` loops (at least 1).
  explicit EventLoops(size_t count);
  ~EventLoops();  // Stop()s

  EventLoops(const EventLoops&) = delete;
  EventLoops& operator=(const EventLoops&) = delete;

  size_t size() const { return loops_.size(); }
  // The executor of loop i (0 <= i < size()).
  asio::any_io_executor executor(size_t i) const;
  // The next loop's executor, round-robin.
  asio::any_io_executor Next();
  // Lets the loops run out of work and joins their threads. Idempotent.
  void Stop();

 private:
  struct Loop {
    asio::io_context context{1};
    asio::executor_work_guard<asio::io_context::executor_type> work{
        context.get_executor()};
    std::thread thread;
  };
  std::vector<std::unique_ptr<Loop>> loops_;
  std::atomic<size_t> next_{0};
  bool stopped_ = false;
};

}  // namespace egress

#endif  // EGRESS_CLIENT_CORE_NET_EVENT_LOOPS_H_
