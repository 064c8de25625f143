// StreamConsumer: the receiving end of a streamed call (HttpClient::Stream).
//
// Flow control: OnHead and OnBody each hand a `ready` continuation; the call
// reads nothing more from the origin until the consumer invokes it (from any
// thread, at most once), so a slow consumer slows the origin instead of
// egressd buffering the body. A consumer that holds `ready` longer than the
// client's leak threshold is reported as a leak (see leak_registry.h).
//
// Calls into the consumer come from event-loop threads, one at a time, in
// order: OnHead, OnBody*, OnDone. OnDone is called exactly once, last, also
// when the call fails before any head (then it is the only call).
#ifndef EGRESS_CLIENT_CORE_CALL_STREAM_CONSUMER_H_
#define EGRESS_CLIENT_CORE_CALL_STREAM_CONSUMER_H_

#include <string>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "client_core/http/request.h"

namespace egress {

class StreamConsumer {
 public:
  using Ready = absl::AnyInvocable<void() &&>;
  virtual ~StreamConsumer() = default;
  // Status, headers, protocol and connection; `head.body` is empty.
  virtual void OnHead(const Response& head, Ready ready) = 0;
  virtual void OnBody(std::string chunk, Ready ready) = 0;
  // The end: on success a Response with no body, holding trailers and
  // timing; otherwise the error (kCancelled after StreamCall::Cancel).
  virtual void OnDone(absl::StatusOr<Response> result) = 0;
};

}  // namespace egress

#endif  // EGRESS_CLIENT_CORE_CALL_STREAM_CONSUMER_H_
