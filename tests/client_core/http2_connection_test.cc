// Http2Connection against real servers: Debian's nghttpd (the nghttp2
// project's reference server) for the normal paths, and H2FaultServer for the
// faults (GOAWAY, REFUSED_STREAM, unanswered PINGs, SETTINGS changes, resets,
// a peer that closes TCP).
//
// Each test drives the connection from its own event loop thread, as the
// pool does: Start() and every Exchange run on the loop; the test thread
// waits for results.
#include "client_core/http2/http2_connection.h"

#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <chrono>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "asio/co_spawn.hpp"
#include "asio/executor_work_guard.hpp"
#include "asio/experimental/as_tuple.hpp"
#include "asio/io_context.hpp"
#include "asio/ip/tcp.hpp"
#include "asio/post.hpp"
#include "asio/steady_timer.hpp"
#include "asio/this_coro.hpp"
#include "asio/use_awaitable.hpp"
#include "client_core/base/sync.h"
#include "client_core/connection/close_reason.h"
#include "client_core/net/call_abort.h"
#include "client_core/url/url.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/h2_fault_server.h"
#include "tests/support/nghttpd.h"

namespace egress {
namespace {

using ::egress::testing::H2FaultServer;
using ::egress::testing::H2FaultServerOptions;
using ::egress::testing::H2Reply;
using ::egress::testing::H2Request;
using ::egress::testing::H2ServerStats;
using ::egress::testing::NghttpdOptions;
using ::egress::testing::NghttpdServer;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr auto kNoThrow = asio::experimental::as_tuple(asio::use_awaitable);
constexpr uint64_t kMaxBody = 64 << 20;
constexpr absl::Duration kWait = absl::Seconds(10);

// An event loop on its own thread, standing in for one of egressd's loops.
class LoopThread {
 public:
  LoopThread() : thread_([this] { io_.run(); }) {}
  ~LoopThread() {
    work_.reset();
    thread_.join();
  }

  asio::io_context& io() { return io_; }
  asio::any_io_executor executor() { return io_.get_executor(); }

  // Runs `task` on the loop and waits for its result.
  template <typename T>
  T Run(asio::awaitable<T> task) {
    Notification done;
    std::optional<T> result;
    std::exception_ptr error;
    asio::co_spawn(io_, std::move(task),
                   [&](std::exception_ptr e, T value) {
                     error = e;
                     if (!e) result.emplace(std::move(value));
                     done.Notify();
                   });
    done.WaitForNotification();
    if (error) std::rethrow_exception(error);
    return std::move(*result);
  }

  // Runs `f` on the loop and waits for it.
  void RunSync(const std::function<void()>& f) {
    Notification done;
    asio::post(io_, [&] {
      f();
      done.Notify();
    });
    done.WaitForNotification();
  }

 private:
  asio::io_context io_{1};
  asio::executor_work_guard<asio::io_context::executor_type> work_{
      io_.get_executor()};
  std::thread thread_;
};

// An exchange started on the loop; Wait() for its result.
struct PendingExchange {
  Notification done;
  ExchangeResult result;

  const ExchangeResult& Wait() {
    done.WaitForNotification();
    return result;
  }
};

class RecordingObserver : public ConnectionObserver {
 public:
  void OnAllocationLimitChanged(uint64_t) override {
    MutexLock lock(&mu_);
    ++limit_changes_;
  }
  void OnNoNewExchanges(uint64_t, CloseReason reason) override {
    MutexLock lock(&mu_);
    reasons_.push_back(reason);
  }

  int limit_changes() {
    MutexLock lock(&mu_);
    return limit_changes_;
  }
  std::vector<CloseReason> reasons() {
    MutexLock lock(&mu_);
    return reasons_;
  }
  bool AwaitReason(CloseReason reason) {
    MutexLock lock(&mu_);
    return mu_.AwaitWithTimeout(
        [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
          return std::find(reasons_.begin(), reasons_.end(), reason) !=
                 reasons_.end();
        },
        kWait);
  }

 private:
  Mutex mu_;
  int limit_changes_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<CloseReason> reasons_ ABSL_GUARDED_BY(mu_);
};

// Collects a streamed response. Runs on the loop; the test reads it after
// the exchange is done.
class CollectingSink : public ExchangeSink {
 public:
  explicit CollectingSink(asio::any_io_executor executor)
      : executor_(std::move(executor)) {}

  // Hold the first chunk this long before taking it (a slow consumer), then
  // call `after_pause`.
  absl::Duration pause_first = absl::ZeroDuration();
  std::function<void()> after_pause;
  // Abandon the response once this many bytes arrived (0: never).
  size_t abandon_after = 0;

  int heads = 0;
  int status = 0;
  int chunks = 0;
  size_t largest_chunk = 0;
  std::string body;

  asio::awaitable<bool> OnHead(const ResponseHead& head) override {
    ++heads;
    status = head.status_code;
    co_return true;
  }
  asio::awaitable<bool> OnBody(std::string chunk) override {
    ++chunks;
    largest_chunk = std::max(largest_chunk, chunk.size());
    if (chunks == 1 && pause_first > absl::ZeroDuration()) {
      asio::steady_timer timer(executor_,
                               absl::ToChronoNanoseconds(pause_first));
      co_await timer.async_wait(kNoThrow);
      if (after_pause) after_pause();
    }
    body += chunk;
    co_return abandon_after == 0 || body.size() < abandon_after;
  }

