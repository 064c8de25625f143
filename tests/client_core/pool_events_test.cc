// The pool's and the Connector's listener events against a real nginx:
// open, acquire, release, idle and close for a call and an eviction, reuse,
// a connect failure with its reason, and a leaked streamed call. Runs under
// TSan too (no gRPC here).
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "client_core/base/sync.h"
#include "client_core/call/http_client.h"
#include "client_core/call/leak_registry.h"
#include "client_core/url/url.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/execute_and_wait.h"
#include "tests/support/nginx.h"
#include "tests/support/subprocess.h"

namespace egress {
namespace {

using ::egress::testing::NginxOptions;
using ::egress::testing::NginxServer;
using ::egress::testing::PickFreePort;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

// Records every event as "kind id detail" so a test can compare sequences,
// and lets it wait for a number of them instead of sleeping.
class Recorder : public PoolListener, public ConnectListener {
 public:
  void OnConnectionOpened(uint64_t id, const Address& a) override {
    Add(absl::StrCat("opened ", id), a);
  }
  void OnConnectionAcquired(uint64_t id, const Address& a,
                            bool reused) override {
    Add(absl::StrCat("acquired ", id, reused ? " reused" : " new"), a);
  }
  void OnConnectionReleased(uint64_t id, const Address& a,
                            bool succeeded) override {
    Add(absl::StrCat("released ", id, succeeded ? " ok" : " failed"), a);
  }
  void OnConnectionIdle(uint64_t id, const Address& a) override {
    Add(absl::StrCat("idle ", id), a);
  }
  void OnConnectionClosed(uint64_t id, const Address& a,
                          CloseReason reason) override {
    Add(absl::StrCat("closed ", id, " ",
                     std::string(CloseReasonName(reason))),
        a);
  }
  void OnLeakDetected(uint64_t id, const Address& a,
                      const LeakReport& report) override {
    {
      MutexLock lock(&mu_);
      leaks_.push_back(report);
    }
    Add(absl::StrCat("leak ", id, " call ", report.call_id), a);
  }
  void OnConnectFailed(uint64_t id, const Address& a,
                       ConnectFailure failure) override {
    Add(absl::StrCat("connect_failed ", id, " ",
                     std::string(ConnectFailureName(failure))),
        a);
  }

  // Blocks until `n` events were recorded; returns all of them.
  std::vector<std::string> Await(size_t n) {
    MutexLock lock(&mu_);
    mu_.Await([&]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
      return events_.size() >= n;
    });
    return events_;
  }
  std::vector<std::string> events() {
    MutexLock lock(&mu_);
    return events_;
  }
  std::vector<std::string> addresses() {
    MutexLock lock(&mu_);
    return addresses_;
  }
  std::vector<LeakReport> leaks() {
    MutexLock lock(&mu_);
    return leaks_;
  }

