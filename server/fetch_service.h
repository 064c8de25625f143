// FetchService: the Fetcher gRPC service on the asynchronous completion-queue
// API, one queue and one polling thread per queue.
//
// Why the completion-queue API: measured on this project's machine it costs
// 12-14 us of server CPU per unary call against 19 us for the callback API
// (DESIGN.md), and Fetch is the hot path. Each call takes two thread hops:
// the queue thread hands the request to client_core (which runs it on an
// event loop), and the event loop finishes the RPC, which the queue thread
// then completes.
//
// FetchStream uses the same queues: each response piece is one Write, and
// the next piece is read from the origin only when that Write completed
// (end-to-end flow control; see client_core/call/stream_consumer.h).
//
// Lifetime: construct, Register() with the builder before BuildAndStart(),
// then Start(). Shutdown(): after grpc::Server::Shutdown() returned and the
// HttpClient finished every call, shuts the queues down and joins the
// threads. The HttpClient must outlive this object.
#ifndef EGRESS_SERVER_FETCH_SERVICE_H_
#define EGRESS_SERVER_FETCH_SERVICE_H_

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/time.h"
#include "client_core/base/sync.h"
#include "client_core/call/http_client.h"
#include "grpcpp/completion_queue.h"
#include "grpcpp/server_builder.h"
#include "grpcpp/support/string_ref.h"
#include "proto/egress/v1/fetch.grpc.pb.h"

namespace egress {

struct FetchServiceOptions {
  // Completion queues, each polled by one thread. 0: one per CPU core.
  int completion_queues = 0;
  // Call timeout when the caller sets neither a gRPC deadline nor
  // FetchRequest.timeout.
  absl::Duration default_call_timeout = absl::Seconds(60);
  // The metadata key whose value identifies the caller (Request::caller_id,
  // for HttpClientOptions::max_in_flight_per_caller). Empty, or absent from
  // a call: the peer's IP address ("ipv4:10.0.0.7", the gRPC peer without
  // its port).
  std::string caller_metadata_key;
  // Largest FetchRequest gRPC accepts (its receive limit, default 4 MiB).
  // -1: no limit of gRPC's, so that every request reaches egressd's own
  // limits (HttpClientOptions::request_limits): an oversized body gets
  // egressd's precise RESOURCE_EXHAUSTED, an access log line and a safety
  // event, where gRPC's limit answered "Received message larger than max"
  // and hid the call from egressd. Its limit saved no memory: gRPC 1.51
  // buffers the whole message before it checks the size (a 64 MiB body
  // against a 1 MiB limit raised egressd's RSS by ~70 MiB either way).
  // 0: gRPC's default.
  int64_t max_receive_message_bytes = 0;
};

// The caller identity of a call: the value of `metadata_key` when the call
// carries it (at most 128 bytes, non-printable bytes as '?'), else the gRPC
// `peer` without its port ("ipv4:10.0.0.7:51234" -> "ipv4:10.0.0.7").
std::string CallerIdentity(
    const std::multimap<grpc::string_ref, grpc::string_ref>& metadata,
    const std::string& metadata_key, const std::string& peer);

class FetchService {
 public:
  FetchService(const FetchServiceOptions& options, HttpClient* client);
  ~FetchService();

  FetchService(const FetchService&) = delete;
  FetchService& operator=(const FetchService&) = delete;

  // Adds the service and its completion queues to `builder`.
  void Register(grpc::ServerBuilder& builder);
  // Starts accepting calls; the server must be built.
  void Start();
  // Shuts the queues down and joins their threads. Idempotent.
  void Shutdown();

  // Waits until no Fetch or FetchStream call is left to answer and no
  // request slot can still become one, or until `deadline`. Only after
  // grpc::Server::Shutdown() began (from another thread) can that happen:
  // until then there are always open slots. True if it happened.
  //
  // Why: gRPC's Shutdown(deadline) also waits for every client connection
  // to close and for every health Watch to end. An idle gRPC C++ client
  // closes up to 5 s after the GOAWAY, and the default health service ends
  // Watches only at the deadline, so egressd would drain for nothing. Once
  // this returns true, main cancels what is left at once.
  bool AwaitNoCalls(absl::Time deadline);

 private:
  // Something a completion-queue event is for: every tag is one.
  class Tag {
   public:
    virtual ~Tag() = default;
    virtual void Proceed(bool ok) = 0;
  };
  class UnaryCall;
  class StreamRpc;
  void Poll(grpc::ServerCompletionQueue* cq);
  // Fills the fields every call gets from the RPC's context.
  absl::StatusOr<Request> MakeRequest(const grpc::ServerContext& context,
                                      const v1::FetchRequest& proto);

  // Counts a request slot or call object (UnaryCall, StreamRpc) from its
  // construction to its deletion. A slot that receives a call re-arms a new
  // slot before it can be deleted, so the count reaches zero only once the
  // server is shutting down and every call has ended.
  void SlotOpened();
  void SlotClosed();

  const FetchServiceOptions options_;
  HttpClient* const client_;
  v1::Fetcher::AsyncService service_;
  std::vector<std::unique_ptr<grpc::ServerCompletionQueue>> queues_;
  std::vector<std::thread> threads_;
  bool shut_down_ = false;
  std::atomic<uint64_t> next_call_id_{1};
  // Taken only to wait for, and to announce, live_slots_ reaching zero.
  Mutex slots_mu_;
  std::atomic<int64_t> live_slots_{0};
};

}  // namespace egress

#endif  // EGRESS_SERVER_FETCH_SERVICE_H_