 private:
  asio::any_io_executor executor_;
};

Request MakeRequest(const std::string& method, const std::string& url,
                    std::string body = "") {
  Request request;
  request.method = method;
  absl::StatusOr<Url> parsed = ParseUrl(url);
  EXPECT_TRUE(parsed.ok()) << parsed.status();
  if (parsed.ok()) request.url = *parsed;
  request.body = std::move(body);
  return request;
}

// A body whose every offset is recognisable, so reordering shows.
std::string PatternBody(size_t size) {
  std::string body;
  body.reserve(size + 16);
  for (size_t i = 0; body.size() < size; ++i) absl::StrAppend(&body, i, ",");
  body.resize(size);
  return body;
}

// Runs `requests` on `connection` with at most `concurrency` in flight.
asio::awaitable<void> Worker(Http2Connection* connection,
                             const std::vector<Request>* requests,
                             std::vector<ExchangeResult>* results,
                             size_t* next, int* in_flight, int* max_in_flight) {
  while (*next < requests->size()) {
    const size_t i = (*next)++;
    *max_in_flight = std::max(*max_in_flight, ++*in_flight);
    (*results)[i] = co_await connection->Exchange(
        (*requests)[i], Http1Limits(), kMaxBody, absl::Now() + absl::Seconds(30));
    --*in_flight;
  }
}

struct ConcurrentRun {
  std::vector<ExchangeResult> results;
  int max_in_flight = 0;
};

asio::awaitable<ConcurrentRun> RunConcurrently(
    Http2Connection* connection, const std::vector<Request>* requests,
    int concurrency) {
  ConcurrentRun run;
  run.results.resize(requests->size());
  size_t next = 0;
  int in_flight = 0;
  int running = concurrency;
  auto executor = co_await asio::this_coro::executor;
  asio::steady_timer all_done(executor,
                              std::chrono::steady_clock::time_point::max());
  for (int w = 0; w < concurrency; ++w) {
    asio::co_spawn(executor,
                   Worker(connection, requests, &run.results, &next,
                          &in_flight, &run.max_in_flight),
                   [&](std::exception_ptr) {
                     if (--running == 0) all_done.cancel();
                   });
  }
  while (running > 0) co_await all_done.async_wait(kNoThrow);
  co_return run;
}

class Http2ConnectionTest : public ::testing::Test {
 protected:
  void TearDown() override {
    for (auto& connection : connections_) {
      loop_.RunSync([&] { connection->Close(); });
    }
  }

  std::shared_ptr<Http2Connection> Connect(
      int port, const Http2Options& options = Http2Options()) {
    asio::ip::tcp::socket socket(loop_.io());
    asio::error_code ec;
    socket.connect(
        asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), port),
        ec);
    EXPECT_FALSE(ec) << ec.message();
    auto connection = std::make_shared<Http2Connection>(
        connections_.size() + 1,
        Address{"http", "127.0.0.1", static_cast<uint16_t>(port)},
        std::make_unique<Transport>(std::move(socket)), options);
    loop_.RunSync([&] {
      connection->set_observer(&observer_);
      connection->Start();
    });
    connections_.push_back(connection);
    return connection;
  }

  ExchangeResult Exchange(Http2Connection& connection, const Request& request,
                          absl::Duration timeout = kWait,
                          ExchangeSink* sink = nullptr,
                          CallAbort* abort = nullptr,
                          uint64_t max_body = kMaxBody) {
    return loop_.Run(connection.Exchange(request, limits_, max_body,
                                         absl::Now() + timeout, sink, abort));
  }

  std::shared_ptr<PendingExchange> Start(Http2Connection& connection,
                                         const Request& request,
                                         absl::Duration timeout = kWait,
                                         CallAbort* abort = nullptr) {
    auto pending = std::make_shared<PendingExchange>();
    asio::co_spawn(loop_.io(),
                   connection.Exchange(request, limits_, kMaxBody,
                                       absl::Now() + timeout, nullptr, abort),
                   [pending](std::exception_ptr, ExchangeResult result) {
                     pending->result = std::move(result);
                     pending->done.Notify();
                   });
    return pending;
  }

  absl::Status Ping(Http2Connection& connection, absl::Duration timeout) {
    return loop_.Run(connection.Ping(timeout));
  }

  // Exchange keeps a reference to its limits until it completes, so they
  // must outlive exchanges started in the background.
  const Http1Limits limits_;
  // Declared before the connections: destroyed after them (they report to
  // the observer).
  LoopThread loop_;
  RecordingObserver observer_;
  std::vector<std::shared_ptr<Http2Connection>> connections_;
};

// ---------------------------------------------------------------------------
// Against nghttpd.

constexpr size_t kBigFileBytes = 4 << 20;

class Http2NghttpdTest : public Http2ConnectionTest {
 protected:
  static void SetUpTestSuite() {
    NghttpdOptions options;
    options.max_concurrent_streams = 10;
    options.echo_upload = true;
    options.files = {{"hello.txt", "hello\n"},
                     {"big.bin", PatternBody(kBigFileBytes)}};
    options.extra_args = {"--trailer=x-egress-trailer: yes"};
    absl::StatusOr<std::unique_ptr<NghttpdServer>> server =
        NghttpdServer::Start(options);
    ASSERT_TRUE(server.ok()) << server.status();
    nghttpd_ = server->release();
  }
  static void TearDownTestSuite() {
    delete nghttpd_;
    nghttpd_ = nullptr;
  }

  static NghttpdServer* nghttpd_;
};

NghttpdServer* Http2NghttpdTest::nghttpd_ = nullptr;

