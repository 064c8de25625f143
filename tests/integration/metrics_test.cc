// egressd's metrics endpoint (--metrics_listen) against a live egressd with
// a real nginx behind it: /metrics parses as strict Prometheus text and its
// counters match PoolAdmin.GetPoolStats; the HTTP surface (404, 405, HEAD,
// 400, 431); per-address series only with --metrics_per_address; the JSON
// the page polls names the events of a Fetch and an eviction; "off" and a
// busy port.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/message_differencer.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "server/metrics/exposition_parser.h"
#include "tests/support/egressd_process.h"
#include "tests/support/nginx.h"
#include "tests/support/raw_http.h"
#include "tests/support/subprocess.h"

namespace egress::testing {
namespace {

using ::egress::metrics::FindFamily;
using ::egress::metrics::ParsedFamily;
using ::egress::metrics::ParseExposition;
using ::testing::HasSubstr;
using ::testing::Not;

// GET /metrics, parsed strictly.
std::vector<ParsedFamily> ScrapeMetrics(int port) {
  absl::StatusOr<RawHttpReply> reply = RawHttp(port, "GET", "/metrics");
  EXPECT_TRUE(reply.ok()) << reply.status();
  if (!reply.ok()) return {};
  EXPECT_EQ(reply->status, 200) << reply->body;
  EXPECT_EQ(reply->headers["content-type"],
            "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(reply->headers["content-length"], absl::StrCat(reply->body.size()));
  absl::StatusOr<std::vector<ParsedFamily>> families =
      ParseExposition(reply->body);
  EXPECT_TRUE(families.ok()) << families.status() << "\n" << reply->body;
  return families.ok() ? *families : std::vector<ParsedFamily>{};
}

// The value of `family`'s sample whose `label` is `value` ("" for a sample
// without labels); NaN when there is none.
double Value(const std::vector<ParsedFamily>& families,
             const std::string& family, const std::string& label = "",
             const std::string& value = "") {
  const ParsedFamily* f = FindFamily(families, family);
  if (f == nullptr) return std::nan("");
  for (const auto& s : f->samples) {
    if (s.name == family && s.Label(label) == value) return s.value;
  }
  return std::nan("");
}

// A histogram family's _count or _sum sample.
double HistogramPart(const std::vector<ParsedFamily>& families,
                     const std::string& family, const std::string& part) {
  const ParsedFamily* f = FindFamily(families, family);
  if (f == nullptr) return std::nan("");
  for (const auto& s : f->samples) {
    if (s.name == family + part) return s.value;
  }
  return std::nan("");
}

double Seconds(const google::protobuf::Duration& d) {
  return static_cast<double>(d.seconds()) + d.nanos() / 1e9;
}

// GET /api/pool as a protobuf Struct (a strict JSON parser).
google::protobuf::Struct PoolJson(int port) {
  google::protobuf::Struct json;
  absl::StatusOr<RawHttpReply> reply = RawHttp(port, "GET", "/api/pool");
  EXPECT_TRUE(reply.ok()) << reply.status();
  if (!reply.ok()) return json;
  EXPECT_EQ(reply->status, 200);
  EXPECT_EQ(reply->headers["content-type"], "application/json");
  const auto status =
      google::protobuf::util::JsonStringToMessage(reply->body, &json);
  EXPECT_TRUE(status.ok()) << status.ToString() << "\n" << reply->body;
  return json;
}

grpc::Status EvictIdle(EgressdProcess& egressd) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(5));
  v1::EvictIdleResponse response;
  return egressd.admin().EvictIdle(&context, v1::EvictIdleRequest(), &response);
}

class MetricsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    NginxOptions options;
    // Answered with "Connection: close": a close for its own reason.
    options.server_directives =
        "location = /close { keepalive_timeout 0; return 200 \"bye\\n\"; }\n"
        "location = /moved { return 302 /hello.txt; }";
    auto nginx = NginxServer::Start(options);
    ASSERT_TRUE(nginx.ok()) << nginx.status();
    nginx_ = *std::move(nginx);
  }

  std::unique_ptr<EgressdProcess> StartEgressd(
      const std::vector<std::string>& flags = {}) {
    auto egressd = EgressdProcess::Start(flags);
    EXPECT_TRUE(egressd.ok()) << egressd.status();
    if (!egressd.ok()) return nullptr;
    EXPECT_GT((*egressd)->metrics_port(), 0) << (*egressd)->metrics_listen();
    return *std::move(egressd);
  }

  std::unique_ptr<NginxServer> nginx_;
};

