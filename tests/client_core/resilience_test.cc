// HttpClient's issue 8 features against FaultOrigin (a hostile HTTP/1.1
// origin of our own): read timeouts, redirects, decompression, connect
// retries and their budget, request and per-caller limits. After each fault
// the pool must hold nothing in use. Runs under TSan too (no gRPC here).
#include <sys/socket.h>
#include <netinet/in.h>
#include <unistd.h>

#include <memory>
#include <thread>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "client_core/base/sync.h"
#include "client_core/call/http_client.h"
#include "client_core/url/url.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/execute_and_wait.h"
#include "tests/support/fault_origin.h"

namespace egress {
namespace {

using ::egress::testing::FaultOrigin;
using ::testing::HasSubstr;
using ::testing::Not;

absl::StatusOr<Response> Call(HttpClient& client, Request request) {
  return testing::ExecuteAndWait(client, std::move(request));
}

Request Make(const std::string& method, const std::string& url) {
  Request request;
  request.method = method;
  request.url = *ParseUrl(url);
  request.deadline = absl::Now() + absl::Seconds(20);
  return request;
}

HttpClientOptions Options() {
  HttpClientOptions options;
  options.event_loops = 2;
  return options;
}

// Nothing may stay allocated after a call ended, whatever the origin did.
void ExpectPoolQuiet(HttpClient& client) {
  const PoolSnapshot s = client.pool().Snapshot();
  EXPECT_EQ(s.in_use_count, 0u);
  EXPECT_EQ(s.requests_in_flight, 0u);
  EXPECT_EQ(s.pending_count, 0u);
  EXPECT_EQ(s.connecting_count, 0u);
}

// --- read timeouts ---------------------------------------------------------

TEST(ReadTimeoutTest, FirstByteTimeoutEndsASilentOrigin) {
  FaultOrigin origin;
  HttpClient client(Options());
  Request request = Make("GET", origin.Url("/never"));
  request.first_byte_timeout = absl::Milliseconds(300);
  const absl::Time start = absl::Now();
  absl::StatusOr<Response> r = Call(client, std::move(request));
  const absl::Duration took = absl::Now() - start;
  ASSERT_EQ(r.status().code(), absl::StatusCode::kDeadlineExceeded)
      << r.status();
  EXPECT_THAT(r.status().message(), HasSubstr("first_byte timeout"));
  EXPECT_THAT(r.status().message(), HasSubstr("within 300ms"));
  EXPECT_GE(took, absl::Milliseconds(290));
  EXPECT_LT(took, absl::Seconds(5));
  ExpectPoolQuiet(client);
  const PoolSnapshot s = client.pool().Snapshot();
  EXPECT_EQ(s.connection_count, 0u) << "the exchange's connection is closed";
  EXPECT_EQ(s.closed_by_reason[static_cast<size_t>(CloseReason::kCallAborted)],
            1u);
  EXPECT_EQ(client.resilience().first_byte_timeouts, 1u);
}

TEST(ReadTimeoutTest, AHeadTricklingInIsNotAFirstByte) {
  FaultOrigin origin;
  HttpClientOptions options = Options();
  options.first_byte_timeout = absl::Milliseconds(400);  // client-wide
  HttpClient client(options);
  absl::StatusOr<Response> r =
      Call(client, Make("GET", origin.Url("/slow-head?ms=100")));
  ASSERT_EQ(r.status().code(), absl::StatusCode::kDeadlineExceeded)
      << r.status();
  EXPECT_THAT(r.status().message(), HasSubstr("no response head"));
  ExpectPoolQuiet(client);
}

TEST(ReadTimeoutTest, IdleReadTimeoutEndsAStalledBodyButNotASlowOne) {
  FaultOrigin origin;
  HttpClient client(Options());
  Request stalled = Make("GET", origin.Url("/slow-body?ms=2000"));
  stalled.idle_read_timeout = absl::Milliseconds(300);
  absl::StatusOr<Response> r = Call(client, std::move(stalled));
  ASSERT_EQ(r.status().code(), absl::StatusCode::kDeadlineExceeded)
      << r.status();
  EXPECT_THAT(r.status().message(), HasSubstr("idle_read timeout"));
  EXPECT_EQ(client.resilience().idle_read_timeouts, 1u);

  // A byte every 50 ms for 600 ms in all: never idle for 300 ms.
  Request slow = Make("GET", origin.Url("/slow-body?ms=50&n=12"));
  slow.idle_read_timeout = absl::Milliseconds(300);
  absl::StatusOr<Response> ok = Call(client, std::move(slow));
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->body, std::string(12, 's'));
  ExpectPoolQuiet(client);
}

// A consumer that holds each piece a while before asking for the next.
class SlowConsumer : public StreamConsumer {
 public:
  explicit SlowConsumer(absl::Duration hold) : hold_(hold) {}
  void OnHead(const Response& head, Ready ready) override {
    {
      MutexLock lock(&mu_);
      status_code_ = head.status_code;
    }
    Later(std::move(ready));
  }
  void OnBody(std::string chunk, Ready ready) override {
    {
      MutexLock lock(&mu_);
      body_ += chunk;
    }
    Later(std::move(ready));
  }
  void OnDone(absl::StatusOr<Response> result) override {
    MutexLock lock(&mu_);
    result_ = std::move(result);
    done_ = true;
  }
  // Waits for OnDone; by then every `ready` was invoked (the call waits for
  // each before it goes on), so the helper threads are ending.
  absl::StatusOr<Response> Await() {
    std::vector<std::thread> threads;
    absl::StatusOr<Response> result;
    {
      MutexLock lock(&mu_);
      mu_.Await([this]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return done_; });
      threads.swap(threads_);
      result = result_;
    }
    for (auto& t : threads) t.join();
    return result;
  }
  std::string body() {
    MutexLock lock(&mu_);
    return body_;
  }

