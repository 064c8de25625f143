// Stray bytes from an HTTP/1.1 origin (issue 14, section 2): an origin that
// sends a complete response and then, a while later, bytes nobody asked for
// (a second response, a late body after HEAD, bytes after a 204) must spoil
// at most the one exchange they land in, never shift every later response
// onto the request after its own. Also: framing that invites such bytes is
// not reused after, and a response that arrived whole before a request's
// write failed is returned.
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "client_core/base/sync.h"
#include "client_core/call/http_client.h"
#include "client_core/url/url.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/execute_and_wait.h"
#include "tests/support/scripted_origin.h"

namespace egress {
namespace {

using ::egress::testing::ScriptedOrigin;
using ::testing::HasSubstr;

// What the origin answers, and what it sends unasked after its first answer.
enum class Kind { kGet, kHead, k204 };

std::string KindName(Kind kind) {
  switch (kind) {
    case Kind::kGet: return "GET";
    case Kind::kHead: return "HEAD";
    case Kind::k204: return "204";
  }
  return "?";
}

// The X-Request-Id of a request head ("" if none).
std::string RequestId(const std::string& head) {
  for (absl::string_view line : absl::StrSplit(head, "\r\n")) {
    if (absl::StartsWithIgnoreCase(line, "x-request-id:")) {
      line.remove_prefix(13);
      return std::string(absl::StripAsciiWhitespace(line));
    }
  }
  return "";
}

// A complete response that no request asked for; its X-Echo names no
// request, so a caller that gets it is told apart from one that got another
// caller's response.
std::string StrayResponse(const std::string& after) {
  return absl::StrCat("HTTP/1.1 200 OK\r\nX-Echo: stray-after-", after,
                      "\r\nContent-Length: 5\r\n\r\nstray");
}

// The origin's answer to request `id`: every response echoes the id in
// X-Echo (GET also in its body). With `stray`, the unsolicited bytes follow
// `delay` later: a second response (GET); the body a HEAD's Content-Length
// announced, itself shaped as a response (HEAD); a response after a 204.
ScriptedOrigin::Reply Answer(Kind kind, const std::string& id, bool stray,
                             absl::Duration delay) {
  ScriptedOrigin::Reply reply;
  const std::string later = stray ? StrayResponse(id) : "";
  switch (kind) {
    case Kind::kGet:
      reply.bytes = absl::StrCat("HTTP/1.1 200 OK\r\nX-Echo: ", id,
                                 "\r\nContent-Length: ", id.size(), "\r\n\r\n",
                                 id);
      break;
    case Kind::kHead:
      reply.bytes = absl::StrCat("HTTP/1.1 200 OK\r\nX-Echo: ", id,
                                 "\r\nContent-Length: ",
                                 StrayResponse(id).size(), "\r\n\r\n");
      break;
    case Kind::k204:
      reply.bytes =
          absl::StrCat("HTTP/1.1 204 No Content\r\nX-Echo: ", id, "\r\n\r\n");
      break;
  }
  reply.later = later;
  reply.later_after = delay;
  return reply;
}

std::string Echo(const Response& response) {
  for (const HeaderField& field : response.headers) {
    if (absl::EqualsIgnoreCase(field.name, "X-Echo")) return field.value;
  }
  return "";
}

// How the exchanges ended for their callers.
struct Tally {
  int own = 0;      // its own response
  int spoiled = 0;  // an error, or the stray response
  int foreign = 0;  // another request's response
  // The last spoiled exchange, and the foreign ones: "<n> got <echo>".
  int last_spoiled = -1;
  std::vector<std::string> foreign_examples;
  // Foreign responses that are the one exception HTTP/1.1 leaves (see
  // SequentialStrayTest): exchange n got exchange n-1's response after n-1
  // got the stray.
  int foreign_after_stray = 0;
};

std::string IdOf(int n) { return absl::StrCat("req-", n); }

void Classify(const absl::StatusOr<Response>& r, int n, Tally* tally) {
  const std::string echo = r.ok() ? Echo(*r) : "";
  if (r.ok() && echo == IdOf(n)) {
    ++tally->own;
  } else if (!r.ok() || absl::StartsWith(echo, "stray-") || echo.empty()) {
    ++tally->spoiled;
    tally->last_spoiled = n;
  } else {
    ++tally->foreign;
    if (n == tally->last_spoiled + 1 && echo == IdOf(n - 1)) {
      ++tally->foreign_after_stray;
    }
    if (tally->foreign_examples.size() < 3) {
      tally->foreign_examples.push_back(absl::StrCat(IdOf(n), " got ", echo));
    }
  }
}

Request MakeRequest(Kind kind, const ScriptedOrigin& origin,
                    const std::string& id) {
  Request request;
  request.method = kind == Kind::kHead ? "HEAD" : "GET";
  request.url = *ParseUrl(origin.Url(kind == Kind::k204 ? "/204" : "/id"));
  request.headers.push_back({"X-Request-Id", id});
  request.deadline = absl::Now() + absl::Seconds(10);
  return request;
}

using StrayCase = std::tuple<Kind, int /*delay ms*/, bool /*tcp_nodelay*/>;

class SequentialStrayTest : public ::testing::TestWithParam<StrayCase> {};

// Sequential callers, back to back, while the origin's one stray lands
// wherever its delay puts it: in an idle gap or inside an exchange.
//
// What no HTTP/1.1 client can prevent: a stray that arrives after request n
// was written and before its response is, to the client, n's response; n's
// real response then comes whenever the origin gets to it, possibly after
// n+1 was written, and is read as n+1's. So one stray may spoil n (the stray)
// and, rarely (a few runs in a hundred here), hand n's response to n+1. The
// test allows exactly that and nothing more: before the fix every call after
// the stray got the previous call's response.
//
// The callers pause kThinkTime between calls. With no pause at all and an
// origin slower to answer than egressd is to send the next request (seen
// under ASan), a shift that began as above can carry on: each response then
// arrives while the next exchange is already waiting, never while the
// connection is idle, and nothing on the wire tells it from that exchange's
// own. It ends at the first pause longer than the origin's response time.
// Before the fix no pause ended it: the origin's Nagle held each response
// until the next request carried egressd's delayed ACK.
constexpr absl::Duration kThinkTime = absl::Milliseconds(5);

TEST_P(SequentialStrayTest, NoCallerGetsAnotherRequestsResponse) {
  const auto [kind, delay_ms, nodelay] = GetParam();
  ScriptedOrigin::Options origin_options;
  origin_options.tcp_nodelay = nodelay;
  ScriptedOrigin origin(
      [kind = kind, delay_ms = delay_ms](int n, const std::string& head) {
        // The first response of all is followed by the stray.
        return Answer(kind, RequestId(head), n == 0,
                      absl::Milliseconds(delay_ms));
      },
      origin_options);
  HttpClientOptions options;
  options.event_loops = 2;
  HttpClient client(options);

  Tally tally;
  absl::Time stray_seen = absl::InfiniteFuture();
  int after_stray = 0;
  uint64_t first_connection = 0;
  uint64_t last_connection = 0;
  for (int i = 0;; ++i) {
    absl::StatusOr<Response> r =
        testing::ExecuteAndWait(client, MakeRequest(kind, origin, IdOf(i)));
    Classify(r, i, &tally);
    if (r.ok()) {
      if (i == 0) first_connection = r->connection.connection_id;
      last_connection = r->connection.connection_id;
    }
    if (stray_seen == absl::InfiniteFuture() && origin.later_written() > 0) {
      stray_seen = absl::Now();
    }
    if (stray_seen != absl::InfiniteFuture()) ++after_stray;
    // Long enough after the stray for an off-by-one to show in many calls.
    if (after_stray >= 20 && absl::Now() - stray_seen > absl::Milliseconds(100)) {
      break;
    }
    ASSERT_LT(i, 200000) << "the stray was never written";
    absl::SleepFor(kThinkTime);  // the caller's think time, see above
  }
  SCOPED_TRACE(absl::StrCat(KindName(kind), " stray after ", delay_ms,
                            " ms, origin nodelay=", nodelay, ": own=",
                            tally.own, " spoiled=", tally.spoiled,
                            " foreign=", tally.foreign));
  EXPECT_EQ(tally.foreign, tally.foreign_after_stray)
      << ::testing::PrintToString(tally.foreign_examples);
  EXPECT_LE(tally.foreign, 1);
  EXPECT_LE(tally.spoiled, 1);
  // The connection the stray came on is gone: the last calls ran on another.
  EXPECT_NE(last_connection, first_connection);
}

INSTANTIATE_TEST_SUITE_P(
    Strays, SequentialStrayTest,
    ::testing::Combine(::testing::Values(Kind::kGet, Kind::kHead, Kind::k204),
                       ::testing::Values(0, 20, 50, 300, 1000),
                       ::testing::Bool()),
    [](const ::testing::TestParamInfo<StrayCase>& info) {
      return absl::StrCat(KindName(std::get<0>(info.param)), "_",
                          std::get<1>(info.param), "ms_",
                          std::get<2>(info.param) ? "nodelay" : "nagle");
    });

// Records closed connections; waits for them with a timeout (a connection
// that is never closed is the failure these tests look for).
class ClosedListener : public PoolListener {
 public:
  void OnConnectionClosed(uint64_t id, const Address&,
                          CloseReason reason) override {
    MutexLock lock(&mu_);
    closed_.push_back({id, reason});
  }
  // The reason connection `id` was closed with, or nullopt if it was not
  // closed within `timeout`.
  std::optional<CloseReason> AwaitClosed(uint64_t id, absl::Duration timeout) {
    MutexLock lock(&mu_);
    std::optional<CloseReason> found;
    mu_.AwaitWithTimeout(
        [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
          for (const auto& [closed_id, reason] : closed_) {
            if (closed_id == id) found = reason;
          }
          return found.has_value();
        },
        timeout);
    return found;
  }

