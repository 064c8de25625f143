// noop_fetcher: the gRPC floor. Serves egress.v1.Fetcher/Fetch with the same
// API shape as egressd (asynchronous completion-queue API, one queue and one
// polling thread per queue) but answers every call at once with a fixed
// 200 response of --body_bytes, without any HTTP. Measured beside egressd,
// it shows how much of egressd's cost per request is gRPC's and how much is
// egressd's own (DESIGN.md, "Concurrency").
//
//   noop_fetcher --listen=127.0.0.1:0 --completion_queues=1
// prints, once bound:
//   NOOP_FETCHER_READY listen=127.0.0.1:PORT
// and stops on SIGTERM or SIGINT. Loopback addresses only.
#include <pthread.h>
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "bench/loadgen/loopback.h"
#include "grpcpp/grpcpp.h"
#include "proto/egress/v1/fetch.grpc.pb.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:0",
          "HOST:PORT to serve on (loopback); port 0 picks a free one.");
ABSL_FLAG(int, completion_queues, 1,
          "Completion queues, each polled by one thread.");
ABSL_FLAG(int, body_bytes, 1024, "Size of FetchResponse.body.");

namespace egress::bench {
namespace {

// One Fetch call; owns itself and is deleted after its response is sent.
class NoopCall {
 public:
  NoopCall(v1::Fetcher::AsyncService* service, grpc::ServerCompletionQueue* cq,
           const v1::FetchResponse* canned)
      : service_(service), cq_(cq), canned_(canned), responder_(&context_) {
    service_->RequestFetch(&context_, &request_, &responder_, cq_, cq_, this);
  }

  void Proceed(bool ok) {
    if (!answered_ && ok) {
      new NoopCall(service_, cq_, canned_);  // keep a request slot open
      answered_ = true;
      responder_.Finish(*canned_, grpc::Status::OK, this);
      return;
    }
    delete this;  // sent, or the queue is shutting down
  }

 private:
  v1::Fetcher::AsyncService* const service_;
  grpc::ServerCompletionQueue* const cq_;
  const v1::FetchResponse* const canned_;
  grpc::ServerContext context_;
  v1::FetchRequest request_;
  grpc::ServerAsyncResponseWriter<v1::FetchResponse> responder_;
  bool answered_ = false;
};

int Run(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "noop_fetcher --listen=127.0.0.1:0 [--completion_queues=1]");
  absl::ParseCommandLine(argc, argv);
  const std::string listen = absl::GetFlag(FLAGS_listen);
  const int queues = absl::GetFlag(FLAGS_completion_queues);
  if (!IsLoopbackHost(listen.substr(0, listen.rfind(':'))) || queues < 1 ||
      absl::GetFlag(FLAGS_body_bytes) < 0) {
    std::fprintf(stderr,
                 "noop_fetcher: --listen must be a loopback HOST:PORT, "
                 "--completion_queues >= 1, --body_bytes >= 0\n");
    return 2;
  }

  // Signals go to sigwait below; threads created later inherit the mask.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  v1::FetchResponse canned;
  canned.set_status_code(200);
  canned.set_reason("OK");
  canned.set_protocol("http/1.1");
  canned.set_body(std::string(absl::GetFlag(FLAGS_body_bytes), 'a'));

  v1::Fetcher::AsyncService service;
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.AddListeningPort(listen, grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  std::vector<std::unique_ptr<grpc::ServerCompletionQueue>> cqs;
  for (int i = 0; i < queues; ++i) cqs.push_back(builder.AddCompletionQueue());
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    std::fprintf(stderr, "noop_fetcher: cannot listen on %s\n", listen.c_str());
    return 1;
  }
  std::vector<std::thread> threads;
  for (auto& cq : cqs) {
    grpc::ServerCompletionQueue* q = cq.get();
    new NoopCall(&service, q, &canned);
    threads.emplace_back([q] {
      void* tag;
      bool ok;
      while (q->Next(&tag, &ok)) static_cast<NoopCall*>(tag)->Proceed(ok);
    });
  }
  std::printf("NOOP_FETCHER_READY listen=%s:%d\n",
              listen.substr(0, listen.rfind(':')).c_str(), port);
  std::fflush(stdout);

  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  for (auto& cq : cqs) cq->Shutdown();
  for (auto& t : threads) t.join();
  return 0;
}

}  // namespace
}  // namespace egress::bench

int main(int argc, char** argv) { return egress::bench::Run(argc, argv); }
