// The Prometheus text exposition format (version 0.0.4) as egressd writes it:
// a strict parser (server/metrics/exposition_parser.h, stricter than
// Prometheus' own: HELP and TYPE are required before a family's samples)
// checks the writer's output, the pool's metrics and CallMetrics'
// histograms; negative cases prove the parser rejects broken text.
#include "server/metrics/prometheus_text.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "client_core/call/http_client.h"
#include "client_core/connection/close_reason.h"
#include "client_core/connection/pool.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/metrics/call_metrics.h"
#include "server/metrics/exposition_parser.h"
#include "server/metrics/metrics_server.h"
#include "server/metrics/pool_metrics.h"

namespace egress::metrics {
namespace {

using ::testing::HasSubstr;

// ---------------------------------------------------------------------------
// The parser itself: accepts the format, rejects what breaks it.

TEST(StrictParserTest, AcceptsTheFormatsExample) {
  const char* text =
      "# HELP http_requests_total The total number of HTTP requests.\n"
      "# TYPE http_requests_total counter\n"
      "http_requests_total{method=\"post\",code=\"200\"} 1027 1395066363000\n"
      "http_requests_total{method=\"post\",code=\"400\",} 3\n"
      "\n"
      "# A plain comment.\n"
      "# HELP msdos_file_access_time_seconds Path \\\\ and\\nnewline.\n"
      "# TYPE msdos_file_access_time_seconds gauge\n"
      "msdos_file_access_time_seconds{path=\"C:\\\\DIR\\\\FILE.TXT\","
      "error=\"Cannot find file:\\n\\\"FILE.TXT\\\"\"} 1.458255915e9\n"
      "# HELP rpc_duration_seconds A histogram.\n"
      "# TYPE rpc_duration_seconds histogram\n"
      "rpc_duration_seconds_bucket{le=\"0.05\"} 24054\n"
      "rpc_duration_seconds_bucket{le=\"0.1\"} 33444\n"
      "rpc_duration_seconds_bucket{le=\"+Inf\"} 144320\n"
      "rpc_duration_seconds_sum 53423\n"
      "rpc_duration_seconds_count 144320\n";
  absl::StatusOr<std::vector<ParsedFamily>> parsed = ParseExposition(text);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  ASSERT_EQ(parsed->size(), 3u);
  const ParsedFamily& gauge = (*parsed)[1];
  EXPECT_EQ(gauge.help, "Path \\ and\nnewline.");
  EXPECT_EQ(gauge.samples[0].Label("path"), "C:\\DIR\\FILE.TXT");
  EXPECT_EQ(gauge.samples[0].Label("error"), "Cannot find file:\n\"FILE.TXT\"");
}

TEST(StrictParserTest, RejectsBrokenText) {
  const std::string h = "# HELP x_total h\n# TYPE x_total counter\n";
  const std::string g = "# HELP g h\n# TYPE g gauge\n";
  const std::string hist = "# HELP l h\n# TYPE l histogram\n";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"no final newline", h + "x_total 1"},
      {"no TYPE", "# HELP x_total h\nx_total 1\n"},
      {"no HELP", "# TYPE x_total counter\nx_total 1\n"},
      {"TYPE after the sample", "# HELP g h\ng 1\n# TYPE g gauge\n"},
      {"two TYPEs", h + "# TYPE x_total counter\nx_total 1\n"},
      {"two HELPs", h + "# HELP x_total again\nx_total 1\n"},
      {"counter without _total", "# HELP x h\n# TYPE x counter\nx 1\n"},
      {"negative counter", h + "x_total -1\n"},
      {"unknown type", "# HELP x h\n# TYPE x thing\nx 1\n"},
      {"interleaved families",
       h + "x_total 1\n" + g + "g 1\nx_total{a=\"b\"} 2\n"},
      {"bad metric name", "# HELP 1x h\n# TYPE 1x gauge\n1x 1\n"},
      {"dash in a name", g + "g-x 1\n"},
      {"bad label name", g + "g{1a=\"x\"} 1\n"},
      {"reserved label name", g + "g{__name__=\"x\"} 1\n"},
      {"label twice", g + "g{a=\"x\",a=\"y\"} 1\n"},
      {"unquoted label value", g + "g{a=x} 1\n"},
      {"unterminated label value", g + "g{a=\"x} 1\n"},
      {"unknown escape", g + "g{a=\"\\x\"} 1\n"},
      {"bad escape in HELP", "# HELP g a\\tb\n# TYPE g gauge\ng 1\n"},
      {"no value", g + "g\n"},
      {"bad value", g + "g one\n"},
      {"two spaces", g + "g  1\n"},
      {"bad timestamp", g + "g 1 soon\n"},
      {"duplicate sample", g + "g{a=\"x\"} 1\ng{a=\"x\"} 2\n"},
      {"carriage return", g + "g 1\r\n"},
      {"sample without family", "h 1\n"},
      {"histogram without +Inf",
       hist + "l_bucket{le=\"1\"} 1\nl_sum 1\nl_count 1\n"},
      {"histogram le descending",
       hist + "l_bucket{le=\"2\"} 1\nl_bucket{le=\"1\"} 1\n"
              "l_bucket{le=\"+Inf\"} 1\nl_sum 1\nl_count 1\n"},
      {"histogram not cumulative",
       hist + "l_bucket{le=\"1\"} 2\nl_bucket{le=\"+Inf\"} 1\nl_sum 1\n"
              "l_count 1\n"},
      {"histogram _count != +Inf",
       hist + "l_bucket{le=\"+Inf\"} 2\nl_sum 1\nl_count 3\n"},
      {"histogram without _sum", hist + "l_bucket{le=\"+Inf\"} 2\nl_count 2\n"},
      {"histogram without _count", hist + "l_bucket{le=\"+Inf\"} 2\nl_sum 1\n"},
      {"bucket without le", hist + "l_bucket 2\nl_sum 1\nl_count 2\n"},
      {"histogram's own name as sample", hist + "l 2\n"},
  };
  for (const auto& [why, text] : cases) {
    EXPECT_FALSE(ParseExposition(text).ok()) << why << ":\n" << text;
  }
}

