// HTTP/2 through HttpClient and the pool against real servers: nginx with
// TLS and ALPN, nghttpd with a small stream limit, and coalescing of two
// host names onto one connection when the certificate covers both. Asserts
// which connection served each call and how many connections the pool
// opened. Runs under TSan too (no gRPC here).
#include <nghttp2/nghttp2.h>

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "client_core/base/sync.h"
#include "client_core/call/http_client.h"
#include "client_core/route/resolver.h"
#include "client_core/tls/tls_client.h"
#include "client_core/url/url.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/execute_and_wait.h"
#include "tests/support/h2_fault_server.h"
#include "tests/support/nghttpd.h"
#include "tests/support/nginx.h"
#include "tests/support/test_pki.h"

namespace egress {
namespace {

using ::egress::testing::H2FaultServer;
using ::egress::testing::H2FaultServerOptions;
using ::egress::testing::H2Reply;
using ::egress::testing::H2Request;
using ::egress::testing::H2ServerStats;
using ::egress::testing::IssuedCert;
using ::egress::testing::NghttpdOptions;
using ::egress::testing::NghttpdServer;
using ::egress::testing::NginxOptions;
using ::egress::testing::NginxServer;
using ::egress::testing::NginxTlsOptions;
using ::egress::testing::TestPki;

Request Get(const std::string& url) {
  Request request;
  request.method = "GET";
  request.url = ParseUrl(url).value();
  request.deadline = absl::Now() + absl::Seconds(20);
  return request;
}

absl::StatusOr<Response> Call(HttpClient& client, Request request) {
  return testing::ExecuteAndWait(client, std::move(request));
}

// Starts `n` calls at once and waits for all of them.
std::vector<absl::StatusOr<Response>> CallConcurrently(HttpClient& client,
                                                       const std::string& url,
                                                       int n) {
  Mutex mu;
  std::vector<absl::StatusOr<Response>> results;
  for (int i = 0; i < n; ++i) {
    client.Execute(Get(url), [&](absl::StatusOr<Response> r) {
      MutexLock lock(&mu);
      results.push_back(std::move(r));
    });
  }
  MutexLock lock(&mu);
  mu.Await([&]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
    return results.size() == static_cast<size_t>(n);
  });
  return results;
}

std::shared_ptr<Resolver> LoopbackNames() {
  StaticHostMap hosts;
  for (const char* name : {"a.test", "b.test", "c.test"}) {
    hosts[name] = {asio::ip::make_address("127.0.0.1")};
  }
  return std::make_shared<StaticResolver>(std::move(hosts));
}

std::unique_ptr<HttpClient> Client(const std::string& ca_file,
                                   HttpProtocols protocols,
                                   std::shared_ptr<TlsClient>* tls_out = nullptr) {
  DestinationOptions defaults;
  defaults.trust_system_store = false;
  defaults.ca_file = ca_file;
  defaults.protocols = protocols;
  std::shared_ptr<TlsClient> tls(
      TlsClient::Create(DestinationRules::Create(defaults, {}).value())
          .value());
  if (tls_out != nullptr) *tls_out = tls;
  HttpClientOptions options;
  options.event_loops = 2;
  options.resolver = LoopbackNames();
  options.connector.tls = tls;
  return std::make_unique<HttpClient>(options);
}

uint64_t Closed(const PoolSnapshot& s, CloseReason reason) {
  return s.closed_by_reason[static_cast<size_t>(reason)];
}

class Http2ClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto pki = TestPki::Create();
    ASSERT_TRUE(pki.ok()) << pki.status();
    pki_ = *std::move(pki);
  }
  std::unique_ptr<TestPki> pki_;
};

TEST_F(Http2ClientTest, AlpnPicksH2AndStreamsShareOneConnection) {
  auto leaf = pki_->IssueLeaf("a", {.dns_names = {"a.test"}});
  ASSERT_TRUE(leaf.ok());
  NginxOptions options;
  options.tls = NginxTlsOptions{.cert_file = leaf->chain_file,
                                .key_file = leaf->key_file};
  auto nginx = NginxServer::Start(options);
  ASSERT_TRUE(nginx.ok()) << nginx.status();
  auto client = Client(pki_->ca_file(), HttpProtocols::kAuto);
  const std::string url = (*nginx)->UrlFor("https", "a.test", "/hello.txt");

  absl::StatusOr<Response> first = Call(*client, Get(url));
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->protocol, "h2");
  EXPECT_EQ(first->body, "hello\n");
  std::vector<absl::StatusOr<Response>> more =
      CallConcurrently(*client, url, 20);
  for (const auto& r : more) {
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->connection.connection_id, first->connection.connection_id);
  }
  EXPECT_EQ(client->pool().Snapshot().connections_opened, 1u);
  auto log = (*nginx)->AwaitAccessLogEntries(21);
  ASSERT_TRUE(log.ok()) << log.status();
  for (const auto& entry : *log) EXPECT_EQ(entry.protocol, "HTTP/2.0");
}

