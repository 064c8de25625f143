#include "server/fetch_service.h"

#include <pthread.h>

#include <string>
#include <utility>

#include "absl/time/clock.h"
#include "grpcpp/server_context.h"
#include "server/proto_mapping.h"

namespace egress {

// One Fetch RPC, from waiting for a request to the finished response. Owns
// itself: deleted when its last completion-queue event arrives.
class FetchService::Call {
 public:
  Call(FetchService* owner, grpc::ServerCompletionQueue* cq)
      : owner_(owner), cq_(cq), responder_(&context_) {
    owner_->service_.RequestFetch(&context_, &request_, &responder_, cq_, cq_,
                                  this);
  }

  // Called on the queue's thread for this call's events.
  void Proceed(bool ok) {
    if (state_ == State::kWaiting) {
      if (!ok) {  // the queue is shutting down
        delete this;
        return;
      }
      // Keep one request slot open on this queue.
      new Call(owner_, cq_);
      Start();
      return;
    }
    delete this;  // kFinishing: the response was sent (or the call died)
  }

 private:
  enum class State { kWaiting, kFinishing };

  void Start() {
    state_ = State::kFinishing;
    const absl::Time now = absl::Now();
    const auto grpc_deadline = context_.deadline();
    const absl::Time rpc_deadline =
        grpc_deadline == std::chrono::system_clock::time_point::max()
            ? absl::InfiniteFuture()
            : absl::FromChrono(grpc_deadline);
    absl::StatusOr<Request> request =
        ToRequest(request_, now, rpc_deadline,
                  owner_->options_.default_call_timeout);
    if (!request.ok()) {
      responder_.FinishWithError(ToGrpcStatus(request.status()), this);
      return;
    }
    owner_->client_->Execute(
        *std::move(request), [this](absl::StatusOr<Response> result) {
          if (!result.ok()) {
            responder_.FinishWithError(ToGrpcStatus(result.status()), this);
            return;
          }
          ToFetchResponse(*std::move(result), &response_);
          responder_.Finish(response_, grpc::Status::OK, this);
        });
  }

  FetchService* const owner_;
  grpc::ServerCompletionQueue* const cq_;
  grpc::ServerContext context_;
  v1::FetchRequest request_;
  v1::FetchResponse response_;
  grpc::ServerAsyncResponseWriter<v1::FetchResponse> responder_;
  State state_ = State::kWaiting;
};

FetchService::FetchService(const FetchServiceOptions& options,
                           HttpClient* client)
    : options_(options), client_(client) {}

FetchService::~FetchService() { Shutdown(); }

void FetchService::Register(grpc::ServerBuilder& builder) {
  builder.RegisterService(&service_);
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
    for (int slot = 0; slot < 16; ++slot) new Call(this, cq);
    threads_.emplace_back([this, cq] { Poll(cq); });
    const std::string name = "egress-cq-" + std::to_string(i);
    pthread_setname_np(threads_.back().native_handle(), name.c_str());
  }
}

void FetchService::Poll(grpc::ServerCompletionQueue* cq) {
  void* tag;
  bool ok;
  while (cq->Next(&tag, &ok)) static_cast<Call*>(tag)->Proceed(ok);
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
