// StaticResolver and its entry parser; CachingResolver's TTL clamping, expiry,
// shared in-flight queries and bounded size. The cache's clock is injected
// and the upstream is a scripted fake, so nothing sleeps. The last test runs
// lookups from two event loops at once (for TSan).
#include <atomic>
#include <exception>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "asio/co_spawn.hpp"
#include "asio/experimental/as_tuple.hpp"
#include "asio/io_context.hpp"
#include "asio/post.hpp"
#include "asio/steady_timer.hpp"
#include "asio/this_coro.hpp"
#include "asio/use_awaitable.hpp"
#include "client_core/base/sync.h"
#include "client_core/net/event_loops.h"
#include "client_core/route/caching_resolver.h"
#include "client_core/route/resolver.h"
#include "client_core/route/timer_deadline.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/run_task.h"

namespace egress {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr auto kNoThrow = asio::experimental::as_tuple(asio::use_awaitable);

asio::ip::address Ip(const char* text) { return asio::ip::make_address(text); }

using ::egress::testing::RunTask;

absl::Time Later() { return absl::Now() + absl::Seconds(10); }

// ---------------------------------------------------------------------------
// Static host entries.

TEST(StaticHostEntryTest, ParsesHostAndIps) {
  absl::StatusOr<StaticHostEntry> entry =
      ParseStaticHostEntry("API.Example.com:10.0.0.1,[fd00::1], 10.0.0.1 ");
  ASSERT_TRUE(entry.ok()) << entry.status();
  EXPECT_EQ(entry->host, "api.example.com");
  EXPECT_THAT(entry->addresses, ElementsAre(Ip("10.0.0.1"), Ip("fd00::1")));
}

TEST(StaticHostEntryTest, RejectsMalformedEntriesPrecisely) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "static host entry is empty"},
      {"example.com",
       "static host entry 'example.com': not of the form host:IP[,IP...]"},
      {":10.0.0.1", "static host entry ':10.0.0.1': no host before ':'"},
      {"exa mple:10.0.0.1", "'exa mple' is not a host name"},
      {"1.2.3.4:10.0.0.1",
       "host '1.2.3.4' is an IP address, which is never resolved"},
      {"h:", "static host entry 'h:': no IP address after ':'"},
      {"h:10.0.0.1,,10.0.0.2", "empty IP address in the list"},
      {"h:10.0.0.x", "'10.0.0.x' is not an IP address"},
      {"h:::1", "IPv6 address '::1' must be in brackets: '[::1]'"},
      {"h:2001:db8::1",
       "IPv6 address '2001:db8::1' must be in brackets: '[2001:db8::1]'"},
      {"h:[::1", "'[::1' is missing its closing bracket"},
      {"h:[10.0.0.1]", "'[10.0.0.1]': only IPv6 addresses go in brackets"},
      {"h:[zz]", "'[zz]' is not an IPv6 address"},
      {"h:443:10.0.0.1",
       "entries have no port (unlike curl's host:port:IP); write "
       "'h:10.0.0.1'"},
  };
  for (const auto& [text, message] : cases) {
    absl::StatusOr<StaticHostEntry> entry = ParseStaticHostEntry(text);
    ASSERT_FALSE(entry.ok()) << text;
    EXPECT_EQ(entry.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(entry.status().message(), HasSubstr(message)) << text;
  }
}

