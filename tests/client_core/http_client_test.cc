// HttpClient and ConnectionPool against real servers: nginx for ordinary
// behaviour, ScriptedOrigin for an origin that silently drops a keep-alive
// connection. Asserts which connection served each request and what the pool
// closed and why. Runs under TSan too (no gRPC here).
#include "client_core/call/http_client.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "client_core/base/sync.h"
#include "client_core/route/resolver.h"
#include "client_core/url/url.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/execute_and_wait.h"
#include "tests/support/nginx.h"
#include "tests/support/scripted_origin.h"
#include "tests/support/subprocess.h"

namespace egress {
namespace {

using ::egress::testing::NginxServer;
using ::egress::testing::ScriptedOrigin;
using ::testing::HasSubstr;

// Records pool events so tests can wait for them instead of sleeping.
class RecordingListener : public PoolListener {
 public:
  void OnConnectionClosed(uint64_t id, const Address&,
                          CloseReason reason) override {
    MutexLock lock(&mu_);
    closed_.push_back({id, reason});
  }
  // Blocks until `n` connections were closed; returns their records.
  std::vector<std::pair<uint64_t, CloseReason>> AwaitClosed(size_t n) {
    MutexLock lock(&mu_);
    mu_.Await([&]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
      return closed_.size() >= n;
    });
    return closed_;
  }

 private:
  Mutex mu_;
  std::vector<std::pair<uint64_t, CloseReason>> closed_ ABSL_GUARDED_BY(mu_);
};

// Runs `request` and waits for its result.
absl::StatusOr<Response> Call(HttpClient& client, Request request) {
  return testing::ExecuteAndWait(client, std::move(request));
}

absl::StatusOr<Response> Call(HttpClient& client, const std::string& method,
                              const std::string& url,
                              const std::string& body = "") {
  Request request;
  request.method = method;
  absl::StatusOr<Url> parsed = ParseUrl(url);
  if (!parsed.ok()) return parsed.status();
  request.url = *parsed;
  request.body = body;
  request.deadline = absl::Now() + absl::Seconds(10);
  return Call(client, std::move(request));
}

uint64_t Closed(const PoolSnapshot& s, CloseReason reason) {
  return s.closed_by_reason[static_cast<size_t>(reason)];
}

HttpClientOptions TwoLoops() {
  HttpClientOptions options;
  options.event_loops = 2;
  return options;
}

TEST(HttpClientTest, SequentialRequestsReuseOneConnection) {
  auto nginx = NginxServer::Start();
  ASSERT_TRUE(nginx.ok()) << nginx.status();
  HttpClient client(TwoLoops());
  uint64_t first_id = 0;
  for (int i = 0; i < 5; ++i) {
    absl::StatusOr<Response> r = Call(client, "GET", (*nginx)->Url("/hello.txt"));
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->status_code, 200);
    EXPECT_EQ(r->body, "hello\n");
    if (i == 0) {
      first_id = r->connection.connection_id;
      EXPECT_FALSE(r->connection.reused);
    } else {
      EXPECT_EQ(r->connection.connection_id, first_id);
      EXPECT_TRUE(r->connection.reused);
    }
  }
  PoolSnapshot s = client.pool().Snapshot();
  EXPECT_EQ(s.connections_opened, 1u);
  EXPECT_EQ(s.idle_count, 1u);
  ASSERT_EQ(s.addresses.size(), 1u);
  EXPECT_EQ(s.addresses[0].requests_served, 5u);
}

TEST(HttpClientTest, MaxIdleZeroClosesAConnectionAsSoonAsItIsIdle) {
  auto nginx = NginxServer::Start();
  ASSERT_TRUE(nginx.ok()) << nginx.status();
  RecordingListener listener;
  HttpClientOptions options = TwoLoops();
  options.pool.max_idle_connections = 0;
  HttpClient client(options, &listener);
  absl::StatusOr<Response> a = Call(client, "GET", (*nginx)->Url("/hello.txt"));
  ASSERT_TRUE(a.ok()) << a.status();
  auto closed = listener.AwaitClosed(1);
  EXPECT_EQ(closed[0].first, a->connection.connection_id);
  EXPECT_EQ(closed[0].second, CloseReason::kMaxIdle);
  absl::StatusOr<Response> b = Call(client, "GET", (*nginx)->Url("/hello.txt"));
  ASSERT_TRUE(b.ok());
  EXPECT_NE(b->connection.connection_id, a->connection.connection_id);
  EXPECT_FALSE(b->connection.reused);
}