TEST_F(Http2NghttpdTest, HundredExchangesWithinTheAllocationLimitOnOneConnection) {
  auto connection = Connect(nghttpd_->port());
  // The PONG comes after nghttpd's SETTINGS.
  ASSERT_TRUE(Ping(*connection, kWait).ok());
  EXPECT_EQ(connection->allocation_limit(), 10);
  EXPECT_EQ(connection->stream_counts().peer_max_concurrent_streams, 10u);
  EXPECT_GE(observer_.limit_changes(), 1);

  std::vector<Request> requests;
  for (int i = 0; i < 100; ++i) {
    requests.push_back(MakeRequest("GET", nghttpd_->Url("/hello.txt")));
  }
  const ConcurrentRun run = loop_.Run(RunConcurrently(
      connection.get(), &requests, connection->allocation_limit()));
  EXPECT_EQ(run.max_in_flight, 10);
  for (const ExchangeResult& result : run.results) {
    ASSERT_TRUE(result.response.ok()) << result.response.status();
    EXPECT_EQ(result.response->status_code, 200);
    EXPECT_EQ(result.response->body, "hello\n");
    EXPECT_EQ(result.response->protocol, "h2");
    EXPECT_TRUE(result.completed);
    EXPECT_TRUE(result.request_written);
    EXPECT_FALSE(result.close_reason.has_value());
  }
  const Http2Connection::StreamCounts counts = connection->stream_counts();
  EXPECT_EQ(counts.started, 100u);
  EXPECT_EQ(counts.succeeded, 100u);
  EXPECT_EQ(counts.failed, 0u);
  EXPECT_NE(counts.last_frame_received, absl::InfinitePast());
  EXPECT_EQ(connection->ProbeHealth(), Connection::Health::kHealthy);
  EXPECT_THAT(observer_.reasons(), ::testing::IsEmpty());
}

TEST_F(Http2NghttpdTest, PostBodyRoundTripsLargerThanTheWindow) {
  auto connection = Connect(nghttpd_->port());
  // Larger than the peer's 64 KiB initial windows: sending waits for
  // WINDOW_UPDATEs.
  const std::string body = PatternBody(300 * 1024);
  const Request request = MakeRequest("POST", nghttpd_->Url("/echo"), body);
  const ExchangeResult result = Exchange(*connection, request);
  ASSERT_TRUE(result.response.ok()) << result.response.status();
  EXPECT_EQ(result.response->status_code, 200);
  EXPECT_EQ(result.response->body.size(), body.size());
  EXPECT_TRUE(result.response->body == body);
  EXPECT_TRUE(result.request_written);
  EXPECT_NE(result.request_written_at, absl::InfinitePast());
  EXPECT_GE(result.first_byte_at, result.request_written_at);
}

TEST_F(Http2NghttpdTest, ResponseTrailersAreReturned) {
  auto connection = Connect(nghttpd_->port());
  const ExchangeResult result =
      Exchange(*connection, MakeRequest("GET", nghttpd_->Url("/hello.txt")));
  ASSERT_TRUE(result.response.ok()) << result.response.status();
  EXPECT_THAT(result.response->trailers,
              ElementsAre(::testing::AllOf(
                  ::testing::Field(&HeaderField::name, "x-egress-trailer"),
                  ::testing::Field(&HeaderField::value, "yes"))));
  EXPECT_THAT(result.response->headers,
              Not(Contains(::testing::Field(&HeaderField::name,
                                            "x-egress-trailer"))));
}

TEST_F(Http2NghttpdTest, HeadResponseHasNoBody) {
  auto connection = Connect(nghttpd_->port());
  const ExchangeResult result =
      Exchange(*connection, MakeRequest("HEAD", nghttpd_->Url("/big.bin")));
  ASSERT_TRUE(result.response.ok()) << result.response.status();
  EXPECT_EQ(result.response->status_code, 200);
  EXPECT_TRUE(result.response->body.empty());
  EXPECT_THAT(result.response->headers,
              Contains(::testing::AllOf(
                  ::testing::Field(&HeaderField::name, "content-length"),
                  ::testing::Field(&HeaderField::value,
                                   absl::StrCat(kBigFileBytes)))));
  const ExchangeResult next =
      Exchange(*connection, MakeRequest("GET", nghttpd_->Url("/hello.txt")));
  ASSERT_TRUE(next.response.ok()) << next.response.status();
}

TEST_F(Http2NghttpdTest, StreamsALargeResponseThroughASink) {
  auto connection = Connect(nghttpd_->port());
  CollectingSink sink(loop_.executor());
  const ExchangeResult result =
      Exchange(*connection, MakeRequest("GET", nghttpd_->Url("/big.bin")),
               kWait, &sink);
  ASSERT_TRUE(result.response.ok()) << result.response.status();
  EXPECT_TRUE(result.completed);
  EXPECT_TRUE(result.response->body.empty());  // it went to the sink
  EXPECT_EQ(sink.heads, 1);
  EXPECT_EQ(sink.status, 200);
  EXPECT_GT(sink.chunks, 1);
  EXPECT_LE(sink.largest_chunk, 16u * 1024);  // one DATA frame at most
  EXPECT_EQ(sink.body.size(), kBigFileBytes);
  EXPECT_TRUE(sink.body == PatternBody(kBigFileBytes));
}

TEST_F(Http2NghttpdTest, AbandonedStreamIsResetAndTheConnectionStays) {
  auto connection = Connect(nghttpd_->port());
  CollectingSink sink(loop_.executor());
  sink.abandon_after = 100 * 1024;
  const ExchangeResult abandoned =
      Exchange(*connection, MakeRequest("GET", nghttpd_->Url("/big.bin")),
               kWait, &sink);
  EXPECT_EQ(abandoned.response.status().code(), absl::StatusCode::kCancelled)
      << abandoned.response.status();
  EXPECT_FALSE(abandoned.close_reason.has_value());
  EXPECT_FALSE(abandoned.completed);

  const ExchangeResult next =
      Exchange(*connection, MakeRequest("GET", nghttpd_->Url("/hello.txt")));
  ASSERT_TRUE(next.response.ok()) << next.response.status();
  EXPECT_EQ(next.response->body, "hello\n");
  EXPECT_EQ(connection->ProbeHealth(), Connection::Health::kHealthy);
}