// ---------------------------------------------------------------------------
// The writer.

TEST(ExpositionWriterTest, WritesFamiliesSamplesAndHistograms) {
  ExpositionWriter w;
  w.Family("egressd_things_total", MetricType::kCounter, "Things.");
  w.Sample({{"kind", "a"}}, uint64_t{18446744073709551615u});
  w.Sample({{"kind", "b"}}, uint64_t{0});
  w.Family("egressd_level", MetricType::kGauge, "A level.");
  w.Sample({}, 0.25);
  w.Family("egressd_wait_seconds", MetricType::kHistogram, "Waits.");
  w.Histogram({{"where", "x"}},
              HistogramData{{0.0005, 1, 2.5}, {1, 0, 2, 3}, 12.5});
  ASSERT_TRUE(w.status().ok()) << w.status();
  EXPECT_EQ(w.text(),
            "# HELP egressd_things_total Things.\n"
            "# TYPE egressd_things_total counter\n"
            "egressd_things_total{kind=\"a\"} 18446744073709551615\n"
            "egressd_things_total{kind=\"b\"} 0\n"
            "# HELP egressd_level A level.\n"
            "# TYPE egressd_level gauge\n"
            "egressd_level 0.25\n"
            "# HELP egressd_wait_seconds Waits.\n"
            "# TYPE egressd_wait_seconds histogram\n"
            "egressd_wait_seconds_bucket{where=\"x\",le=\"0.0005\"} 1\n"
            "egressd_wait_seconds_bucket{where=\"x\",le=\"1\"} 1\n"
            "egressd_wait_seconds_bucket{where=\"x\",le=\"2.5\"} 3\n"
            "egressd_wait_seconds_bucket{where=\"x\",le=\"+Inf\"} 6\n"
            "egressd_wait_seconds_sum{where=\"x\"} 12.5\n"
            "egressd_wait_seconds_count{where=\"x\"} 6\n");
  absl::StatusOr<std::vector<ParsedFamily>> parsed = ParseExposition(w.text());
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->size(), 3u);
}