TEST(StaticHostEntryTest, ParseStaticHostsRejectsDuplicateHosts) {
  absl::StatusOr<StaticHostMap> hosts =
      ParseStaticHosts({"a.test:10.0.0.1", "b.test:10.0.0.2"});
  ASSERT_TRUE(hosts.ok()) << hosts.status();
  EXPECT_EQ(hosts->size(), 2u);

  hosts = ParseStaticHosts({"a.test:10.0.0.1", "A.test:10.0.0.2"});
  ASSERT_FALSE(hosts.ok());
  EXPECT_EQ(hosts.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(hosts.status().message(),
            "static host 'a.test' is listed twice; put all its IPs in one "
            "entry");

  hosts = ParseStaticHosts({"a.test:10.0.0.1", "bad"});
  ASSERT_FALSE(hosts.ok());
  EXPECT_THAT(hosts.status().message(), HasSubstr("'bad'"));
}

// ---------------------------------------------------------------------------
// StaticResolver.

TEST(StaticResolverTest, ResolvesListedHostsCaseInsensitively) {
  asio::io_context io;
  StaticResolver resolver({{"Multi.Test", {Ip("127.0.0.1"), Ip("::1")}}});
  absl::StatusOr<Resolution> r =
      RunTask(io, resolver.ResolveWithTtl("MULTI.test", Later()));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(r->addresses, ElementsAre(Ip("127.0.0.1"), Ip("::1")));
  EXPECT_EQ(r->ttl, absl::InfiniteDuration());
}

TEST(StaticResolverTest, UnknownHostIsUnavailable) {
  asio::io_context io;
  StaticResolver resolver({{"a.test", {Ip("127.0.0.1")}}});
  absl::StatusOr<std::vector<asio::ip::address>> r =
      RunTask(io, resolver.Resolve("b.test", Later()));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(r.status().message(), "no static address for host 'b.test'");
}

TEST(StaticResolverTest, IpLiteralsResolveToThemselves) {
  asio::io_context io;
  StaticResolver resolver({});
  absl::StatusOr<std::vector<asio::ip::address>> r =
      RunTask(io, resolver.Resolve("::1", Later()));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(*r, ElementsAre(Ip("::1")));
  EXPECT_EQ(Resolver::IpLiteral("127.0.0.1"), Ip("127.0.0.1"));
  EXPECT_EQ(Resolver::IpLiteral("localhost"), std::nullopt);
  EXPECT_EQ(Resolver::IpLiteral("[::1]"), std::nullopt);
  EXPECT_EQ(Resolver::IpLiteral(""), std::nullopt);
}

TEST(StaticResolverTest, UnlistedHostsGoToTheFallback) {
  asio::io_context io;
  auto fallback = std::make_shared<StaticResolver>(
      StaticHostMap{{"other.test", {Ip("127.0.0.9")}}});
  StaticResolver resolver({{"a.test", {Ip("127.0.0.1")}}}, fallback);
  absl::StatusOr<std::vector<asio::ip::address>> r =
      RunTask(io, resolver.Resolve("other.test", Later()));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(*r, ElementsAre(Ip("127.0.0.9")));
  r = RunTask(io, resolver.Resolve("a.test", Later()));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(*r, ElementsAre(Ip("127.0.0.1")));
}

// ---------------------------------------------------------------------------
// CachingResolver.

// A scripted upstream. Single-threaded use (one io_context), except for
// calls(), which is atomic.
class FakeUpstream : public Resolver {
 public:
  void Answer(const std::string& host, std::vector<asio::ip::address> ips,
              absl::Duration ttl) {
    answers_[host] = Resolution{std::move(ips), ttl};
  }
  void Fail(const std::string& host, absl::Status status) {
    failures_[host] = std::move(status);
  }
  // Lookups wait until Release() (or their deadline).
  void Hold() { held_ = true; }
  void Release() {
    held_ = false;
    if (gate_ != nullptr) gate_->cancel();
  }
  int calls() const { return calls_.load(); }

  asio::awaitable<absl::StatusOr<std::vector<asio::ip::address>>> Resolve(
      const std::string& host, absl::Time deadline) override {
    absl::StatusOr<Resolution> r = co_await ResolveWithTtl(host, deadline);
    if (!r.ok()) co_return r.status();
    co_return r->addresses;
  }

  asio::awaitable<absl::StatusOr<Resolution>> ResolveWithTtl(
      const std::string& host, absl::Time deadline) override {
    ++calls_;
    if (held_) {
      asio::steady_timer gate(co_await asio::this_coro::executor);
      gate_ = &gate;
      ExpireAt(gate, deadline);
      co_await gate.async_wait(kNoThrow);
      gate_ = nullptr;
      if (held_) {
        co_return absl::DeadlineExceededError(
            absl::StrCat("DNS lookup of '", host, "' timed out after 5s"));
      }
    }
    if (auto it = failures_.find(host); it != failures_.end()) {
      co_return it->second;
    }
    if (auto it = answers_.find(host); it != answers_.end()) {
      co_return it->second;
    }
    co_return absl::UnavailableError(
        absl::StrCat("DNS lookup of '", host, "' failed: not found"));
  }

 private:
  absl::flat_hash_map<std::string, Resolution> answers_;
  absl::flat_hash_map<std::string, absl::Status> failures_;
  bool held_ = false;
  asio::steady_timer* gate_ = nullptr;
  std::atomic<int> calls_{0};
};

class CachingResolverTest : public ::testing::Test {
 protected:
  CachingResolverTest() {
    options_.ttl_floor = absl::Seconds(1);
    options_.ttl_ceiling = absl::Minutes(5);
  }

  std::unique_ptr<CachingResolver> MakeCache() {
    return std::make_unique<CachingResolver>(upstream_, options_,
                                             [this] { return now_; });
  }

  absl::StatusOr<Resolution> Lookup(CachingResolver& cache,
                                    const std::string& host,
                                    absl::Time deadline = Later()) {
    return RunTask(io_, cache.ResolveWithTtl(host, deadline));
  }

  asio::io_context io_;
  std::shared_ptr<FakeUpstream> upstream_ = std::make_shared<FakeUpstream>();
  ResolverOptions options_;
  absl::Time now_ = absl::FromUnixSeconds(1700000000);
};

TEST_F(CachingResolverTest, CachesForTheUpstreamTtl) {
  upstream_->Answer("a.test", {Ip("127.0.0.1")}, absl::Seconds(30));
  auto cache = MakeCache();
  absl::StatusOr<Resolution> r = Lookup(*cache, "a.test");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(r->addresses, ElementsAre(Ip("127.0.0.1")));
  EXPECT_EQ(r->ttl, absl::Seconds(30));

  now_ += absl::Seconds(29);
  r = Lookup(*cache, "a.test");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->ttl, absl::Seconds(1));  // what is left
  EXPECT_EQ(upstream_->calls(), 1);

  now_ += absl::Seconds(1);
  r = Lookup(*cache, "a.test");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(upstream_->calls(), 2);
  EXPECT_EQ(cache->stats().hits, 1u);
  EXPECT_EQ(cache->stats().queries, 2u);
}