 private:
  Mutex mu_;
  std::vector<std::pair<uint64_t, CloseReason>> closed_ ABSL_GUARDED_BY(mu_);
};

absl::StatusOr<Response> Get(HttpClient& client, const ScriptedOrigin& origin,
                             const std::string& method = "GET",
                             std::string body = "") {
  Request request;
  request.method = method;
  request.url = *ParseUrl(origin.Url("/"));
  request.body = std::move(body);
  request.deadline = absl::Now() + absl::Seconds(10);
  return testing::ExecuteAndWait(client, std::move(request));
}

HttpClientOptions OneLoop() {
  HttpClientOptions options;
  options.event_loops = 1;
  return options;
}

// An origin that closes a keep-alive connection while it is idle: the pool
// closes it at once and counts peer_closed (it used to sit in the pool until
// keep-alive ran out and be counted idle_timeout).
TEST(IdleWatchTest, OriginClosingAnIdleConnectionIsCountedPeerClosedAtOnce) {
  ScriptedOrigin origin([](int, const std::string&) {
    return ScriptedOrigin::Reply{ScriptedOrigin::Ok("fine"), true};
  });
  ClosedListener listener;
  HttpClient client(OneLoop(), &listener);
  absl::StatusOr<Response> r = Get(client, origin);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(listener.AwaitClosed(r->connection.connection_id, absl::Seconds(5)),
            CloseReason::kPeerClosed);
  EXPECT_EQ(client.pool().Snapshot().idle_count, 0u);
}

// Bytes that arrive while the connection is idle close it at once, counted
// unsolicited_data, before any request could read them.
TEST(IdleWatchTest, BytesArrivingWhileIdleCloseTheConnectionAtOnce) {
  ScriptedOrigin origin([](int, const std::string&) {
    ScriptedOrigin::Reply reply{ScriptedOrigin::Ok("fine"), false};
    reply.later = ScriptedOrigin::Ok("unasked");
    reply.later_after = absl::Milliseconds(50);
    return reply;
  });
  ClosedListener listener;
  HttpClient client(OneLoop(), &listener);
  absl::StatusOr<Response> r = Get(client, origin);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(listener.AwaitClosed(r->connection.connection_id, absl::Seconds(5)),
            CloseReason::kUnsolicitedData);
  PoolSnapshot s = client.pool().Snapshot();
  EXPECT_EQ(s.idle_count, 0u);
  EXPECT_EQ(s.closed_by_reason[static_cast<size_t>(
                CloseReason::kUnsolicitedData)],
            1u);
  // The next call gets its own response on a new connection.
  absl::StatusOr<Response> next = Get(client, origin);
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ(next->body, "fine");
  EXPECT_NE(next->connection.connection_id, r->connection.connection_id);
}

// Responses with no body by their status but a body framing invite the
// announced body to follow where the next response is expected: the
// connection is not reused after them.
TEST(StrayFramingTest, NoReuseAfterA204Or304Or1xxWithABodyFraming) {
  for (const std::string& answer : {
           std::string("HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n"),
           std::string("HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: "
                       "chunked\r\n\r\n"),
           std::string("HTTP/1.1 100 Continue\r\nContent-Length: 3\r\n\r\n") +
               ScriptedOrigin::Ok("fine"),
       }) {
    SCOPED_TRACE(answer);
    ScriptedOrigin origin([&answer](int, const std::string&) {
      return ScriptedOrigin::Reply{answer, false};
    });
    ClosedListener listener;
    HttpClient client(OneLoop(), &listener);
    absl::StatusOr<Response> first = Get(client, origin);
    ASSERT_TRUE(first.ok()) << first.status();
    EXPECT_EQ(
        listener.AwaitClosed(first->connection.connection_id, absl::Seconds(5)),
        CloseReason::kConnectionClose);
    absl::StatusOr<Response> second = Get(client, origin);
    ASSERT_TRUE(second.ok()) << second.status();
    EXPECT_NE(second->connection.connection_id,
              first->connection.connection_id);
  }
}

// A 204 with "Content-Length: 0" announces nothing: reused as before.
TEST(StrayFramingTest, A204WithContentLengthZeroIsReused) {
  ScriptedOrigin origin([](int, const std::string&) {
    return ScriptedOrigin::Reply{
        "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n", false};
  });
  HttpClient client(OneLoop());
  absl::StatusOr<Response> first = Get(client, origin);
  ASSERT_TRUE(first.ok()) << first.status();
  absl::StatusOr<Response> second = Get(client, origin);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->connection.connection_id, first->connection.connection_id);
}

// An origin that refuses an upload as soon as it has read the head (413 with
// "Connection: close") and closes while egressd is still writing the body:
// the write fails, yet the complete response is in the socket and is what
// the caller gets (it used to get UNAVAILABLE "Broken pipe").
TEST(EarlyResponseTest, AResponseThatArrivedBeforeTheWriteFailedIsReturned) {
  ScriptedOrigin::Options options;
  options.reply_after_head = true;
  ScriptedOrigin origin(
      [](int, const std::string&) {
        return ScriptedOrigin::Reply{
            "HTTP/1.1 413 Payload Too Large\r\nContent-Length: 8\r\n"
            "Connection: close\r\n\r\ntoo big!",
            true};
      },
      options);
  ClosedListener listener;
  HttpClient client(OneLoop(), &listener);
  // Far more than the socket buffers hold, so the write is still going when
  // the origin closes.
  absl::StatusOr<Response> r =
      Get(client, origin, "POST", std::string(4 << 20, 'x'));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status_code, 413);
  EXPECT_EQ(r->body, "too big!");
  EXPECT_TRUE(
      listener.AwaitClosed(r->connection.connection_id, absl::Seconds(5))
          .has_value());
}