TEST_F(Http2NghttpdTest, BodyOverTheLimitIsResourceExhaustedAndTheConnectionStays) {
  auto connection = Connect(nghttpd_->port());
  const ExchangeResult result =
      Exchange(*connection, MakeRequest("GET", nghttpd_->Url("/big.bin")),
               kWait, nullptr, nullptr, /*max_body=*/1000);
  EXPECT_EQ(result.response.status().code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(result.response.status().message(),
              HasSubstr("exceeds 1000 bytes (max_response_body_bytes)"));
  EXPECT_FALSE(result.close_reason.has_value());

  const ExchangeResult next =
      Exchange(*connection, MakeRequest("GET", nghttpd_->Url("/hello.txt")));
  ASSERT_TRUE(next.response.ok()) << next.response.status();
}

// ---------------------------------------------------------------------------
// Against the fault server.

H2Reply Ok(std::string body) {
  H2Reply reply;
  reply.body = std::move(body);
  return reply;
}

TEST_F(Http2ConnectionTest, SendsPseudoHeadersAndDropsConnectionHeaders) {
  Mutex mu;
  std::vector<H2Request> seen;
  H2FaultServer server([&](const H2Request& request) {
    MutexLock lock(&mu);
    seen.push_back(request);
    return Ok("ok");
  });
  auto connection = Connect(server.port());
  Request request = MakeRequest("GET", server.Url("/a/b?c=d"));
  request.headers = {{"X-Custom", "v"},
                     {"Connection", "close"},
                     {"Host", "example.test"},
                     {"TE", "trailers"}};
  const ExchangeResult result = Exchange(*connection, request);
  ASSERT_TRUE(result.response.ok()) << result.response.status();
  EXPECT_EQ(result.response->body, "ok");

  MutexLock lock(&mu);
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].method, "GET");
  EXPECT_EQ(seen[0].scheme, "http");
  EXPECT_EQ(seen[0].authority, "example.test");
  EXPECT_EQ(seen[0].path, "/a/b?c=d");
  std::vector<std::string> names;
  for (const HeaderField& field : seen[0].headers) names.push_back(field.name);
  EXPECT_THAT(names, ElementsAre("x-custom", "te"));
}

TEST_F(Http2ConnectionTest, SinkBackpressureHoldsTheOriginToTheStreamWindow) {
  const std::string body = PatternBody(4 << 20);
  H2FaultServer server([&](const H2Request&) { return Ok(body); });
  Http2Options options;
  options.stream_window_bytes = 32 * 1024;
  auto connection = Connect(server.port(), options);

  CollectingSink sink(loop_.executor());
  // While the sink holds its first chunk nothing is consumed, so the server
  // can send no more than the stream window.
  sink.pause_first = absl::Milliseconds(300);
  uint64_t sent_while_paused = 0;
  sink.after_pause = [&] { sent_while_paused = server.stats().data_bytes_sent; };
  const ExchangeResult result = Exchange(
      *connection, MakeRequest("GET", server.Url("/big")), kWait, &sink);
  ASSERT_TRUE(result.response.ok()) << result.response.status();
  EXPECT_GT(sent_while_paused, 0u);
  EXPECT_LE(sent_while_paused, 32u * 1024);
  EXPECT_EQ(sink.body.size(), body.size());
  EXPECT_TRUE(sink.body == body);
}