TEST_F(CachingResolverTest, ShortTtlIsRaisedToTheFloor) {
  upstream_->Answer("a.test", {Ip("127.0.0.1")}, absl::ZeroDuration());
  auto cache = MakeCache();
  absl::StatusOr<Resolution> r = Lookup(*cache, "a.test");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->ttl, absl::Seconds(1));
  now_ += absl::Milliseconds(999);
  ASSERT_TRUE(Lookup(*cache, "a.test").ok());
  EXPECT_EQ(upstream_->calls(), 1);
  now_ += absl::Milliseconds(1);
  ASSERT_TRUE(Lookup(*cache, "a.test").ok());
  EXPECT_EQ(upstream_->calls(), 2);
}

TEST_F(CachingResolverTest, LongTtlIsCutToTheCeiling) {
  upstream_->Answer("a.test", {Ip("127.0.0.1")}, absl::Hours(24));
  auto cache = MakeCache();
  absl::StatusOr<Resolution> r = Lookup(*cache, "a.test");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->ttl, absl::Minutes(5));
  now_ += absl::Minutes(5) - absl::Seconds(1);
  ASSERT_TRUE(Lookup(*cache, "a.test").ok());
  EXPECT_EQ(upstream_->calls(), 1);
  now_ += absl::Seconds(1);
  ASSERT_TRUE(Lookup(*cache, "a.test").ok());
  EXPECT_EQ(upstream_->calls(), 2);
}

TEST_F(CachingResolverTest, StaticAnswersNeverExpire) {
  auto cache = std::make_unique<CachingResolver>(
      std::make_shared<StaticResolver>(
          StaticHostMap{{"pinned.test", {Ip("127.0.0.5")}}}),
      options_, [this] { return now_; });
  ASSERT_TRUE(Lookup(*cache, "pinned.test").ok());
  now_ += absl::Hours(24 * 365);
  absl::StatusOr<Resolution> r = Lookup(*cache, "Pinned.Test");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(r->addresses, ElementsAre(Ip("127.0.0.5")));
  EXPECT_EQ(r->ttl, absl::InfiniteDuration());
  EXPECT_EQ(cache->stats().queries, 1u);
  EXPECT_EQ(cache->stats().hits, 1u);
}