// An origin that closes without answering while the body is written: the
// write's failure is what the caller gets, precisely.
TEST(EarlyResponseTest, NoResponseBeforeTheWriteFailedIsTheWriteFailure) {
  ScriptedOrigin::Options options;
  options.reply_after_head = true;
  ScriptedOrigin origin(
      [](int, const std::string&) { return ScriptedOrigin::Reply{"", true}; },
      options);
  HttpClient client(OneLoop());
  absl::StatusOr<Response> r =
      Get(client, origin, "POST", std::string(4 << 20, 'x'));
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(absl::IsUnavailable(r.status())) << r.status();
  EXPECT_THAT(r.status().message(), HasSubstr("writing the request"));
}

// partition_pool_by_caller: a caller reuses its own connections and never
// another caller's; without it the callers share one.
TEST(PartitionByCallerTest, CallersNeverShareAConnection) {
  ScriptedOrigin origin([](int, const std::string&) {
    return ScriptedOrigin::Reply{ScriptedOrigin::Ok("fine"), false};
  });
  for (const bool partition : {false, true}) {
    SCOPED_TRACE(partition ? "partitioned" : "shared");
    HttpClientOptions options = OneLoop();
    options.partition_pool_by_caller = partition;
    HttpClient client(options);
    auto call = [&](const std::string& caller) {
      Request request;
      request.method = "GET";
      request.url = *ParseUrl(origin.Url("/"));
      request.caller_id = caller;
      request.deadline = absl::Now() + absl::Seconds(10);
      absl::StatusOr<Response> r =
          testing::ExecuteAndWait(client, std::move(request));
      EXPECT_TRUE(r.ok()) << r.status();
      return r.ok() ? r->connection.connection_id : 0;
    };
    const uint64_t a1 = call("a");
    const uint64_t b1 = call("b");
    const uint64_t a2 = call("a");
    const uint64_t b2 = call("b");
    EXPECT_EQ(a2, a1);
    EXPECT_EQ(b2, b1);
    if (partition) {
      EXPECT_NE(b1, a1);
      EXPECT_EQ(client.pool().Snapshot().addresses.size(), 2u);
    } else {
      EXPECT_EQ(b1, a1);
    }
  }
}

}  // namespace
}  // namespace egress
