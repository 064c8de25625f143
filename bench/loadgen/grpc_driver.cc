#include "bench/loadgen/grpc_driver.h"

#include <sys/prctl.h>
#include <time.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "grpcpp/grpcpp.h"
#include "proto/egress/v1/fetch.grpc.pb.h"

namespace egress::bench {
namespace {

std::string StatusCodeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK: return "OK";
    case grpc::StatusCode::CANCELLED: return "CANCELLED";
    case grpc::StatusCode::UNKNOWN: return "UNKNOWN";
    case grpc::StatusCode::INVALID_ARGUMENT: return "INVALID_ARGUMENT";
    case grpc::StatusCode::DEADLINE_EXCEEDED: return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::NOT_FOUND: return "NOT_FOUND";
    case grpc::StatusCode::ALREADY_EXISTS: return "ALREADY_EXISTS";
    case grpc::StatusCode::PERMISSION_DENIED: return "PERMISSION_DENIED";
    case grpc::StatusCode::RESOURCE_EXHAUSTED: return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::FAILED_PRECONDITION: return "FAILED_PRECONDITION";
    case grpc::StatusCode::ABORTED: return "ABORTED";
    case grpc::StatusCode::OUT_OF_RANGE: return "OUT_OF_RANGE";
    case grpc::StatusCode::UNIMPLEMENTED: return "UNIMPLEMENTED";
    case grpc::StatusCode::INTERNAL: return "INTERNAL";
    case grpc::StatusCode::UNAVAILABLE: return "UNAVAILABLE";
    case grpc::StatusCode::DATA_LOSS: return "DATA_LOSS";
    case grpc::StatusCode::UNAUTHENTICATED: return "UNAUTHENTICATED";
    default: return absl::StrCat("CODE_", static_cast<int>(code));
  }
}

// Sleeps until the monotonic time `deadline_ns` (the clock of NowNanos()).
void SleepUntil(int64_t deadline_ns) {
  timespec ts;
  ts.tv_sec = deadline_ns / 1'000'000'000;
  ts.tv_nsec = deadline_ns % 1'000'000'000;
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) != 0) {
  }
}

class GrpcLoad {
 public:
  GrpcLoad(const LoadOptions& options, const GrpcFetchOptions& fetch)
      : options_(options), fetch_(fetch) {
    request_.set_method(fetch.method);
    request_.set_url(fetch.url);
  }

  absl::StatusOr<RunReport> Run() {
    if (absl::Status s = Connect(); !s.ok()) return s;
    for (int i = 0; i < std::max(1, fetch_.threads); ++i) {
      workers_.push_back(std::make_unique<Worker>());
    }
    // The window's bounds are fixed before the first call so that every
    // thread reads them without synchronisation.
    start_ns_ = NowNanos() + 1'000'000;
    warm_end_ns_ = start_ns_ + absl::ToInt64Nanoseconds(options_.warmup);
    stop_ns_ = warm_end_ns_ + absl::ToInt64Nanoseconds(options_.duration);
    for (auto& w : workers_) {
      Worker* worker = w.get();
      worker->thread = std::thread([this, worker] { Poll(worker); });
    }

    RunReport schedule;  // the scheduler's own counts: the send lag
    if (options_.open_loop) {
      RunSchedule(schedule);
    } else {
      SleepUntil(start_ns_);
      for (int i = 0; i < options_.concurrency; ++i) {
        Start(workers_[i % workers_.size()].get(), NowNanos());
      }
    }

    // Every call carries the deadline, so the drain ends within it; the
    // margin covers a server that answers just before the deadline.
    const int64_t drain_limit = stop_ns_ +
                                absl::ToInt64Nanoseconds(options_.timeout) +
                                5'000'000'000;
    if (!WaitOutstandingBelow(1, drain_limit)) {
      // Deleting calls gRPC still owns would be a use-after-free, and the
      // queue threads cannot be joined while they wait for them: end the
      // process here (a benchmark run has nothing else to save).
      std::fprintf(stderr,
                   "loadgen: %lld calls still outstanding past their "
                   "deadline; giving up\n",
                   static_cast<long long>(outstanding_.load()));
      std::fflush(stderr);
      std::_Exit(1);
    }
    for (auto& w : workers_) w->cq.Shutdown();
    for (auto& w : workers_) w->thread.join();

    RunReport report;
    report.protocol = "grpc";
    report.label = options_.label;
    report.mode = options_.open_loop ? "open" : "closed";
    report.target = options_.target;
    report.request = fetch_.url;
    report.offered_rate = options_.open_loop ? options_.rate : 0;
    report.concurrency = options_.open_loop ? 0 : options_.concurrency;
    report.connections = static_cast<int>(stubs_.size());
    report.window_seconds = (stop_ns_ - warm_end_ns_) / 1e9;
    for (auto& w : workers_) report.Merge(w->stats);
    report.Merge(schedule);
    return report;
  }

 private:
  struct Worker {
    grpc::CompletionQueue cq;
    RunReport stats;  // only this worker's thread touches it
    std::thread thread;
  };
  struct Call {
    grpc::ClientContext context;
    v1::FetchResponse response;
    grpc::Status status;
    std::unique_ptr<grpc::ClientAsyncResponseReader<v1::FetchResponse>>
        reader;
    int64_t start_ns = 0;  // intended (open loop) or actual (closed) start
  };