TEST_F(CachingResolverTest, FailuresAreNotCached) {
  upstream_->Fail("down.test", absl::UnavailableError(
                                   "DNS lookup of 'down.test' failed: nope"));
  auto cache = MakeCache();
  for (int i = 0; i < 2; ++i) {
    absl::StatusOr<Resolution> r = Lookup(*cache, "down.test");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
    EXPECT_EQ(r.status().message(), "DNS lookup of 'down.test' failed: nope");
  }
  EXPECT_EQ(upstream_->calls(), 2);
  EXPECT_EQ(cache->stats().failures, 2u);
  EXPECT_EQ(cache->stats().entries, 0u);
}

TEST_F(CachingResolverTest, EmptyAnswerIsUnavailable) {
  upstream_->Answer("empty.test", {}, absl::Seconds(30));
  auto cache = MakeCache();
  absl::StatusOr<Resolution> r = Lookup(*cache, "empty.test");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(r.status().message(),
            "DNS lookup of 'empty.test' found no address");
}

TEST_F(CachingResolverTest, IpLiteralsBypassTheCache) {
  auto cache = MakeCache();
  absl::StatusOr<Resolution> r = Lookup(*cache, "127.0.0.1");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(r->addresses, ElementsAre(Ip("127.0.0.1")));
  EXPECT_EQ(upstream_->calls(), 0);
  EXPECT_EQ(cache->stats().entries, 0u);
}

TEST_F(CachingResolverTest, ConcurrentLookupsShareOneQuery) {
  upstream_->Answer("a.test", {Ip("127.0.0.1")}, absl::Seconds(30));
  upstream_->Hold();
  auto cache = MakeCache();
  std::vector<absl::StatusOr<Resolution>> results;
  // Outlive the calls: Resolve's host is a reference.
  const std::vector<std::string> hosts = {"a.test", "A.TEST", "a.Test"};
  for (const std::string& host : hosts) {
    asio::co_spawn(io_, cache->ResolveWithTtl(host, Later()),
                   [&](std::exception_ptr e, absl::StatusOr<Resolution> r) {
                     if (e) std::rethrow_exception(e);
                     results.push_back(std::move(r));
                   });
  }
  // Queued behind the three calls: they are all waiting by then.
  asio::post(io_, [&] { upstream_->Release(); });
  io_.run();
  ASSERT_EQ(results.size(), 3u);
  for (const auto& r : results) {
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_THAT(r->addresses, ElementsAre(Ip("127.0.0.1")));
  }
  EXPECT_EQ(upstream_->calls(), 1);
  EXPECT_EQ(cache->stats().queries, 1u);
  EXPECT_EQ(cache->stats().joined, 2u);
}