TEST_F(MetricsTest, CountersMatchPoolStats) {
  std::unique_ptr<EgressdProcess> egressd = StartEgressd();
  ASSERT_NE(egressd, nullptr);
  const int port = egressd->metrics_port();
  for (int i = 0; i < 3; ++i) {
    v1::FetchResponse response;
    ASSERT_TRUE(egressd->Fetch(Get(nginx_->Url("/hello.txt")), &response).ok());
  }
  v1::FetchResponse closed;
  ASSERT_TRUE(egressd->Fetch(Get(nginx_->Url("/close")), &closed).ok());
  // A new connection, left idle for the eviction.
  v1::FetchResponse fresh;
  ASSERT_TRUE(egressd->Fetch(Get(nginx_->Url("/hello.txt")), &fresh).ok());
  EXPECT_FALSE(fresh.connection().reused());
  v1::FetchResponse failed;
  EXPECT_EQ(egressd->Fetch(Get("http://127.0.0.1:1/"), &failed).error_code(),
            grpc::StatusCode::UNAVAILABLE);
  ASSERT_TRUE(EvictIdle(*egressd).ok());

  // A scrape between two equal PoolStats: nothing moved while we looked
  // (the pool's cleanup pass may still run once after the last release), so
  // the two must agree exactly.
  std::vector<ParsedFamily> m;
  absl::StatusOr<v1::PoolStats> stats;
  for (int attempt = 0;; ++attempt) {
    absl::StatusOr<v1::PoolStats> before = egressd->PoolStats();
    ASSERT_TRUE(before.ok()) << before.status();
    m = ScrapeMetrics(port);
    stats = egressd->PoolStats();
    ASSERT_TRUE(stats.ok()) << stats.status();
    if (google::protobuf::util::MessageDifferencer::Equals(*before, *stats)) {
      break;
    }
    ASSERT_LT(attempt, 10) << "the pool kept changing:\n"
                           << before->DebugString() << "\nvs\n"
                           << stats->DebugString();
  }
  ASSERT_FALSE(m.empty());

  // The scenario happened as planned.
  EXPECT_EQ(stats->closed_by_reason().at("connection_close"), 1u);
  EXPECT_EQ(stats->closed_by_reason().at("evict_request"), 1u);
  EXPECT_GT(stats->connect_failures(), 0u);

  EXPECT_EQ(Value(m, "egressd_connections_opened_total"),
            stats->connections_opened());
  ASSERT_NE(FindFamily(m, "egressd_connections_closed_total"), nullptr);
  EXPECT_EQ(FindFamily(m, "egressd_connections_closed_total")->samples.size(),
            static_cast<size_t>(stats->closed_by_reason_size()))
      << "every reason PoolStats knows, zeros included";
  for (const auto& [reason, count] : stats->closed_by_reason()) {
    EXPECT_EQ(Value(m, "egressd_connections_closed_total", "reason", reason),
              count)
        << reason;
  }
  for (const auto& [limit, count] : stats->rejected_by_limit()) {
    EXPECT_EQ(Value(m, "egressd_rejections_total", "limit", limit), count)
        << limit;
  }
  EXPECT_EQ(Value(m, "egressd_connect_failures_total"),
            stats->connect_failures());
  EXPECT_EQ(Value(m, "egressd_connections", "state", "idle"),
            stats->idle_count());
  EXPECT_EQ(Value(m, "egressd_connections", "state", "in_use"),
            stats->in_use_count());
  EXPECT_EQ(Value(m, "egressd_connections", "state", "connecting"),
            stats->connecting_count());
  EXPECT_EQ(Value(m, "egressd_pending_calls"), stats->pending_count());
  EXPECT_EQ(Value(m, "egressd_requests_in_flight"),
            stats->requests_in_flight());
  EXPECT_EQ(Value(m, "egressd_leaks_total"), stats->leaks_detected());
  EXPECT_EQ(Value(m, "egressd_cleanup_wakeups_total"),
            stats->cleanup_wakeups());
  EXPECT_EQ(Value(m, "egressd_protocol_connections", "protocol", "http/1.1") +
                Value(m, "egressd_protocol_connections", "protocol", "h2"),
            stats->connection_count());
  EXPECT_EQ(Value(m, "egressd_pool_limit", "limit", "max_connections"),
            stats->config().max_connections());

  const v1::CallTotals& calls = stats->call_totals();
  EXPECT_EQ(calls.succeeded(), 5u);
  EXPECT_EQ(calls.failed(), 1u);
  EXPECT_EQ(Value(m, "egressd_requests_total", "outcome", "succeeded"),
            calls.succeeded());
  EXPECT_EQ(Value(m, "egressd_requests_total", "outcome", "failed"),
            calls.failed());
  EXPECT_EQ(Value(m, "egressd_succeeded_requests_total", "connection", "new"),
            calls.on_new_connection());
  EXPECT_EQ(
      Value(m, "egressd_succeeded_requests_total", "connection", "reused"),
      calls.on_reused_connection());

  // The Fetch path's histograms saw the same calls PoolStats summed.
  EXPECT_EQ(HistogramPart(m, "egressd_request_duration_seconds", "_count"),
            calls.succeeded());
  EXPECT_NEAR(HistogramPart(m, "egressd_request_duration_seconds", "_sum"),
              Seconds(calls.total()), 1e-6);
  EXPECT_NEAR(HistogramPart(m, "egressd_request_connect_seconds", "_sum"),
              Seconds(calls.connect()), 1e-6);
  EXPECT_EQ(HistogramPart(m, "egressd_request_connect_seconds", "_count"),
            calls.on_new_connection());
  EXPECT_EQ(HistogramPart(m, "egressd_request_tls_seconds", "_count"), 0);
  const ParsedFamily* responses = FindFamily(m, "egressd_responses_total");
  ASSERT_NE(responses, nullptr);
  for (const auto& s : responses->samples) {
    const bool ok =
        s.Label("protocol") == "http/1.1" && s.Label("status_class") == "2xx";
    EXPECT_EQ(s.value, ok ? 5 : 0)
        << s.Label("protocol") << " " << s.Label("status_class");
  }
  EXPECT_EQ(Value(m, "egressd_request_errors_total", "code", "UNAVAILABLE"), 1);
  EXPECT_EQ(Value(m, "egressd_request_errors_total", "code", "INTERNAL"), 0);

  // No per-address series without --metrics_per_address.
  EXPECT_EQ(FindFamily(m, "egressd_address_connections"), nullptr);
}