  absl::Status Connect() {
    const auto deadline =
        std::chrono::system_clock::now() + std::chrono::seconds(5);
    for (int i = 0; i < std::max(1, options_.connections); ++i) {
      grpc::ChannelArguments args;
      // Without a local subchannel pool, channels to one target share one
      // TCP connection, and "4 channels" would be one connection.
      args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
      args.SetMaxReceiveMessageSize(-1);
      auto channel = grpc::CreateCustomChannel(
          options_.target, grpc::InsecureChannelCredentials(), args);
      if (!channel->WaitForConnected(deadline)) {
        return absl::UnavailableError(absl::StrCat(
            "channel ", i, " to ", options_.target,
            " did not connect within 5 s"));
      }
      stubs_.push_back(v1::Fetcher::NewStub(channel));
    }
    return absl::OkStatus();
  }

  // Starts one call on `worker`'s queue; any thread may call it.
  void Start(Worker* worker, int64_t start_ns) {
    auto* call = new Call;
    call->start_ns = start_ns;
    call->context.set_deadline(
        std::chrono::system_clock::now() +
        std::chrono::nanoseconds(absl::ToInt64Nanoseconds(options_.timeout)));
    const uint64_t n = next_channel_.fetch_add(1, std::memory_order_relaxed);
    call->reader = stubs_[n % stubs_.size()]->PrepareAsyncFetch(
        &call->context, request_, &worker->cq);
    outstanding_.fetch_add(1, std::memory_order_relaxed);
    call->reader->StartCall();
    call->reader->Finish(&call->response, &call->status, call);
  }

  void Poll(Worker* worker) {
    void* tag;
    bool ok;
    while (worker->cq.Next(&tag, &ok)) {
      std::unique_ptr<Call> call(static_cast<Call*>(tag));
      const int64_t now = NowNanos();
      Record(worker->stats, *call, now);
      if (!options_.open_loop && now < stop_ns_) Start(worker, now);
      if (outstanding_.fetch_sub(1, std::memory_order_acq_rel) <= 1 ||
          options_.open_loop) {
        if (waiters_.load(std::memory_order_acquire) > 0) {
          std::lock_guard<std::mutex> lock(mu_);
          cv_.notify_all();
        }
      }
    }
  }

  void Record(RunReport& stats, const Call& call, int64_t now) {
    ++stats.all_calls;
    if (now >= warm_end_ns_ && now < stop_ns_) ++stats.completed_in_window;
    if (call.start_ns < warm_end_ns_ || call.start_ns >= stop_ns_) return;
    ++stats.measured_calls;
    stats.latency_ns.Record(now - call.start_ns);
    ++stats.status[StatusCodeName(call.status.error_code())];
    if (call.status.ok()) {
      ++stats.http_status[call.response.status_code()];
      stats.response_body_bytes +=
          static_cast<int64_t>(call.response.body().size());
    }
  }

  void RunSchedule(RunReport& schedule) {
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);  // wake on time, not 50 us late
    const double period_ns = 1e9 / options_.rate;
    for (int64_t i = 0;; ++i) {
      const int64_t intended =
          start_ns_ + static_cast<int64_t>(static_cast<double>(i) * period_ns);
      if (intended >= stop_ns_) break;
      if (intended > NowNanos()) SleepUntil(intended);
      if (outstanding_.load(std::memory_order_relaxed) >=
          options_.max_outstanding) {
        // Bounded: each outstanding call ends by its deadline.
        WaitOutstandingBelow(options_.max_outstanding,
                             NowNanos() + absl::ToInt64Nanoseconds(
                                              options_.timeout) * 2);
      }
      const int64_t now = NowNanos();
      if (intended >= warm_end_ns_) schedule.send_lag_ns.Record(now - intended);
      Start(workers_[i % workers_.size()].get(), intended);
    }
  }

  // Waits until fewer than `limit` calls are outstanding or `deadline_ns`
  // passes; true in the first case.
  bool WaitOutstandingBelow(int64_t limit, int64_t deadline_ns) {
    waiters_.fetch_add(1, std::memory_order_acq_rel);
    std::unique_lock<std::mutex> lock(mu_);
    bool below = true;
    while (outstanding_.load(std::memory_order_acquire) >= limit) {
      const int64_t left = deadline_ns - NowNanos();
      if (left <= 0) {
        below = false;
        break;
      }
      // The timed wait also covers a notification between the load and
      // the wait (completions notify without holding mu_ for the count).
      cv_.wait_for(lock, std::chrono::nanoseconds(
                             std::min<int64_t>(left, 1'000'000)));
    }
    waiters_.fetch_sub(1, std::memory_order_acq_rel);
    return below;
  }

  const LoadOptions options_;
  const GrpcFetchOptions fetch_;
  v1::FetchRequest request_;
  std::vector<std::unique_ptr<v1::Fetcher::Stub>> stubs_;
  std::vector<std::unique_ptr<Worker>> workers_;
  int64_t start_ns_ = 0;
  int64_t warm_end_ns_ = 0;
  int64_t stop_ns_ = 0;
  std::atomic<uint64_t> next_channel_{0};
  std::atomic<int64_t> outstanding_{0};
  std::atomic<int> waiters_{0};
  std::mutex mu_;
  std::condition_variable cv_;
};

}  // namespace

absl::StatusOr<RunReport> RunGrpcLoad(const LoadOptions& options,
                                      const GrpcFetchOptions& fetch) {
  GrpcLoad load(options, fetch);
  return load.Run();
}

}  // namespace egress::bench
