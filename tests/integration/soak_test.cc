// Issue 8's bounded soak: many concurrent Fetches and FetchStreams for about
// 25 s against FaultOrigin (every fault it has, and an origin closing idle
// keep-alive connections) mixed with healthy nginx requests. Each call must
// end with the status its target calls for. At the end: no leak reported, no
// connection in use, egressd's file descriptors back to the baseline, and
// its resident memory bounded.
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "client_core/base/sync.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "proto/egress/v1/fetch.grpc.pb.h"
#include "tests/integration/egressd_watch.h"
#include "tests/support/egressd_process.h"
#include "tests/support/fault_origin.h"
#include "tests/support/nginx.h"

namespace egress::testing {
namespace {

constexpr absl::Duration kSoak = absl::Seconds(25);
constexpr int kCallers = 32;
// How much egressd's resident memory may grow over the soak: its working set
// (32 callers, bodies of 256 KiB, gzip bombs cut at 1 MiB decoded) with room
// to spare, far below what leaking a body per call would take (over 20,000
// calls). Under ASan, freed memory waits in its quarantine (256 MiB by
// default) and every block carries redzones.
#if defined(__SANITIZE_ADDRESS__)
constexpr int64_t kRssGrowthKb = 768 * 1024;
#else
constexpr int64_t kRssGrowthKb = 256 * 1024;
#endif

void SetDuration(absl::Duration d, google::protobuf::Duration* out) {
  out->set_seconds(absl::ToInt64Seconds(d));
  out->set_nanos(static_cast<int32_t>(
      absl::ToInt64Nanoseconds(d - absl::Seconds(absl::ToInt64Seconds(d)))));
}

// One kind of call in the mix and what it must end with.
struct Kind {
  std::string name;
  v1::FetchRequest request;
  grpc::StatusCode code;
  std::string body;  // checked when non-empty and OK
};

std::string BigBody() {
  std::string body;
  for (int i = 0; body.size() < 256 * 1024; ++i) {
    body += absl::StrCat("line ", i, " of a file nginx serves\n");
  }
  return body;
}

TEST(SoakTest, FaultsAndHealthyCallsLeaveNothingBehind) {
  NginxOptions nginx_options;
  const std::string big = BigBody();
  nginx_options.files = {{"hello.txt", "hello\n"}, {"big.txt", big}};
  nginx_options.server_directives =
      "gzip on; gzip_types text/plain; gzip_min_length 1;";
  absl::StatusOr<std::unique_ptr<NginxServer>> nginx =
      NginxServer::Start(nginx_options);
  ASSERT_TRUE(nginx.ok()) << nginx.status();
  FaultOrigin faults;
  FaultOrigin::Options closing_options;
  closing_options.idle_close_after = absl::Milliseconds(40);
  FaultOrigin closing(closing_options);
  absl::StatusOr<std::unique_ptr<EgressdProcess>> egressd =
      EgressdProcess::Start({"--event_loops=2", "--completion_queues=2"});
  ASSERT_TRUE(egressd.ok()) << egressd.status();
  const pid_t pid = (*egressd)->process().pid();

  std::vector<Kind> kinds;
  auto add = [&](std::string name, v1::FetchRequest request,
                 grpc::StatusCode code, std::string body = "") {
    kinds.push_back({std::move(name), std::move(request), code, std::move(body)});
  };
  add("nginx hello", Get((*nginx)->Url("/hello.txt")), grpc::StatusCode::OK,
      "hello\n");
  add("nginx big", Get((*nginx)->Url("/big.txt")), grpc::StatusCode::OK, big);
  v1::FetchRequest gzip_nginx = Get((*nginx)->Url("/big.txt"));
  gzip_nginx.set_decompress(true);
  add("nginx gzip decoded", gzip_nginx, grpc::StatusCode::OK, big);
  add("closing ok", Get(closing.Url("/ok")), grpc::StatusCode::OK, "ok");
  add("fault ok", Get(faults.Url("/ok")), grpc::StatusCode::OK, "ok");
  v1::FetchRequest redirect = Get(faults.Url("/redirect?to=/ok"));
  redirect.set_follow_redirects(true);
  add("redirect", redirect, grpc::StatusCode::OK, "ok");
  v1::FetchRequest gzip = Get(faults.Url("/gzip"));
  gzip.set_decompress(true);
  add("gzip", gzip, grpc::StatusCode::OK);
  add("close after headers", Get(faults.Url("/close-after-headers")),
      grpc::StatusCode::UNAVAILABLE);
  add("reset mid body", Get(faults.Url("/reset-mid-body")),
      grpc::StatusCode::UNAVAILABLE);
  add("short body", Get(faults.Url("/short-body")),
      grpc::StatusCode::UNAVAILABLE);
  add("long body", Get(faults.Url("/long-body")), grpc::StatusCode::OK,
      std::string(10, 'y'));
  add("bad chunk", Get(faults.Url("/bad-chunk")),
      grpc::StatusCode::UNAVAILABLE);
  add("huge headers", Get(faults.Url("/huge-headers")),
      grpc::StatusCode::RESOURCE_EXHAUSTED);
  v1::FetchRequest never = Get(faults.Url("/never"));
  SetDuration(absl::Milliseconds(200), never.mutable_first_byte_timeout());
  add("never", never, grpc::StatusCode::DEADLINE_EXCEEDED);
  v1::FetchRequest slow = Get(faults.Url("/slow-body?ms=400"));
  SetDuration(absl::Milliseconds(150), slow.mutable_idle_read_timeout());
  add("slowloris", slow, grpc::StatusCode::DEADLINE_EXCEEDED);
  v1::FetchRequest bomb = Get(faults.Url("/gzip-bomb"));
  bomb.set_decompress(true);
  add("gzip bomb", bomb, grpc::StatusCode::RESOURCE_EXHAUSTED);

  // Baseline: gRPC channels up, every event loop used once (asio makes a
  // loop's epoll, timerfd and eventfd at its first I/O), pool empty,
  // descriptors settled.
  for (int round = 0; round < 2; ++round) {
    for (const Kind& k : kinds) {
      if (k.code != grpc::StatusCode::OK) continue;
      v1::FetchResponse response;
      ASSERT_TRUE((*egressd)->Fetch(k.request, &response).ok()) << k.name;
      ASSERT_TRUE(EmptyThePool(**egressd));
    }
  }
  int baseline_fds = -2;
  ASSERT_TRUE(Eventually([&] {
    const int now = CountFds(pid);
    const bool stable = now == baseline_fds;
    baseline_fds = now;
    if (!stable) absl::SleepFor(absl::Milliseconds(200));
    return stable;
  }));
  const int64_t baseline_rss = VmRssKb(pid);

  Mutex mu;
  std::vector<std::string> mismatches;  // guarded by mu
  std::atomic<int64_t> calls{0};
  std::atomic<int64_t> streams{0};
  std::atomic<int64_t> peak_rss{baseline_rss};
  const absl::Time end = absl::Now() + kSoak;
  std::vector<std::thread> callers;
  for (int t = 0; t < kCallers; ++t) {
    callers.emplace_back([&, t] {
      std::minstd_rand random(t * 7919 + 1);
      while (absl::Now() < end) {
        if (random() % 10 == 0) {
          // A FetchStream the caller abandons after the head: egressd must
          // let the exchange go (drain or close), never leak it.
          grpc::ClientContext context;
          context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(20)));
          std::unique_ptr<grpc::ClientReader<v1::FetchStreamResponse>> reader =
              (*egressd)->fetcher().FetchStream(
                  &context, Get((*nginx)->Url("/big.txt")));
          v1::FetchStreamResponse message;
          const bool got_head = reader->Read(&message);
          context.TryCancel();
          while (reader->Read(&message)) {
          }
          reader->Finish();
          if (!got_head) {
            MutexLock lock(&mu);
            mismatches.push_back("stream: no head");
          }
          ++streams;
          continue;
        }
        const Kind& kind = kinds[random() % kinds.size()];
        v1::FetchResponse response;
        grpc::ClientContext context;
        context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(20)));
        grpc::Status status =
            (*egressd)->fetcher().Fetch(&context, kind.request, &response);
        ++calls;
        const bool body_ok = !status.ok() || kind.body.empty() ||
                             response.body() == kind.body;
        if (status.error_code() != kind.code || !body_ok) {
          MutexLock lock(&mu);
          if (mismatches.size() < 20) {
            mismatches.push_back(absl::StrCat(
                kind.name, ": got ", status.error_code(), " ",
                status.error_message(), body_ok ? "" : " (wrong body)"));
          }
        }
        if (t == 0 && calls % 50 == 0) {
          const int64_t rss = VmRssKb(pid);
          if (rss > peak_rss) peak_rss = rss;
        }
      }
    });
  }
  for (auto& c : callers) c.join();

  {
    MutexLock lock(&mu);
    EXPECT_TRUE(mismatches.empty()) << absl::StrJoin(mismatches, "\n");
  }
  EXPECT_TRUE(Alive(pid));
  std::string problems;
  EXPECT_TRUE(Eventually([&] {
    problems = PoolProblems(**egressd);
    return problems.empty();
  })) << problems;
  absl::StatusOr<v1::PoolStats> stats = (*egressd)->PoolStats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->leaks_detected(), 0u);
  EXPECT_EQ(stats->in_use_count(), 0u);
  ASSERT_TRUE(EmptyThePool(**egressd));
  int fds = 0;
  EXPECT_TRUE(Eventually([&] {
    fds = CountFds(pid);
    return fds == baseline_fds;
  })) << "egressd has " << fds << " descriptors, " << baseline_fds
      << " before the soak";
  const int64_t final_rss = VmRssKb(pid);
  EXPECT_LT(peak_rss.load(), baseline_rss + kRssGrowthKb);
  EXPECT_LT(final_rss, baseline_rss + kRssGrowthKb);
  std::printf(
      "soak: %lld calls, %lld streams in %s; fds %d -> %d; RSS %lld KiB -> "
      "peak %lld KiB -> %lld KiB; closing origin closed %d idle "
      "connections\n",
      static_cast<long long>(calls.load()),
      static_cast<long long>(streams.load()),
      absl::FormatDuration(kSoak).c_str(), baseline_fds, fds,
      static_cast<long long>(baseline_rss),
      static_cast<long long>(peak_rss.load()),
      static_cast<long long>(final_rss), closing.idle_closes());
  EXPECT_GT(calls.load(), 1000);

  // A clean exit: under ASan, LeakSanitizer checks egressd's heap at exit
  // and fails it (abort_on_error) if any allocation leaked.
  absl::StatusOr<int> exit = (*egressd)->process().Stop(SIGTERM, absl::Seconds(60));
  ASSERT_TRUE(exit.ok()) << exit.status();
  EXPECT_TRUE(WIFEXITED(*exit) && WEXITSTATUS(*exit) == 0)
      << "egressd exit status " << *exit;
}

}  // namespace
}  // namespace egress::testing