TEST(ExpositionWriterTest, EscapesLabelValuesAndHelpSoTheyReadBack) {
  const std::string nasty = "a\\b\"c\nd}e,f=g{h 'i' \xc3\xa9";
  ExpositionWriter w;
  w.Family("egressd_x", MetricType::kGauge, "Help with \\ and\nnewline.");
  w.Sample({{"address", nasty}}, uint64_t{1});
  ASSERT_TRUE(w.status().ok());
  EXPECT_THAT(w.text(), HasSubstr("Help with \\\\ and\\nnewline."));
  absl::StatusOr<std::vector<ParsedFamily>> parsed = ParseExposition(w.text());
  ASSERT_TRUE(parsed.ok()) << parsed.status() << "\n" << w.text();
  EXPECT_EQ((*parsed)[0].help, "Help with \\ and\nnewline.");
  EXPECT_EQ((*parsed)[0].samples[0].Label("address"), nasty);
}

TEST(ExpositionWriterTest, FormatsValuesAsPrometheusReadsThem) {
  EXPECT_EQ(FormatValue(0), "0");
  EXPECT_EQ(FormatValue(0.1), "0.1");
  EXPECT_EQ(FormatValue(0.0005), "0.0005");
  EXPECT_EQ(FormatValue(60), "60");
  EXPECT_EQ(FormatValue(-2.5), "-2.5");
  EXPECT_EQ(FormatValue(1e-7), "1e-07");
  EXPECT_EQ(FormatValue(1e300), "1e+300");
  EXPECT_EQ(FormatValue(std::nan("")), "NaN");
  EXPECT_EQ(FormatValue(INFINITY), "+Inf");
  EXPECT_EQ(FormatValue(-INFINITY), "-Inf");
  for (double v : {0.1, 1.0 / 3, 123456.789, 1e-7, 6.02e23}) {
    std::optional<double> back = ParseExpositionValue(FormatValue(v));
    ASSERT_TRUE(back.has_value()) << FormatValue(v);
    EXPECT_EQ(*back, v) << FormatValue(v);
  }
}

TEST(ExpositionWriterTest, RefusesMisuseAndWritesNothingBad) {
  struct Case {
    const char* why;
    void (*write)(ExpositionWriter&);
  };
  const Case cases[] = {
      {"bad name",
       [](ExpositionWriter& w) {
         w.Family("9lives", MetricType::kGauge, "h");
       }},
      {"dash in name",
       [](ExpositionWriter& w) { w.Family("a-b", MetricType::kGauge, "h"); }},
      {"counter without _total",
       [](ExpositionWriter& w) {
         w.Family("egressd_things", MetricType::kCounter, "h");
       }},
      {"histogram named _count",
       [](ExpositionWriter& w) {
         w.Family("egressd_x_count", MetricType::kHistogram, "h");
       }},
      {"family twice",
       [](ExpositionWriter& w) {
         w.Family("egressd_x", MetricType::kGauge, "h");
         w.Family("egressd_x", MetricType::kGauge, "h");
       }},
      {"sample first", [](ExpositionWriter& w) { w.Sample({}, uint64_t{1}); }},
      {"bad label name",
       [](ExpositionWriter& w) {
         w.Family("egressd_x", MetricType::kGauge, "h");
         w.Sample({{"a-b", "v"}}, uint64_t{1});
       }},
      {"reserved label name",
       [](ExpositionWriter& w) {
         w.Family("egressd_x", MetricType::kGauge, "h");
         w.Sample({{"__name__", "v"}}, uint64_t{1});
       }},
      {"label twice",
       [](ExpositionWriter& w) {
         w.Family("egressd_x", MetricType::kGauge, "h");
         w.Sample({{"a", "1"}, {"a", "2"}}, uint64_t{1});
       }},
      {"le on a histogram",
       [](ExpositionWriter& w) {
         w.Family("egressd_x", MetricType::kHistogram, "h");
         w.Histogram({{"le", "1"}}, HistogramData{{1}, {0, 0}, 0});
       }},
      {"bounds descending",
       [](ExpositionWriter& w) {
         w.Family("egressd_x", MetricType::kHistogram, "h");
         w.Histogram({}, HistogramData{{2, 1}, {0, 0, 0}, 0});
       }},
      {"infinite bound",
       [](ExpositionWriter& w) {
         w.Family("egressd_x", MetricType::kHistogram, "h");
         w.Histogram({}, HistogramData{{1, INFINITY}, {0, 0, 0}, 0});
       }},
      {"counts do not fit bounds",
       [](ExpositionWriter& w) {
         w.Family("egressd_x", MetricType::kHistogram, "h");
         w.Histogram({}, HistogramData{{1, 2}, {0, 0}, 0});
       }},
      {"plain sample in a histogram",
       [](ExpositionWriter& w) {
         w.Family("egressd_x", MetricType::kHistogram, "h");
         w.Sample({}, uint64_t{1});
       }},
      {"histogram sample in a gauge",
       [](ExpositionWriter& w) {
         w.Family("egressd_x", MetricType::kGauge, "h");
         w.Histogram({}, HistogramData{{1}, {0, 0}, 0});
       }},
  };
  for (const Case& c : cases) {
    ExpositionWriter w;
    c.write(w);
    EXPECT_EQ(w.status().code(), absl::StatusCode::kInternal) << c.why;
    // What was written is still valid text (the bad part was skipped).
    EXPECT_TRUE(ParseExposition(w.text()).ok()) << c.why << "\n" << w.text();
  }
}