TEST(HttpClientTest, KeepAliveEvictsIdleConnectionsAndTheTimerSleepsWhenEmpty) {
  auto nginx = NginxServer::Start();
  ASSERT_TRUE(nginx.ok()) << nginx.status();
  RecordingListener listener;
  HttpClientOptions options = TwoLoops();
  options.pool.keep_alive = absl::Milliseconds(200);
  HttpClient client(options, &listener);
  absl::StatusOr<Response> r = Call(client, "GET", (*nginx)->Url("/hello.txt"));
  ASSERT_TRUE(r.ok()) << r.status();
  auto closed = listener.AwaitClosed(1);
  EXPECT_EQ(closed[0].second, CloseReason::kIdleTimeout);
  PoolSnapshot s = client.pool().Snapshot();
  EXPECT_EQ(s.connection_count, 0u);
  EXPECT_EQ(Closed(s, CloseReason::kIdleTimeout), 1u);
  // One wake-up evicted the one idle connection; with nothing idle the timer
  // is not re-armed, so the count stays.
  EXPECT_EQ(s.cleanup_wakeups, 1u);
  absl::SleepFor(absl::Milliseconds(500));  // nothing to await: proving absence
  EXPECT_EQ(client.pool().Snapshot().cleanup_wakeups, 1u);
}

TEST(HttpClientTest, MaxIdleClosesTheLeastRecentlyUsedIdleConnection) {
  auto nginx = NginxServer::Start();
  ASSERT_TRUE(nginx.ok()) << nginx.status();
  auto nginx2 = NginxServer::Start();
  ASSERT_TRUE(nginx2.ok()) << nginx2.status();
  RecordingListener listener;
  HttpClientOptions options = TwoLoops();
  options.pool.max_idle_connections = 1;
  HttpClient client(options, &listener);
  absl::StatusOr<Response> a = Call(client, "GET", (*nginx)->Url("/hello.txt"));
  ASSERT_TRUE(a.ok());
  absl::StatusOr<Response> b = Call(client, "GET", (*nginx2)->Url("/hello.txt"));
  ASSERT_TRUE(b.ok());
  auto closed = listener.AwaitClosed(1);
  EXPECT_EQ(closed[0].first, a->connection.connection_id);
  EXPECT_EQ(closed[0].second, CloseReason::kMaxIdle);
  PoolSnapshot s = client.pool().Snapshot();
  EXPECT_EQ(s.idle_count, 1u);
}

TEST(HttpClientTest, DifferentPortsNeverShareAConnection) {
  auto nginx = NginxServer::Start();
  ASSERT_TRUE(nginx.ok());
  auto nginx2 = NginxServer::Start();
  ASSERT_TRUE(nginx2.ok());
  HttpClient client(TwoLoops());
  absl::StatusOr<Response> a = Call(client, "GET", (*nginx)->Url("/hello.txt"));
  absl::StatusOr<Response> b = Call(client, "GET", (*nginx2)->Url("/hello.txt"));
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(a->connection.connection_id, b->connection.connection_id);
  EXPECT_FALSE(b->connection.reused);
  EXPECT_EQ(client.pool().Snapshot().addresses.size(), 2u);
}

// The keep-alive race: the origin closed a pooled connection while it was
// idle. The health probe is disabled here so the exchange itself meets the
// dead connection.
HttpClientOptions NoProbe() {
  HttpClientOptions options = TwoLoops();
  options.pool.health_check_after_idle = absl::Hours(1);
  return options;
}

TEST(HttpClientTest, StaleConnectionGetIsRetriedOnAFreshConnection) {
  ScriptedOrigin origin([](int, const std::string&) {
    return ScriptedOrigin::Reply{ScriptedOrigin::Ok("fine"), true};
  });
  HttpClient client(NoProbe());
  absl::StatusOr<Response> a = Call(client, "GET", origin.Url("/"));
  ASSERT_TRUE(a.ok()) << a.status();
  origin.AwaitClosedByOrigin(1);
  absl::StatusOr<Response> b = Call(client, "GET", origin.Url("/"));
  ASSERT_TRUE(b.ok()) << "caller must not see the stale connection: "
                      << b.status();
  EXPECT_EQ(b->body, "fine");
  EXPECT_NE(b->connection.connection_id, a->connection.connection_id);
  EXPECT_FALSE(b->connection.reused);
  EXPECT_EQ(origin.connections_accepted(), 2);
}