 private:
  void Later(Ready ready) {
    MutexLock lock(&mu_);
    threads_.emplace_back([hold = hold_, r = std::move(ready)]() mutable {
      absl::SleepFor(hold);  // the consumer is slow on purpose
      std::move(r)();
    });
  }
  const absl::Duration hold_;
  Mutex mu_;
  int status_code_ ABSL_GUARDED_BY(mu_) = 0;
  std::string body_ ABSL_GUARDED_BY(mu_);
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  absl::StatusOr<Response> result_ ABSL_GUARDED_BY(mu_);
  std::vector<std::thread> threads_ ABSL_GUARDED_BY(mu_);
};

TEST(ReadTimeoutTest, TimeSpentWaitingForTheConsumerIsNotIdle) {
  FaultOrigin origin;
  HttpClient client(Options());
  auto consumer = std::make_shared<SlowConsumer>(absl::Milliseconds(400));
  Request request = Make("GET", origin.Url("/slow-body?ms=20&n=3"));
  request.idle_read_timeout = absl::Milliseconds(250);
  request.first_byte_timeout = absl::Milliseconds(250);
  std::shared_ptr<StreamCall> call = client.Stream(std::move(request), consumer);
  absl::StatusOr<Response> done = consumer->Await();
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(consumer->body(), "sss");
  ExpectPoolQuiet(client);
}

// --- redirects ---------------------------------------------------------------

TEST(RedirectTest, NotFollowedUnlessAsked) {
  FaultOrigin origin;
  HttpClient client(Options());
  absl::StatusOr<Response> r =
      Call(client, Make("GET", origin.Url("/redirect?to=/ok")));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status_code, 302);
  EXPECT_TRUE(r->redirects.empty());
  EXPECT_EQ(r->final_url, "");
}