// ---------------------------------------------------------------------------
// CallMetrics: the Fetch path's recorder.

absl::StatusOr<Response> Succeeded(absl::Duration total, bool new_connection,
                                   int status = 200,
                                   const std::string& protocol = "http/1.1") {
  Response r;
  r.status_code = status;
  r.protocol = protocol;
  r.timing.total = total;
  r.timing.first_byte = total / 2;
  if (new_connection) {
    r.timing.dns = absl::Microseconds(300);
    r.timing.connect = absl::Milliseconds(1);  // exactly on a bound
  }
  return r;
}

TEST(CallMetricsTest, BucketsAreLessOrEqualAndPhasesOnlyWhenTheyHappened) {
  CallMetrics m;
  m.Record(Succeeded(absl::Milliseconds(1), /*new_connection=*/true));
  m.Record(Succeeded(absl::Seconds(90), /*new_connection=*/false, 503, "h2"));
  m.Record(absl::UnavailableError("connect refused"));
  m.Record(absl::ResourceExhaustedError("max_requests_in_flight"));
  const CallMetrics::Reading r = m.Read();

  const HistogramData& total = r.phases[static_cast<size_t>(Phase::kTotal)];
  ASSERT_EQ(total.counts.size(), kLatencyBoundsSeconds.size() + 1);
  EXPECT_EQ(total.counts[1], 1u) << "1 ms is in the le=0.001 bucket";
  EXPECT_EQ(total.counts.back(), 1u) << "90 s is past the last bound";
  EXPECT_DOUBLE_EQ(total.sum, 90.001);
  const HistogramData& connect = r.phases[static_cast<size_t>(Phase::kConnect)];
  uint64_t connects = 0;
  for (uint64_t c : connect.counts) connects += c;
  EXPECT_EQ(connects, 1u) << "only the call that connected";
  EXPECT_EQ(connect.counts[1], 1u);
  const HistogramData& tls = r.phases[static_cast<size_t>(Phase::kTls)];
  for (uint64_t c : tls.counts) EXPECT_EQ(c, 0u);

  EXPECT_EQ(r.responses[0][1], 1u);  // http/1.1 2xx
  EXPECT_EQ(r.responses[1][4], 1u);  // h2 5xx
  EXPECT_EQ(r.errors[static_cast<size_t>(absl::StatusCode::kUnavailable)], 1u);
  EXPECT_EQ(r.errors[static_cast<size_t>(absl::StatusCode::kResourceExhausted)],
            1u);
}

TEST(CallMetricsTest, CountsEveryRecordFromManyThreads) {
  CallMetrics m;
  constexpr int kThreads = 8;
  constexpr int kPerThread = 5000;
  std::vector<std::thread> threads;
  std::atomic<bool> go{false};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&m, &go, t] {
      while (!go.load()) {
      }
      for (int i = 0; i < kPerThread; ++i) {
        if (i % 10 == 0) {
          m.Record(absl::DeadlineExceededError("late"));
        } else {
          m.Record(
              Succeeded(absl::Microseconds(100 * (i % 50 + t)), i % 7 == 0));
        }
      }
    });
  }
  go.store(true);
  // Reading while they record: every reading is a valid exposition.
  for (int i = 0; i < 20; ++i) {
    ExpositionWriter w;
    w.Family("egressd_request_duration_seconds", MetricType::kHistogram, "h");
    w.Histogram({}, m.Read().phases[0]);
    ASSERT_TRUE(ParseExposition(w.text()).ok()) << w.text();
  }
  for (std::thread& t : threads) t.join();
  const CallMetrics::Reading r = m.Read();
  uint64_t total = 0;
  for (uint64_t c : r.phases[static_cast<size_t>(Phase::kTotal)].counts) {
    total += c;
  }
  EXPECT_EQ(total, uint64_t{kThreads} * kPerThread * 9 / 10);
  EXPECT_EQ(r.responses[0][1], total);
  EXPECT_EQ(r.errors[static_cast<size_t>(absl::StatusCode::kDeadlineExceeded)],
            uint64_t{kThreads} * kPerThread / 10);
}