TEST(HttpClientTest, StaleConnectionPostThatMayHaveBeenReceivedFails) {
  // The origin closes after reading the POST, without answering: the
  // keep-alive race as the client sees it (an origin that closes an idle
  // connection is caught by the idle watch before a request goes out).
  ScriptedOrigin origin([](int n, const std::string&) {
    return n == 0 ? ScriptedOrigin::Reply{ScriptedOrigin::Ok("fine"), false}
                  : ScriptedOrigin::Reply{"", true};
  });
  HttpClient client(NoProbe());
  ASSERT_TRUE(Call(client, "GET", origin.Url("/")).ok());
  absl::StatusOr<Response> post = Call(client, "POST", origin.Url("/"), "x");
  EXPECT_TRUE(absl::IsUnavailable(post.status())) << post.status();
  EXPECT_EQ(origin.connections_accepted(), 1) << "a POST is never replayed";
}

TEST(HttpClientTest, HealthProbeCatchesAClosedIdleConnectionBeforeAPost) {
  // Only the first connection is closed by the origin (the POST's must not
  // be, or it would count a second peer_closed).
  ScriptedOrigin origin([](int n, const std::string&) {
    return ScriptedOrigin::Reply{ScriptedOrigin::Ok("fine"), n == 0};
  });
  HttpClient client(TwoLoops());  // default: probe before every reuse
  ASSERT_TRUE(Call(client, "GET", origin.Url("/")).ok());
  origin.AwaitClosedByOrigin(1);
  absl::StatusOr<Response> post = Call(client, "POST", origin.Url("/"), "x");
  ASSERT_TRUE(post.ok()) << post.status();
  EXPECT_FALSE(post->connection.reused);
  EXPECT_EQ(Closed(client.pool().Snapshot(), CloseReason::kPeerClosed), 1u);
}

TEST(HttpClientTest, GarbageAfterTheBodyKeepsTheResponseButNotTheConnection) {
  ScriptedOrigin origin([](int, const std::string&) {
    return ScriptedOrigin::Reply{ScriptedOrigin::Ok("body") + "EXTRA", false};
  });
  HttpClient client(TwoLoops());
  absl::StatusOr<Response> a = Call(client, "GET", origin.Url("/"));
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->body, "body");
  absl::StatusOr<Response> b = Call(client, "GET", origin.Url("/"));
  ASSERT_TRUE(b.ok());
  EXPECT_NE(b->connection.connection_id, a->connection.connection_id);
  EXPECT_EQ(Closed(client.pool().Snapshot(), CloseReason::kProtocolError), 2u);
}

TEST(HttpClientTest, MalformedResponseIsUnavailableWithTheCause) {
  ScriptedOrigin origin([](int, const std::string&) {
    return ScriptedOrigin::Reply{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked"
                                 "\r\n\r\nzz\r\n",
                                 false};
  });
  HttpClient client(TwoLoops());
  absl::StatusOr<Response> r = Call(client, "GET", origin.Url("/"));
  EXPECT_TRUE(absl::IsUnavailable(r.status())) << r.status();
  EXPECT_THAT(r.status().message(), HasSubstr("chunk"));
  EXPECT_EQ(client.pool().Snapshot().connection_count, 0u);
}

TEST(HttpClientTest, DeadlineFailsTheCallAndDropsTheConnection) {
  Notification release;
  ScriptedOrigin origin([&](int, const std::string&) {
    release.WaitForNotification();  // never answers in time
    return ScriptedOrigin::Reply{ScriptedOrigin::Ok("late"), false};
  });
  {
    HttpClient client(TwoLoops());
    Request request;
    request.method = "GET";
    request.url = *ParseUrl(origin.Url("/slow"));
    request.deadline = absl::Now() + absl::Milliseconds(200);
    absl::StatusOr<Response> result = Call(client, std::move(request));
    EXPECT_TRUE(absl::IsDeadlineExceeded(result.status())) << result.status();
    PoolSnapshot s = client.pool().Snapshot();
    EXPECT_EQ(s.connection_count, 0u);
    EXPECT_EQ(Closed(s, CloseReason::kCallAborted), 1u);
  }
  release.Notify();
}

TEST(HttpClientTest, ConcurrentCallsFromManyThreads) {
  auto nginx = NginxServer::Start();
  ASSERT_TRUE(nginx.ok());
  HttpClient client(TwoLoops());
  constexpr int kCalls = 200;
  Mutex mu;
  int ok = 0, finished = 0;
  for (int i = 0; i < kCalls; ++i) {
    Request request;
    request.method = "GET";
    request.url = *ParseUrl((*nginx)->Url("/hello.txt"));
    request.deadline = absl::Now() + absl::Seconds(20);
    client.Execute(std::move(request), [&](absl::StatusOr<Response> r) {
      MutexLock lock(&mu);
      if (r.ok() && r->body == "hello\n") ++ok;
      ++finished;
    });
  }
  {
    MutexLock lock(&mu);
    mu.Await([&] { return finished == kCalls; });
    EXPECT_EQ(ok, kCalls);
  }
  PoolSnapshot s = client.pool().Snapshot();
  EXPECT_EQ(s.in_use_count, 0u);
  EXPECT_EQ(s.idle_count, s.connection_count);
  EXPECT_LE(s.connections_opened, static_cast<uint64_t>(kCalls));
}