TEST_F(CachingResolverTest, ImpatientCallerGivesUpButTheQueryStillCaches) {
  upstream_->Answer("slow.test", {Ip("127.0.0.1")}, absl::Seconds(30));
  upstream_->Hold();
  auto cache = MakeCache();
  std::optional<absl::StatusOr<Resolution>> first;
  const std::string host = "slow.test";  // outlives the call
  asio::co_spawn(
      io_, cache->ResolveWithTtl(host, absl::Now() + absl::Milliseconds(50)),
      [&](std::exception_ptr e, absl::StatusOr<Resolution> r) {
        if (e) std::rethrow_exception(e);
        first = std::move(r);
        // The caller has given up; now the answer arrives.
        upstream_->Release();
      });
  io_.run();
  ASSERT_TRUE(first.has_value());
  ASSERT_FALSE(first->ok());
  EXPECT_EQ(first->status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(first->status().message(),
              HasSubstr("DNS lookup of 'slow.test' timed out after "));

  absl::StatusOr<Resolution> second = Lookup(*cache, "slow.test");
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(upstream_->calls(), 1);
  EXPECT_EQ(cache->stats().hits, 1u);
}

TEST_F(CachingResolverTest, QueryTimeoutIsUnavailableForCallers) {
  options_.lookup_timeout = absl::Milliseconds(20);
  upstream_->Answer("slow.test", {Ip("127.0.0.1")}, absl::Seconds(30));
  upstream_->Hold();  // never released: the query hits lookup_timeout
  auto cache = MakeCache();
  absl::StatusOr<Resolution> r = Lookup(*cache, "slow.test");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(r.status().message(),
            "DNS lookup of 'slow.test' timed out after 5s");
}

TEST_F(CachingResolverTest, SizeIsBoundedEvictingExpiredThenSoonest) {
  options_.max_cache_entries = 2;
  upstream_->Answer("a.test", {Ip("127.0.0.1")}, absl::Seconds(10));
  upstream_->Answer("b.test", {Ip("127.0.0.2")}, absl::Seconds(60));
  upstream_->Answer("c.test", {Ip("127.0.0.3")}, absl::Seconds(60));
  upstream_->Answer("d.test", {Ip("127.0.0.4")}, absl::Seconds(60));
  auto cache = MakeCache();
  ASSERT_TRUE(Lookup(*cache, "a.test").ok());
  ASSERT_TRUE(Lookup(*cache, "b.test").ok());
  ASSERT_TRUE(Lookup(*cache, "c.test").ok());  // evicts a (expires soonest)
  EXPECT_EQ(cache->stats().entries, 2u);
  ASSERT_TRUE(Lookup(*cache, "b.test").ok());
  ASSERT_TRUE(Lookup(*cache, "c.test").ok());
  EXPECT_EQ(upstream_->calls(), 3);
  ASSERT_TRUE(Lookup(*cache, "a.test").ok());
  EXPECT_EQ(upstream_->calls(), 4);

  // Past every expiry: inserting d sweeps all the expired answers.
  now_ += absl::Seconds(61);
  ASSERT_TRUE(Lookup(*cache, "d.test").ok());
  EXPECT_EQ(cache->stats().entries, 1u);
}

TEST_F(CachingResolverTest, ClearForgetsAnswers) {
  upstream_->Answer("a.test", {Ip("127.0.0.1")}, absl::Seconds(30));
  auto cache = MakeCache();
  ASSERT_TRUE(Lookup(*cache, "a.test").ok());
  cache->Clear();
  ASSERT_TRUE(Lookup(*cache, "a.test").ok());
  EXPECT_EQ(upstream_->calls(), 2);
}

// A thread-safe upstream that answers after a hop through the event loop.
class YieldingUpstream : public Resolver {
 public:
  asio::awaitable<absl::StatusOr<std::vector<asio::ip::address>>> Resolve(
      const std::string& host, absl::Time) override {
    calls_.fetch_add(1);
    co_await asio::post(co_await asio::this_coro::executor,
                        asio::use_awaitable);
    co_return std::vector<asio::ip::address>{Ip("127.0.0.1")};
  }
  int calls() const { return calls_.load(); }

 private:
  std::atomic<int> calls_{0};
};

TEST(CachingResolverConcurrencyTest, LookupsFromManyEventLoops) {
  ResolverOptions options;
  // Every answer expires at once, so queries start, join and finish
  // concurrently on both loops all the time.
  options.ttl_floor = absl::ZeroDuration();
  options.ttl_ceiling = absl::ZeroDuration();
  auto upstream = std::make_shared<YieldingUpstream>();
  CachingResolver cache(upstream, options);
  EventLoops loops(2);

  constexpr int kPerLoop = 300;
  // Outlive the calls: Resolve's host is a reference.
  const std::vector<std::string> hosts = {"h0.test", "h1.test", "h2.test",
                                          "h3.test"};
  Mutex mu;
  int done = 0;
  int ok = 0;
  for (size_t loop = 0; loop < loops.size(); ++loop) {
    for (int i = 0; i < kPerLoop; ++i) {
      const std::string& host = hosts[i % 4];
      asio::co_spawn(loops.executor(loop),
                     cache.Resolve(host, absl::Now() + absl::Seconds(30)),
                     [&](std::exception_ptr e,
                         absl::StatusOr<std::vector<asio::ip::address>> r) {
                       MutexLock lock(&mu);
                       ++done;
                       if (!e && r.ok()) ++ok;
                     });
    }
  }
  {
    MutexLock lock(&mu);
    mu.Await(
        [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return done == 2 * kPerLoop; });
    EXPECT_EQ(ok, 2 * kPerLoop);
  }
  loops.Stop();
  const CachingResolver::Stats stats = cache.stats();
  EXPECT_EQ(stats.queries + stats.joined + stats.hits,
            static_cast<uint64_t>(2 * kPerLoop));
  EXPECT_EQ(stats.queries, static_cast<uint64_t>(upstream->calls()));
}

}  // namespace
}  // namespace egress