TEST(RedirectTest, FollowsAndReportsTheHops) {
  FaultOrigin origin;
  HttpClient client(Options());
  Request request = Make("GET", origin.Url("/redirect?status=307&to=/ok"));
  request.follow_redirects = true;
  absl::StatusOr<Response> r = Call(client, std::move(request));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status_code, 200);
  EXPECT_EQ(r->body, "ok");
  ASSERT_EQ(r->redirects.size(), 1u);
  EXPECT_EQ(r->redirects[0].status_code, 307);
  EXPECT_EQ(r->redirects[0].url, origin.Url("/redirect?status=307&to=/ok"));
  EXPECT_EQ(r->final_url, origin.Url("/ok"));
  EXPECT_EQ(client.resilience().redirects_followed, 1u);
  // Both hops used the one pooled connection (the redirect's empty body
  // left it reusable).
  EXPECT_EQ(client.pool().Snapshot().connections_opened, 1u);
  ExpectPoolQuiet(client);
}

TEST(RedirectTest, TooManyRedirectsIsResourceExhausted) {
  FaultOrigin origin;
  HttpClient client(Options());
  Request request = Make("GET", origin.Url("/redirect-loop"));
  request.follow_redirects = true;
  request.max_redirects = 3;
  absl::StatusOr<Response> r = Call(client, std::move(request));
  ASSERT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted)
      << r.status();
  EXPECT_THAT(r.status().message(),
              HasSubstr("stopped after 3 redirects (max_redirects=3)"));
  EXPECT_EQ(origin.requests_received(), 4);
  ExpectPoolQuiet(client);
}

TEST(RedirectTest, MethodBodyAndCredentialsFollowTheRules) {
  FaultOrigin a;
  FaultOrigin b;  // another port: another origin
  HttpClient client(Options());

  // 303 after a POST: GET without the body.
  Request post = Make("POST", a.Url("/redirect?status=303&to=/echo"));
  post.body = "form=1";
  post.headers = {{"Content-Type", "application/x-www-form-urlencoded"},
                  {"Authorization", "Bearer t"}};
  post.follow_redirects = true;
  absl::StatusOr<Response> see_other = Call(client, post);
  ASSERT_TRUE(see_other.ok()) << see_other.status();
  EXPECT_THAT(see_other->body, HasSubstr("GET /echo HTTP/1.1"));
  EXPECT_THAT(see_other->body, Not(HasSubstr("Content-Type")));
  EXPECT_THAT(see_other->body, HasSubstr("Authorization: Bearer t"))
      << "same origin keeps credentials";

  // 307: the same method and body.
  post.url = *ParseUrl(a.Url("/redirect?status=307&to=/echo"));
  absl::StatusOr<Response> temporary = Call(client, post);
  ASSERT_TRUE(temporary.ok()) << temporary.status();
  EXPECT_THAT(temporary->body, HasSubstr("POST /echo HTTP/1.1"));
  EXPECT_THAT(temporary->body, HasSubstr("Content-Length: 6"));

  // To another origin: no credentials.
  Request cross = Make(
      "GET", a.Url(absl::StrCat("/redirect?to=", b.Url("/echo"))));
  cross.headers = {{"Authorization", "Bearer t"},
                   {"Cookie", "session=s"},
                   {"X-Trace", "abc"}};
  cross.follow_redirects = true;
  absl::StatusOr<Response> other = Call(client, std::move(cross));
  ASSERT_TRUE(other.ok()) << other.status();
  EXPECT_THAT(other->body, HasSubstr("X-Trace: abc"));
  EXPECT_THAT(other->body, Not(HasSubstr("Authorization")));
  EXPECT_THAT(other->body, Not(HasSubstr("Cookie")));
  EXPECT_EQ(other->final_url, b.Url("/echo"));
  ExpectPoolQuiet(client);
  EXPECT_EQ(client.pool().Snapshot().requests_in_flight, 0u);
}

