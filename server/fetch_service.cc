#include "server/fetch_service.h"

#include <pthread.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>

#include <optional>

#include "absl/time/clock.h"
#include "client_core/base/sync.h"
#include "grpcpp/server_context.h"
#include "server/log/access_log.h"
#include "server/metrics/call_metrics.h"
#include "server/proto_mapping.h"

namespace egress {
namespace {

// Writes the access log line of a call (server/log/access_log.h). `call_id`
// is 0 for a request refused before it became a call.
void LogCall(absl::string_view rpc, uint64_t call_id,
             const grpc::ServerContext& context,
             const v1::FetchRequest& request,
             const absl::StatusOr<Response>& result, uint64_t bytes_in) {
  if (!log::AccessLogEnabled()) return;
  const std::string peer = context.peer();
  log::AccessRecord record;
  record.rpc = rpc;
  record.call_id = call_id;
  record.caller = peer;
  record.method = request.method();
  record.url = request.url();
  record.bytes_out = request.body().size();
  record.bytes_in = bytes_in;
  log::LogAccess(record, result);
}

}  // namespace

// One Fetch RPC, from waiting for a request to the finished response. Owns
// itself: deleted once the response is finished and gRPC reported the call
// done (both always happen once the call started). If the caller cancels
// (or its deadline passes in gRPC), the HTTP exchange is aborted at once.
//
// Every event of the call arrives on its queue's thread; only the
// HttpClient callback (which starts the Finish) runs on an event loop.
class FetchService::UnaryCall : public FetchService::Tag {
 public:
  UnaryCall(FetchService* owner, grpc::ServerCompletionQueue* cq)
      : owner_(owner), cq_(cq), responder_(&context_) {
    owner_->SlotOpened();
    context_.AsyncNotifyWhenDone(&done_tag_);
    owner_->service_.RequestFetch(&context_, &request_, &responder_, cq_, cq_,
                                  this);
  }

  ~UnaryCall() override { owner_->SlotClosed(); }

  // The request arrived (or the queue is shutting down).
  void Proceed(bool ok) override {
    if (!ok) {
      delete this;  // never started: no done event will come
      return;
    }
    // Keep one request slot open on this queue.
    new UnaryCall(owner_, cq_);
    Start();
  }

 private:
  // A queue event for the Finish or the call's end.
  class OpTag : public Tag {
   public:
    OpTag(UnaryCall* call, bool done) : call_(call), done_(done) {}
    void Proceed(bool /*ok*/) override { call_->OnEvent(done_); }

   private:
    UnaryCall* const call_;
    const bool done_;
  };

  void Start() {
    absl::StatusOr<Request> request = owner_->MakeRequest(context_, request_);
    if (!request.ok()) {
      LogCall("Fetch", 0, context_, request_, request.status(), 0);
      responder_.FinishWithError(ToGrpcStatus(request.status()), &finish_tag_);
      return;
    }
    const uint64_t call_id = request->call_id;
    abort_ = owner_->client_->Execute(
        *std::move(request),
        [this, call_id](absl::StatusOr<Response> result) {
          metrics::RecordCompletedCall(result);
          LogCall("Fetch", call_id, context_, request_, result,
                  result.ok() ? result->body.size() : 0);
          if (!result.ok()) {
            responder_.FinishWithError(ToGrpcStatus(result.status()),
                                       &finish_tag_);
            return;
          }
          ToFetchResponse(*std::move(result), &response_);
          response_.set_call_id(call_id);
          responder_.Finish(response_, grpc::Status::OK, &finish_tag_);
        });
  }

  void OnEvent(bool done) {
    if (done) {
      done_ = true;
      if (context_.IsCancelled() && abort_ != nullptr) abort_->Abort();
    } else {
      finished_ = true;
    }
    if (done_ && finished_) delete this;
  }

