// RunTask: runs a coroutine to completion on a test's own io_context.
#ifndef EGRESS_TESTS_SUPPORT_RUN_TASK_H_
#define EGRESS_TESTS_SUPPORT_RUN_TASK_H_

#include <exception>
#include <optional>
#include <utility>

#include "asio/awaitable.hpp"
#include "asio/co_spawn.hpp"
#include "asio/io_context.hpp"

namespace egress::testing {

// Runs `task` on `io` until `io` has no work left; returns its result.
// Rethrows what the task threw.
template <typename T>
T RunTask(asio::io_context& io, asio::awaitable<T> task) {
  std::optional<T> result;
  asio::co_spawn(io, std::move(task), [&](std::exception_ptr e, T value) {
    if (e) std::rethrow_exception(e);
    result.emplace(std::move(value));
  });
  io.restart();
  io.run();
  return std::move(*result);
}

}  // namespace egress::testing

#endif  // EGRESS_TESTS_SUPPORT_RUN_TASK_H_