// ---------------------------------------------------------------------------
// The pool's metrics.

PoolState SomeState() {
  PoolState s;
  s.pool.connection_count = 3;
  s.pool.idle_count = 2;
  s.pool.in_use_count = 1;
  s.pool.connecting_count = 1;
  s.pool.pending_count = 4;
  s.pool.requests_in_flight = 5;
  s.pool.connections_opened = 10;
  s.pool.connect_failures = 2;
  s.pool.cleanup_wakeups = 6;
  s.pool.closed_by_reason[static_cast<size_t>(CloseReason::kIdleTimeout)] = 4;
  s.pool.closed_by_reason[static_cast<size_t>(CloseReason::kEvictRequest)] = 3;
  s.pool.rejected_by_limit[static_cast<size_t>(PoolLimit::kPendingTimeout)] = 7;
  PoolSnapshot::AddressCounts a;
  a.address.scheme = "http";
  a.address.host = "origin.test";
  a.address.port = 8080;
  a.connection_count = 3;
  a.idle_count = 2;
  a.in_use_count = 1;
  a.requests_served = 99;
  s.pool.addresses.push_back(a);
  // A host with characters that need escaping in a label value.
  a.address.host = "we\"ird\\host";
  s.pool.addresses.push_back(a);
  s.calls.succeeded = 20;
  s.calls.failed = 3;
  s.calls.on_new_connection = 10;
  s.calls.on_reused_connection = 10;
  s.leaks_total = 1;
  s.resilience.connect_retries = 3;
  s.resilience.retry_budget_exhausted = 1;
  s.resilience.redirects_followed = 8;
  s.resilience.first_byte_timeouts = 2;
  s.resilience.decompression_limit_hits = 5;
  CallMetrics m;
  m.Record(Succeeded(absl::Milliseconds(3), true));
  s.call_metrics = m.Read();
  return s;
}

std::map<std::string, double> ByLabel(const ParsedFamily& f,
                                      absl::string_view label) {
  std::map<std::string, double> out;
  for (const ParsedSample& s : f.samples) out[s.Label(label)] = s.value;
  return out;
}