  FetchService* const owner_;
  grpc::ServerCompletionQueue* const cq_;
  grpc::ServerContext context_;
  v1::FetchRequest request_;
  v1::FetchResponse response_;
  grpc::ServerAsyncResponseWriter<v1::FetchResponse> responder_;
  OpTag finish_tag_{this, /*done=*/false};
  OpTag done_tag_{this, /*done=*/true};
  std::shared_ptr<CallAbort> abort_;
  bool finished_ = false;
  bool done_ = false;
};

// One FetchStream RPC. Owns itself; deleted once the response is finished
// and gRPC reported the call done (both always happen once started).
//
// Threads: consumer callbacks arrive on event-loop threads, queue events on
// the queue's thread; `mu_` orders them. At most one Write is in flight: the
// consumer's `ready` is invoked only when it completed.
class FetchService::StreamRpc : public FetchService::Tag {
 public:
  StreamRpc(FetchService* owner, grpc::ServerCompletionQueue* cq)
      : owner_(owner), cq_(cq), writer_(&context_) {
    owner_->SlotOpened();
    context_.AsyncNotifyWhenDone(&done_tag_);
    owner_->service_.RequestFetchStream(&context_, &request_, &writer_, cq_,
                                        cq_, this);
  }

  ~StreamRpc() override { owner_->SlotClosed(); }

  // The request arrived (or the queue is shutting down).
  void Proceed(bool ok) override {
    if (!ok) {
      delete this;  // never started: no done event will come
      return;
    }
    new StreamRpc(owner_, cq_);
    absl::StatusOr<Request> request = owner_->MakeRequest(context_, request_);
    if (!request.ok()) {
      LogCall("FetchStream", 0, context_, request_, request.status(), 0);
      MutexLock lock(&mu_);
      finish_started_ = true;
      writer_.Finish(ToGrpcStatus(request.status()), &finish_tag_);
      return;
    }
    call_id_ = request->call_id;
    auto consumer = std::make_shared<Consumer>(this);
    std::shared_ptr<StreamCall> call =
        owner_->client_->Stream(*std::move(request), consumer);
    bool cancel_now = false;
    {
      MutexLock lock(&mu_);
      call_ = call;
      cancel_now = cancelled_;
    }
    if (cancel_now) call->Cancel();
  }

 private:
  // Forwards client_core's stream events; kept alive by client_core until
  // OnDone, which comes before the RPC can finish.
  class Consumer : public StreamConsumer {
   public:
    explicit Consumer(StreamRpc* rpc) : rpc_(rpc) {}
    void OnHead(const Response& head, Ready ready) override {
      v1::FetchStreamResponse message;
      ToResponseHead(head, rpc_->call_id_, message.mutable_head());
      rpc_->Write(std::move(message), std::move(ready));
    }
    void OnBody(std::string chunk, Ready ready) override {
      rpc_->body_bytes_.fetch_add(chunk.size(), std::memory_order_relaxed);
      v1::FetchStreamResponse message;
      message.set_body_chunk(std::move(chunk));
      rpc_->Write(std::move(message), std::move(ready));
    }
    void OnDone(absl::StatusOr<Response> result) override {
      rpc_->Done(std::move(result));
    }

   private:
    StreamRpc* const rpc_;
  };

  // A queue event for one kind of operation of this RPC.
  class OpTag : public Tag {
   public:
    enum class Op { kWrite, kFinish, kDone };
    OpTag(StreamRpc* rpc, Op op) : rpc_(rpc), op_(op) {}
    void Proceed(bool ok) override { rpc_->OnEvent(op_, ok); }

   private:
    StreamRpc* const rpc_;
    const Op op_;
  };

  void Write(v1::FetchStreamResponse message, StreamConsumer::Ready ready) {
    MutexLock lock(&mu_);
    ready_ = std::move(ready);
    write_in_flight_ = true;
    writer_.Write(message, &write_tag_);
  }

