// The pure parts of issue 8's call limits: RequestLimits, CallerLimiter,
// RetryBudget and HttpClient::ValidateCallOptions.
#include <string>
#include <thread>
#include <vector>

#include "client_core/call/caller_limits.h"
#include "client_core/call/http_client.h"
#include "client_core/call/request_limits.h"
#include "client_core/call/retry_budget.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace egress {
namespace {

using ::testing::HasSubstr;

Request Get(const std::string& url) {
  Request r;
  r.method = "GET";
  r.url = *ParseUrl(url);
  return r;
}

TEST(RequestLimitsTest, EachLimitNamesItselfAndBothSizes) {
  RequestLimits limits;
  limits.max_url_bytes = 40;
  limits.max_header_count = 2;
  limits.max_header_bytes = 30;
  limits.max_body_bytes = 10;

  // "http://example.com:8080/" + 16 = 40 bytes: at the limit is fine.
  Request at = Get("http://example.com:8080/" + std::string(16, 'a'));
  EXPECT_TRUE(CheckRequestLimits(at, limits).ok());
  Request over = Get("http://example.com:8080/" + std::string(17, 'a'));
  absl::Status url = CheckRequestLimits(over, limits);
  EXPECT_EQ(url.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(url.message(),
            "request URL is 41 bytes, over the limit of 40 "
            "(max_request_url_bytes)");
  // The URL size is what ToString gives, IPv6 brackets included.
  Request v6 = Get("http://[::1]:8/" + std::string(20, 'b'));
  EXPECT_EQ(v6.url.ToString().size(), 35u);
  limits.max_url_bytes = 34;
  EXPECT_THAT(CheckRequestLimits(v6, limits).message(),
              HasSubstr("URL is 35 bytes"));
  limits.max_url_bytes = 0;  // no limit
  EXPECT_TRUE(CheckRequestLimits(v6, limits).ok());

  Request headers = Get("http://a/");
  headers.headers = {{"A", "1"}, {"B", "2"}, {"C", "3"}};
  EXPECT_EQ(CheckRequestLimits(headers, limits).message(),
            "request has 3 header fields, over the limit of 2 "
            "(max_request_header_count)");
  headers.headers = {{"X-Long", std::string(30, 'v')}};
  EXPECT_EQ(CheckRequestLimits(headers, limits).message(),
            "request header section is 40 bytes, over the limit of 30 "
            "(max_request_header_bytes)");

  Request body = Get("http://a/");
  body.method = "POST";
  body.body = std::string(11, 'x');
  EXPECT_EQ(CheckRequestLimits(body, limits).message(),
            "request body is 11 bytes, over the limit of 10 "
            "(max_request_body_bytes)");
}

TEST(CallerLimiterTest, LimitsEachCallerOnItsOwn) {
  CallerLimiter limiter(2);
  ASSERT_TRUE(limiter.enabled());
  EXPECT_TRUE(limiter.Acquire("billing").ok());
  EXPECT_TRUE(limiter.Acquire("billing").ok());
  absl::Status third = limiter.Acquire("billing");
  EXPECT_EQ(third.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(third.message(),
            "caller 'billing' has 2 calls in flight "
            "(max_in_flight_per_caller=2)");
  EXPECT_TRUE(limiter.Acquire("search").ok()) << "another caller is not held";
  EXPECT_TRUE(limiter.Acquire("").ok()) << "no identity, no limit";
  EXPECT_EQ(limiter.rejected(), 1u);
  EXPECT_EQ(limiter.active_callers(), 2u);
  limiter.Release("billing");
  EXPECT_TRUE(limiter.Acquire("billing").ok());
  limiter.Release("billing");
  limiter.Release("billing");
  limiter.Release("search");
  EXPECT_EQ(limiter.active_callers(), 0u) << "entries go at zero";
  // A caller id is shown safely.
  CallerLimiter one(1);
  ASSERT_TRUE(one.Acquire("evil'\n" + std::string(100, 'x')).ok());
  absl::Status shown = one.Acquire("evil'\n" + std::string(100, 'x'));
  EXPECT_THAT(shown.message(), HasSubstr("caller 'evil??xxx"));
  EXPECT_THAT(shown.message(), HasSubstr("...'"));
}

TEST(CallerLimiterTest, ZeroMeansNoLimit) {
  CallerLimiter limiter(0);
  EXPECT_FALSE(limiter.enabled());
  for (int i = 0; i < 1000; ++i) EXPECT_TRUE(limiter.Acquire("a").ok());
  EXPECT_EQ(limiter.active_callers(), 0u);
}

TEST(CallerLimiterTest, ConcurrentCallersNeverExceedTheLimit) {
  CallerLimiter limiter(3);
  std::atomic<int> in_flight{0};
  std::atomic<int> worst{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 2000; ++i) {
        if (!limiter.Acquire("shared").ok()) continue;
        const int now = in_flight.fetch_add(1) + 1;
        int seen = worst.load();
        while (now > seen && !worst.compare_exchange_weak(seen, now)) {
        }
        in_flight.fetch_sub(1);
        limiter.Release("shared");
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_LE(worst.load(), 3);
  EXPECT_EQ(limiter.active_callers(), 0u);
}

TEST(RetryBudgetTest, RetriesInFlightStayWithinTheBudget) {
  RetryBudgetOptions options;
  options.budget_percent = 20;
  options.min_retry_concurrency = 3;
  RetryBudget budget(options);
  EXPECT_EQ(budget.Allowed(0), 3);
  EXPECT_EQ(budget.Allowed(10), 3);
  EXPECT_EQ(budget.Allowed(100), 20);
  // 100 calls in flight: 20 retries, the 21st is refused.
  for (int i = 0; i < 20; ++i) EXPECT_TRUE(budget.TryAcquire(100)) << i;
  EXPECT_FALSE(budget.TryAcquire(100));
  EXPECT_EQ(budget.in_flight(), 20);
  EXPECT_EQ(budget.granted(), 20u);
  EXPECT_EQ(budget.denied(), 1u);
  budget.Release();
  EXPECT_TRUE(budget.TryAcquire(100));
  // Fewer calls now: no new retry until enough ended.
  EXPECT_FALSE(budget.TryAcquire(10));
  for (int i = 0; i < 20; ++i) budget.Release();
  EXPECT_EQ(budget.in_flight(), 0);

  RetryBudgetOptions none;
  none.budget_percent = 0;
  none.min_retry_concurrency = 0;
  RetryBudget closed(none);
  EXPECT_FALSE(closed.TryAcquire(1000));
}

TEST(ValidateCallOptionsTest, RangesAndAcceptEncoding) {
  Request r = Get("http://a/");
  EXPECT_TRUE(HttpClient::ValidateCallOptions(r).ok());
  r.max_redirects = 21;
  EXPECT_EQ(HttpClient::ValidateCallOptions(r).message(),
            "max_redirects must be 0..20, got 21");
  r.max_redirects = 20;
  r.connect_retries = 6;
  EXPECT_EQ(HttpClient::ValidateCallOptions(r).message(),
            "connect_retries must be 0..5, got 6");
  r.connect_retries = 5;
  r.first_byte_timeout = absl::Seconds(-1);
  EXPECT_EQ(HttpClient::ValidateCallOptions(r).code(),
            absl::StatusCode::kInvalidArgument);
  r.first_byte_timeout = absl::Seconds(1);
  r.headers = {{"accept-encoding", "gzip"}};
  EXPECT_TRUE(HttpClient::ValidateCallOptions(r).ok())
      << "the caller's own Accept-Encoding passes through";
  r.decompress = true;
  EXPECT_THAT(HttpClient::ValidateCallOptions(r).message(),
              HasSubstr("'Accept-Encoding' cannot be set with decompress"));
}

}  // namespace
}  // namespace egress