TEST(PoolMetricsTest, TheWholeTextIsStrictlyValidAndHoldsTheCounts) {
  const PoolState state = SomeState();
  ExpositionWriter w;
  WritePoolMetrics(state, PoolMetricsOptions{}, &w);
  ASSERT_TRUE(w.status().ok()) << w.status();
  absl::StatusOr<std::vector<ParsedFamily>> parsed = ParseExposition(w.text());
  ASSERT_TRUE(parsed.ok()) << parsed.status() << "\n" << w.text();

  for (const ParsedFamily& f : *parsed) {
    EXPECT_TRUE(absl::StartsWith(f.name, "egressd_")) << f.name;
    EXPECT_FALSE(f.help.empty()) << f.name;
  }
  const ParsedFamily* connections = FindFamily(*parsed, "egressd_connections");
  ASSERT_NE(connections, nullptr);
  EXPECT_EQ(connections->type, "gauge");
  EXPECT_EQ(ByLabel(*connections, "state"),
            (std::map<std::string, double>{
                {"idle", 2}, {"in_use", 1}, {"connecting", 1}}));

  const ParsedFamily* closed =
      FindFamily(*parsed, "egressd_connections_closed_total");
  ASSERT_NE(closed, nullptr);
  EXPECT_EQ(closed->type, "counter");
  std::map<std::string, double> reasons = ByLabel(*closed, "reason");
  EXPECT_EQ(reasons.size(), kAllCloseReasons.size())
      << "every reason, zeros too";
  EXPECT_EQ(reasons["idle_timeout"], 4);
  EXPECT_EQ(reasons["evict_request"], 3);
  EXPECT_EQ(reasons["shutdown"], 0);

  std::map<std::string, double> rejected =
      ByLabel(*FindFamily(*parsed, "egressd_rejections_total"), "limit");
  EXPECT_EQ(rejected.size(), kPoolLimitCount);
  EXPECT_EQ(rejected["pending_timeout"], 7);

  EXPECT_EQ(ByLabel(*FindFamily(*parsed, "egressd_requests_total"), "outcome"),
            (std::map<std::string, double>{{"succeeded", 20}, {"failed", 3}}));
  EXPECT_EQ(
      FindFamily(*parsed, "egressd_connections_opened_total")->samples[0].value,
      10);
  EXPECT_EQ(
      FindFamily(*parsed, "egressd_connect_failures_total")->samples[0].value,
      2);
  EXPECT_EQ(FindFamily(*parsed, "egressd_pending_calls")->samples[0].value, 4);
  EXPECT_EQ(FindFamily(*parsed, "egressd_requests_in_flight")->samples[0].value,
            5);
  EXPECT_EQ(FindFamily(*parsed, "egressd_leaks_total")->samples[0].value, 1);
  EXPECT_EQ(
      FindFamily(*parsed, "egressd_cleanup_wakeups_total")->samples[0].value,
      6);
  const ParsedFamily* safety =
      FindFamily(*parsed, "egressd_safety_events_total");
  ASSERT_NE(safety, nullptr);
  EXPECT_EQ(safety->type, "counter");
  EXPECT_EQ(ByLabel(*safety, "event"),
            (std::map<std::string, double>{{"connect_retry", 3},
                                           {"retry_budget_exhausted", 1},
                                           {"redirect_followed", 8},
                                           {"rejected_per_caller", 0},
                                           {"rejected_request_limits", 0},
                                           {"first_byte_timeout", 2},
                                           {"idle_read_timeout", 0},
                                           {"response_decoded", 0},
                                           {"decompression_limit", 5}}))
      << "every event, zeros too";

  for (const char* name :
       {"egressd_request_duration_seconds",
        "egressd_request_queue_wait_seconds", "egressd_request_dns_seconds",
        "egressd_request_connect_seconds", "egressd_request_tls_seconds",
        "egressd_request_first_byte_seconds"}) {
    const ParsedFamily* h = FindFamily(*parsed, name);
    ASSERT_NE(h, nullptr) << name;
    EXPECT_EQ(h->type, "histogram");
  }
  const ParsedFamily* duration =
      FindFamily(*parsed, "egressd_request_duration_seconds");
  EXPECT_EQ(duration->samples.back().name,
            "egressd_request_duration_seconds_count");
  EXPECT_EQ(duration->samples.back().value, 1);

  // No per-address series unless asked for.
  for (const ParsedFamily& f : *parsed) {
    for (const ParsedSample& s : f.samples) {
      EXPECT_EQ(s.Label("address"), "") << f.name;
    }
  }
}

TEST(PoolMetricsTest, PerAddressSeriesOnlyWhenAskedAndEscaped) {
  const PoolState state = SomeState();
  ExpositionWriter w;
  WritePoolMetrics(state, PoolMetricsOptions{/*per_address=*/true}, &w);
  ASSERT_TRUE(w.status().ok()) << w.status();
  absl::StatusOr<std::vector<ParsedFamily>> parsed = ParseExposition(w.text());
  ASSERT_TRUE(parsed.ok()) << parsed.status() << "\n" << w.text();
  const ParsedFamily* conns =
      FindFamily(*parsed, "egressd_address_connections");
  ASSERT_NE(conns, nullptr);
  EXPECT_EQ(conns->samples.size(), 6u);  // 2 addresses x 3 states
  std::set<std::string> addresses;
  for (const ParsedSample& s : conns->samples)
    addresses.insert(s.Label("address"));
  EXPECT_EQ(addresses, (std::set<std::string>{"http://origin.test:8080",
                                              "http://we\"ird\\host:8080"}));
  const ParsedFamily* served =
      FindFamily(*parsed, "egressd_address_requests_served_total");
  ASSERT_NE(served, nullptr);
  EXPECT_EQ(served->type, "counter");
  EXPECT_EQ(served->samples[0].value, 99);
}