 private:
  void Add(std::string event, const Address& address) {
    MutexLock lock(&mu_);
    events_.push_back(std::move(event));
    addresses_.push_back(address.ToString());
  }
  Mutex mu_;
  std::vector<std::string> events_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> addresses_ ABSL_GUARDED_BY(mu_);
  std::vector<LeakReport> leaks_ ABSL_GUARDED_BY(mu_);
};

HttpClientOptions Options(Recorder* recorder) {
  HttpClientOptions options;
  options.event_loops = 2;
  options.connector.listener = recorder;
  return options;
}

absl::StatusOr<Response> Get(HttpClient& client, const std::string& url) {
  Request request;
  request.method = "GET";
  absl::StatusOr<Url> parsed = ParseUrl(url);
  if (!parsed.ok()) return parsed.status();
  request.url = *parsed;
  request.deadline = absl::Now() + absl::Seconds(10);
  return testing::ExecuteAndWait(client, std::move(request));
}

TEST(PoolEventsTest, OneCallThenAnEviction) {
  auto nginx = NginxServer::Start();
  ASSERT_TRUE(nginx.ok()) << nginx.status();
  Recorder recorder;
  HttpClient client(Options(&recorder), &recorder);
  absl::StatusOr<Response> r = Get(client, (*nginx)->Url("/hello.txt"));
  ASSERT_TRUE(r.ok()) << r.status();
  const uint64_t id = r->connection.connection_id;
  // Released and idle are reported before the call's result is.
  EXPECT_THAT(recorder.events(),
              ElementsAre(absl::StrCat("opened ", id),
                          absl::StrCat("acquired ", id, " new"),
                          absl::StrCat("released ", id, " ok"),
                          absl::StrCat("idle ", id)));

  r = Get(client, (*nginx)->Url("/hello.txt"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->connection.connection_id, id);
  EXPECT_EQ(client.pool().EvictIdle(std::nullopt), 1u);
  std::vector<std::string> events = recorder.events();
  ASSERT_EQ(events.size(), 8u);
  EXPECT_THAT(std::vector<std::string>(events.begin() + 4, events.end()),
              ElementsAre(absl::StrCat("acquired ", id, " reused"),
                          absl::StrCat("released ", id, " ok"),
                          absl::StrCat("idle ", id),
                          absl::StrCat("closed ", id, " evict_request")));
  for (const std::string& address : recorder.addresses()) {
    EXPECT_EQ(address, absl::StrCat("http://127.0.0.1:", (*nginx)->port()));
  }
}

TEST(PoolEventsTest, AConnectFailureIsReportedWithItsReason) {
  Recorder recorder;
  HttpClient client(Options(&recorder), &recorder);
  const int port = PickFreePort();  // nothing listens: refused
  absl::StatusOr<Response> r =
      Get(client, absl::StrCat("http://127.0.0.1:", port, "/"));
  ASSERT_FALSE(r.ok());
  std::vector<std::string> events = recorder.events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_THAT(events[0], HasSubstr(" refused"));
  EXPECT_THAT(events[0], ::testing::StartsWith("connect_failed "));
  EXPECT_EQ(recorder.addresses()[0], absl::StrCat("http://127.0.0.1:", port));
}

TEST(PoolEventsTest, NoListenerNoEventsAndNothingBreaks) {
  auto nginx = NginxServer::Start();
  ASSERT_TRUE(nginx.ok()) << nginx.status();
  HttpClientOptions options;
  options.event_loops = 1;
  HttpClient client(options);
  absl::StatusOr<Response> r = Get(client, (*nginx)->Url("/hello.txt"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(client.pool().EvictIdle(std::nullopt), 1u);
}

// Holds the first body piece without asking for more: a leak.
class StallingConsumer : public StreamConsumer {
 public:
  void OnHead(const Response&, Ready ready) override { std::move(ready)(); }
  void OnBody(std::string, Ready ready) override {
    MutexLock lock(&mu_);
    held_.push_back(std::move(ready));
  }
  void OnDone(absl::StatusOr<Response>) override { done_.Notify(); }
  // Waits for the end, then drops the held continuations (they refer to
  // the call, which refers to this consumer).
  void AwaitDone() {
    done_.WaitForNotification();
    std::vector<Ready> held;
    {
      MutexLock lock(&mu_);
      held.swap(held_);
    }
  }

 private:
  Mutex mu_;
  std::vector<Ready> held_ ABSL_GUARDED_BY(mu_);
  Notification done_;
};

TEST(PoolEventsTest, ALeakedStreamIsReportedWithoutItsQuery) {
  NginxOptions nginx_options;
  nginx_options.files["big.bin"] = std::string(8 << 20, 'b');
  auto nginx = NginxServer::Start(nginx_options);
  ASSERT_TRUE(nginx.ok()) << nginx.status();
  Recorder recorder;
  HttpClientOptions options = Options(&recorder);
  options.leak_threshold = absl::Milliseconds(100);
  HttpClient client(options, &recorder);
  Request request;
  request.method = "GET";
  request.url = *ParseUrl((*nginx)->Url("/big.bin?token=s3cr3t"));
  request.deadline = absl::Now() + absl::Seconds(20);
  request.call_id = 41;
  auto consumer = std::make_shared<StallingConsumer>();
  std::shared_ptr<StreamCall> call =
      client.Stream(std::move(request), consumer);
  // opened, acquired, leak.
  std::vector<std::string> events = recorder.Await(3);
  call->Cancel();
  consumer->AwaitDone();
  ASSERT_EQ(events.size(), 3u);
  uint64_t id = 0;
  ASSERT_TRUE(absl::SimpleAtoi(events[0].substr(events[0].find(' ') + 1), &id))
      << events[0];
  EXPECT_EQ(events[1], absl::StrCat("acquired ", id, " new"));
  EXPECT_EQ(events[2], absl::StrCat("leak ", id, " call 41"));
  std::vector<LeakReport> leaks = recorder.leaks();
  ASSERT_EQ(leaks.size(), 1u);
  EXPECT_EQ(leaks[0].url, (*nginx)->Url("/big.bin"));
  EXPECT_EQ(leaks[0].connection_id, id);
  // Released, then closed as leaked.
  events = recorder.Await(5);
  EXPECT_EQ(events[3], absl::StrCat("released ", id, " failed"));
  EXPECT_EQ(events[4], absl::StrCat("closed ", id, " leaked"));
  for (const std::string& e : recorder.events()) {
    EXPECT_THAT(e, Not(HasSubstr("s3cr3t")));
  }
}

}  // namespace
}  // namespace egress