TEST(HttpClientTest, InvalidRequestFailsInlineAndTouchesNoConnection) {
  HttpClient client(TwoLoops());
  Request request;
  request.method = "GET";
  request.url = *ParseUrl("http://127.0.0.1:1/");
  request.headers.push_back({"Bad\r\nName", "v"});
  bool called = false;
  client.Execute(std::move(request), [&](absl::StatusOr<Response> r) {
    called = true;
    EXPECT_TRUE(absl::IsInvalidArgument(r.status()));
  });
  EXPECT_TRUE(called);
  EXPECT_EQ(client.pool().Snapshot().connections_opened, 0u);
}

}  // namespace
}  // namespace egress

namespace egress {
namespace {

TEST(HttpClientReuseTest, RequestConnectionCloseIsNotReused) {
  ScriptedOrigin origin([](int, const std::string& head) {
    return ScriptedOrigin::Reply{ScriptedOrigin::Ok("x"), false};
  });
  HttpClient client(TwoLoops());
  Request request;
  request.method = "GET";
  request.url = *ParseUrl(origin.Url("/"));
  request.headers.push_back({"Connection", "close"});
  request.deadline = absl::Now() + absl::Seconds(10);
  absl::StatusOr<Response> first = Call(client, std::move(request));
  ASSERT_TRUE(first.ok()) << first.status();
  absl::StatusOr<Response> second = Call(client, "GET", origin.Url("/"));
  ASSERT_TRUE(second.ok());
  EXPECT_NE(second->connection.connection_id, first->connection.connection_id);
  EXPECT_EQ(Closed(client.pool().Snapshot(), CloseReason::kConnectionClose),
            1u);
}

TEST(HttpClientReuseTest, Http10ResponseWithoutKeepAliveIsNotReused) {
  ScriptedOrigin origin([](int, const std::string&) {
    return ScriptedOrigin::Reply{
        "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", false};
  });
  HttpClient client(TwoLoops());
  absl::StatusOr<Response> a = Call(client, "GET", origin.Url("/"));
  absl::StatusOr<Response> b = Call(client, "GET", origin.Url("/"));
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(a->connection.connection_id, b->connection.connection_id);
  EXPECT_EQ(Closed(client.pool().Snapshot(), CloseReason::kConnectionClose),
            2u);
}

TEST(HttpClientReuseTest, Http10ResponseWithKeepAliveIsReused) {
  ScriptedOrigin origin([](int, const std::string&) {
    return ScriptedOrigin::Reply{
        "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2"
        "\r\n\r\nok",
        false};
  });
  HttpClient client(TwoLoops());
  absl::StatusOr<Response> a = Call(client, "GET", origin.Url("/"));
  absl::StatusOr<Response> b = Call(client, "GET", origin.Url("/"));
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->connection.connection_id, b->connection.connection_id);
  EXPECT_TRUE(b->connection.reused);
}

}  // namespace
}  // namespace egress