TEST_F(Http2ClientTest, StreamLimitDecidesHowManyConnectionsOpen) {
  constexpr int kLimit = 10;
  constexpr int kCalls = 100;
  NghttpdOptions options;
  options.max_concurrent_streams = kLimit;
  auto nghttpd = NghttpdServer::Start(options);
  ASSERT_TRUE(nghttpd.ok()) << nghttpd.status();
  auto client = Client(pki_->ca_file(), HttpProtocols::kHttp2);  // h2c

  std::vector<absl::StatusOr<Response>> results =
      CallConcurrently(*client, (*nghttpd)->Url("/hello.txt"), kCalls);
  std::set<uint64_t> connections;
  for (const auto& r : results) {
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->protocol, "h2");
    connections.insert(r->connection.connection_id);
  }
  const PoolSnapshot snapshot = client->pool().Snapshot();
  // At most ceil(100 / 10): the first connection, then as many as the
  // queue needed once the peer's SETTINGS said 10 streams fit on each (fewer
  // when nghttpd's fast answers free streams for the waiting calls; the
  // held-stream test below pins the exact count).
  EXPECT_LE(connections.size(),
            static_cast<size_t>((kCalls + kLimit - 1) / kLimit));
  EXPECT_LE(snapshot.connections_opened,
            static_cast<uint64_t>((kCalls + kLimit - 1) / kLimit));
  bool end = false;
  for (const ConnectionSnapshot& c :
       client->pool().ListConnections(0, 0, std::nullopt, &end)) {
    EXPECT_EQ(c.protocol, Protocol::kHttp2);
    EXPECT_EQ(c.allocation_limit, kLimit);
  }
}

TEST_F(Http2ClientTest, HeldStreamsFillExactlyCeilCallsOverLimitConnections) {
  constexpr int kLimit = 10;
  constexpr int kCalls = 100;
  // Every response waits 500 ms: the 100 calls are all in flight at once,
  // so the connections must be packed as tight as the limit allows.
  H2FaultServer server(
      [](const H2Request&) {
        H2Reply reply;
        reply.body = "held";
        reply.delay = absl::Milliseconds(500);
        return reply;
      },
      H2FaultServerOptions{.max_concurrent_streams = kLimit});
  auto client = Client(pki_->ca_file(), HttpProtocols::kHttp2);
  std::vector<absl::StatusOr<Response>> results =
      CallConcurrently(*client, server.Url("/x"), kCalls);
  int failed = 0;
  for (const auto& r : results) {
    if (!r.ok()) {
      if (++failed == 1) ADD_FAILURE() << r.status();
      continue;
    }
    EXPECT_EQ(r->body, "held");
  }
  EXPECT_EQ(failed, 0);
  const H2ServerStats stats = server.stats();

  EXPECT_EQ(stats.connections_accepted, kCalls / kLimit);
  for (int n : stats.streams_per_connection) EXPECT_EQ(n, kLimit);
  EXPECT_EQ(client->pool().Snapshot().connections_opened,
            static_cast<uint64_t>(kCalls / kLimit));
}

TEST_F(Http2ClientTest, StreamsAboveGoawayAreRetriedOnANewConnection) {
  // The first connection's third request triggers GOAWAY(last stream 3):
  // streams 1 and 3 finish there, 5 and later are retried elsewhere.
  H2FaultServer server([](const H2Request& request) {
    H2Reply reply;
    reply.body = absl::StrCat("conn", request.connection);
    if (request.connection == 0) {
      if (request.index_on_connection < 2) {
        reply.hold = true;
      } else {
        reply.goaway_last_stream_id = 3;
        reply.release_held = true;
      }
    }
    return reply;
  });
  auto client = Client(pki_->ca_file(), HttpProtocols::kHttp2);
  // Non-idempotent: only "not processed" makes the retry safe.
  Mutex mu;
  std::vector<absl::StatusOr<Response>> results;
  for (int i = 0; i < 3; ++i) {
    Request post = Get(server.Url("/x"));
    post.method = "POST";
    post.body = "payload";
    client->Execute(std::move(post), [&](absl::StatusOr<Response> r) {
      MutexLock lock(&mu);
      results.push_back(std::move(r));
    });
  }
  {
    MutexLock lock(&mu);
    mu.Await([&]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
      return results.size() == 3;
    });
  }
  std::multiset<std::string> bodies;
  for (const auto& r : results) {
    ASSERT_TRUE(r.ok()) << r.status();
    bodies.insert(r->body);
  }
  EXPECT_EQ(bodies, (std::multiset<std::string>{"conn0", "conn0", "conn1"}));
  const PoolSnapshot snapshot = client->pool().Snapshot();
  EXPECT_EQ(snapshot.connections_opened, 2u);
  EXPECT_EQ(Closed(snapshot, CloseReason::kGoaway), 1u);
}