TEST_F(MetricsTest, SafetyEventsCountRedirectsAndRefusedRequests) {
  std::unique_ptr<EgressdProcess> egressd = StartEgressd();
  ASSERT_NE(egressd, nullptr);
  for (int i = 0; i < 2; ++i) {
    v1::FetchRequest moved = Get(nginx_->Url("/moved"));
    moved.set_follow_redirects(true);
    v1::FetchResponse response;
    ASSERT_TRUE(egressd->Fetch(moved, &response).ok());
    EXPECT_EQ(response.status_code(), 200);
  }
  // Over the default max_request_url_bytes (16 KiB): refused, counted.
  v1::FetchResponse refused;
  EXPECT_EQ(egressd
                ->Fetch(Get(nginx_->Url("/" + std::string(20 * 1024, 'a'))),
                        &refused)
                .error_code(),
            grpc::StatusCode::RESOURCE_EXHAUSTED);

  std::vector<ParsedFamily> m = ScrapeMetrics(egressd->metrics_port());
  EXPECT_EQ(Value(m, "egressd_safety_events_total", "event",
                  "redirect_followed"),
            2);
  EXPECT_EQ(Value(m, "egressd_safety_events_total", "event",
                  "rejected_request_limits"),
            1);
  EXPECT_EQ(Value(m, "egressd_safety_events_total", "event", "connect_retry"),
            0);
}