  void Done(absl::StatusOr<Response> result) {
    metrics::RecordCompletedCall(result);
    LogCall("FetchStream", call_id_, context_, request_, result,
            body_bytes_.load(std::memory_order_relaxed));
    MutexLock lock(&mu_);
    if (!result.ok()) {
      final_status_ = ToGrpcStatus(result.status());
    } else {
      final_status_ = grpc::Status::OK;
      for (HeaderField& h : result->trailers) {
        AddHeader(std::move(h), final_message_.mutable_trailers());
      }
      ToTiming(result->timing, final_message_.mutable_timing());
      has_final_message_ = true;
    }
    // A Write still in flight (the call was cancelled mid-body) finishes
    // first; its completion starts the Finish.
    if (!write_in_flight_) StartFinish();
  }

  void StartFinish() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    finish_started_ = true;
    if (has_final_message_ && final_status_->ok()) {
      writer_.WriteAndFinish(final_message_, grpc::WriteOptions(),
                             *final_status_, &finish_tag_);
    } else {
      writer_.Finish(*final_status_, &finish_tag_);
    }
  }

  void OnEvent(OpTag::Op op, bool ok) {
    StreamConsumer::Ready ready;
    std::shared_ptr<StreamCall> cancel;
    bool destroy = false;
    {
      MutexLock lock(&mu_);
      switch (op) {
        case OpTag::Op::kWrite:
          write_in_flight_ = false;
          if (ok) {
            ready = std::move(ready_);
          } else {
            cancel = call_;  // the caller is gone
          }
          ready_ = nullptr;
          if (final_status_ && !finish_started_) StartFinish();
          break;
        case OpTag::Op::kFinish:
          finished_ = true;
          break;
        case OpTag::Op::kDone:
          done_ = true;
          if (context_.IsCancelled()) {
            cancelled_ = true;
            cancel = call_;
          }
          break;
      }
      destroy = finished_ && done_;
    }
    if (cancel) cancel->Cancel();
    if (ready) std::move(ready)();
    if (destroy) delete this;
  }

  FetchService* const owner_;
  grpc::ServerCompletionQueue* const cq_;
  grpc::ServerContext context_;
  v1::FetchRequest request_;
  grpc::ServerAsyncWriter<v1::FetchStreamResponse> writer_;
  uint64_t call_id_ = 0;
  // Response body bytes handed to gRPC, for the access log.
  std::atomic<uint64_t> body_bytes_{0};
  OpTag write_tag_{this, OpTag::Op::kWrite};
  OpTag finish_tag_{this, OpTag::Op::kFinish};
  OpTag done_tag_{this, OpTag::Op::kDone};

  Mutex mu_;
  std::shared_ptr<StreamCall> call_ ABSL_GUARDED_BY(mu_);
  StreamConsumer::Ready ready_ ABSL_GUARDED_BY(mu_);
  bool write_in_flight_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<grpc::Status> final_status_ ABSL_GUARDED_BY(mu_);
  v1::FetchStreamResponse final_message_ ABSL_GUARDED_BY(mu_);
  bool has_final_message_ ABSL_GUARDED_BY(mu_) = false;
  bool finish_started_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
};

absl::StatusOr<Request> FetchService::MakeRequest(
    const grpc::ServerContext& context, const v1::FetchRequest& proto) {
  const absl::Time now = absl::Now();
  const auto grpc_deadline = context.deadline();
  const absl::Time rpc_deadline =
      grpc_deadline == std::chrono::system_clock::time_point::max()
          ? absl::InfiniteFuture()
          : absl::FromChrono(grpc_deadline);
  absl::StatusOr<Request> request =
      ToRequest(proto, now, rpc_deadline, options_.default_call_timeout);
  if (!request.ok()) return request;
  request->call_id = next_call_id_.fetch_add(1, std::memory_order_relaxed);
  request->caller = context.peer();
  if (client_->caller_limiter().enabled()) {
    request->caller_id = CallerIdentity(
        context.client_metadata(), options_.caller_metadata_key,
        request->caller);
  }
  return request;
}

