// ExecuteAndWait: runs one request on an HttpClient and blocks the calling
// (test) thread until its result arrives. Must not be called on one of the
// client's event loops (the result is delivered there).
#ifndef EGRESS_TESTS_SUPPORT_EXECUTE_AND_WAIT_H_
#define EGRESS_TESTS_SUPPORT_EXECUTE_AND_WAIT_H_

#include <utility>

#include "absl/status/statusor.h"
#include "client_core/base/sync.h"
#include "client_core/call/http_client.h"

namespace egress::testing {

inline absl::StatusOr<Response> ExecuteAndWait(HttpClient& client,
                                               Request request) {
  Notification done;
  absl::StatusOr<Response> result;
  client.Execute(std::move(request), [&](absl::StatusOr<Response> r) {
    result = std::move(r);
    done.Notify();
  });
  done.WaitForNotification();
  return result;
}

}  // namespace egress::testing

#endif  // EGRESS_TESTS_SUPPORT_EXECUTE_AND_WAIT_H_