TEST_F(MetricsTest, PerAddressSeriesWithTheFlag) {
  std::unique_ptr<EgressdProcess> egressd =
      StartEgressd({"--metrics_per_address"});
  ASSERT_NE(egressd, nullptr);
  v1::FetchResponse response;
  ASSERT_TRUE(egressd->Fetch(Get(nginx_->Url("/hello.txt")), &response).ok());
  const std::vector<ParsedFamily> m = ScrapeMetrics(egressd->metrics_port());
  const std::string address = absl::StrCat("http://127.0.0.1:", nginx_->port());
  const ParsedFamily* conns = FindFamily(m, "egressd_address_connections");
  ASSERT_NE(conns, nullptr);
  bool idle_seen = false;
  for (const auto& s : conns->samples) {
    EXPECT_EQ(s.Label("address"), address);
    if (s.Label("state") == "idle") {
      EXPECT_EQ(s.value, 1);
      idle_seen = true;
    }
  }
  EXPECT_TRUE(idle_seen);
  EXPECT_EQ(
      Value(m, "egressd_address_requests_served_total", "address", address), 1);
}

TEST_F(MetricsTest, HttpSurface) {
  std::unique_ptr<EgressdProcess> egressd = StartEgressd();
  ASSERT_NE(egressd, nullptr);
  const int port = egressd->metrics_port();

  absl::StatusOr<RawHttpReply> r = RawHttp(port, "GET", "/nope");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 404);
  EXPECT_EQ(r->headers["connection"], "close");

  r = RawHttp(port, "POST", "/metrics");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 405);
  EXPECT_EQ(r->headers["allow"], "GET, HEAD");
  r = RawHttp(port, "DELETE", "/api/pool");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 405);

  r = RawHttp(port, "HEAD", "/metrics");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 200);
  EXPECT_TRUE(r->body.empty());
  int length = 0;
  ASSERT_TRUE(absl::SimpleAtoi(r->headers["content-length"], &length));
  EXPECT_GT(length, 1000) << "the length GET's body would have";

  r = RawHttp(port, "GET", "/metrics?cache_buster=1");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 200);

  r = RawHttp(port, "GET", "/");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->headers["content-type"], "text/html; charset=utf-8");
  EXPECT_THAT(r->headers["content-security-policy"],
              HasSubstr("default-src 'none'"));
  EXPECT_THAT(r->body, HasSubstr("<title>egressd pool</title>"));
  EXPECT_THAT(r->body, HasSubstr("/api/pool"));
  // No external assets: nothing is fetched from another origin.
  EXPECT_THAT(r->body, Not(HasSubstr("http://")));
  EXPECT_THAT(r->body, Not(HasSubstr("https://")));
  EXPECT_THAT(r->body, Not(HasSubstr("src=")));

  r = RawHttpExchange(port, "garbage\r\n\r\n");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 400);
  r = RawHttpExchange(port, "GET http://elsewhere/metrics HTTP/1.1\r\n\r\n");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 400);
  r = RawHttpExchange(port, "GET /metrics HTTP/2.0\r\n\r\n");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 505);
  r = RawHttpExchange(port, absl::StrCat("GET /metrics HTTP/1.1\r\nX-Big: ",
                                  std::string(20000, 'x'), "\r\n\r\n"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 431);

  // Still serving after all that.
  EXPECT_FALSE(ScrapeMetrics(port).empty());
}