std::string CallerIdentity(
    const std::multimap<grpc::string_ref, grpc::string_ref>& metadata,
    const std::string& metadata_key, const std::string& peer) {
  if (!metadata_key.empty()) {
    auto it = metadata.find(metadata_key);
    if (it != metadata.end() && it->second.size() > 0) {
      std::string id;
      const size_t n = std::min<size_t>(it->second.size(), 128);
      id.reserve(n);
      for (size_t i = 0; i < n; ++i) {
        const char c = it->second.data()[i];
        id += (c >= 0x20 && c < 0x7f) ? c : '?';
      }
      return id;
    }
  }
  // "ipv4:10.0.0.7:51234", "ipv6:[::1]:51234": the port changes with every
  // connection of the same caller.
  if (peer.rfind("ipv4:", 0) == 0 || peer.rfind("ipv6:", 0) == 0) {
    const size_t colon = peer.rfind(':');
    if (colon != std::string::npos && colon > 4) return peer.substr(0, colon);
  }
  return peer;
}

FetchService::FetchService(const FetchServiceOptions& options,
                           HttpClient* client)
    : options_(options), client_(client) {}

FetchService::~FetchService() { Shutdown(); }

void FetchService::Register(grpc::ServerBuilder& builder) {
  builder.RegisterService(&service_);
  if (options_.max_receive_message_bytes < 0) {
    builder.SetMaxReceiveMessageSize(-1);  // gRPC's "unlimited"
  } else if (options_.max_receive_message_bytes > 0) {
    builder.SetMaxReceiveMessageSize(static_cast<int>(
        std::min<int64_t>(options_.max_receive_message_bytes, INT32_MAX)));
  }
  int n = options_.completion_queues;
  if (n <= 0) {
    n = static_cast<int>(std::thread::hardware_concurrency());
    if (n <= 0) n = 1;
  }
  for (int i = 0; i < n; ++i) queues_.push_back(builder.AddCompletionQueue());
}

void FetchService::Start() {
  for (size_t i = 0; i < queues_.size(); ++i) {
    grpc::ServerCompletionQueue* cq = queues_[i].get();
    // Several request slots per queue so a burst of new calls does not wait
    // for the slot to be re-armed.
    for (int slot = 0; slot < 16; ++slot) new UnaryCall(this, cq);
    for (int slot = 0; slot < 4; ++slot) new StreamRpc(this, cq);
    threads_.emplace_back([this, cq] { Poll(cq); });
    const std::string name = "egress-cq-" + std::to_string(i);
    pthread_setname_np(threads_.back().native_handle(), name.c_str());
  }
}

void FetchService::Poll(grpc::ServerCompletionQueue* cq) {
  void* tag;
  bool ok;
  while (cq->Next(&tag, &ok)) static_cast<Tag*>(tag)->Proceed(ok);
}

void FetchService::SlotOpened() {
  live_slots_.fetch_add(1, std::memory_order_relaxed);
}

void FetchService::SlotClosed() {
  // Every call passes here: the lock is taken only by the last slot, and
  // releasing it wakes AwaitNoCalls (egress::Mutex notifies its waiters on
  // Unlock; the waiter checks its predicate under the lock, so the wake-up
  // cannot fall between its check and its wait).
  if (live_slots_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
    MutexLock wake(&slots_mu_);
  }
}

bool FetchService::AwaitNoCalls(absl::Time deadline) {
  MutexLock lock(&slots_mu_);
  return slots_mu_.AwaitWithTimeout(
      [this] { return live_slots_.load(std::memory_order_acquire) == 0; },
      std::max(absl::ZeroDuration(), deadline - absl::Now()));
}

void FetchService::Shutdown() {
  if (shut_down_) return;
  shut_down_ = true;
  for (auto& cq : queues_) cq->Shutdown();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
}

}  // namespace egress