// ---------------------------------------------------------------------------
// The server, in-process (no gRPC, so under TSan too): scrapes while other
// threads record calls, then stops.

std::string HttpGet(uint16_t port, const std::string& path) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  timeval timeout{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string reply;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    const std::string request =
        absl::StrCat("GET ", path, " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    send(fd, request.data(), request.size(), MSG_NOSIGNAL);
    char buffer[8192];
    ssize_t n;
    while ((n = recv(fd, buffer, sizeof buffer, 0)) > 0)
      reply.append(buffer, n);
  }
  close(fd);
  return reply;
}

TEST(MetricsServerTest, ServesStrictTextWhileCallsAreRecorded) {
  HttpClientOptions client_options;
  client_options.event_loops = 1;
  HttpClient client(client_options);
  CallMetrics calls;
  absl::StatusOr<std::unique_ptr<MetricsServer>> server = MetricsServer::Start(
      ListenAddress{"127.0.0.1", 0}, &client, &calls, MetricsServerOptions{});
  ASSERT_TRUE(server.ok()) << server.status();
  const uint16_t port = (*server)->bound().port;
  ASSERT_GT(port, 0);

  std::atomic<bool> stop{false};
  std::vector<std::thread> recorders;
  for (int t = 0; t < 4; ++t) {
    recorders.emplace_back([&calls, &stop] {
      while (!stop.load()) calls.Record(Succeeded(absl::Milliseconds(2), true));
    });
  }
  for (int i = 0; i < 10; ++i) {
    const std::string reply = HttpGet(port, "/metrics");
    const size_t body = reply.find("\r\n\r\n");
    ASSERT_NE(body, std::string::npos) << reply;
    EXPECT_TRUE(absl::StartsWith(reply, "HTTP/1.1 200 OK\r\n")) << reply;
    absl::StatusOr<std::vector<ParsedFamily>> parsed =
        ParseExposition(absl::string_view(reply).substr(body + 4));
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    EXPECT_THAT(HttpGet(port, "/api/pool"), HasSubstr("\"events\":["));
  }
  stop.store(true);
  for (std::thread& t : recorders) t.join();
  const std::string last = HttpGet(port, "/metrics");
  EXPECT_THAT(
      last, HasSubstr("egressd_request_connect_seconds_bucket{le=\"0.0025\"}"));
  (*server)->Stop();
  EXPECT_EQ(HttpGet(port, "/metrics"), "") << "stopped: nothing listens";
}

TEST(MetricsServerTest, TheHostHeaderMustNameTheListener) {
  const asio::ip::address local = asio::ip::make_address("10.0.0.7");
  const std::vector<std::string> allowed = {"egressd.example.com", "fd00::1"};
  for (const char* host :
       {"10.0.0.7", "10.0.0.7:9902", "localhost", "LocalHost.:8080",
        "pod.internal", "egressd.example.com", "[fd00::1]:80"}) {
    EXPECT_TRUE(HostNamesListener(host, local, "pod.internal", allowed))
        << host;
  }
  for (const char* host : {"", ":9902", "10.0.0.8", "attacker.example",
                           "localhost.attacker.example", "[::1]", "[fd00::1"}) {
    EXPECT_FALSE(HostNamesListener(host, local, "pod.internal", allowed))
        << host;
  }
  // A connection over IPv4 to a dual-stack socket has a mapped address.
  EXPECT_TRUE(HostNamesListener(
      "127.0.0.1:1", asio::ip::make_address("::ffff:127.0.0.1"), "::", {}));
}

TEST(MetricsServerTest, RefusesAPortInUse) {
  HttpClientOptions client_options;
  client_options.event_loops = 1;
  HttpClient client(client_options);
  CallMetrics calls;
  auto first = MetricsServer::Start(ListenAddress{"127.0.0.1", 0}, &client,
                                    &calls, MetricsServerOptions{});
  ASSERT_TRUE(first.ok()) << first.status();
  auto second = MetricsServer::Start((*first)->bound(), &client, &calls,
                                     MetricsServerOptions{});
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(second.status().message(),
              HasSubstr(absl::StrCat("cannot listen on 127.0.0.1:",
                                     (*first)->bound().port)));
}

}  // namespace
}  // namespace egress::metrics