TEST(RedirectTest, AStreamedCallSeesOnlyTheFinalHead) {
  FaultOrigin origin;
  HttpClient client(Options());
  auto consumer = std::make_shared<SlowConsumer>(absl::ZeroDuration());
  Request request = Make("GET", origin.Url("/redirect?status=308&to=/ok"));
  request.follow_redirects = true;
  std::shared_ptr<StreamCall> call = client.Stream(std::move(request), consumer);
  absl::StatusOr<Response> done = consumer->Await();
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(consumer->body(), "ok");
  ExpectPoolQuiet(client);
}

// --- decompression -----------------------------------------------------------

TEST(DecompressTest, DecodesWhenAskedAndPassesThroughOtherwise) {
  FaultOrigin origin;
  HttpClient client(Options());
  std::string text;
  for (int i = 0; i < 1000; ++i) text += "hello, gzip! ";

  Request asked = Make("GET", origin.Url("/gzip"));
  asked.decompress = true;
  absl::StatusOr<Response> decoded = Call(client, std::move(asked));
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->body, text);
  EXPECT_EQ(decoded->decoded_content_encoding, "gzip");
  EXPECT_FALSE(FindHeader(decoded->headers, "Content-Encoding").has_value());
  EXPECT_FALSE(FindHeader(decoded->headers, "Content-Length").has_value());

  absl::StatusOr<Response> raw = Call(client, Make("GET", origin.Url("/gzip")));
  ASSERT_TRUE(raw.ok()) << raw.status();
  EXPECT_EQ(raw->body, FaultOrigin::Gzip(text));
  EXPECT_EQ(raw->decoded_content_encoding, "");
  EXPECT_EQ(FindHeader(raw->headers, "Content-Encoding"), "gzip");

  // egressd adds Accept-Encoding only when asked.
  absl::StatusOr<Response> plain = Call(client, Make("GET", origin.Url("/echo")));
  ASSERT_TRUE(plain.ok());
  EXPECT_THAT(plain->body, Not(HasSubstr("Accept-Encoding")));
  Request echo = Make("GET", origin.Url("/echo"));
  echo.decompress = true;
  absl::StatusOr<Response> with = Call(client, std::move(echo));
  ASSERT_TRUE(with.ok());
  EXPECT_THAT(with->body, HasSubstr("Accept-Encoding: gzip, deflate, br"));
  ExpectPoolQuiet(client);
  EXPECT_EQ(client.resilience().responses_decoded, 1u);
}

TEST(DecompressTest, AGzipBombIsResourceExhausted) {
  FaultOrigin origin;
  HttpClient client(Options());
  Request request = Make("GET", origin.Url("/gzip-bomb"));
  request.decompress = true;
  absl::StatusOr<Response> r = Call(client, std::move(request));
  ASSERT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted)
      << r.status();
  EXPECT_THAT(r.status().message(), HasSubstr("decompression bomb"));
  EXPECT_THAT(r.status().message(), HasSubstr("max_decompression_ratio"));
  EXPECT_EQ(client.resilience().decompression_limit_hits, 1u);
  ExpectPoolQuiet(client);
  // The rest of the bomb (under 64 KiB encoded) was drained, so its
  // connection serves the next call.
  absl::StatusOr<Response> next = Call(client, Make("GET", origin.Url("/ok")));
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ(next->body, "ok");

  // With the ratio off, the size limit (max_response_body_bytes) stops it.
  HttpClientOptions options = Options();
  options.max_decompression_ratio = 0;
  HttpClient sized(options);
  Request again = Make("GET", origin.Url("/gzip-bomb"));
  again.decompress = true;
  absl::StatusOr<Response> s = Call(sized, std::move(again));
  ASSERT_EQ(s.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(s.status().message(), HasSubstr("max_response_body_bytes"));
  EXPECT_THAT(s.status().message(), HasSubstr("decompression bomb"));
}

// --- connect retries -----------------------------------------------------------

// A loopback port nothing listens on (bound, then closed).
int ClosedPort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