TEST_F(Http2ClientTest, PostResetThenRefusedIsSentOnce) {
  // The origin resets the POST (INTERNAL_ERROR) and then "refuses" it in
  // the same write: it may have processed it, so it is not sent again.
  H2FaultServer server([](const H2Request&) {
    H2Reply reply;
    reply.reset_code = NGHTTP2_INTERNAL_ERROR;
    reply.second_reset_code = NGHTTP2_REFUSED_STREAM;
    return reply;
  });
  auto client = Client(pki_->ca_file(), HttpProtocols::kHttp2);
  Request post = Get(server.Url("/pay"));
  post.method = "POST";
  post.body = "one payment";
  absl::StatusOr<Response> result = Call(*client, std::move(post));
  EXPECT_EQ(result.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(result.status().message()),
              ::testing::HasSubstr("INTERNAL_ERROR"));
  EXPECT_EQ(server.stats().requests, 1);
}

TEST_F(Http2ClientTest, OriginAllowingNoStreamsFailsCallsFast) {
  // SETTINGS_MAX_CONCURRENT_STREAMS 0 from the start: every call fails
  // fast with UNAVAILABLE, none waits for its 20 s deadline.
  H2FaultServer server([](const H2Request&) { return H2Reply(); },
                       H2FaultServerOptions{.max_concurrent_streams = 0});
  auto client = Client(pki_->ca_file(), HttpProtocols::kHttp2);
  const absl::Time start = absl::Now();
  std::vector<absl::StatusOr<Response>> results =
      CallConcurrently(*client, server.Url("/x"), 4);
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
  for (const auto& r : results) {
    EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
    EXPECT_THAT(std::string(r.status().message()),
                ::testing::HasSubstr("SETTINGS_MAX_CONCURRENT_STREAMS 0"));
  }
  // A sequential call after them fails as fast.
  const absl::Time again = absl::Now();
  absl::StatusOr<Response> last = Call(*client, Get(server.Url("/y")));
  EXPECT_EQ(last.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_LT(absl::Now() - again, absl::Seconds(5));
}

TEST_F(Http2ClientTest, BusyConnectionPastItsLifetimeTakesNoNewStreams) {
  H2FaultServer server([](const H2Request& request) {
    H2Reply reply;
    reply.body = absl::StrCat("conn", request.connection);
    // The first call keeps the first connection busy past its lifetime.
    if (request.index == 0) reply.delay = absl::Milliseconds(800);
    return reply;
  });
  DestinationOptions defaults;
  defaults.protocols = HttpProtocols::kHttp2;
  HttpClientOptions options;
  options.event_loops = 1;
  options.pool.max_connection_lifetime = absl::Milliseconds(200);
  options.connector.tls = std::shared_ptr<TlsClient>(
      TlsClient::Create(DestinationRules::Create(defaults, {}).value())
          .value());
  HttpClient client(options);
  Notification first_done;
  absl::StatusOr<Response> first;
  client.Execute(Get(server.Url("/slow")), [&](absl::StatusOr<Response> r) {
    first = std::move(r);
    first_done.Notify();
  });
  ASSERT_TRUE(server.AwaitStats(
      [](const H2ServerStats& s) { return s.requests >= 1; }));
  // The input here is time itself: the lifetime has to pass.
  absl::SleepFor(absl::Milliseconds(300));
  absl::StatusOr<Response> second = Call(client, Get(server.Url("/fast")));
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->body, "conn1");
  first_done.WaitForNotification();
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->body, "conn0");
  const PoolSnapshot snapshot = client.pool().Snapshot();
  EXPECT_EQ(snapshot.connections_opened, 2u);
  EXPECT_EQ(Closed(snapshot, CloseReason::kMaxLifetime), 1u);
}