TEST_F(Http2ConnectionTest, GoawayFailsStreamsAboveLastStreamIdAndFinishesTheOthers) {
  // Streams 1 and 3 are held until stream 5 arrives; then GOAWAY(last 3)
  // and the answers to 1 and 3.
  H2FaultServer server([](const H2Request& request) {
    H2Reply reply = Ok(absl::StrCat("stream ", request.stream_id));
    if (request.index_on_connection < 2) {
      reply.hold = true;
    } else {
      reply.goaway_last_stream_id = 3;
      reply.release_held = true;
    }
    return reply;
  });
  auto connection = Connect(server.port());
  const Request a = MakeRequest("GET", server.Url("/a"));
  const Request b = MakeRequest("GET", server.Url("/b"));
  const Request c = MakeRequest("POST", server.Url("/c"), "not idempotent");
  auto pa = Start(*connection, a);
  auto pb = Start(*connection, b);
  auto pc = Start(*connection, c);

  const ExchangeResult& ra = pa->Wait();
  const ExchangeResult& rb = pb->Wait();
  const ExchangeResult& rc = pc->Wait();
  ASSERT_TRUE(ra.response.ok()) << ra.response.status();
  EXPECT_EQ(ra.response->body, "stream 1");
  ASSERT_TRUE(rb.response.ok()) << rb.response.status();
  EXPECT_EQ(rb.response->body, "stream 3");
  EXPECT_EQ(rc.response.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(rc.response.status().message(), HasSubstr("GOAWAY"));
  EXPECT_TRUE(rc.not_processed);
  EXPECT_FALSE(rc.refused_stream);

  EXPECT_TRUE(observer_.AwaitReason(CloseReason::kGoaway));
  EXPECT_EQ(connection->ProbeHealth(), Connection::Health::kPeerClosed);

  // No new stream goes out on it.
  const ExchangeResult late =
      Exchange(*connection, MakeRequest("GET", server.Url("/late")));
  EXPECT_EQ(late.response.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(late.not_processed);
  EXPECT_EQ(server.stats().requests, 3);
}

TEST_F(Http2ConnectionTest, TwoRefusedStreamsStopNewExchanges) {
  H2FaultServer server([](const H2Request& request) {
    H2Reply reply = Ok("ok");
    if (request.index_on_connection < 2) {
      reply.reset_code = NGHTTP2_REFUSED_STREAM;
    }
    return reply;
  });
  auto connection = Connect(server.port());

  const ExchangeResult first =
      Exchange(*connection, MakeRequest("GET", server.Url("/1")));
  EXPECT_EQ(first.response.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(first.response.status().message(), HasSubstr("REFUSED_STREAM"));
  EXPECT_TRUE(first.not_processed);
  EXPECT_TRUE(first.refused_stream);
  EXPECT_FALSE(first.close_reason.has_value());
  EXPECT_THAT(observer_.reasons(), ::testing::IsEmpty());
  EXPECT_EQ(connection->ProbeHealth(), Connection::Health::kHealthy);

  const ExchangeResult second =
      Exchange(*connection, MakeRequest("GET", server.Url("/2")));
  EXPECT_TRUE(second.not_processed);
  EXPECT_TRUE(second.refused_stream);
  EXPECT_THAT(observer_.reasons(), ElementsAre(CloseReason::kRefusedStream));
  EXPECT_EQ(connection->ProbeHealth(), Connection::Health::kPeerClosed);

  const ExchangeResult third =
      Exchange(*connection, MakeRequest("GET", server.Url("/3")));
  EXPECT_TRUE(third.not_processed);
  EXPECT_EQ(server.stats().requests, 2);
}

TEST_F(Http2ConnectionTest, UnansweredPingKillsTheConnection) {
  H2FaultServerOptions server_options;
  server_options.answer_pings = false;
  H2FaultServer server(
      [](const H2Request&) {
        H2Reply reply;
        reply.no_reply = true;
        return reply;
      },
      server_options);
  Http2Options options;
  options.ping_interval = absl::Milliseconds(100);
  options.ping_timeout = absl::Milliseconds(200);
  auto connection = Connect(server.port(), options);

  // A stream in progress when the PING goes unanswered fails with it.
  const ExchangeResult stuck =
      Exchange(*connection, MakeRequest("GET", server.Url("/stuck")));
  EXPECT_EQ(stuck.response.status().code(), absl::StatusCode::kUnavailable)
      << stuck.response.status();
  EXPECT_THAT(stuck.response.status().message(), HasSubstr("PING"));
  EXPECT_EQ(stuck.close_reason, CloseReason::kPingTimeout);
  EXPECT_TRUE(stuck.request_written);
  EXPECT_FALSE(stuck.not_processed);

  EXPECT_THAT(observer_.reasons(), ElementsAre(CloseReason::kPingTimeout));
  EXPECT_GE(server.stats().pings_received, 1);
  EXPECT_EQ(connection->ProbeHealth(), Connection::Health::kPeerClosed);
  const absl::Status ping = Ping(*connection, absl::Seconds(1));
  EXPECT_EQ(ping.code(), absl::StatusCode::kUnavailable);
}

TEST_F(Http2ConnectionTest, PingWithoutAnswerFailsAndMarksTheConnectionDead) {
  H2FaultServerOptions server_options;
  H2FaultServer server([](const H2Request&) { return Ok("ok"); },
                       server_options);
  Http2Options options;
  options.ping_interval = absl::ZeroDuration();  // only explicit PINGs
  auto connection = Connect(server.port(), options);
  EXPECT_TRUE(Ping(*connection, kWait).ok());
  EXPECT_EQ(server.stats().pings_received, 1);

  server.set_answer_pings(false);
  const absl::Status ping = Ping(*connection, absl::Milliseconds(200));
  EXPECT_EQ(ping.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(ping.message(), HasSubstr("no answer to PING within 200ms"));
  EXPECT_THAT(observer_.reasons(), ElementsAre(CloseReason::kPingTimeout));
  EXPECT_EQ(connection->ProbeHealth(), Connection::Health::kPeerClosed);
  const ExchangeResult after =
      Exchange(*connection, MakeRequest("GET", server.Url("/")));
  EXPECT_TRUE(after.not_processed);
  EXPECT_EQ(after.close_reason, CloseReason::kPingTimeout);
}

TEST_F(Http2ConnectionTest, KeepAlivePingsAnIdleConnection) {
  H2FaultServer server([](const H2Request&) { return Ok("ok"); });
  Http2Options options;
  options.ping_interval = absl::Milliseconds(50);
  options.ping_timeout = absl::Seconds(5);
  auto connection = Connect(server.port(), options);
  EXPECT_TRUE(server.AwaitStats(
      [](const H2ServerStats& s) { return s.pings_received >= 3; }));
  EXPECT_EQ(connection->ProbeHealth(), Connection::Health::kHealthy);
  EXPECT_THAT(observer_.reasons(), ::testing::IsEmpty());
}

TEST_F(Http2ConnectionTest, SettingsLoweringTheStreamLimitAreFollowed) {
  H2FaultServerOptions server_options;
  server_options.max_concurrent_streams = 10;
  H2FaultServer server(
      [](const H2Request& request) {
        H2Reply reply = Ok("ok");
        if (request.index_on_connection == 2) reply.max_concurrent_streams = 2;
        return reply;
      },
      server_options);
  auto connection = Connect(server.port());
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(Exchange(*connection, MakeRequest("GET", server.Url("/")))
                    .response.ok());
  }
  EXPECT_EQ(connection->allocation_limit(), 10);
  const int changes = observer_.limit_changes();
  EXPECT_GE(changes, 1);

  ASSERT_TRUE(
      Exchange(*connection, MakeRequest("GET", server.Url("/"))).response.ok());
  EXPECT_EQ(connection->allocation_limit(), 2);
  EXPECT_EQ(observer_.limit_changes(), changes + 1);
  EXPECT_EQ(connection->stream_counts().peer_max_concurrent_streams, 2u);
  EXPECT_EQ(connection->ProbeHealth(), Connection::Health::kHealthy);
}

TEST_F(Http2ConnectionTest, ClientCapBoundsTheAllocationLimit) {
  H2FaultServer server([](const H2Request&) { return Ok("ok"); });
  Http2Options options;
  options.max_concurrent_streams = 4;
  auto connection = Connect(server.port(), options);
  // One stream until the peer's SETTINGS said how many (a PING's answer
  // comes after them).
  ASSERT_TRUE(Ping(*connection, kWait).ok());
  EXPECT_TRUE(connection->allocation_limit_known());
  EXPECT_EQ(connection->allocation_limit(), 4);  // peer allows 100
  EXPECT_EQ(connection->stream_counts().peer_max_concurrent_streams, 100u);
}

TEST_F(Http2ConnectionTest, SettingsAllowingNoStreamsFailHeldStreamsAtOnce) {
  // The first request lowers the limit to 0 and is answered 300 ms later;
  // the second, held by nghttp2 behind the first (limit 1), must fail at
  // once as not processed instead of waiting for its deadline.
  H2FaultServer server(
      [](const H2Request& request) {
        H2Reply reply = Ok(absl::StrCat("served ", request.index));
        reply.max_concurrent_streams = 0;
        reply.delay = absl::Milliseconds(300);
        return reply;
      },
      H2FaultServerOptions{.max_concurrent_streams = 1});
  auto connection = Connect(server.port());
  ASSERT_TRUE(Ping(*connection, kWait).ok());
  ASSERT_EQ(connection->allocation_limit(), 1);

  // Exchanges keep a reference to their requests: named, not temporaries.
  const Request one = MakeRequest("GET", server.Url("/1"));
  const Request two = MakeRequest("POST", server.Url("/2"), "x");
  const absl::Time start = absl::Now();
  auto first = Start(*connection, one);
  auto held = Start(*connection, two, absl::Seconds(30));
  const ExchangeResult& refused = held->Wait();
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
  EXPECT_EQ(refused.response.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(refused.response.status().message(),
              HasSubstr("SETTINGS_MAX_CONCURRENT_STREAMS 0"));
  EXPECT_TRUE(refused.not_processed);
  EXPECT_FALSE(refused.request_written);

  const ExchangeResult& served = first->Wait();
  ASSERT_TRUE(served.response.ok()) << served.response.status();
  EXPECT_EQ(served.response->body, "served 0");
  EXPECT_THAT(observer_.reasons(), ElementsAre(CloseReason::kRefusedStream));
  EXPECT_EQ(connection->allocation_limit(), 0);

  // No new exchange is taken.
  const ExchangeResult late =
      Exchange(*connection, MakeRequest("GET", server.Url("/3")));
  EXPECT_TRUE(late.not_processed);
  EXPECT_THAT(late.response.status().message(),
              HasSubstr("SETTINGS_MAX_CONCURRENT_STREAMS 0"));
  EXPECT_EQ(server.stats().requests, 1);
}

TEST_F(Http2ConnectionTest, MisdirectedRequestIsAResponse) {
  H2FaultServer server([](const H2Request&) {
    H2Reply reply;
    reply.status = 421;
    return reply;
  });
  auto connection = Connect(server.port());
  const ExchangeResult result =
      Exchange(*connection, MakeRequest("GET", server.Url("/")));
  ASSERT_TRUE(result.response.ok()) << result.response.status();
  EXPECT_EQ(result.response->status_code, 421);
  EXPECT_TRUE(result.completed);
  EXPECT_EQ(connection->ProbeHealth(), Connection::Health::kHealthy);
}

TEST_F(Http2ConnectionTest, TrailersAndHeadersFromTheFaultServer) {
  H2FaultServer server([](const H2Request&) {
    H2Reply reply = Ok("body");
    reply.headers = {{"X-Head", "1"}};
    reply.trailers = {{"X-Checksum", "abc"}};
    return reply;
  });
  auto connection = Connect(server.port());
  const ExchangeResult result =
      Exchange(*connection, MakeRequest("GET", server.Url("/")));
  ASSERT_TRUE(result.response.ok()) << result.response.status();
  EXPECT_EQ(result.response->body, "body");
  EXPECT_THAT(result.response->headers,
              Contains(::testing::Field(&HeaderField::name, "x-head")));
  ASSERT_EQ(result.response->trailers.size(), 1u);
  EXPECT_EQ(result.response->trailers[0].name, "x-checksum");
  EXPECT_EQ(result.response->trailers[0].value, "abc");
}

TEST_F(Http2ConnectionTest, InterimResponsesAreSkipped) {
  H2FaultServer server([](const H2Request&) {
    H2Reply reply = Ok("final");
    reply.interim_status = 103;
    reply.headers = {{"X-Final", "1"}};
    return reply;
  });
  auto connection = Connect(server.port());
  CollectingSink sink(loop_.executor());
  const ExchangeResult streamed = Exchange(
      *connection, MakeRequest("GET", server.Url("/")), kWait, &sink);
  ASSERT_TRUE(streamed.response.ok()) << streamed.response.status();
  EXPECT_EQ(sink.heads, 1);
  EXPECT_EQ(sink.status, 200);
  EXPECT_EQ(sink.body, "final");

  const ExchangeResult buffered =
      Exchange(*connection, MakeRequest("GET", server.Url("/")));
  ASSERT_TRUE(buffered.response.ok()) << buffered.response.status();
  EXPECT_EQ(buffered.response->status_code, 200);
  EXPECT_EQ(buffered.response->body, "final");
  std::vector<std::string> names;
  for (const HeaderField& field : buffered.response->headers) {
    names.push_back(field.name);
  }
  EXPECT_THAT(names, Contains("x-final"));
  EXPECT_THAT(names, Not(Contains("link")));  // the 103's field
}

TEST_F(Http2ConnectionTest, HeaderListOverTheLimitResetsTheStreamOnly) {
  H2FaultServer server([](const H2Request& request) {
    H2Reply reply = Ok("ok");
    if (request.index_on_connection == 0) {
      reply.headers = {{"X-Big", std::string(8 * 1024, 'a')}};
    }
    return reply;
  });
  Http2Options options;
  options.max_header_list_bytes = 4 * 1024;
  auto connection = Connect(server.port(), options);
  const ExchangeResult big =
      Exchange(*connection, MakeRequest("GET", server.Url("/big")));
  EXPECT_EQ(big.response.status().code(), absl::StatusCode::kResourceExhausted)
      << big.response.status();
  EXPECT_THAT(big.response.status().message(),
              HasSubstr("response header list exceeds 4096 bytes"));
  EXPECT_FALSE(big.close_reason.has_value());

  const ExchangeResult next =
      Exchange(*connection, MakeRequest("GET", server.Url("/small")));
  ASSERT_TRUE(next.response.ok()) << next.response.status();
  EXPECT_EQ(server.stats().connections_accepted, 1);
}

TEST_F(Http2ConnectionTest, OtherStreamResetIsUnavailableNamingTheCode) {
  H2FaultServer server([](const H2Request& request) {
    H2Reply reply = Ok("ok");
    if (request.index_on_connection == 0) {
      reply.reset_code = NGHTTP2_INTERNAL_ERROR;
    }
    return reply;
  });
  auto connection = Connect(server.port());
  const ExchangeResult reset =
      Exchange(*connection, MakeRequest("GET", server.Url("/x")));
  EXPECT_EQ(reset.response.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(reset.response.status().message(),
              HasSubstr("the origin reset the stream (INTERNAL_ERROR)"));
  EXPECT_THAT(reset.response.status().message(),
              HasSubstr(absl::StrCat("connection to 127.0.0.1:", server.port(),
                                     " failed while reading the response")));
  EXPECT_FALSE(reset.not_processed);
  EXPECT_FALSE(reset.refused_stream);
  EXPECT_FALSE(reset.close_reason.has_value());

  const ExchangeResult next =
      Exchange(*connection, MakeRequest("GET", server.Url("/y")));
  ASSERT_TRUE(next.response.ok()) << next.response.status();
  EXPECT_THAT(observer_.reasons(), ::testing::IsEmpty());
}

TEST_F(Http2ConnectionTest, FirstResetOfAStreamWinsOverALaterRefusal) {
  // RST_STREAM(INTERNAL_ERROR) then RST_STREAM(REFUSED_STREAM), one write:
  // the origin may have processed the POST; the late "refusal" of a stream
  // already closed must not make it look unprocessed (a replayed payment).
  H2FaultServer server([](const H2Request& request) {
    H2Reply reply = Ok("ok");
    if (request.index_on_connection == 0) {
      reply.reset_code = NGHTTP2_INTERNAL_ERROR;
      reply.second_reset_code = NGHTTP2_REFUSED_STREAM;
    }
    return reply;
  });
  auto connection = Connect(server.port());
  const ExchangeResult reset =
      Exchange(*connection, MakeRequest("POST", server.Url("/pay"), "42"));
  EXPECT_EQ(reset.response.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(reset.response.status().message(),
              HasSubstr("the origin reset the stream (INTERNAL_ERROR)"));
  EXPECT_FALSE(reset.not_processed);
  EXPECT_FALSE(reset.refused_stream);

  // The late REFUSED_STREAM counted as no refusal either.
  const ExchangeResult next =
      Exchange(*connection, MakeRequest("GET", server.Url("/y")));
  ASSERT_TRUE(next.response.ok()) << next.response.status();
  EXPECT_THAT(observer_.reasons(), ::testing::IsEmpty());
}

TEST_F(Http2ConnectionTest, SessionEndedByAProtocolErrorNamesCodeAndFault) {
  // Frames nghttp2 ends the session over; the failure names the GOAWAY's
  // error code and what the origin did (its debug data).
  struct Case {
    std::string frame;
    std::string code;
    std::string fault;
  };
  const std::vector<Case> cases = {
      {testing::H2Frame(NGHTTP2_WINDOW_UPDATE, 0, 0,
                        std::string("\x7f\xff\xff\xff", 4)),
       "FLOW_CONTROL_ERROR", "WINDOW_UPDATE"},
      {testing::H2Frame(NGHTTP2_PUSH_PROMISE, NGHTTP2_FLAG_END_HEADERS, 1,
                        std::string("\x00\x00\x00\x02\x82\x84\x86", 7)),
       "PROTOCOL_ERROR", "PUSH_PROMISE"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.code);
    H2FaultServer server([&](const H2Request&) {
      H2Reply reply;
      reply.no_reply = true;
      reply.raw_after = c.frame;
      return reply;
    });
    auto connection = Connect(server.port());
    const ExchangeResult failed =
        Exchange(*connection, MakeRequest("GET", server.Url("/x")));
    EXPECT_EQ(failed.response.status().code(), absl::StatusCode::kUnavailable);
    const std::string message(failed.response.status().message());
    EXPECT_THAT(message,
                HasSubstr(absl::StrCat("egressd ended the HTTP/2 session with "
                                       "GOAWAY (", c.code, ")")));
    EXPECT_THAT(message, HasSubstr(c.fault));
    EXPECT_EQ(failed.close_reason, CloseReason::kProtocolError);
  }
}

TEST_F(Http2ConnectionTest, DeadlineResetsTheStreamAndTheConnectionStays) {
  H2FaultServer server([](const H2Request& request) {
    H2Reply reply = Ok("late");
    if (request.index_on_connection == 0) reply.no_reply = true;
    return reply;
  });
  auto connection = Connect(server.port());
  const ExchangeResult slow = Exchange(
      *connection, MakeRequest("GET", server.Url("/slow")), absl::Milliseconds(200));
  EXPECT_EQ(slow.response.status().code(), absl::StatusCode::kDeadlineExceeded)
      << slow.response.status();
  EXPECT_THAT(slow.response.status().message(),
              HasSubstr("deadline exceeded while reading the response from"));
  EXPECT_FALSE(slow.close_reason.has_value());
  EXPECT_TRUE(slow.request_written);
  EXPECT_TRUE(server.AwaitStats([](const H2ServerStats& s) {
    return !s.rst_stream_codes.empty();
  }));
  EXPECT_THAT(server.stats().rst_stream_codes, ElementsAre(NGHTTP2_CANCEL));

  const ExchangeResult next =
      Exchange(*connection, MakeRequest("GET", server.Url("/next")));
  ASSERT_TRUE(next.response.ok()) << next.response.status();
  EXPECT_EQ(next.response->body, "late");
  EXPECT_EQ(server.stats().connections_accepted, 1);
}

TEST_F(Http2ConnectionTest, AbortResetsTheStreamAndTheConnectionStays) {
  H2FaultServer server([](const H2Request& request) {
    H2Reply reply = Ok("ok");
    if (request.index_on_connection == 0) reply.no_reply = true;
    return reply;
  });
  auto connection = Connect(server.port());
  CallAbort abort;
  const Request request = MakeRequest("GET", server.Url("/aborted"));
  auto pending = Start(*connection, request, kWait, &abort);
  ASSERT_TRUE(server.AwaitStats(
      [](const H2ServerStats& s) { return s.requests == 1; }));
  abort.Abort();
  const ExchangeResult& aborted = pending->Wait();
  EXPECT_EQ(aborted.response.status().code(), absl::StatusCode::kCancelled)
      << aborted.response.status();
  EXPECT_FALSE(aborted.close_reason.has_value());
  EXPECT_TRUE(server.AwaitStats([](const H2ServerStats& s) {
    return !s.rst_stream_codes.empty();
  }));
  EXPECT_THAT(server.stats().rst_stream_codes, ElementsAre(NGHTTP2_CANCEL));

  const ExchangeResult next =
      Exchange(*connection, MakeRequest("GET", server.Url("/next")));
  ASSERT_TRUE(next.response.ok()) << next.response.status();

  // Aborted before it starts: nothing is sent.
  const ExchangeResult early = Exchange(
      *connection, MakeRequest("GET", server.Url("/early")), kWait, nullptr,
      &abort);
  EXPECT_EQ(early.response.status().code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(server.stats().requests, 2);
}

TEST_F(Http2ConnectionTest, PeerClosingTcpFailsEveryStream) {
  H2FaultServer server([](const H2Request& request) {
    H2Reply reply;
    if (request.index_on_connection == 0) {
      reply.hold = true;
    } else {
      reply.close_connection = true;
    }
    return reply;
  });
  auto connection = Connect(server.port());
  const Request a = MakeRequest("GET", server.Url("/a"));
  auto pa = Start(*connection, a);
  ASSERT_TRUE(server.AwaitStats(
      [](const H2ServerStats& s) { return s.requests == 1; }));
  const ExchangeResult rb =
      Exchange(*connection, MakeRequest("GET", server.Url("/b")));
  const ExchangeResult& ra = pa->Wait();
  for (const ExchangeResult* r : {&ra, &rb}) {
    EXPECT_EQ(r->response.status().code(), absl::StatusCode::kUnavailable)
        << r->response.status();
    EXPECT_THAT(r->response.status().message(),
                HasSubstr(absl::StrCat("connection to 127.0.0.1:",
                                       server.port(), " failed while")));
    EXPECT_EQ(r->close_reason, CloseReason::kPeerClosed);
    EXPECT_TRUE(r->nothing_received);
  }
  EXPECT_THAT(observer_.reasons(), ElementsAre(CloseReason::kPeerClosed));
  EXPECT_EQ(connection->ProbeHealth(), Connection::Health::kPeerClosed);

  const ExchangeResult after =
      Exchange(*connection, MakeRequest("GET", server.Url("/c")));
  EXPECT_TRUE(after.not_processed);
  EXPECT_EQ(after.close_reason, CloseReason::kPeerClosed);
}

TEST_F(Http2ConnectionTest, CloseFailsStreamsInProgress) {
  H2FaultServer server([](const H2Request&) {
    H2Reply reply;
    reply.no_reply = true;
    return reply;
  });
  auto connection = Connect(server.port());
  const Request request = MakeRequest("GET", server.Url("/"));
  auto pending = Start(*connection, request);
  ASSERT_TRUE(server.AwaitStats(
      [](const H2ServerStats& s) { return s.requests == 1; }));
  loop_.RunSync([&] { connection->Close(); });
  const ExchangeResult& result = pending->Wait();
  EXPECT_EQ(result.response.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(result.close_reason, CloseReason::kShutdown);
  EXPECT_EQ(connection->ProbeHealth(), Connection::Health::kPeerClosed);
  // Closing is the owner's decision: the observer is not told.
  EXPECT_THAT(observer_.reasons(), ::testing::IsEmpty());
}

}  // namespace
}  // namespace egress