TEST_F(MetricsTest, PoolJsonNamesTheEventsOfAFetchAndAnEviction) {
  std::unique_ptr<EgressdProcess> egressd = StartEgressd();
  ASSERT_NE(egressd, nullptr);
  const int port = egressd->metrics_port();
  google::protobuf::Struct json = PoolJson(port);  // the first look
  ASSERT_TRUE(json.fields().contains("events"));

  v1::FetchResponse response;
  ASSERT_TRUE(egressd->Fetch(Get(nginx_->Url("/hello.txt")), &response).ok());
  const double id = static_cast<double>(response.connection().id());
  json = PoolJson(port);
  const auto& connections = json.fields().at("connections").list_value();
  ASSERT_EQ(connections.values_size(), 1);
  const auto& c = connections.values(0).struct_value().fields();
  EXPECT_EQ(c.at("id").number_value(), id);
  EXPECT_EQ(c.at("remote_address").string_value(),
            response.connection().remote_address());
  EXPECT_EQ(c.at("state").string_value(), "idle");
  EXPECT_EQ(json.fields()
                .at("totals")
                .struct_value()
                .fields()
                .at("succeeded")
                .number_value(),
            1);

  // Events come newest first; find the one about this connection.
  auto find_event = [&](const google::protobuf::Struct& j,
                        const std::string& kind) -> std::string {
    for (const auto& e : j.fields().at("events").list_value().values()) {
      const auto& f = e.struct_value().fields();
      if (f.at("kind").string_value() == kind &&
          f.at("connection_id").number_value() == id) {
        return f.at("detail").string_value();
      }
    }
    return "<none>";
  };
  EXPECT_THAT(find_event(json, "opened"),
              HasSubstr(response.connection().remote_address()));

  ASSERT_TRUE(EvictIdle(*egressd).ok());
  json = PoolJson(port);
  EXPECT_EQ(json.fields().at("connections").list_value().values_size(), 0);
  EXPECT_EQ(find_event(json, "closed"), "evict_request");
}

TEST_F(MetricsTest, OffServesNothing) {
  auto started = EgressdProcess::Start({"--metrics_listen=off"});
  ASSERT_TRUE(started.ok()) << started.status();
  EXPECT_EQ((*started)->metrics_listen(), "off");
  EXPECT_EQ((*started)->metrics_port(), 0);
}

TEST_F(MetricsTest, ABusyPortIsAnErrorNamingTheFlag) {
  // Something already listens there.
  const int held = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(held, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(listen(held, 1), 0);
  socklen_t len = sizeof addr;
  getsockname(held, reinterpret_cast<sockaddr*>(&addr), &len);
  const int port = ntohs(addr.sin_port);

  const std::string err_path = MakeTempDir("egressd-err") + "/stderr";
  absl::StatusOr<Subprocess> process =
      Subprocess::Start({RunfilePath("server/egressd"), "--listen=127.0.0.1:0",
                         "--admin_listen=127.0.0.1:0",
                         absl::StrCat("--metrics_listen=127.0.0.1:", port)},
                        err_path);
  ASSERT_TRUE(process.ok()) << process.status();
  absl::StatusOr<int> exit = process->Wait(absl::Seconds(20));
  close(held);
  ASSERT_TRUE(exit.ok()) << exit.status();
  EXPECT_TRUE(WIFEXITED(*exit) && WEXITSTATUS(*exit) != 0);
  std::ifstream in(err_path);
  const std::string err((std::istreambuf_iterator<char>(in)),
                        std::istreambuf_iterator<char>());
  EXPECT_THAT(err,
              HasSubstr(absl::StrCat("cannot listen on 127.0.0.1:", port)));
  EXPECT_THAT(err, HasSubstr("--metrics_listen"));
  EXPECT_THAT(process->output(), Not(HasSubstr("EGRESSD_READY")));
}

}  // namespace
}  // namespace egress::testing