TEST_F(Http2ClientTest, MisdirectedRequestStopsCoalescingAndIsRetried) {
  auto leaf = pki_->IssueLeaf("ab", {.dns_names = {"a.test", "b.test"}});
  ASSERT_TRUE(leaf.ok());
  NginxOptions options;
  options.tls = NginxTlsOptions{.cert_file = leaf->chain_file,
                                .key_file = leaf->key_file};
  // What an origin whose virtual hosts do not share connections says to a
  // request for one host on another's connection (SNI != Host).
  options.server_directives =
      "if ($ssl_server_name != $host) { return 421; }";
  auto nginx = NginxServer::Start(options);
  ASSERT_TRUE(nginx.ok()) << nginx.status();
  auto client = Client(pki_->ca_file(), HttpProtocols::kAuto);

  absl::StatusOr<Response> a =
      Call(*client, Get((*nginx)->UrlFor("https", "a.test", "/hello.txt")));
  ASSERT_TRUE(a.ok()) << a.status();
  absl::StatusOr<Response> b =
      Call(*client, Get((*nginx)->UrlFor("https", "b.test", "/hello.txt")));
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->status_code, 200);
  EXPECT_NE(b->connection.connection_id, a->connection.connection_id);
  // The 421 came back on a.test's connection first.
  auto log = (*nginx)->AwaitAccessLogEntries(3);
  ASSERT_TRUE(log.ok()) << log.status();
  EXPECT_EQ((*log)[1].status, 421);
  EXPECT_EQ((*log)[1].connection, (*log)[0].connection);
  EXPECT_EQ((*log)[2].status, 200);
  // And a.test's connection no longer takes b.test's calls.
  absl::StatusOr<Response> b_again =
      Call(*client, Get((*nginx)->UrlFor("https", "b.test", "/hello.txt")));
  ASSERT_TRUE(b_again.ok()) << b_again.status();
  EXPECT_EQ(b_again->connection.connection_id, b->connection.connection_id);
}

TEST_F(Http2ClientTest, CoalescesHostsTheCertificateCovers) {
  // One nginx, one IP, a certificate for a.test and b.test (not c.test).
  auto leaf = pki_->IssueLeaf("ab", {.dns_names = {"a.test", "b.test"}});
  ASSERT_TRUE(leaf.ok());
  NginxOptions options;
  options.tls = NginxTlsOptions{.cert_file = leaf->chain_file,
                                .key_file = leaf->key_file};
  // nginx's default server answers any name; c.test's handshake would fail
  // verification, so c.test has its own certificate check below.
  auto nginx = NginxServer::Start(options);
  ASSERT_TRUE(nginx.ok()) << nginx.status();
  auto client = Client(pki_->ca_file(), HttpProtocols::kAuto);

  absl::StatusOr<Response> a =
      Call(*client, Get((*nginx)->UrlFor("https", "a.test", "/hello.txt")));
  ASSERT_TRUE(a.ok()) << a.status();
  absl::StatusOr<Response> b =
      Call(*client, Get((*nginx)->UrlFor("https", "b.test", "/hello.txt")));
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->connection.connection_id, a->connection.connection_id);
  EXPECT_TRUE(b->connection.reused);
  EXPECT_EQ(client->pool().Snapshot().connections_opened, 1u);
  // nginx saw b.test's request on a.test's connection (same serial), with
  // b.test as its host.
  auto log = (*nginx)->AwaitAccessLogEntries(2);
  ASSERT_TRUE(log.ok()) << log.status();
  EXPECT_EQ((*log)[0].connection, (*log)[1].connection);

  // c.test resolves to the same IP but the certificate does not cover it:
  // no coalescing; its own handshake then fails verification.
  absl::StatusOr<Response> c =
      Call(*client, Get((*nginx)->UrlFor("https", "c.test", "/hello.txt")));
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.status().message(),
              ::testing::HasSubstr("does not cover host name 'c.test'"));
  EXPECT_EQ(client->pool().Snapshot().connections_opened, 1u);
}

TEST_F(Http2ClientTest, NoCoalescingWhenTheCertificateCoversOnlyOneHost) {
  // Two certificates, two nginx ports on the same IP: a.test's certificate
  // covers a.test only, so b.test gets its own connection.
  auto a_leaf = pki_->IssueLeaf("a", {.dns_names = {"a.test", "b.test"}});
  ASSERT_TRUE(a_leaf.ok());
  auto only_a = pki_->IssueLeaf("only-a", {.dns_names = {"a.test"}});
  ASSERT_TRUE(only_a.ok());
  NginxOptions options;
  options.tls = NginxTlsOptions{.cert_file = only_a->chain_file,
                                .key_file = only_a->key_file};
  auto nginx = NginxServer::Start(options);
  ASSERT_TRUE(nginx.ok()) << nginx.status();
  auto client = Client(pki_->ca_file(), HttpProtocols::kAuto);
  absl::StatusOr<Response> a =
      Call(*client, Get((*nginx)->UrlFor("https", "a.test", "/hello.txt")));
  ASSERT_TRUE(a.ok()) << a.status();
  absl::StatusOr<Response> b =
      Call(*client, Get((*nginx)->UrlFor("https", "b.test", "/hello.txt")));
  // b.test was not coalesced onto a.test's connection: it connected on its
  // own (and nginx's certificate does not cover it).
  ASSERT_FALSE(b.ok());
  EXPECT_THAT(b.status().message(),
              ::testing::HasSubstr("does not cover host name 'b.test'"));
  EXPECT_EQ(client->pool().Snapshot().connect_failures, 1u);
}

}  // namespace
}  // namespace egress