TEST(ConnectRetryTest, IdempotentCallsRetryWhenAskedOthersDoNot) {
  HttpClient client(Options());
  const std::string url = absl::StrCat("http://127.0.0.1:", ClosedPort(), "/");
  absl::StatusOr<Response> plain = Call(client, Make("GET", url));
  EXPECT_EQ(plain.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(client.resilience().connect_retries, 0u) << "opt-in only";

  Request get = Make("GET", url);
  get.connect_retries = 2;
  absl::StatusOr<Response> retried = Call(client, std::move(get));
  EXPECT_EQ(retried.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(retried.status().message(), HasSubstr("refused"));
  EXPECT_EQ(client.resilience().connect_retries, 2u);

  Request post = Make("POST", url);
  post.connect_retries = 2;
  absl::StatusOr<Response> once = Call(client, std::move(post));
  EXPECT_EQ(once.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(client.resilience().connect_retries, 2u) << "POST is not retried";
  EXPECT_EQ(client.retry_budget().in_flight(), 0);
  ExpectPoolQuiet(client);
}

TEST(ConnectRetryTest, AnExhaustedBudgetRefusesTheRetry) {
  HttpClientOptions options = Options();
  options.retry_budget.budget_percent = 0;
  options.retry_budget.min_retry_concurrency = 0;
  HttpClient client(options);
  Request get = Make(
      "GET", absl::StrCat("http://127.0.0.1:", ClosedPort(), "/"));
  get.connect_retries = 3;
  absl::StatusOr<Response> r = Call(client, std::move(get));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(r.status().message(),
              HasSubstr("not retried: the retry budget is exhausted"));
  EXPECT_EQ(client.resilience().connect_retries, 0u);
  EXPECT_EQ(client.resilience().retry_budget_exhausted, 1u);
}

// --- limits ------------------------------------------------------------------

TEST(CallLimitsTest, ARequestOverALimitIsRefusedBeforeAnythingIsSent) {
  FaultOrigin origin;
  HttpClientOptions options = Options();
  options.request_limits.max_body_bytes = 1024;
  HttpClient client(options);
  Request big = Make("POST", origin.Url("/echo"));
  big.body = std::string(1025, 'b');
  absl::StatusOr<Response> r = Call(client, std::move(big));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(r.status().message(), HasSubstr("max_request_body_bytes"));
  EXPECT_EQ(origin.connections_accepted(), 0);
  EXPECT_EQ(client.resilience().rejected_request_limits, 1u);
}

TEST(CallLimitsTest, OneCallerCannotTakeEverySlot) {
  FaultOrigin origin;
  HttpClientOptions options = Options();
  options.max_in_flight_per_caller = 1;
  HttpClient client(options);
  Request hung = Make("GET", origin.Url("/never"));
  hung.caller_id = "noisy";
  Notification hung_done;
  absl::Status hung_status;
  std::shared_ptr<CallAbort> abort =
      client.Execute(std::move(hung), [&](absl::StatusOr<Response> r) {
        hung_status = r.status();
        hung_done.Notify();
      });
  ASSERT_TRUE(origin.AwaitRequests(1, absl::Seconds(10)));

  Request second = Make("GET", origin.Url("/ok"));
  second.caller_id = "noisy";
  absl::StatusOr<Response> refused = Call(client, second);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(refused.status().message(),
              HasSubstr("caller 'noisy' has 1 calls in flight "
                        "(max_in_flight_per_caller=1)"));
  second.caller_id = "quiet";
  absl::StatusOr<Response> served = Call(client, second);
  EXPECT_TRUE(served.ok()) << served.status();

  abort->Abort();
  hung_done.WaitForNotification();
  EXPECT_EQ(hung_status.code(), absl::StatusCode::kCancelled);
  second.caller_id = "noisy";
  EXPECT_TRUE(Call(client, second).ok()) << "the slot came back";
  EXPECT_EQ(client.resilience().rejected_per_caller, 1u);
  EXPECT_EQ(client.caller_limiter().active_callers(), 0u);
  ExpectPoolQuiet(client);
}

}  // namespace
}  // namespace egress