namespace egress {
namespace {

TEST(HttpClientAbortTest, AbortEndsAnExchangeInFlightAndClosesItsConnection) {
  Notification release;
  ScriptedOrigin origin([&](int, const std::string&) {
    release.WaitForNotification();  // holds the reply until the test ends
    return ScriptedOrigin::Reply{ScriptedOrigin::Ok("late"), false};
  });
  {
    HttpClient client(TwoLoops());
    Request request;
    request.method = "GET";
    request.url = *ParseUrl(origin.Url("/held"));
    request.deadline = absl::Now() + absl::Seconds(30);
    Notification done;
    absl::StatusOr<Response> result;
    std::shared_ptr<CallAbort> abort =
        client.Execute(std::move(request), [&](absl::StatusOr<Response> r) {
          result = std::move(r);
          done.Notify();
        });
    origin.AwaitRequests(1);
    abort->Abort();
    done.WaitForNotification();
    EXPECT_TRUE(absl::IsCancelled(result.status())) << result.status();
    PoolSnapshot s = client.pool().Snapshot();
    EXPECT_EQ(s.connection_count, 0u);
    EXPECT_EQ(Closed(s, CloseReason::kCallAborted), 1u);
    EXPECT_EQ(s.requests_in_flight, 0u);
  }
  release.Notify();
}

TEST(HttpClientAbortTest, AbortBeforeTheExchangeLeavesThePooledConnection) {
  ScriptedOrigin origin([](int, const std::string&) {
    return ScriptedOrigin::Reply{ScriptedOrigin::Ok("x"), false};
  });
  HttpClient client(TwoLoops());
  ASSERT_TRUE(Call(client, "GET", origin.Url("/")).ok());
  // The abort may win or lose the race with the exchange; either way the
  // pool stays consistent and a pooled connection is never lost to it
  // unless it was mid-exchange.
  Request request;
  request.method = "GET";
  request.url = *ParseUrl(origin.Url("/"));
  request.deadline = absl::Now() + absl::Seconds(10);
  Notification done;
  absl::StatusOr<Response> result;
  auto abort = client.Execute(std::move(request), [&](absl::StatusOr<Response> r) {
    result = std::move(r);
    done.Notify();
  });
  abort->Abort();
  done.WaitForNotification();
  PoolSnapshot s = client.pool().Snapshot();
  EXPECT_EQ(s.in_use_count, 0u);
  EXPECT_EQ(s.requests_in_flight, 0u);
  if (absl::IsCancelled(result.status()) &&
      Closed(s, CloseReason::kCallAborted) == 0) {
    EXPECT_EQ(s.idle_count, 1u) << "aborted before writing: still pooled";
  }
}

}  // namespace
}  // namespace egress

namespace egress {
namespace {

TEST(HttpClientAccountingTest, BytesInAndOutPerConnectionAddressAndPool) {
  auto nginx = ::egress::testing::NginxServer::Start(
      {.files = {{"4k", std::string(4096, 'x')}}});
  ASSERT_TRUE(nginx.ok()) << nginx.status();
  HttpClient client(TwoLoops());
  absl::StatusOr<Response> first = Call(client, "GET", (*nginx)->Url("/4k"));
  ASSERT_TRUE(first.ok()) << first.status();
  absl::StatusOr<Response> second =
      Call(client, "POST", (*nginx)->Url("/4k"), std::string(1000, 'p'));
  ASSERT_TRUE(second.ok()) << second.status();

  bool end = false;
  std::vector<ConnectionSnapshot> connections =
      client.pool().ListConnections(0, 0, std::nullopt, &end);
  ASSERT_EQ(connections.size(), 1u);
  // Received: at least the body and a status line per response; sent: at
  // least the POST body and two request lines.
  EXPECT_GE(connections[0].bytes_in, 4096u + 2 * 17);
  EXPECT_GE(connections[0].bytes_out, 1000u + 2 * 16);
  PoolSnapshot snapshot = client.pool().Snapshot();
  ASSERT_EQ(snapshot.addresses.size(), 1u);
  EXPECT_EQ(snapshot.addresses[0].bytes_in, connections[0].bytes_in);
  EXPECT_EQ(snapshot.addresses[0].bytes_out, connections[0].bytes_out);
  // Closed connections keep counting in the pool's totals.
  const uint64_t in = connections[0].bytes_in;
  EXPECT_EQ(client.pool().EvictIdle(std::nullopt), 1u);
  snapshot = client.pool().Snapshot();
  EXPECT_EQ(snapshot.bytes_in, in);
}

TEST(HttpClientAccountingTest, ConnectFailuresAreCountedByReason) {
  HttpClientOptions options = TwoLoops();
  StaticHostMap hosts;
  hosts["known.test"] = {asio::ip::make_address("127.0.0.1")};
  options.resolver = std::make_shared<StaticResolver>(std::move(hosts));
  HttpClient client(options);
  const int closed_port = ::egress::testing::PickFreePort();
  absl::StatusOr<Response> refused = Call(
      client, "GET", absl::StrCat("http://127.0.0.1:", closed_port, "/"));
  ASSERT_FALSE(refused.ok());
  absl::StatusOr<Response> unknown =
      Call(client, "GET", "http://unknown.test/");
  ASSERT_FALSE(unknown.ok());
  const auto failures = client.connector().failures();
  EXPECT_EQ(failures[static_cast<size_t>(ConnectFailure::kRefused)], 1u);
  EXPECT_EQ(failures[static_cast<size_t>(ConnectFailure::kDns)], 1u);
  EXPECT_EQ(client.pool().Snapshot().connect_failures, 2u);
}

}  // namespace
}  // namespace egress
