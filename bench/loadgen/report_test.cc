#include "bench/loadgen/report.h"

#include <string>

#include "gtest/gtest.h"

namespace egress::bench {
namespace {

RunReport Sample() {
  RunReport r;
  r.label = "egressd \"1k\"";
  r.protocol = "grpc";
  r.mode = "open";
  r.target = "127.0.0.1:7070";
  r.request = "http://127.0.0.1:8080/1k";
  r.offered_rate = 1000;
  r.connections = 4;
  r.window_seconds = 2;
  r.measured_calls = 3;
  r.completed_in_window = 3;
  r.status["OK"] = 2;
  r.status["UNAVAILABLE"] = 1;
  r.http_status[200] = 2;
  r.response_body_bytes = 2048;
  r.latency_ns.Record(100'000);
  r.latency_ns.Record(200'000);
  r.latency_ns.Record(300'000);
  return r;
}

TEST(RunReportTest, ThroughputAndErrors) {
  RunReport r = Sample();
  EXPECT_DOUBLE_EQ(r.Throughput(), 1.5);
  EXPECT_EQ(r.Errors(), 1);
  EXPECT_EQ(RunReport().Throughput(), 0);
}

TEST(RunReportTest, MergeAddsCountsNotConfig) {
  RunReport a = Sample();
  RunReport b;
  b.label = "other";
  b.measured_calls = 2;
  b.completed_in_window = 1;
  b.status["OK"] = 2;
  b.http_status[503] = 2;
  b.latency_ns.Record(1'000'000);
  a.Merge(b);
  EXPECT_EQ(a.label, "egressd \"1k\"");
  EXPECT_EQ(a.measured_calls, 5);
  EXPECT_EQ(a.completed_in_window, 4);
  EXPECT_EQ(a.status["OK"], 4);
  EXPECT_EQ(a.http_status[503], 2);
  EXPECT_EQ(a.latency_ns.count(), 4);
  EXPECT_EQ(a.latency_ns.max(), 1'000'000);
}

TEST(RunReportTest, JsonCarriesEveryFigureAndEscapes) {
  const std::string json = FormatJson(Sample());
  EXPECT_NE(json.find("\"label\": \"egressd \\\"1k\\\"\""), std::string::npos)
      << json;
  EXPECT_NE(json.find("\"throughput_rps\": 1.5"), std::string::npos) << json;
  EXPECT_NE(json.find("\"status\": {\"OK\": 2, \"UNAVAILABLE\": 1}"),
            std::string::npos)
      << json;
  EXPECT_NE(json.find("\"http_status\": {\"200\": 2}"), std::string::npos)
      << json;
  // 200,000 ns lies in a 1,024 ns bucket whose highest value is 200,703.
  EXPECT_NE(json.find("\"p50\": 200.7"), std::string::npos) << json;
  EXPECT_NE(json.find("\"max\": 300.0"), std::string::npos) << json;
  EXPECT_EQ(json.back(), '\n');
}

TEST(RunReportTest, TextShowsPercentilesAndStatus) {
  const std::string text = FormatText(Sample());
  EXPECT_NE(text.find("rate=1000/s"), std::string::npos) << text;
  EXPECT_NE(text.find("errors 1"), std::string::npos) << text;
  EXPECT_NE(text.find("p50 200.7"), std::string::npos) << text;
  EXPECT_NE(text.find("status: OK=2 UNAVAILABLE=1"), std::string::npos)
      << text;
  EXPECT_NE(text.find("send lag us"), std::string::npos) << text;
}

}  // namespace
}  // namespace egress::bench
